// How datagrams group into segmentation-offload super-packets, and what a sent datagram counts
// for: shared by every back-end (Linux UDP_SEGMENT, Windows UDP_SEND_MSG_SIZE, the sendmsg
// loop). Platform-neutral.
#include "send.h"

namespace wsk {
namespace {

constexpr size_t kMaxIPv4Payload = 65507;  // 65535 less the IPv4 and UDP headers

}  // namespace

size_t DatagramLength(const SendBatch& batch, const DatagramSpan& span) {
  size_t length = 0;
  for (uint32_t r = 0; r < span.range_count; ++r)
    length += batch.ranges[span.first_range + r].length;
  return length;
}

uint32_t SegmentRunLength(const SendBatch& batch, size_t first, size_t max_ranges) {
  const SegmentationState* seg = batch.segmentation;
  if (seg == nullptr || !seg->Active()) return 1;
  // An explicit segment size makes each datagram its own super-packet.
  if (batch.controls != nullptr && batch.controls->segment_size != 0) return 1;
  const DatagramSpan& head = batch.datagrams[first];
  const size_t size = DatagramLength(batch, head);
  if (size == 0 || size > seg->max_segment_bytes) return 1;
  // An IPv4 peer of a dual-stack socket takes IPv4's payload limit: a larger super-packet would
  // be refused (EMSGSIZE) and lower the socket's segment size for every peer.
  const size_t max_payload = batch.ForIPv4Peer(first) && batch.max_payload > kMaxIPv4Payload
                                 ? kMaxIPv4Payload
                                 : batch.max_payload;
  size_t total = size;
  size_t ranges = head.range_count;
  uint32_t count = 1;
  for (size_t i = first + 1; i < batch.datagram_count && count < seg->max_segments; ++i) {
    // A super-packet has one destination: a change of target ends the run.
    if (batch.targets != nullptr && batch.targets[i] != batch.targets[first]) break;
    const DatagramSpan& span = batch.datagrams[i];
    const size_t length = DatagramLength(batch, span);
    if (length == 0 || length > size || total + length > max_payload ||
        ranges + span.range_count > max_ranges) {
      break;
    }
    total += length;
    ranges += span.range_count;
    ++count;
    if (length < size) break;  // a shorter segment ends the super-packet
  }
  return count;
}

void RecordSent(const SendBatch& batch, size_t first, uint32_t count, SendOutcome* outcome) {
  outcome->datagrams += count;
  const uint32_t segment_size = batch.controls != nullptr ? batch.controls->segment_size : 0;
  if (segment_size == 0) {
    outcome->segments += count;
    return;
  }
  // An explicit segment size cuts each datagram longer than it (the last segment shorter).
  for (uint32_t i = 0; i < count; ++i) {
    const size_t length = DatagramLength(batch, batch.datagrams[first + i]);
    outcome->segments += length > segment_size ? (length + segment_size - 1) / segment_size : 1;
  }
}

void RecordFailed(const SendBatch& batch, size_t first, uint32_t count, int error) {
  // The reader reserved one entry per datagram of the window: push_back never allocates here.
  for (uint32_t i = 0; i < count; ++i) batch.failures->push_back(SendFailure{first + i, error});
}

}  // namespace wsk
