// The small set of socket operations the addon needs, one implementation per OS family
// (os_socket_posix.cc, os_socket_win.cc). Every function returns 0 or the OS error code (errno,
// or a WSA code on Windows); none throws and none knows about Node-API.
#ifndef WSK_DGRAM_OS_SOCKET_H_
#define WSK_DGRAM_OS_SOCKET_H_

#include <cstddef>
#include <cstdint>

#ifdef _WIN32
#include <winsock2.h>
#include <ws2tcpip.h>
#else
#include <sys/socket.h>

#include <cerrno>
#endif

namespace wsk {

#ifdef _WIN32
using SocketHandle = SOCKET;
using SockLen = int;
constexpr SocketHandle kInvalidSocket = INVALID_SOCKET;
// The error the addon reports for a socket that is closed (or never opened).
constexpr int kErrorBadHandle = WSAENOTSOCK;
// What a borrowed descriptor (UdpSocket::Adopt) refuses: polling, receiving, bind, connect,
// options.
constexpr int kErrorNotOwned = WSAEOPNOTSUPP;
// The error the addon reports for a feature this platform lacks.
constexpr int kErrorNotSupported = WSAEOPNOTSUPP;
#else
using SocketHandle = int;
using SockLen = socklen_t;
constexpr SocketHandle kInvalidSocket = -1;
constexpr int kErrorBadHandle = EBADF;
constexpr int kErrorNotOwned = EOPNOTSUPP;
constexpr int kErrorNotSupported = EOPNOTSUPP;
#endif

// 4 or 6: the address families the addon speaks, independent of the OS's AF_* numbers.
enum class IpFamily : int { kV4 = 4, kV6 = 6 };

struct SocketAddress {
  sockaddr_storage storage{};
  SockLen length = 0;
  IpFamily family() const;
};

// Builds an address from an IP literal (no zone suffix). EINVAL when `ip` is not a literal of
// `family`.
int MakeAddress(IpFamily family, const char* ip, uint16_t port, uint32_t scope_id,
                SocketAddress* out);
// Builds an address (port 0) from raw IP bytes: 4 for IPv4, 16 for IPv6.
void MakeAddressFromBytes(IpFamily family, const uint8_t bytes[16], SocketAddress* out);
// The same with a port and, for IPv6, a scope id (a destination record, lib/batch.ts).
void MakeAddressFromBytes(IpFamily family, const uint8_t bytes[16], uint16_t port,
                          uint32_t scope_id, SocketAddress* out);
// Copies the raw IP address of `address` into `out`: 4 bytes for IPv4, 16 for IPv6.
void AddressBytes(const SocketAddress& address, uint8_t out[16]);
// Whether 16 address bytes are an IPv4-mapped IPv6 address (::ffff:a.b.c.d, RFC 4291 2.5.5.2).
bool IsV4MappedBytes(const uint8_t bytes[16]);
// Whether `address` is an IPv6 address of that form: how a dual-stack IPv6 socket names an IPv4
// peer. The kernel sends to it over IPv4 and reads IPv4-level controls for it.
bool IsV4Mapped(const SocketAddress& address);
// Writes the IP literal of `address` into `ip` (at least 46 bytes) and its port and scope.
int FormatAddress(const SocketAddress& address, char* ip, size_t ip_size, uint16_t* port,
                  uint32_t* scope_id);

// A non-blocking, close-on-exec UDP socket. An IPv6 socket is IPv6-only (IPV6_V6ONLY 1, set
// explicitly: the system default differs between OSes) unless `ipv6_only` is false: then it is
// dual-stack and reaches IPv4 peers through IPv4-mapped addresses. Ignored for IPv4.
int OpenUdpSocket(IpFamily family, bool ipv6_only, SocketHandle* out);
int BindSocket(SocketHandle socket, const SocketAddress& address);
int ConnectSocket(SocketHandle socket, const SocketAddress& address);
int GetLocalAddress(SocketHandle socket, SocketAddress* out);
int GetRemoteAddress(SocketHandle socket, SocketAddress* out);
int SetSendBufferSize(SocketHandle socket, int bytes);
int GetSendBufferSize(SocketHandle socket, int* bytes);
int CloseSocket(SocketHandle socket);
// Whether `socket`, a descriptor another owner keeps open (node:dgram's libuv handle), can be
// borrowed for sending: an open, non-blocking UDP socket of `family`. Changes nothing on it.
// POSIX only: Node gives no SOCKET of a dgram socket on Windows, which answers WSAEOPNOTSUPP.
int CheckBorrowableUdpSocket(SocketHandle socket, IpFamily family);

// Dissolves the association connect() made (connect with AF_UNSPEC; on Windows with the zero
// address), so that sends need a destination again.
int DisconnectSocket(SocketHandle socket, IpFamily family);

// The interface a multicast call names. IPv4: an address of the interface, network byte order
// (all zero: the OS picks). IPv6: the interface index (0: the OS picks).
struct MulticastInterface {
  uint8_t ipv4[4] = {0, 0, 0, 0};
  uint32_t index = 0;
};

// The index of the interface called `name` (if_nametoindex); ENODEV when there is none. Windows:
// names are not looked up (WSAEINVAL); give the index.
int InterfaceIndex(const char* name, uint32_t* index);
// Joins (`join`) or leaves `group` on the interface `via`; with `source`, the source-specific
// membership of `source` in `group` (IP_ADD_SOURCE_MEMBERSHIP / MCAST_JOIN_SOURCE_GROUP and their
// drops).
int SetMembership(SocketHandle socket, IpFamily family, bool join, const SocketAddress& group,
                  const SocketAddress* source, const MulticastInterface& via);
// The interface outgoing multicast leaves by (IP_MULTICAST_IF / IPV6_MULTICAST_IF).
int SetMulticastInterface(SocketHandle socket, IpFamily family, const MulticastInterface& via);

}  // namespace wsk

#endif  // WSK_DGRAM_OS_SOCKET_H_
