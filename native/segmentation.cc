// How datagrams group into segmentation-offload super-packets: shared by every back-end
// (Linux UDP_SEGMENT, Windows UDP_SEND_MSG_SIZE). Platform-neutral.
#include "send.h"

namespace wsk {

size_t DatagramLength(const SendBatch& batch, const DatagramSpan& span) {
  size_t length = 0;
  for (uint32_t r = 0; r < span.range_count; ++r) length += batch.ranges[span.first_range + r].length;
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
  size_t total = size;
  size_t ranges = head.range_count;
  uint32_t count = 1;
  for (size_t i = first + 1; i < batch.datagram_count && count < seg->max_segments; ++i) {
    const DatagramSpan& span = batch.datagrams[i];
    const size_t length = DatagramLength(batch, span);
    if (length == 0 || length > size || total + length > batch.max_payload ||
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

}  // namespace wsk
