// Socket operations for Linux and other POSIX systems.
#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
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

int OpenUdpSocket(IpFamily family, bool ipv6_only, SocketHandle* out) {
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
    // Set either way: Linux's default (net.ipv6.bindv6only) is 0, Windows' and OpenBSD's 1.
    int only = ipv6_only ? 1 : 0;
    if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &only, sizeof(only)) != 0) {
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

// IP_MULTICAST_TTL and IP_MULTICAST_LOOP: OpenBSD and Solaris take only a u_char there; the
// others take an int (Linux, macOS and FreeBSD take either).
int SetMulticastByte(SocketHandle socket, int name, int value) {
#if defined(__OpenBSD__) || defined(__sun)
  const unsigned char byte = static_cast<unsigned char>(value);
  return setsockopt(socket, IPPROTO_IP, name, &byte, sizeof(byte)) == 0 ? 0 : errno;
#else
  return SetInt(socket, IPPROTO_IP, name, value);
#endif
}

// The IPv4/IPv6 level and names of a per-family option.
struct LevelNames {
  int v4;
  int v6;
};

// Sets the family's option; for an IPv6 socket on Linux also the IPv4-level one, which is what
// the kernel applies to a dual-stack socket's IPv4 (v4-mapped) traffic. Linux takes IPv4-level
// options on every IPv6 UDP socket, IPv6-only ones included (ipv6_setsockopt hands SOL_IP to
// the IPv4 code), so a refusal there is a real error and is reported.
int SetPerFamily(SocketHandle socket, IpFamily family, LevelNames names, int value,
                 bool multicast_byte) {
  auto set_v4 = [&]() {
    return multicast_byte ? SetMulticastByte(socket, names.v4, value)
                          : SetInt(socket, IPPROTO_IP, names.v4, value);
  };
  if (family == IpFamily::kV4) return set_v4();
  if (int error = SetInt(socket, IPPROTO_IPV6, names.v6, value)) return error;
#ifdef __linux__
  return set_v4();
#else
  return 0;
#endif
}

}  // namespace

int SetSocketOption(SocketHandle socket, IpFamily family, SocketOption option, int value) {
  const bool v6 = family == IpFamily::kV6;
  switch (option) {
    case SocketOption::kReuseAddress:
      return SetInt(socket, SOL_SOCKET, SO_REUSEADDR, value);
    case SocketOption::kReusePort:
#ifdef SO_REUSEPORT
      return SetInt(socket, SOL_SOCKET, SO_REUSEPORT, value);
#else
      return ENOPROTOOPT;
#endif
    case SocketOption::kBroadcast:
      return SetInt(socket, SOL_SOCKET, SO_BROADCAST, value);
    case SocketOption::kTtl:
      return SetPerFamily(socket, family, {IP_TTL, IPV6_UNICAST_HOPS}, value, false);
    case SocketOption::kTos:
      return SetPerFamily(socket, family, {IP_TOS, IPV6_TCLASS}, value, false);
    case SocketOption::kMulticastTtl:
      return SetPerFamily(socket, family, {IP_MULTICAST_TTL, IPV6_MULTICAST_HOPS}, value, true);
    case SocketOption::kMulticastLoopback:
      return SetPerFamily(socket, family, {IP_MULTICAST_LOOP, IPV6_MULTICAST_LOOP}, value, true);
    case SocketOption::kReceiveBufferSize:
      return SetInt(socket, SOL_SOCKET, SO_RCVBUF, value);
    case SocketOption::kReceiveBufferForce:
#ifdef SO_RCVBUFFORCE
      return SetInt(socket, SOL_SOCKET, SO_RCVBUFFORCE, value);
#else
      return ENOPROTOOPT;
#endif
    case SocketOption::kSendBufferForce:
#ifdef SO_SNDBUFFORCE
      return SetInt(socket, SOL_SOCKET, SO_SNDBUFFORCE, value);
#else
      return ENOPROTOOPT;
#endif
    case SocketOption::kSendBufferSize:
      return SetInt(socket, SOL_SOCKET, SO_SNDBUF, value);
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
    case SocketOption::kMtu:  // read only
      return ENOPROTOOPT;
  }
  return ENOPROTOOPT;
}

