// Socket operations for Linux and other POSIX systems.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "os_socket.h"

namespace wsk {

int MakeAddress(IpFamily family, const char* ip, uint16_t port, uint32_t scope_id,
                SocketAddress* out) {
  *out = SocketAddress{};
  if (family == IpFamily::kV4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&out->storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    if (inet_pton(AF_INET, ip, &sin->sin_addr) != 1) return EINVAL;
    out->length = sizeof(sockaddr_in);
    return 0;
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out->storage);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  sin6->sin6_scope_id = scope_id;
  if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) != 1) return EINVAL;
  out->length = sizeof(sockaddr_in6);
  return 0;
}

int FormatAddress(const SocketAddress& address, char* ip, size_t ip_size, uint16_t* port,
                  uint32_t* scope_id) {
  const void* raw = nullptr;
  int af = address.storage.ss_family;
  if (af == AF_INET) {
    const auto* sin = reinterpret_cast<const sockaddr_in*>(&address.storage);
    raw = &sin->sin_addr;
    *port = ntohs(sin->sin_port);
    *scope_id = 0;
  } else if (af == AF_INET6) {
    const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&address.storage);
    raw = &sin6->sin6_addr;
    *port = ntohs(sin6->sin6_port);
    *scope_id = sin6->sin6_scope_id;
  } else {
    return EAFNOSUPPORT;
  }
  if (inet_ntop(af, raw, ip, static_cast<socklen_t>(ip_size)) == nullptr) return errno;
  return 0;
}

int OpenUdpSocket(IpFamily family, SocketHandle* out) {
  const int af = family == IpFamily::kV6 ? AF_INET6 : AF_INET;
#ifdef SOCK_NONBLOCK
  int fd = socket(af, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) return errno;
#else
  int fd = socket(af, SOCK_DGRAM, IPPROTO_UDP);
  if (fd < 0) return errno;
  if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0 ||
      fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    int error = errno;
    close(fd);
    return error;
  }
#endif
  if (family == IpFamily::kV6) {
    // Windows' default; it keeps "udp6" meaning IPv6 on every platform.
    int on = 1;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) != 0) {
      int error = errno;
      close(fd);
      return error;
    }
  }
  *out = fd;
  return 0;
}

int BindSocket(SocketHandle socket, const SocketAddress& address) {
  return bind(socket, reinterpret_cast<const sockaddr*>(&address.storage), address.length) == 0
             ? 0
             : errno;
}

int ConnectSocket(SocketHandle socket, const SocketAddress& address) {
  return connect(socket, reinterpret_cast<const sockaddr*>(&address.storage), address.length) == 0
             ? 0
             : errno;
}

int GetLocalAddress(SocketHandle socket, SocketAddress* out) {
  *out = SocketAddress{};
  out->length = sizeof(out->storage);
  return getsockname(socket, reinterpret_cast<sockaddr*>(&out->storage), &out->length) == 0 ? 0
                                                                                            : errno;
}

int GetRemoteAddress(SocketHandle socket, SocketAddress* out) {
  *out = SocketAddress{};
  out->length = sizeof(out->storage);
  return getpeername(socket, reinterpret_cast<sockaddr*>(&out->storage), &out->length) == 0 ? 0
                                                                                            : errno;
}

int SetSendBufferSize(SocketHandle socket, int bytes) {
  return setsockopt(socket, SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes)) == 0 ? 0 : errno;
}

int GetSendBufferSize(SocketHandle socket, int* bytes) {
  socklen_t length = sizeof(*bytes);
  return getsockopt(socket, SOL_SOCKET, SO_SNDBUF, bytes, &length) == 0 ? 0 : errno;
}

int CloseSocket(SocketHandle socket) {
  // POSIX leaves the descriptor closed even when close() reports EINTR: never retry.
  return close(socket) == 0 || errno == EINTR ? 0 : errno;
}

int CheckBorrowableUdpSocket(SocketHandle socket, IpFamily family) {
  const int flags = fcntl(socket, F_GETFL);
  if (flags < 0) return errno;
  // A blocking descriptor would block the event loop in sendmmsg; its flags are not ours to
  // change (libuv's UDP sockets are always non-blocking).
  if ((flags & O_NONBLOCK) == 0) return EINVAL;
  int type = 0;
  socklen_t length = sizeof(type);
  if (getsockopt(socket, SOL_SOCKET, SO_TYPE, &type, &length) != 0) return errno;
  if (type != SOCK_DGRAM) return EPROTOTYPE;
#ifdef SO_PROTOCOL
  int protocol = 0;
  length = sizeof(protocol);
  if (getsockopt(socket, SOL_SOCKET, SO_PROTOCOL, &protocol, &length) != 0) return errno;
  if (protocol != IPPROTO_UDP) return EPROTOTYPE;
#endif
  SocketAddress local;
  if (int error = GetLocalAddress(socket, &local)) return error;
  const int expected = family == IpFamily::kV6 ? AF_INET6 : AF_INET;
  return local.storage.ss_family == expected ? 0 : EAFNOSUPPORT;
}

}  // namespace wsk
