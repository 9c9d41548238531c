// Socket options by platform-neutral number: the JavaScript side names an option by one of these
// numbers (lib/binding.ts NativeOption mirrors them; test/unit/socket-options.test.ts checks the
// two agree) and each OS file maps it to its own level and name (os_socket_posix.cc,
// os_socket_win.cc). The numbers are explicit and never reused: 1..19 are the dgram-parity
// options, 20 and up the error-queue / path-MTU options.
#ifndef WSK_DGRAM_SOCKET_OPTIONS_H_
#define WSK_DGRAM_SOCKET_OPTIONS_H_

#include <climits>

#include "os_socket.h"

namespace wsk {

enum class SocketOption : int {
  kReuseAddress = 1,        // SO_REUSEADDR, 0/1
  kReusePort = 2,           // SO_REUSEPORT, 0/1 (ENOPROTOOPT where the OS lacks it)
  kBroadcast = 3,           // SO_BROADCAST, 0/1
  kTtl = 4,                 // IP_TTL / IPV6_UNICAST_HOPS, 1..255
  kTos = 5,                 // IP_TOS / IPV6_TCLASS, 0..255
  kMulticastTtl = 6,        // IP_MULTICAST_TTL / IPV6_MULTICAST_HOPS, 0..255
  kMulticastLoopback = 7,   // IP_MULTICAST_LOOP / IPV6_MULTICAST_LOOP, 0/1
  kReceiveBufferSize = 8,   // SO_RCVBUF, 1..INT_MAX (capped by net.core.rmem_max on Linux)
  kReceiveBufferForce = 9,  // SO_RCVBUFFORCE (Linux, CAP_NET_ADMIN), 1..INT_MAX
  kSendBufferForce = 10,    // SO_SNDBUFFORCE (Linux, CAP_NET_ADMIN), 1..INT_MAX
  kSendBufferSize = 11,     // SO_SNDBUF, 1..INT_MAX
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

// The values `option` takes; false when `option` is not a known number (then min/max are unset).
inline bool SocketOptionRange(int option, int* min, int* max) {
  switch (static_cast<SocketOption>(option)) {
    case SocketOption::kReuseAddress:
    case SocketOption::kReusePort:
    case SocketOption::kBroadcast:
    case SocketOption::kMulticastLoopback:
      *min = 0;
      *max = 1;
      return true;
    case SocketOption::kTtl:
      *min = 1;
      *max = 255;
      return true;
    case SocketOption::kTos:
    case SocketOption::kMulticastTtl:
      *min = 0;
      *max = 255;
      return true;
    case SocketOption::kReceiveBufferSize:
    case SocketOption::kReceiveBufferForce:
    case SocketOption::kSendBufferForce:
    case SocketOption::kSendBufferSize:
      *min = 1;
      *max = INT_MAX;
      return true;
    case SocketOption::kMtuDiscovery:
      *min = 0;
      *max = 3;
      return true;
    case SocketOption::kDontFragment:
    case SocketOption::kRecvErr:
      *min = 0;
      *max = 1;
      return true;
    case SocketOption::kMtu:  // read only: setOption refuses it
      *min = 0;
      *max = INT_MAX;
      return true;
  }
  return false;
}

// Sets `option` to `value` (already in SocketOptionRange) on a socket of `family`: 0 or the OS
// error; ENOPROTOOPT (WSAENOPROTOOPT) where the platform lacks the option. For an IPv6 socket
// the IPv6-level option is set and, on Linux, the IPv4-level one as well (kTtl, kTos,
// kMulticastTtl, kMulticastLoopback), so that the IPv4 traffic of a dual-stack socket follows.
int SetSocketOption(SocketHandle socket, IpFamily family, SocketOption option, int value);
// Reads `option` (the IPv6-level one for an IPv6 socket) into `value`: 0 or the OS error.
int GetSocketOption(SocketHandle socket, IpFamily family, SocketOption option, int* value);

}  // namespace wsk

#endif  // WSK_DGRAM_SOCKET_OPTIONS_H_
