// The platform-neutral description of a batch send and its result.
// Each OS back-end (send_linux.cc: sendmmsg; send_posix.cc: a sendmsg loop; send_win.cc: a
// WSASendMsg loop) implements CreateSendBackend(). Nothing here knows about Node-API: the batch
// reader (batch_reader.cc) validates and translates the JavaScript batch into a SendBatch, the
// back-end only makes system calls.
#ifndef WSK_DGRAM_SEND_H_
#define WSK_DGRAM_SEND_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "os_socket.h"

namespace wsk {

class ErrorQueue;

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

// A window's datagram refused for its destination while the send went on (continue_on_error):
// `datagram` indexes the window, `error` is the OS error.
struct SendFailure {
  size_t datagram;
  int error;
};

struct SendBatch {
  const DatagramSpan* datagrams;
  size_t datagram_count;
  const ByteRange* ranges;
  size_t range_count;
  // The destinations the window uses, or nullptr (count 0) to send to the connected remote.
  const SocketAddress* destinations;
  size_t destination_count;
  // Per datagram of the window, an index into `destinations`; nullptr: every datagram goes to
  // destinations[0] (or to the connected remote when there are none).
  const uint32_t* targets;
  // Segmentation for this call, or nullptr to send every datagram on its own.
  SegmentationState* segmentation;
  // Largest UDP payload of the socket's family (one datagram, or one super-packet).
  size_t max_payload;
  // Controls for every datagram, or nullptr.
  const SendControls* controls;
  IpFamily family;
  // On an IPv6 socket, the connected remote is IPv4-mapped: a datagram without a destination
  // gets IPv4-level controls (see ForIPv4Peer).
  bool remote_v4_mapped;
  // Whether an error that belongs to a datagram's destination (IsDestinationError of the
  // back-end: unreachable, refused, not permitted, too big for the path, ...) is recorded in
  // `failures` for every datagram of the refused message and the send goes on with the next.
  // Otherwise, and for every other error, the send stops at the first datagram not sent.
  bool continue_on_error;
  // Where those failures go, in window order; reserved by the caller for every datagram of the
  // window, so that recording one never allocates. Required when continue_on_error.
  std::vector<SendFailure>* failures;
  // The socket's ICMP error queue (error_queue.h), or nullptr where there is none. The back-ends
  // use it to tell an error an earlier datagram's ICMP left on the socket from the error of the
  // datagram being sent (AsyncErrorPolicy below).
  ErrorQueue* errors = nullptr;

