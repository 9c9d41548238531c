// The platform-neutral description of a batch send and its result.
// Each OS back-end (send_linux.cc today; send_win.cc and send_posix.cc later) implements
// CreateSendBackend(). Nothing here knows about Node-API: the socket layer validates and
// translates JavaScript arguments into a SendBatch, the back-end only makes system calls.
#ifndef WSK_DGRAM_SEND_H_
#define WSK_DGRAM_SEND_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "os_socket.h"

namespace wsk {

// One contiguous piece of a datagram's payload, pointing into caller memory (never copied).
struct ByteRange {
  const uint8_t* data;
  size_t length;
};

// A datagram is `range_count` consecutive entries of SendBatch::ranges from `first_range`.
struct DatagramSpan {
  uint32_t first_range;
  uint32_t range_count;
};

// Per-socket segmentation offload state (Linux UDP_SEGMENT, Windows UDP_SEND_MSG_SIZE): the
// back-end coalesces runs of equal-size datagrams into one super-packet of at most
// `max_segments` segments, and lowers the limit or turns itself off when the kernel refuses,
// so a socket asks only once.
struct SegmentationState {
  bool supported = false;     // probed when the socket opened
  uint32_t max_segments = 0;  // current limit; 0 once the kernel refused
  // Largest segment the path took; a larger one (refused with EMSGSIZE: bigger than the MTU
  // allows) goes out as a plain, fragmented datagram.
  uint32_t max_segment_bytes = 65535;
  bool Active() const { return supported && max_segments > 1; }
};

// Control information applied to every datagram of a call (WSK's ControlInfo, translated).
struct SendControls {
  bool has_source = false;
  uint8_t source[16] = {};       // IPv4 in the first 4 bytes, or IPv6
  uint32_t interface_index = 0;  // 0: none
  int tos = -1;                  // TOS / traffic class byte, ECN bits included; -1: none
  int ttl = -1;                  // TTL / hop limit; -1: none
  // Explicit segment size (UDP_SEND_MSG_SIZE / UDP_SEGMENT): each datagram longer than this
  // leaves as segments of this size; 0: none. No fallback when the kernel refuses it.
  uint32_t segment_size = 0;
  bool Any() const {
    return has_source || interface_index != 0 || tos >= 0 || ttl >= 0 || segment_size != 0;
  }
};

struct SendBatch {
  // Destination for every datagram, or nullptr for the connected remote.
  const SocketAddress* destination;
  const DatagramSpan* datagrams;
  size_t datagram_count;
  const ByteRange* ranges;
  size_t range_count;
  // Segmentation for this call, or nullptr to send every datagram on its own.
  SegmentationState* segmentation;
  // Largest UDP payload of the socket's family (one datagram, or one super-packet).
  size_t max_payload;
  // Controls for every datagram, or nullptr.
  const SendControls* controls;
  IpFamily family;
};

// What the kernel accepted. `error` is 0 when all datagrams went out, otherwise the OS error of
// the first datagram that did not, and `syscall` names the call that reported it. `datagrams`
// and `bytes` never count anything the kernel did not accept.
struct SendOutcome {
  size_t datagrams = 0;
  uint64_t bytes = 0;
  int error = 0;
  const char* syscall = "";
  // What it took: system calls made, and messages the kernel accepted (a super-packet is one
  // message carrying several datagrams).
  size_t syscalls = 0;
  size_t messages = 0;
};

class SendBackend {
 public:
  virtual ~SendBackend() = default;
  // Sends as much of `batch` as the socket takes now; returns at the first error, including
  // "would block". Retries EINTR internally. Reuses internal scratch arrays between calls.
  virtual SendOutcome Send(SocketHandle socket, const SendBatch& batch) = 0;
  // The name of the system call this back-end batches with, for diagnostics.
  virtual const char* Name() const = 0;
  // Whether `socket` can offload segmentation, and the segment limit to start from.
  virtual SegmentationState ProbeSegmentation(SocketHandle socket) = 0;
};

// segmentation.cc: the payload length of one datagram, and how many datagrams from `first` go
// out as one super-packet (a run of equal sizes, the last may be shorter, within the segment
// limits, the payload limit and `max_ranges` byte ranges); 1 when segmentation is off.
size_t DatagramLength(const SendBatch& batch, const DatagramSpan& span);
uint32_t SegmentRunLength(const SendBatch& batch, size_t first, size_t max_ranges);

// The back-end of this platform (on Linux: sendmmsg, or the portable loop when the environment
// variable WSK_DGRAM_BACKEND is "sendmsg").
std::unique_ptr<SendBackend> CreateSendBackend();
// The portable sendmsg loop (send_posix.cc), on POSIX systems.
std::unique_ptr<SendBackend> CreatePortableSendBackend();

}  // namespace wsk

#endif  // WSK_DGRAM_SEND_H_
