// Socket operations for Windows (Winsock 2). Errors are WSAGetLastError() codes, which the
// TypeScript layer maps to NTSTATUS through lib/wsk/wsa.ts.
#include <winsock2.h>
#include <mswsock.h>
#include <ws2tcpip.h>

#include <cstring>
#include <mutex>

#include "os_socket.h"
#include "socket_options.h"

namespace wsk {
namespace {

// Winsock must be started before its first use in the process. Node's libuv has started it
// already, but an addon must not rely on that; WSAStartup is reference-counted, and this
// process-wide reference is never dropped (the DLL stays loaded until the process ends).
int EnsureWinsock() {
  static std::once_flag once;
  static int result = 0;
  std::call_once(once, [] {
    WSADATA data;
    result = WSAStartup(MAKEWORD(2, 2), &data);
  });
  return result;
}

#ifndef SIO_UDP_NETRESET
#define SIO_UDP_NETRESET _WSAIOW(IOC_VENDOR, 15)  // mstcpip.h; not in MinGW-w64's headers
#endif

// Windows reports an ICMP port unreachable (SIO_UDP_CONNRESET) or TTL expired
// (SIO_UDP_NETRESET) caused by an earlier send as WSAECONNRESET / WSAENETRESET on a LATER
// receive, whoever it came from: one dead peer would break every receive of the socket. Both
// are turned off, as MsQuic and .NET do for servers. Best effort: Wine accepts the ioctls.
void DisableIcmpResets(SOCKET s) {
  for (const DWORD code :
       {static_cast<DWORD>(SIO_UDP_CONNRESET), static_cast<DWORD>(SIO_UDP_NETRESET)}) {
    BOOL on = FALSE;
    DWORD returned = 0;
    WSAIoctl(s, code, &on, sizeof(on), nullptr, 0, &returned, nullptr, nullptr);
  }
}

int SetInt(SOCKET s, int level, int name, int value) {
  DWORD v = static_cast<DWORD>(value);
  return setsockopt(s, level, name, reinterpret_cast<const char*>(&v), sizeof(v)) == 0
             ? 0
             : WSAGetLastError();
}

int GetInt(SOCKET s, int level, int name, int* value) {
  DWORD v = 0;
  int length = sizeof(v);
  if (getsockopt(s, level, name, reinterpret_cast<char*>(&v), &length) != 0) {
    return WSAGetLastError();
  }
  *value = static_cast<int>(v);
  return 0;
}

// The addon's MtuDiscovery (Linux numbering) in Windows' PMTUD_STATE, and back. Windows has no
// "want": its default (IP_PMTUDISC_NOT_SET) discovers the path MTU and fragments above it.
int ToWindowsPmtud(int mode) {
  switch (static_cast<MtuDiscovery>(mode)) {
    case MtuDiscovery::kDont:
      return IP_PMTUDISC_DONT;
    case MtuDiscovery::kDo:
      return IP_PMTUDISC_DO;
    case MtuDiscovery::kProbe:
      return IP_PMTUDISC_PROBE;
    default:
      return IP_PMTUDISC_NOT_SET;
  }
}

int FromWindowsPmtud(int state) {
  switch (state) {
    case IP_PMTUDISC_DONT:
      return static_cast<int>(MtuDiscovery::kDont);
    case IP_PMTUDISC_DO:
      return static_cast<int>(MtuDiscovery::kDo);
    case IP_PMTUDISC_PROBE:
      return static_cast<int>(MtuDiscovery::kProbe);
    default:
      return static_cast<int>(MtuDiscovery::kWant);
  }
}

}  // namespace

// The path-MTU options (20 and up), for SetSocketOption/GetSocketOption below.
static int SetPathOption(SocketHandle socket, IpFamily family, SocketOption option, int value) {
  const bool v6 = family == IpFamily::kV6;
  switch (option) {
    case SocketOption::kMtuDiscovery:
      return v6 ? SetInt(socket, IPPROTO_IPV6, IPV6_MTU_DISCOVER, ToWindowsPmtud(value))
                : SetInt(socket, IPPROTO_IP, IP_MTU_DISCOVER, ToWindowsPmtud(value));
    case SocketOption::kDontFragment:
      return v6 ? SetInt(socket, IPPROTO_IPV6, IPV6_DONTFRAG, value ? 1 : 0)
                : SetInt(socket, IPPROTO_IP, IP_DONTFRAGMENT, value ? 1 : 0);
    default:
      return WSAENOPROTOOPT;  // no ICMP error queue on Windows (error_queue_stub.cc)
  }
}

static int GetPathOption(SocketHandle socket, IpFamily family, SocketOption option, int* value) {
  const bool v6 = family == IpFamily::kV6;
  switch (option) {
    case SocketOption::kMtuDiscovery: {
      int state = 0;
      const int error = v6 ? GetInt(socket, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &state)
                           : GetInt(socket, IPPROTO_IP, IP_MTU_DISCOVER, &state);
      if (error == 0) *value = FromWindowsPmtud(state);
      return error;
    }
    case SocketOption::kDontFragment:
      return v6 ? GetInt(socket, IPPROTO_IPV6, IPV6_DONTFRAG, value)
                : GetInt(socket, IPPROTO_IP, IP_DONTFRAGMENT, value);
    case SocketOption::kMtu:
      return v6 ? GetInt(socket, IPPROTO_IPV6, IPV6_MTU, value)
                : GetInt(socket, IPPROTO_IP, IP_MTU, value);
    default:
      return WSAENOPROTOOPT;
  }
}

int MakeAddress(IpFamily family, const char* ip, uint16_t port, uint32_t scope_id,
                SocketAddress* out) {
  *out = SocketAddress{};
  if (int error = EnsureWinsock()) return error;
  if (family == IpFamily::kV4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&out->storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    if (inet_pton(AF_INET, ip, &sin->sin_addr) != 1) return WSAEINVAL;
    out->length = sizeof(sockaddr_in);
    return 0;
  }
  auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out->storage);
  sin6->sin6_family = AF_INET6;
  sin6->sin6_port = htons(port);
  sin6->sin6_scope_id = scope_id;
  if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) != 1) return WSAEINVAL;
  out->length = sizeof(sockaddr_in6);
  return 0;
}

