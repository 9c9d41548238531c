// Socket operations for Windows (Winsock 2). Errors are WSAGetLastError() codes, which the
// TypeScript layer maps to NTSTATUS through lib/wsk/wsa.ts.
#include <winsock2.h>
#include <ws2tcpip.h>

#include <cstring>
#include <mutex>

#include "os_socket.h"

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

}  // namespace

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

int OpenUdpSocket(IpFamily family, SocketHandle* out) {
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
    // Windows' default already, set explicitly so that "udp6" means IPv6 whatever the
    // system's policy.
    DWORD on = 1;
    if (setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, reinterpret_cast<const char*>(&on), sizeof(on)) !=
        0) {
      const int error = WSAGetLastError();
      closesocket(s);
      return error;
    }
  }
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

int CloseSocket(SocketHandle socket) { return closesocket(socket) == 0 ? 0 : WSAGetLastError(); }

int CheckBorrowableUdpSocket(SocketHandle, IpFamily) {
  // Node's dgram exposes no SOCKET on Windows (its handle's fd is always -1 there), and an
  // overlapped SOCKET that libuv owns cannot be told apart from a blocking one: never borrowed.
  return WSAEOPNOTSUPP;
}

}  // namespace wsk
