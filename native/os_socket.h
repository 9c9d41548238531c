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
// The error the addon reports for a feature this platform lacks.
constexpr int kErrorNotSupported = WSAEOPNOTSUPP;
#else
using SocketHandle = int;
using SockLen = socklen_t;
constexpr SocketHandle kInvalidSocket = -1;
constexpr int kErrorBadHandle = EBADF;
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
// Writes the IP literal of `address` into `ip` (at least 46 bytes) and its port and scope.
int FormatAddress(const SocketAddress& address, char* ip, size_t ip_size, uint16_t* port,
                  uint32_t* scope_id);

// A non-blocking, close-on-exec UDP socket; IPv6 sockets are IPv6-only, as on Windows.
int OpenUdpSocket(IpFamily family, SocketHandle* out);
int BindSocket(SocketHandle socket, const SocketAddress& address);
int ConnectSocket(SocketHandle socket, const SocketAddress& address);
int GetLocalAddress(SocketHandle socket, SocketAddress* out);
int GetRemoteAddress(SocketHandle socket, SocketAddress* out);
int SetSendBufferSize(SocketHandle socket, int bytes);
int GetSendBufferSize(SocketHandle socket, int* bytes);
int CloseSocket(SocketHandle socket);

}  // namespace wsk

#endif  // WSK_DGRAM_OS_SOCKET_H_
