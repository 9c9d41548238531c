// The socket's ICMP error queue (Linux IP_RECVERR / IPV6_RECVERR). The kernel keeps one entry
// per ICMP error (and per local error such as EMSGSIZE with DF) that concerns a datagram the
// socket sent, charged to the socket's RECEIVE buffer: an undrained queue starves receives. So
// whenever the queue is seen non-empty (POLLERR, a send or receive that failed with an error an
// ICMP left behind), it is read out at once, without blocking, into a bounded ring that
// JavaScript empties (socket_methods.cc takeErrors).
//
// The per-OS part is small: EnableErrorQueue and ReadErrorQueueEntry (error_queue_linux.cc; on
// other systems error_queue_stub.cc, where there is no queue and nothing is ever read). Nothing
// here knows about Node-API.
#ifndef WSK_DGRAM_ERROR_QUEUE_H_
#define WSK_DGRAM_ERROR_QUEUE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "os_socket.h"

namespace wsk {

// Where an entry came from (the kernel's SO_EE_ORIGIN_* numbers).
enum class ErrorOrigin : uint8_t { kNone = 0, kLocal = 1, kIcmp = 2, kIcmp6 = 3 };

// Bytes of the offending datagram's payload kept per entry: enough for a sequence number or a
// QUIC connection id; the ICMP itself quotes at most 576 (IPv4) or 1280 (IPv6) bytes.
constexpr size_t kErrorPayloadBytes = 64;

struct ErrorQueueEntry {
  int error = 0;  // ee_errno: the errno the kernel gives this error (ECONNREFUSED, EMSGSIZE, ...)
  ErrorOrigin origin = ErrorOrigin::kNone;
  uint8_t type = 0;   // ICMP / ICMPv6 type
  uint8_t code = 0;   // ICMP / ICMPv6 code
  uint32_t info = 0;  // ee_info: the next-hop MTU for "fragmentation needed" / "packet too big"
  // The address and port the offending datagram was sent to (msg_name).
  SocketAddress destination;
  // Who sent the ICMP (SO_EE_OFFENDER); length 0 when the kernel does not say.
  SocketAddress offender;
  uint8_t payload[kErrorPayloadBytes] = {};
  uint16_t payload_length = 0;
};

// What the entries were, counted when read (so the counts never depend on JavaScript).
struct ErrorQueueCounters {
  uint64_t received = 0;  // ICMP and ICMPv6 entries read
  uint64_t port_unreachable = 0;
  uint64_t host_unreachable = 0;
  uint64_t net_unreachable = 0;
  uint64_t fragmentation_needed = 0;  // IPv4 "fragmentation needed" and ICMPv6 "packet too big"
  uint64_t prohibited = 0;            // administratively prohibited (a firewall, a prohibit route)
  uint64_t other = 0;                 // time exceeded, parameter problem, anything else
  uint64_t local = 0;    // local errors (EMSGSIZE of a send with DF): counted, never queued
  uint64_t dropped = 0;  // ICMP entries read while the ring was full: counted, then discarded
};

// The kind of an ICMP entry, for the counters and for JavaScript.
enum class IcmpKind : int {
  kOther = 0,
  kPortUnreachable = 1,
  kHostUnreachable = 2,
  kNetUnreachable = 3,
  kFragmentationNeeded = 4,
  kProhibited = 5,
};
IcmpKind ClassifyIcmp(const ErrorQueueEntry& entry);

// Turns on the error queue for the socket (IP_RECVERR, and IPV6_RECVERR on IPv6 sockets).
// Returns 0 or the OS error; ENOPROTOOPT (WSAENOPROTOOPT) where the OS has no such queue.
int EnableErrorQueue(SocketHandle socket, IpFamily family);

// Whether this platform has an error queue at all (Linux).
bool ErrorQueueSupported();

// Reads one entry without blocking. Returns 0 with `out` filled, EAGAIN when the queue is empty,
// or another OS error.
int ReadErrorQueueEntry(SocketHandle socket, ErrorQueueEntry* out);

// Reads and clears the socket's pending error (SO_ERROR); 0 when there is none.
int TakeSocketError(SocketHandle socket);

class ErrorQueue {
 public:
  // Entries kept for JavaScript at most; more are counted as dropped.
  static constexpr size_t kCapacity = 256;
  // Entries read per drain at most: bounds one drain even against an ICMP flood (the kernel
  // itself bounds the queue by the receive buffer).
  static constexpr size_t kMaxReadsPerDrain = 1024;

  // Reads out what the kernel holds (at most kMaxReadsPerDrain entries). ICMP entries are counted
  // and kept (when `keep` is set and there is room) for Take(); local ones only counted.
  // Returns the number of entries read (local ones included). Remembers the errno of the last ICMP
  // entry read as unclaimed (see Claim).
  size_t Drain(SocketHandle socket);

  // A send or receive failed with `error` (or, with error 0, a sendmmsg call stopped short for a
  // reason the kernel did not say). Drains the queue, then says whether the error is an ICMP's
  // left behind for the socket (the kernel's sk_err, which the next send or receive of ANY
  // destination reports, then clears): true when an ICMP entry with errno `error` (any errno,
  // for 0) was read now or earlier and not claimed since. Returns that errno, or 0.
  int Claim(SocketHandle socket, int error);

  // A message was accepted: the kernel checks the pending error first, so none is left over from
  // ICMP entries read before; forget the unclaimed one.
  void NoteAccepted() { unclaimed_error_ = 0; }

  // Whether entries are kept for JavaScript (someone watches); when not, they are only counted.
  void set_keep(bool keep) { keep_ = keep; }
  size_t pending() const { return ring_.size(); }
  const ErrorQueueCounters& counters() const { return counters_; }
  // Moves the kept entries out, oldest first.
  void Take(std::vector<ErrorQueueEntry>* out);
  void Clear() { ring_.clear(); }

 private:
  std::vector<ErrorQueueEntry> ring_;  // FIFO of at most kCapacity; grows only while watched
  ErrorQueueCounters counters_;
  int unclaimed_error_ = 0;
  bool keep_ = false;
};

}  // namespace wsk

#endif  // WSK_DGRAM_ERROR_QUEUE_H_