int FormatAddress(const SocketAddress& address, char* ip, size_t ip_size, uint16_t* port,
                  uint32_t* scope_id) {
  const void* raw = nullptr;
  const int af = address.storage.ss_family;
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
    return WSAEAFNOSUPPORT;
  }
  if (inet_ntop(af, const_cast<void*>(raw), ip, ip_size) == nullptr) return WSAGetLastError();
  return 0;
}

int OpenUdpSocket(IpFamily family, bool ipv6_only, SocketHandle* out) {
  if (int error = EnsureWinsock()) return error;
  const int af = family == IpFamily::kV6 ? AF_INET6 : AF_INET;
  // WSA_FLAG_NO_HANDLE_INHERIT: Windows' close-on-exec (Windows 7 SP1+).
  SOCKET s = WSASocketW(af, SOCK_DGRAM, IPPROTO_UDP, nullptr, 0,
                        WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
  if (s == INVALID_SOCKET) return WSAGetLastError();
  u_long non_blocking = 1;
  if (ioctlsocket(s, FIONBIO, &non_blocking) != 0) {
    const int error = WSAGetLastError();
    closesocket(s);
    return error;
  }
  if (family == IpFamily::kV6) {
    // IPv6-only is Windows' default already; set either way so that "udp6" means what the
    // caller asked whatever the system's policy (Windows Vista+ has dual-stack sockets).
    DWORD only = ipv6_only ? 1 : 0;
    if (setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, reinterpret_cast<const char*>(&only),
                   sizeof(only)) != 0) {
      const int error = WSAGetLastError();
      closesocket(s);
      return error;
    }
  }
  DisableIcmpResets(s);
  *out = s;
  return 0;
}

int BindSocket(SocketHandle socket, const SocketAddress& address) {
  return bind(socket, reinterpret_cast<const sockaddr*>(&address.storage), address.length) == 0
             ? 0
             : WSAGetLastError();
}

