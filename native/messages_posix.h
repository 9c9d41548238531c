// Message building shared by the POSIX back-ends: turns a SendBatch window into msghdrs over
// the caller's memory (no payload copy), with runs of equal-size datagrams coalesced into
// UDP_SEGMENT super-packets where the OS has it, and the call's controls as cmsgs.
#ifndef WSK_DGRAM_MESSAGES_POSIX_H_
#define WSK_DGRAM_MESSAGES_POSIX_H_

#if defined(__APPLE__) && !defined(__APPLE_USE_RFC_3542)
#define __APPLE_USE_RFC_3542  // in6_pktinfo
#endif

#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <vector>

#include "send.h"

#ifndef UIO_MAXIOV
#define UIO_MAXIOV 1024
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#if defined(__linux__) && !defined(UDP_SEGMENT)
#define UDP_SEGMENT 103  // linux/udp.h, since 4.18
#endif

namespace wsk {

#ifdef __linux__
using MessageSlot = mmsghdr;
#else
// The same shape as Linux's mmsghdr, so both back-ends read msg_hdr and msg_len.
struct MessageSlot {
  msghdr msg_hdr;
  unsigned int msg_len;
};
#endif

// Linux 6.9 raised UDP_MAX_SEGMENTS from 64 to 128. Start high; a refusal of a larger
// super-packet lowers the limit to the old one before giving up on segmentation.
constexpr uint32_t kSegmentLimitRecent = 128;
constexpr uint32_t kSegmentLimitOld = 64;

// Room for every cmsg a message may carry: packet info (in6_pktinfo is the larger), TOS or
// traffic class, TTL or hop limit, and the segment size.
constexpr size_t kControlSpace =
    CMSG_SPACE(sizeof(in6_pktinfo)) + 2 * CMSG_SPACE(sizeof(int)) + CMSG_SPACE(sizeof(uint16_t));
struct alignas(cmsghdr) ControlBuffer {
  unsigned char bytes[kControlSpace];
};

// Whether the socket can send UDP_SEGMENT super-packets (set and reset the option once).
SegmentationState ProbeSegmentation(SocketHandle socket);

// The kernel refused a super-packet of `segments` segments of `segment_bytes` with `error`.
// Lowers what the socket will try from now on and returns true when a resend makes sense.
// EMSGSIZE: the segment is larger than the path MTU allows (only that size is avoided);
// EINVAL with more than 64 segments: an older kernel's limit; EIO/EINVAL/ENOPROTOOPT/
// EOPNOTSUPP otherwise: no GSO on this socket (quinn-udp and MsQuic do the same).
bool LowerSegmentation(SegmentationState& state, int error, uint32_t segments,
                       uint32_t segment_bytes);

// The socket cannot take more now: the send stops and reports "would block". ENOBUFS only
// while some of the socket's own data is still queued (see messages_posix.cc).
bool IsWouldBlock(int error, SocketHandle socket);
// An error that belongs to the message's destination rather than to the socket or the call:
// with continue_on_error it is recorded for the message's datagrams and the send goes on.
// Not EINVAL: Linux UDP says it for the call itself (a destination port 0, which the batch
// reader refuses first; a segment size or a control the kernel refuses), so it would fail every
// datagram that follows, one system call each. Not ENOBUFS/EAGAIN: those are "would block".
bool IsDestinationError(int error);

class MessageBuilder {
 public:
  // Fills up to `max_messages` messages from datagram `first` of `batch`; returns how many.
  // The vectors only grow, so the hot path allocates nothing once warm.
  size_t Prepare(const SendBatch& batch, size_t first, size_t max_messages);

  MessageSlot* slots() { return messages_.data(); }
  // Datagrams carried by message `i` (more than one for a super-packet).
  uint32_t datagrams_in(size_t i) const { return message_datagrams_[i]; }
  // The segment size of message `i` when it is a super-packet.
  uint32_t segment_bytes(size_t i) const { return message_segment_bytes_[i]; }

 private:
  std::vector<MessageSlot> messages_;
  std::vector<uint32_t> message_datagrams_;
  std::vector<uint32_t> message_segment_bytes_;
  std::vector<ControlBuffer> controls_;
  std::vector<iovec> iovecs_;
  // The call's controls in the socket family's form, and (IPv6 sockets) in the IPv4-level form
  // its IPv4-mapped destinations need.
  ControlBuffer fixed_control_;
  size_t fixed_control_length_ = 0;
  ControlBuffer ipv4_peer_control_;
  size_t ipv4_peer_control_length_ = 0;
};

}  // namespace wsk

#endif  // WSK_DGRAM_MESSAGES_POSIX_H_
