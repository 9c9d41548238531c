// The parts of SocketAddress handling that are the same on every OS: sockaddr_in and
// sockaddr_in6 have one layout for these fields on POSIX and Windows. Parsing and formatting
// text (inet_pton/inet_ntop, and WSAStartup first on Windows) stay in os_socket_*.cc.
#ifndef _WIN32
#include <arpa/inet.h>
#include <netinet/in.h>
#endif

#include <cstring>

#include "os_socket.h"

namespace wsk {

IpFamily SocketAddress::family() const {
  return storage.ss_family == AF_INET6 ? IpFamily::kV6 : IpFamily::kV4;
}

void MakeAddressFromBytes(IpFamily family, const uint8_t bytes[16], SocketAddress* out) {
  *out = SocketAddress{};
  if (family == IpFamily::kV4) {
    auto* sin = reinterpret_cast<sockaddr_in*>(&out->storage);
    sin->sin_family = AF_INET;
    std::memcpy(&sin->sin_addr, bytes, 4);
    out->length = sizeof(sockaddr_in);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out->storage);
    sin6->sin6_family = AF_INET6;
    std::memcpy(&sin6->sin6_addr, bytes, 16);
    out->length = sizeof(sockaddr_in6);
  }
}

void MakeAddressFromBytes(IpFamily family, const uint8_t bytes[16], uint16_t port,
                          uint32_t scope_id, SocketAddress* out) {
  MakeAddressFromBytes(family, bytes, out);
  if (family == IpFamily::kV4) {
    reinterpret_cast<sockaddr_in*>(&out->storage)->sin_port = htons(port);
  } else {
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&out->storage);
    sin6->sin6_port = htons(port);
    sin6->sin6_scope_id = scope_id;
  }
}

void AddressBytes(const SocketAddress& address, uint8_t out[16]) {
  if (address.storage.ss_family == AF_INET6) {
    std::memcpy(out, &reinterpret_cast<const sockaddr_in6*>(&address.storage)->sin6_addr, 16);
  } else {
    std::memcpy(out, &reinterpret_cast<const sockaddr_in*>(&address.storage)->sin_addr, 4);
  }
}

bool IsV4MappedBytes(const uint8_t bytes[16]) {
  for (int i = 0; i < 10; ++i) {
    if (bytes[i] != 0) return false;
  }
  return bytes[10] == 0xff && bytes[11] == 0xff;
}

bool IsV4Mapped(const SocketAddress& address) {
  if (address.storage.ss_family != AF_INET6) return false;
  const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&address.storage);
  return IsV4MappedBytes(reinterpret_cast<const uint8_t*>(&sin6->sin6_addr));
}

}  // namespace wsk
