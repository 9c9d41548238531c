// Socket options set and read by number, one implementation per OS family
// (os_socket_posix.cc, os_socket_win.cc). The numbers are the addon's own, the same on every
// platform; each implementation maps them to its level and name. Returns 0 or the OS error;
// ENOPROTOOPT (WSAENOPROTOOPT) where the OS has no such option.
#ifndef WSK_DGRAM_SOCKET_OPTIONS_H_
#define WSK_DGRAM_SOCKET_OPTIONS_H_

#include "os_socket.h"

namespace wsk {

enum class SocketOption : int {
  // Path MTU discovery (IP_MTU_DISCOVER / IPV6_MTU_DISCOVER): a MtuDiscovery value.
  kMtuDiscovery = 20,
  // Refuse (EMSGSIZE) instead of fragmenting a datagram larger than the path MTU: 0 or 1.
  // IPv6: IPV6_DONTFRAG. IPv4: IP_MTU_DISCOVER "do" (1) or "want" (0) on Linux,
  // IP_DONTFRAGMENT on Windows.
  kDontFragment = 21,
  // The path MTU the kernel knows for the connected remote (IP_MTU / IPV6_MTU); read only.
  kMtu = 22,
  // The ICMP error queue (IP_RECVERR / IPV6_RECVERR): 0 or 1. On at open on Linux.
  kRecvErr = 23,
};

// The addon's path MTU discovery modes (Linux's IP_PMTUDISC_* numbering).
enum class MtuDiscovery : int { kDont = 0, kWant = 1, kDo = 2, kProbe = 3 };

int SetSocketOption(SocketHandle socket, IpFamily family, SocketOption option, int value);
int GetSocketOption(SocketHandle socket, IpFamily family, SocketOption option, int* value);

}  // namespace wsk

#endif  // WSK_DGRAM_SOCKET_OPTIONS_H_
