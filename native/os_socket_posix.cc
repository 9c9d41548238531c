// Socket operations for Linux and other POSIX systems.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "os_socket.h"
#include "socket_options.h"

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

namespace {

int SetInt(SocketHandle socket, int level, int name, int value) {
  return setsockopt(socket, level, name, &value, sizeof(value)) == 0 ? 0 : errno;
}

int GetInt(SocketHandle socket, int level, int name, int* value) {
  socklen_t length = sizeof(*value);
  return getsockopt(socket, level, name, value, &length) == 0 ? 0 : errno;
}

}  // namespace

int SetSocketOption(SocketHandle socket, IpFamily family, SocketOption option, int value) {
  const bool v6 = family == IpFamily::kV6;
  switch (option) {
#if defined(IP_MTU_DISCOVER) && defined(IPV6_MTU_DISCOVER)
    case SocketOption::kMtuDiscovery:
      // Linux's IP_PMTUDISC_* numbers are the addon's. An IPv6 socket's IPv4 half (v4-mapped
      // peers) follows, best effort.
      if (!v6) return SetInt(socket, IPPROTO_IP, IP_MTU_DISCOVER, value);
      if (int error = SetInt(socket, IPPROTO_IPV6, IPV6_MTU_DISCOVER, value)) return error;
      SetInt(socket, IPPROTO_IP, IP_MTU_DISCOVER, value);
      return 0;
#endif
    case SocketOption::kDontFragment:
#ifdef IP_MTU_DISCOVER
      if (!v6) {
        return SetInt(socket, IPPROTO_IP, IP_MTU_DISCOVER,
                      value ? IP_PMTUDISC_DO : IP_PMTUDISC_WANT);
      }
#else
      if (!v6) return ENOPROTOOPT;
#endif
#ifdef IPV6_DONTFRAG
      return SetInt(socket, IPPROTO_IPV6, IPV6_DONTFRAG, value ? 1 : 0);
#else
      return ENOPROTOOPT;
#endif
#if defined(IP_RECVERR) && defined(IPV6_RECVERR)
    case SocketOption::kRecvErr:
      if (!v6) return SetInt(socket, IPPROTO_IP, IP_RECVERR, value ? 1 : 0);
      if (int error = SetInt(socket, IPPROTO_IPV6, IPV6_RECVERR, value ? 1 : 0)) return error;
      SetInt(socket, IPPROTO_IP, IP_RECVERR, value ? 1 : 0);
      return 0;
#endif
    default:
      return ENOPROTOOPT;
  }
}

int GetSocketOption(SocketHandle socket, IpFamily family, SocketOption option, int* value) {
  const bool v6 = family == IpFamily::kV6;
  switch (option) {
#if defined(IP_MTU_DISCOVER) && defined(IPV6_MTU_DISCOVER)
    case SocketOption::kMtuDiscovery:
      return v6 ? GetInt(socket, IPPROTO_IPV6, IPV6_MTU_DISCOVER, value)
                : GetInt(socket, IPPROTO_IP, IP_MTU_DISCOVER, value);
#endif
    case SocketOption::kDontFragment:
#ifdef IP_MTU_DISCOVER
      if (!v6) {
        int mode = 0;
        if (int error = GetInt(socket, IPPROTO_IP, IP_MTU_DISCOVER, &mode)) return error;
        *value = mode == IP_PMTUDISC_DO || mode == IP_PMTUDISC_PROBE ? 1 : 0;
        return 0;
      }
#else
      if (!v6) return ENOPROTOOPT;
#endif
#ifdef IPV6_DONTFRAG
      return GetInt(socket, IPPROTO_IPV6, IPV6_DONTFRAG, value);
#else
      return ENOPROTOOPT;
#endif
#if defined(IP_MTU) && defined(IPV6_MTU)
    case SocketOption::kMtu:
      // ENOTCONN unless connected: the kernel knows a path MTU per destination.
      return v6 ? GetInt(socket, IPPROTO_IPV6, IPV6_MTU, value)
                : GetInt(socket, IPPROTO_IP, IP_MTU, value);
#endif
#if defined(IP_RECVERR) && defined(IPV6_RECVERR)
    case SocketOption::kRecvErr:
      return v6 ? GetInt(socket, IPPROTO_IPV6, IPV6_RECVERR, value)
                : GetInt(socket, IPPROTO_IP, IP_RECVERR, value);
#endif
    default:
      return ENOPROTOOPT;
  }
}

int CloseSocket(SocketHandle socket) {
  // POSIX leaves the descriptor closed even when close() reports EINTR: never retry.
  return close(socket) == 0 || errno == EINTR ? 0 : errno;
}

}  // namespace wsk