int ConnectSocket(SocketHandle socket, const SocketAddress& address) {
  return connect(socket, reinterpret_cast<const sockaddr*>(&address.storage), address.length) == 0
             ? 0
             : WSAGetLastError();
}

int GetLocalAddress(SocketHandle socket, SocketAddress* out) {
  *out = SocketAddress{};
  out->length = sizeof(out->storage);
  return getsockname(socket, reinterpret_cast<sockaddr*>(&out->storage), &out->length) == 0
             ? 0
             : WSAGetLastError();
}

int GetRemoteAddress(SocketHandle socket, SocketAddress* out) {
  *out = SocketAddress{};
  out->length = sizeof(out->storage);
  return getpeername(socket, reinterpret_cast<sockaddr*>(&out->storage), &out->length) == 0
             ? 0
             : WSAGetLastError();
}

int SetSendBufferSize(SocketHandle socket, int bytes) {
  return setsockopt(socket, SOL_SOCKET, SO_SNDBUF, reinterpret_cast<const char*>(&bytes),
                    sizeof(bytes)) == 0
             ? 0
             : WSAGetLastError();
}

int GetSendBufferSize(SocketHandle socket, int* bytes) {
  int length = sizeof(*bytes);
  return getsockopt(socket, SOL_SOCKET, SO_SNDBUF, reinterpret_cast<char*>(bytes), &length) == 0
             ? 0
             : WSAGetLastError();
}

namespace {

// The level and name of a plain int option (IPv6 sockets get the IPv6-level one only); false
// for the path options (SetPathOption/GetPathOption) and for what Windows lacks.
bool PlainOption(SocketOption option, bool v6, int* level, int* name) {
  switch (option) {
    case SocketOption::kReuseAddress:
      *level = SOL_SOCKET;
      *name = SO_REUSEADDR;
      return true;
    case SocketOption::kBroadcast:
      *level = SOL_SOCKET;
      *name = SO_BROADCAST;
      return true;
    case SocketOption::kReceiveBufferSize:
      *level = SOL_SOCKET;
      *name = SO_RCVBUF;
      return true;
    case SocketOption::kSendBufferSize:
      *level = SOL_SOCKET;
      *name = SO_SNDBUF;
      return true;
    case SocketOption::kTtl:
      *level = v6 ? IPPROTO_IPV6 : IPPROTO_IP;
      *name = v6 ? IPV6_UNICAST_HOPS : IP_TTL;
      return true;
    case SocketOption::kTos:
      *level = v6 ? IPPROTO_IPV6 : IPPROTO_IP;
      *name = v6 ? IPV6_TCLASS : IP_TOS;
      return true;
    case SocketOption::kMulticastTtl:
      *level = v6 ? IPPROTO_IPV6 : IPPROTO_IP;
      *name = v6 ? IPV6_MULTICAST_HOPS : IP_MULTICAST_TTL;
      return true;
    case SocketOption::kMulticastLoopback:
      *level = v6 ? IPPROTO_IPV6 : IPPROTO_IP;
      *name = v6 ? IPV6_MULTICAST_LOOP : IP_MULTICAST_LOOP;
      return true;
    default:
      return false;
  }
}

bool IsPathOption(SocketOption option) {
  return option == SocketOption::kMtuDiscovery || option == SocketOption::kDontFragment ||
         option == SocketOption::kMtu || option == SocketOption::kRecvErr;
}

}  // namespace

// Windows has no SO_REUSEPORT and no forced buffer sizes: WSAENOPROTOOPT. Its SO_REUSEADDR lets
// a socket bind a port another socket holds whether or not that one asked for it (unless it set
// SO_EXCLUSIVEADDRUSE).
int SetSocketOption(SocketHandle socket, IpFamily family, SocketOption option, int value) {
  int level = 0;
  int name = 0;
  if (PlainOption(option, family == IpFamily::kV6, &level, &name)) {
    return SetInt(socket, level, name, value);
  }
  return IsPathOption(option) ? SetPathOption(socket, family, option, value) : WSAENOPROTOOPT;
}

