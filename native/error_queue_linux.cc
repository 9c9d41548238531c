// Linux error queue: IP_RECVERR / IPV6_RECVERR, read with recvmsg(MSG_ERRQUEUE | MSG_DONTWAIT).
// Each entry carries a sock_extended_err (origin, ICMP type and code, errno, ee_info = the MTU
// of "fragmentation needed" / "packet too big"), the ICMP sender right after it
// (SO_EE_OFFENDER), the offending datagram's destination as msg_name and the start of its
// payload as data (ip(7), ipv6(7); net/ipv4/ip_sockglue.c ip_recv_error).
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

// clang-format off
#include <time.h>  // first: linux/errqueue.h uses struct timespec without including it
#include <linux/errqueue.h>
// clang-format on

#include <cerrno>
#include <cstring>

#include "error_queue.h"

namespace wsk {
namespace {

int Enable(SocketHandle socket, int level, int option) {
  int on = 1;
  return setsockopt(socket, level, option, &on, sizeof(on)) == 0 ? 0 : errno;
}

void CopyAddress(const sockaddr* address, size_t available, SocketAddress* out) {
  *out = SocketAddress{};
  size_t length = 0;
  if (address->sa_family == AF_INET) length = sizeof(sockaddr_in);
  if (address->sa_family == AF_INET6) length = sizeof(sockaddr_in6);
  if (length == 0 || length > available) return;
  std::memcpy(&out->storage, address, length);
  out->length = static_cast<SockLen>(length);
}

}  // namespace

bool ErrorQueueSupported() { return true; }

int EnableErrorQueue(SocketHandle socket, IpFamily family) {
  if (family == IpFamily::kV4) return Enable(socket, IPPROTO_IP, IP_RECVERR);
  if (int error = Enable(socket, IPPROTO_IPV6, IPV6_RECVERR)) return error;
  // IPv4 peers of a dual-stack socket (v4-mapped) report through the IPv4 half.
  Enable(socket, IPPROTO_IP, IP_RECVERR);
  return 0;
}

int ReadErrorQueueEntry(SocketHandle socket, ErrorQueueEntry* out) {
  sockaddr_storage name{};
  alignas(cmsghdr) unsigned char control[512];
  iovec iov{out->payload, sizeof(out->payload)};
  msghdr header{};
  header.msg_name = &name;
  header.msg_namelen = sizeof(name);
  header.msg_iov = &iov;
  header.msg_iovlen = 1;
  header.msg_control = control;
  header.msg_controllen = sizeof(control);
  ssize_t received;
  do {
    received = recvmsg(socket, &header, MSG_ERRQUEUE | MSG_DONTWAIT);
  } while (received < 0 && errno == EINTR);
  if (received < 0) return errno;
  out->payload_length = static_cast<uint16_t>(
      static_cast<size_t>(received) < sizeof(out->payload) ? received : sizeof(out->payload));
  CopyAddress(reinterpret_cast<const sockaddr*>(&name), header.msg_namelen, &out->destination);
  for (cmsghdr* cmsg = CMSG_FIRSTHDR(&header); cmsg != nullptr; cmsg = CMSG_NXTHDR(&header, cmsg)) {
    const bool v4 = cmsg->cmsg_level == IPPROTO_IP && cmsg->cmsg_type == IP_RECVERR;
    const bool v6 = cmsg->cmsg_level == IPPROTO_IPV6 && cmsg->cmsg_type == IPV6_RECVERR;
    if (!v4 && !v6) continue;
    const size_t data_length = cmsg->cmsg_len - CMSG_LEN(0);
    if (data_length < sizeof(sock_extended_err)) continue;
    sock_extended_err ee;
    std::memcpy(&ee, CMSG_DATA(cmsg), sizeof(ee));
    out->error = static_cast<int>(ee.ee_errno);
    out->origin = static_cast<ErrorOrigin>(ee.ee_origin);
    out->type = ee.ee_type;
    out->code = ee.ee_code;
    out->info = ee.ee_info;
    // The offender follows the header (SO_EE_OFFENDER); AF_UNSPEC when the kernel has none.
    sockaddr_storage offender{};
    const size_t offender_length = data_length - sizeof(ee);
    std::memcpy(&offender, CMSG_DATA(cmsg) + sizeof(ee),
                offender_length < sizeof(offender) ? offender_length : sizeof(offender));
    CopyAddress(reinterpret_cast<const sockaddr*>(&offender), offender_length, &out->offender);
    return 0;
  }
  // An entry without the extended error (not expected for UDP): keep it as a local one.
  out->origin = ErrorOrigin::kLocal;
  return 0;
}

int TakeSocketError(SocketHandle socket) {
  int error = 0;
  socklen_t length = sizeof(error);
  if (getsockopt(socket, SOL_SOCKET, SO_ERROR, &error, &length) != 0) return 0;
  return error;
}

}  // namespace wsk