int GetSocketOption(SocketHandle socket, IpFamily family, SocketOption option, int* value) {
  const bool v6 = family == IpFamily::kV6;
  switch (option) {
    case SocketOption::kReuseAddress:
      return GetInt(socket, SOL_SOCKET, SO_REUSEADDR, value);
    case SocketOption::kReusePort:
#ifdef SO_REUSEPORT
      return GetInt(socket, SOL_SOCKET, SO_REUSEPORT, value);
#else
      return ENOPROTOOPT;
#endif
    case SocketOption::kBroadcast:
      return GetInt(socket, SOL_SOCKET, SO_BROADCAST, value);
    case SocketOption::kTtl:
      return v6 ? GetInt(socket, IPPROTO_IPV6, IPV6_UNICAST_HOPS, value)
                : GetInt(socket, IPPROTO_IP, IP_TTL, value);
    case SocketOption::kTos:
      return v6 ? GetInt(socket, IPPROTO_IPV6, IPV6_TCLASS, value)
                : GetInt(socket, IPPROTO_IP, IP_TOS, value);
    case SocketOption::kMulticastTtl:
    case SocketOption::kMulticastLoopback: {
      const bool ttl = option == SocketOption::kMulticastTtl;
      if (v6) {
        return GetInt(socket, IPPROTO_IPV6, ttl ? IPV6_MULTICAST_HOPS : IPV6_MULTICAST_LOOP, value);
      }
      // The kernel may answer with one byte (BSDs); read into a zeroed int either way.
      *value = 0;
      return GetInt(socket, IPPROTO_IP, ttl ? IP_MULTICAST_TTL : IP_MULTICAST_LOOP, value);
    }
    case SocketOption::kReceiveBufferSize:
    case SocketOption::kReceiveBufferForce:
      return GetInt(socket, SOL_SOCKET, SO_RCVBUF, value);
    case SocketOption::kSendBufferSize:
    case SocketOption::kSendBufferForce:
      return GetInt(socket, SOL_SOCKET, SO_SNDBUF, value);
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
  }
  return ENOPROTOOPT;
}

int DisconnectSocket(SocketHandle socket, IpFamily) {
  sockaddr_storage unspecified{};
  unspecified.ss_family = AF_UNSPEC;
  if (connect(socket, reinterpret_cast<const sockaddr*>(&unspecified), sizeof(unspecified)) == 0) {
    return 0;
  }
  // macOS and the BSDs dissolve the association and then report EAFNOSUPPORT (libuv ignores it
  // the same way); Linux takes AF_UNSPEC as "disconnect" (inet_dgram_connect).
  return errno == EAFNOSUPPORT ? 0 : errno;
}

int InterfaceIndex(const char* name, uint32_t* index) {
  errno = 0;
  const unsigned found = if_nametoindex(name);
  if (found == 0) return errno == 0 || errno == ENXIO ? ENODEV : errno;
  *index = found;
  return 0;
}

int SetMembership(SocketHandle socket, IpFamily family, bool join, const SocketAddress& group,
                  const SocketAddress* source, const MulticastInterface& via) {
  if (family == IpFamily::kV4) {
    const auto& group4 = reinterpret_cast<const sockaddr_in*>(&group.storage)->sin_addr;
    if (source == nullptr) {
      ip_mreq request{};
      request.imr_multiaddr = group4;
      std::memcpy(&request.imr_interface, via.ipv4, 4);
      const int name = join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP;
      return setsockopt(socket, IPPROTO_IP, name, &request, sizeof(request)) == 0 ? 0 : errno;
    }
    // Field by name: Linux and the BSDs order ip_mreq_source's members differently.
    ip_mreq_source request{};
    request.imr_multiaddr = group4;
    request.imr_sourceaddr = reinterpret_cast<const sockaddr_in*>(&source->storage)->sin_addr;
    std::memcpy(&request.imr_interface, via.ipv4, 4);
    const int name = join ? IP_ADD_SOURCE_MEMBERSHIP : IP_DROP_SOURCE_MEMBERSHIP;
    return setsockopt(socket, IPPROTO_IP, name, &request, sizeof(request)) == 0 ? 0 : errno;
  }
  if (source == nullptr) {
    ipv6_mreq request{};
    request.ipv6mr_multiaddr = reinterpret_cast<const sockaddr_in6*>(&group.storage)->sin6_addr;
    request.ipv6mr_interface = via.index;
    const int name = join ? IPV6_JOIN_GROUP : IPV6_LEAVE_GROUP;
    return setsockopt(socket, IPPROTO_IPV6, name, &request, sizeof(request)) == 0 ? 0 : errno;
  }
  // The protocol-independent (RFC 3678) form: IPv6 has no source-specific ipv6_mreq.
  group_source_req request{};
  request.gsr_interface = via.index;
  std::memcpy(&request.gsr_group, &group.storage, group.length);
  std::memcpy(&request.gsr_source, &source->storage, source->length);
  const int name = join ? MCAST_JOIN_SOURCE_GROUP : MCAST_LEAVE_SOURCE_GROUP;
  return setsockopt(socket, IPPROTO_IPV6, name, &request, sizeof(request)) == 0 ? 0 : errno;
}

int SetMulticastInterface(SocketHandle socket, IpFamily family, const MulticastInterface& via) {
  if (family == IpFamily::kV4) {
    in_addr address{};
    std::memcpy(&address, via.ipv4, 4);
    return setsockopt(socket, IPPROTO_IP, IP_MULTICAST_IF, &address, sizeof(address)) == 0 ? 0
                                                                                           : errno;
  }
  const unsigned index = via.index;
  return setsockopt(socket, IPPROTO_IPV6, IPV6_MULTICAST_IF, &index, sizeof(index)) == 0 ? 0
                                                                                         : errno;
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
