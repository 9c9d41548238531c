// Message building shared by the POSIX back-ends (send_linux.cc: sendmmsg; send_posix.cc:
// a sendmsg loop): datagrams to msghdrs over the caller's memory, runs of equal size to
// UDP_SEGMENT super-packets where the OS has it, and control information to cmsgs.
#include "messages_posix.h"

#include <netinet/in.h>
#include <sys/ioctl.h>
#ifdef __linux__
#include <linux/sockios.h>  // SIOCOUTQ
#endif

#include <cerrno>
#include <cstring>

namespace wsk {
namespace {

// Writes one cmsg at `offset` of a zeroed buffer and returns the offset of the next one. Built
// by hand: glibc's CMSG_NXTHDR would inspect the next header before it exists.
size_t AppendCmsg(unsigned char* buffer, size_t offset, int level, int type, const void* data,
                  size_t length) {
  auto* cmsg = reinterpret_cast<cmsghdr*>(buffer + offset);
  cmsg->cmsg_level = level;
  cmsg->cmsg_type = type;
  cmsg->cmsg_len = CMSG_LEN(length);
  std::memcpy(CMSG_DATA(cmsg), data, length);
  return offset + CMSG_SPACE(length);
}

// The cmsgs common to every message of a call, in Linux form, at the socket family's level,
// or (`ipv4_peer`) at the IPv4 level for an IPv4 peer of a dual-stack IPv6 socket: Linux hands
// such a send to udp_sendmsg, whose ip_cmsg_send reads IP_PKTINFO, IP_TOS and IP_TTL and skips
// IPV6_TCLASS and IPV6_HOPLIMIT (an IPV6_PKTINFO it takes only with an IPv4-mapped source).
size_t EncodeFixedControls(const SendControls& controls, IpFamily family, bool ipv4_peer,
                           unsigned char* buffer) {
  size_t offset = 0;
  const bool v4 = family == IpFamily::kV4 || ipv4_peer;
  if (controls.has_source || controls.interface_index != 0) {
    // On an IPv6 socket an IPv4 source is IPv4-mapped: its address is the last 4 bytes.
    const bool v6_socket = family == IpFamily::kV6;
    const bool v4_source = !v6_socket || !controls.has_source || IsV4MappedBytes(controls.source);
    if (v4 && v4_source) {
      in_pktinfo info{};
      info.ipi_ifindex = static_cast<int>(controls.interface_index);
      // Linux takes the source from ipi_spec_dst; ipi_addr is ignored on send.
      std::memcpy(&info.ipi_spec_dst, controls.source + (v6_socket ? 12 : 0), 4);
      offset = AppendCmsg(buffer, offset, IPPROTO_IP, IP_PKTINFO, &info, sizeof(info));
    } else {
      // Also an IPv6 source for an IPv4 peer (or the reverse): the kernel refuses it (EINVAL),
      // which is its verdict to report, not ours to drop silently.
      in6_pktinfo info{};
      std::memcpy(&info.ipi6_addr, controls.source, 16);
      info.ipi6_ifindex = controls.interface_index;
      offset = AppendCmsg(buffer, offset, IPPROTO_IPV6, IPV6_PKTINFO, &info, sizeof(info));
    }
  }
  if (controls.tos >= 0) {
    const int tos = controls.tos;
    offset = AppendCmsg(buffer, offset, v4 ? IPPROTO_IP : IPPROTO_IPV6, v4 ? IP_TOS : IPV6_TCLASS,
                        &tos, sizeof(tos));
  }
  if (controls.ttl >= 0) {
    const int ttl = controls.ttl;
    offset = AppendCmsg(buffer, offset, v4 ? IPPROTO_IP : IPPROTO_IPV6, v4 ? IP_TTL : IPV6_HOPLIMIT,
                        &ttl, sizeof(ttl));
  }
  return offset;
}

}  // namespace

SegmentationState ProbeSegmentation(SocketHandle socket) {
  SegmentationState state;
#ifdef UDP_SEGMENT
  // Reading the socket-wide segment size succeeds only where the kernel has UDP GSO (Linux 4.18
  // added the option for both directions). Nothing is set: a borrowed descriptor (wrapDgram)
  // keeps whatever its owner set, and each message carries its own size anyway.
  int size = 0;
  socklen_t length = sizeof(size);
  if (getsockopt(socket, SOL_UDP, UDP_SEGMENT, &size, &length) == 0) {
    state.supported = true;
    state.max_segments = kSegmentLimitRecent;
  }
#else
  (void)socket;
#endif
  return state;
}

bool LowerSegmentation(SegmentationState& state, int error, uint32_t segments,
                       uint32_t segment_bytes) {
  if (error == EMSGSIZE) {
    // Kernels since 2024 say EMSGSIZE (before: EINVAL) for a segment over the path MTU.
    if (segment_bytes <= 1 || segment_bytes > state.max_segment_bytes) return false;
    state.max_segment_bytes = segment_bytes - 1;
    return true;
  }
  if (error == EINVAL && segments > kSegmentLimitOld && state.max_segments > kSegmentLimitOld) {
    state.max_segments = kSegmentLimitOld;
    return true;
  }
  if (error == EIO || error == EINVAL || error == ENOPROTOOPT || error == EOPNOTSUPP) {
    state.max_segments = 0;
    return true;
  }
  return false;
}

bool IsWouldBlock(int error, SocketHandle socket) {
  if (error == EAGAIN || error == EWOULDBLOCK) return true;
  if (error != ENOBUFS) return false;
  // ENOBUFS: Linux says so when a queue is full (libuv treats it as would-block), and that
  // clears as this socket's packets drain. With nothing of ours queued (SIOCOUTQ 0) it never
  // clears: the datagram needs more than the socket may ever hold (an IPv6 datagram fragmented
  // past a small SO_SNDBUF). The socket stays writable then, so waiting would spin: an error.
#ifdef SIOCOUTQ
  int queued = 0;
  if (ioctl(socket, SIOCOUTQ, &queued) == 0 && queued == 0) return false;
#else
  (void)socket;
#endif
  return true;
}

bool IsDestinationError(int error) {
  switch (error) {
    case EACCES:       // a broadcast address without SO_BROADCAST
    case EPERM:        // a firewall rule refused this destination
    case ENETUNREACH:  // no route to its network
    case EHOSTUNREACH:
    case EHOSTDOWN:
    case ENETDOWN:       // the interface of its route is down
    case ECONNREFUSED:   // an ICMP port unreachable from this peer (connected socket)
    case EMSGSIZE:       // too big for its path (after the GSO lowering had its chance)
    case EADDRNOTAVAIL:  // not reachable from the bound address (e.g. loopback to the world)
    case EAFNOSUPPORT:
      return true;
    default:
      return false;
  }
}

size_t MessageBuilder::Prepare(const SendBatch& batch, size_t first, size_t max_messages) {
  // Both encodings once per call; each message takes the one its destination needs.
  fixed_control_length_ = 0;
  ipv4_peer_control_length_ = 0;
  if (batch.controls != nullptr) {
    std::memset(fixed_control_.bytes, 0, sizeof(fixed_control_.bytes));
    fixed_control_length_ =
        EncodeFixedControls(*batch.controls, batch.family, false, fixed_control_.bytes);
    if (batch.family == IpFamily::kV6) {
      std::memset(ipv4_peer_control_.bytes, 0, sizeof(ipv4_peer_control_.bytes));
      ipv4_peer_control_length_ =
          EncodeFixedControls(*batch.controls, batch.family, true, ipv4_peer_control_.bytes);
    }
  }
  const uint32_t explicit_segment = batch.controls != nullptr ? batch.controls->segment_size : 0;

  // First pass: group datagrams into messages and size the scratch arrays.
  message_datagrams_.clear();
  size_t range_total = 0;
  size_t datagram = first;
  while (datagram < batch.datagram_count && message_datagrams_.size() < max_messages) {
    const uint32_t run = SegmentRunLength(batch, datagram, UIO_MAXIOV);
    message_datagrams_.push_back(run);
    for (uint32_t i = 0; i < run; ++i) range_total += batch.datagrams[datagram + i].range_count;
    datagram += run;
  }
  const size_t count = message_datagrams_.size();
  if (messages_.size() < count) messages_.resize(count);
  if (controls_.size() < count) controls_.resize(count);
  if (message_segment_bytes_.size() < count) message_segment_bytes_.resize(count);
  if (iovecs_.size() < range_total) iovecs_.resize(range_total);

  // Second pass: fill headers and iovecs.
  size_t iov_index = 0;
  datagram = first;
  for (size_t m = 0; m < count; ++m) {
    const uint32_t run = message_datagrams_[m];
    const size_t message_first = datagram;
    iovec* iov = iovecs_.data() + iov_index;
    size_t iov_count = 0;
    size_t segment_size = 0;
    size_t message_length = 0;
    for (uint32_t i = 0; i < run; ++i) {
      const DatagramSpan& span = batch.datagrams[datagram + i];
      size_t length = 0;
      for (uint32_t r = 0; r < span.range_count; ++r) {
        const ByteRange& range = batch.ranges[span.first_range + r];
        iov[iov_count].iov_base = const_cast<uint8_t*>(range.data);
        iov[iov_count].iov_len = range.length;
        length += range.length;
        ++iov_count;
      }
      if (i == 0) segment_size = length;
      message_length += length;
    }
    iov_index += iov_count;
    datagram += run;

    msghdr& header = messages_[m].msg_hdr;
    // A super-packet never spans a change of target (SegmentRunLength): its first datagram's
    // destination is the message's.
    const SocketAddress* destination = batch.DestinationOf(message_first);
    header.msg_name =
        destination == nullptr
            ? nullptr
            : const_cast<sockaddr*>(reinterpret_cast<const sockaddr*>(&destination->storage));
    header.msg_namelen = destination == nullptr ? 0 : destination->length;
    header.msg_iov = iov_count > 0 ? iov : nullptr;
    header.msg_iovlen = iov_count;
    header.msg_flags = 0;
    messages_[m].msg_len = 0;
    // UDP_SEGMENT only where there is more than one segment (a lone one gains nothing).
    uint16_t segment = 0;
    if (explicit_segment != 0) {
      if (message_length > explicit_segment) segment = static_cast<uint16_t>(explicit_segment);
    } else if (run > 1) {
      segment = static_cast<uint16_t>(segment_size);
    }
    message_segment_bytes_[m] = run > 1 ? static_cast<uint32_t>(segment_size) : 0;
    const bool ipv4_peer = batch.ForIPv4Peer(message_first);
    const ControlBuffer& fixed = ipv4_peer ? ipv4_peer_control_ : fixed_control_;
    const size_t fixed_length = ipv4_peer ? ipv4_peer_control_length_ : fixed_control_length_;
    if (segment == 0 && fixed_length == 0) {
      header.msg_control = nullptr;
      header.msg_controllen = 0;
      continue;
    }
    ControlBuffer& control = controls_[m];
    std::memset(control.bytes, 0, sizeof(control.bytes));
    std::memcpy(control.bytes, fixed.bytes, fixed_length);
    size_t length = fixed_length;
#ifdef UDP_SEGMENT
    if (segment != 0) {
      length = AppendCmsg(control.bytes, length, SOL_UDP, UDP_SEGMENT, &segment, sizeof(segment));
    }
#endif
    header.msg_control = control.bytes;
    header.msg_controllen = length;
  }
  return count;
}

}  // namespace wsk