  // The address datagram `i` of the window goes to; nullptr for the connected remote.
  const SocketAddress* DestinationOf(size_t i) const {
    if (destinations == nullptr) return nullptr;
    return &destinations[targets == nullptr ? 0 : targets[i]];
  }
  // Whether datagram `i` leaves an IPv6 socket for an IPv4 peer (an IPv4-mapped destination,
  // or the connected remote is one): the kernel sends it as IPv4 and reads only IPv4-level
  // controls for it (Linux: udpv6_sendmsg hands it to udp_sendmsg, whose ip_cmsg_send skips
  // IPV6_TCLASS / IPV6_HOPLIMIT; Windows and the BSDs likewise), and its payload limit is
  // IPv4's.
  bool ForIPv4Peer(size_t i) const {
    if (family != IpFamily::kV6) return false;
    const SocketAddress* destination = DestinationOf(i);
    return destination == nullptr ? remote_v4_mapped : IsV4Mapped(*destination);
  }
};

// What the kernel accepted. `error` is 0 when the send went through the window, otherwise the OS
// error that stopped it, at datagram `datagrams + failures` of the window (the first neither sent
// nor recorded as failed), and `syscall` names the call that reported it. `datagrams`, `bytes`
// and `segments` never count anything the kernel did not accept.
struct SendOutcome {
  size_t datagrams = 0;
  uint64_t bytes = 0;
  // Datagrams on the wire: a datagram longer than an explicit segment size counts one per
  // segment; every other datagram counts one (a GSO super-packet of n datagrams counts n).
  size_t segments = 0;
  int error = 0;
  const char* syscall = "";
  // The send stopped because the socket cannot take more now (the back-end decides per
  // platform: EAGAIN/EWOULDBLOCK/ENOBUFS on POSIX, WSAEWOULDBLOCK/WSAENOBUFS on Windows).
  bool would_block = false;
  // What it took: system calls made, and messages the kernel accepted (a super-packet is one
  // message carrying several datagrams).
  size_t syscalls = 0;
  size_t messages = 0;
};

// AsyncErrorPolicy: how every back-end treats an ICMP's leftover error. (With IP_RECVERR the
// kernel keeps the error of a peer's ICMP as the socket's pending error and reports it to the
// NEXT send, to any destination; sendmmsg consumes it at the message it fails and returns a
// short count without it.) The rule:
// - Unconnected socket (the batch has destinations): the error is not the datagram's. The
//   datagram it surfaced at goes again (at most kAsyncRetries times in a row; after that the
//   error counts as the datagram's own), and the ICMP goes to the error queue's ring ('icmp').
// - Connected socket (every datagram goes to the one remote, whose ICMP it is): the error
//   belongs to the first datagram it surfaced at, which is not sent: the send stops there with
//   it (with continue_on_error it is that datagram's failure and the send goes on). A sendmmsg
//   call cut short by it reports it at that datagram, as the sendmsg loop does; so both give the
//   same datagrams, bytes and error for the same arrival.
// An ICMP the error queue was read for before the send (a POLLERR while polling, a receive) has
// cleared the pending error: it fails no send, it is only reported as an 'icmp' event.
constexpr int kAsyncRetries = 8;

// error_queue.cc: whether `error` (0: a sendmmsg call that stopped short without saying why)
// is an ICMP's leftover on the socket rather than the error of the message that met it; returns
// that errno or 0. Reads the error queue (batch.errors; 0 without one). Not for "would block".
int ClaimAsyncError(SocketHandle socket, const SendBatch& batch, int error);
// error_queue.cc: the kernel accepted a message, so no leftover error from before is pending.
void NoteAccepted(const SendBatch& batch);

class SendBackend {
 public:
  virtual ~SendBackend() = default;
  // Sends as much of `batch` as the socket takes now; returns at the first error that stops it
  // ("would block" always does; with continue_on_error a destination's error does not). Retries
  // EINTR internally. Reuses internal scratch arrays between calls; allocates nothing once warm.
  virtual SendOutcome Send(SocketHandle socket, const SendBatch& batch) = 0;
  // The name of the system call this back-end batches with, for diagnostics.
  virtual const char* Name() const = 0;
  // Whether `socket` can offload segmentation, and the segment limit to start from.
  virtual SegmentationState ProbeSegmentation(SocketHandle socket) = 0;
};

// segmentation.cc: the payload length of one datagram, and how many datagrams from `first` go
// out as one super-packet (a run of equal sizes to one destination, the last may be shorter,
// within the segment limits, the payload limit and `max_ranges` byte ranges); 1 when
// segmentation is off.
size_t DatagramLength(const SendBatch& batch, const DatagramSpan& span);
uint32_t SegmentRunLength(const SendBatch& batch, size_t first, size_t max_ranges);

// segmentation.cc, the accounting every back-end shares: `count` datagrams of the window from
// `first` were accepted (datagrams and segments; the bytes are the kernel's figure), or were
// refused with `error` for their destination (one failure each).
void RecordSent(const SendBatch& batch, size_t first, uint32_t count, SendOutcome* outcome);
void RecordFailed(const SendBatch& batch, size_t first, uint32_t count, int error);

// The back-end of this platform (on Linux: sendmmsg, or the portable loop when the environment
// variable WSK_DGRAM_BACKEND is "sendmsg").
std::unique_ptr<SendBackend> CreateSendBackend();
// The portable sendmsg loop (send_posix.cc), on POSIX systems.
std::unique_ptr<SendBackend> CreatePortableSendBackend();

}  // namespace wsk

#endif  // WSK_DGRAM_SEND_H_