int GetSocketOption(SocketHandle socket, IpFamily family, SocketOption option, int* value) {
  int level = 0;
  int name = 0;
  if (PlainOption(option, family == IpFamily::kV6, &level, &name)) {
    return GetInt(socket, level, name, value);
  }
  return IsPathOption(option) ? GetPathOption(socket, family, option, value) : WSAENOPROTOOPT;
}

int DisconnectSocket(SocketHandle socket, IpFamily family) {
  // Winsock dissolves a datagram socket's association on a connect to the zero address.
  SocketAddress zero;
  zero.storage.ss_family = family == IpFamily::kV6 ? AF_INET6 : AF_INET;
  zero.length = family == IpFamily::kV6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  return connect(socket, reinterpret_cast<const sockaddr*>(&zero.storage), zero.length) == 0
             ? 0
             : WSAGetLastError();
}

int InterfaceIndex(const char*, uint32_t*) { return WSAEINVAL; }

int SetMembership(SocketHandle socket, IpFamily family, bool join, const SocketAddress& group,
                  const SocketAddress* source, const MulticastInterface& via) {
  int result = 0;
  if (family == IpFamily::kV4) {
    const IN_ADDR group4 = reinterpret_cast<const sockaddr_in*>(&group.storage)->sin_addr;
    if (source == nullptr) {
      ip_mreq request{};
      request.imr_multiaddr = group4;
      std::memcpy(&request.imr_interface, via.ipv4, 4);
      result = setsockopt(socket, IPPROTO_IP, join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP,
                          reinterpret_cast<const char*>(&request), sizeof(request));
    } else {
      ip_mreq_source request{};
      request.imr_multiaddr = group4;
      request.imr_sourceaddr = reinterpret_cast<const sockaddr_in*>(&source->storage)->sin_addr;
      std::memcpy(&request.imr_interface, via.ipv4, 4);
      result = setsockopt(socket, IPPROTO_IP,
                          join ? IP_ADD_SOURCE_MEMBERSHIP : IP_DROP_SOURCE_MEMBERSHIP,
                          reinterpret_cast<const char*>(&request), sizeof(request));
    }
  } else if (source == nullptr) {
    ipv6_mreq request{};
    request.ipv6mr_multiaddr = reinterpret_cast<const sockaddr_in6*>(&group.storage)->sin6_addr;
    request.ipv6mr_interface = via.index;
    result = setsockopt(socket, IPPROTO_IPV6, join ? IPV6_ADD_MEMBERSHIP : IPV6_DROP_MEMBERSHIP,
                        reinterpret_cast<const char*>(&request), sizeof(request));
  } else {
    GROUP_SOURCE_REQ request{};
    request.gsr_interface = via.index;
    std::memcpy(&request.gsr_group, &group.storage, group.length);
    std::memcpy(&request.gsr_source, &source->storage, source->length);
    result =
        setsockopt(socket, IPPROTO_IPV6, join ? MCAST_JOIN_SOURCE_GROUP : MCAST_LEAVE_SOURCE_GROUP,
                   reinterpret_cast<const char*>(&request), sizeof(request));
  }
  return result == 0 ? 0 : WSAGetLastError();
}

int SetMulticastInterface(SocketHandle socket, IpFamily family, const MulticastInterface& via) {
  int result = 0;
  if (family == IpFamily::kV4) {
    result =
        setsockopt(socket, IPPROTO_IP, IP_MULTICAST_IF, reinterpret_cast<const char*>(via.ipv4), 4);
  } else {
    const DWORD index = via.index;
    result = setsockopt(socket, IPPROTO_IPV6, IPV6_MULTICAST_IF,
                        reinterpret_cast<const char*>(&index), sizeof(index));
  }
  return result == 0 ? 0 : WSAGetLastError();
}

int CloseSocket(SocketHandle socket) { return closesocket(socket) == 0 ? 0 : WSAGetLastError(); }

int CheckBorrowableUdpSocket(SocketHandle, IpFamily) {
  // Node's dgram exposes no SOCKET on Windows (its handle's fd is always -1 there), and an
  // overlapped SOCKET that libuv owns cannot be told apart from a blocking one: never borrowed.
  return WSAEOPNOTSUPP;
}

}  // namespace wsk
