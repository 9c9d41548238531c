// Linux batched receive: recvmmsg(2) with packet-information cmsgs.
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>

#include "recv.h"

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_GRO
#define UDP_GRO 104  // linux/udp.h, since 5.0
#endif

namespace wsk {
namespace {

constexpr size_t kControlSpace = 256;  // pktinfo + tos + ttl + gro, with room to spare

int Enable(SocketHandle socket, int level, int option) {
  int on = 1;
  return setsockopt(socket, level, option, &on, sizeof(on)) == 0 ? 0 : errno;
}

int ReadInt(const cmsghdr* cmsg) {
  // IP_TOS arrives as one byte; the others as int.
  if (cmsg->cmsg_len == CMSG_LEN(sizeof(uint8_t))) return *CMSG_DATA(cmsg);
  int value = 0;
  std::memcpy(&value, CMSG_DATA(cmsg), sizeof(value));
  return value;
}

void ReadControls(msghdr& header, ReceivedDatagram* datagram) {
  for (cmsghdr* cmsg = CMSG_FIRSTHDR(&header); cmsg != nullptr; cmsg = CMSG_NXTHDR(&header, cmsg)) {
    if (cmsg->cmsg_level == IPPROTO_IP && cmsg->cmsg_type == IP_PKTINFO) {
      in_pktinfo info;
      std::memcpy(&info, CMSG_DATA(cmsg), sizeof(info));
      std::memcpy(datagram->destination, &info.ipi_addr, 4);
      datagram->has_destination = true;
      datagram->interface_index = static_cast<uint32_t>(info.ipi_ifindex);
    } else if (cmsg->cmsg_level == IPPROTO_IPV6 && cmsg->cmsg_type == IPV6_PKTINFO) {
      in6_pktinfo info;
      std::memcpy(&info, CMSG_DATA(cmsg), sizeof(info));
      std::memcpy(datagram->destination, &info.ipi6_addr, 16);
      datagram->has_destination = true;
      datagram->interface_index = info.ipi6_ifindex;
    } else if ((cmsg->cmsg_level == IPPROTO_IP && cmsg->cmsg_type == IP_TOS) ||
               (cmsg->cmsg_level == IPPROTO_IPV6 && cmsg->cmsg_type == IPV6_TCLASS)) {
      datagram->tos = ReadInt(cmsg);
    } else if ((cmsg->cmsg_level == IPPROTO_IP && cmsg->cmsg_type == IP_TTL) ||
               (cmsg->cmsg_level == IPPROTO_IPV6 && cmsg->cmsg_type == IPV6_HOPLIMIT)) {
      datagram->ttl = ReadInt(cmsg);
    } else if (cmsg->cmsg_level == SOL_UDP && cmsg->cmsg_type == UDP_GRO) {
      datagram->segment_size = static_cast<uint32_t>(ReadInt(cmsg));
    }
  }
}

}  // namespace

int EnableReceiveInfo(SocketHandle socket, IpFamily family, bool gro) {
  int error;
  if (family == IpFamily::kV4) {
    if ((error = Enable(socket, IPPROTO_IP, IP_PKTINFO)) ||
        (error = Enable(socket, IPPROTO_IP, IP_RECVTOS)) ||
        (error = Enable(socket, IPPROTO_IP, IP_RECVTTL))) {
      return error;
    }
  } else {
    if ((error = Enable(socket, IPPROTO_IPV6, IPV6_RECVPKTINFO)) ||
        (error = Enable(socket, IPPROTO_IPV6, IPV6_RECVTCLASS)) ||
        (error = Enable(socket, IPPROTO_IPV6, IPV6_RECVHOPLIMIT))) {
      return error;
    }
    // A dual-stack socket also receives IPv4 datagrams. For those Linux (udpv6_recvmsg) reports
    // the IPv6 packet information (as an IPv4-mapped IPV6_PKTINFO) but reads the TOS and TTL
    // only under the IPv4-level options (ip_cmsg_recv). Not IP_PKTINFO: IPV6_PKTINFO covers it.
    int only = 1;
    socklen_t length = sizeof(only);
    if (getsockopt(socket, IPPROTO_IPV6, IPV6_V6ONLY, &only, &length) != 0) return errno;
    if (only == 0 && ((error = Enable(socket, IPPROTO_IP, IP_RECVTOS)) ||
                      (error = Enable(socket, IPPROTO_IP, IP_RECVTTL)))) {
      return error;
    }
  }
  int on = gro ? 1 : 0;
  if (setsockopt(socket, SOL_UDP, UDP_GRO, &on, sizeof(on)) != 0 && gro) return errno;
  return 0;
}

int ReceiveDatagrams(SocketHandle socket, uint8_t* arena, size_t slot_size, size_t max_datagrams,
                     std::vector<ReceivedDatagram>* out) {
  // Scratch per call: receives are not the hot path this library optimises.
  std::vector<mmsghdr> messages(max_datagrams);
  std::vector<iovec> iovecs(max_datagrams);
  std::vector<unsigned char> controls(max_datagrams * kControlSpace);
  std::vector<sockaddr_storage> names(max_datagrams);
  for (size_t i = 0; i < max_datagrams; ++i) {
    iovecs[i].iov_base = arena + i * slot_size;
    iovecs[i].iov_len = slot_size;
    msghdr& header = messages[i].msg_hdr;
    header.msg_name = &names[i];
    header.msg_namelen = sizeof(sockaddr_storage);
    header.msg_iov = &iovecs[i];
    header.msg_iovlen = 1;
    header.msg_control = controls.data() + i * kControlSpace;
    header.msg_controllen = kControlSpace;
    header.msg_flags = 0;
  }
  int received;
  do {
    received = recvmmsg(socket, messages.data(), static_cast<unsigned int>(max_datagrams),
                        MSG_DONTWAIT, nullptr);
  } while (received < 0 && errno == EINTR);
  if (received < 0) return errno;
  out->assign(static_cast<size_t>(received), ReceivedDatagram{});
  for (int i = 0; i < received; ++i) {
    ReceivedDatagram& datagram = (*out)[i];
    msghdr& header = messages[i].msg_hdr;
    datagram.truncated = (header.msg_flags & MSG_TRUNC) != 0;
    datagram.length = messages[i].msg_len < slot_size ? messages[i].msg_len : slot_size;
    std::memcpy(&datagram.source.storage, &names[i], header.msg_namelen);
    datagram.source.length = header.msg_namelen;
    ReadControls(header, &datagram);
  }
  return 0;
}

}  // namespace wsk
