// The platform-neutral half of the error queue (error_queue.h): classifying entries, the
// counters, the ring, and telling an ICMP's leftover error from a send's own.
#include "error_queue.h"

#include <cerrno>

#include "send.h"

namespace wsk {

IcmpKind ClassifyIcmp(const ErrorQueueEntry& entry) {
  if (entry.origin == ErrorOrigin::kIcmp && entry.type == 3) {  // destination unreachable
    switch (entry.code) {
      case 0:   // net unreachable
      case 6:   // destination network unknown
      case 11:  // network unreachable for TOS
        return IcmpKind::kNetUnreachable;
      case 1:   // host unreachable (Linux: an "unreachable" route, ARP failure)
      case 7:   // destination host unknown
      case 12:  // host unreachable for TOS
        return IcmpKind::kHostUnreachable;
      case 3:
        return IcmpKind::kPortUnreachable;
      case 4:  // fragmentation needed and DF set; ee_info is the next-hop MTU
        return IcmpKind::kFragmentationNeeded;
      case 9:   // network administratively prohibited
      case 10:  // host administratively prohibited
      case 13:  // communication administratively prohibited (Linux: a "prohibit" route)
        return IcmpKind::kProhibited;
      default:
        return IcmpKind::kOther;
    }
  }
  if (entry.origin == ErrorOrigin::kIcmp6 && entry.type == 1) {  // destination unreachable
    switch (entry.code) {
      case 0:  // no route (Linux: no route, or an "unreachable" route)
        return IcmpKind::kNetUnreachable;
      case 1:  // administratively prohibited (Linux: a "prohibit" route)
      case 5:  // source address failed ingress/egress policy
      case 6:  // reject route to destination
        return IcmpKind::kProhibited;
      case 3:  // address unreachable (neighbour discovery failed)
        return IcmpKind::kHostUnreachable;
      case 4:
        return IcmpKind::kPortUnreachable;
      default:
        return IcmpKind::kOther;
    }
  }
  if (entry.origin == ErrorOrigin::kIcmp6 && entry.type == 2) {  // packet too big; ee_info: MTU
    return IcmpKind::kFragmentationNeeded;
  }
  return IcmpKind::kOther;
}

size_t ErrorQueue::Drain(SocketHandle socket) {
  size_t read = 0;
  for (; read < kMaxReadsPerDrain; ++read) {
    ErrorQueueEntry entry;
    if (ReadErrorQueueEntry(socket, &entry) != 0) break;  // EAGAIN: empty (or no queue here)
    if (entry.origin != ErrorOrigin::kIcmp && entry.origin != ErrorOrigin::kIcmp6) {
      ++counters_.local;  // the send it belongs to already failed with it, synchronously
      continue;
    }
    ++counters_.received;
    switch (ClassifyIcmp(entry)) {
      case IcmpKind::kPortUnreachable:
        ++counters_.port_unreachable;
        break;
      case IcmpKind::kHostUnreachable:
        ++counters_.host_unreachable;
        break;
      case IcmpKind::kNetUnreachable:
        ++counters_.net_unreachable;
        break;
      case IcmpKind::kFragmentationNeeded:
        ++counters_.fragmentation_needed;
        break;
      case IcmpKind::kProhibited:
        ++counters_.prohibited;
        break;
      case IcmpKind::kOther:
        ++counters_.other;
        break;
    }
    unclaimed_error_ = entry.error;
    if (!keep_) continue;
    if (ring_.size() >= kCapacity) {
      ++counters_.dropped;
      continue;
    }
    try {
      ring_.push_back(entry);
    } catch (...) {
      ++counters_.dropped;  // no memory for the ring: the entry is counted, not kept
    }
  }
  return read;
}

int ErrorQueue::Claim(SocketHandle socket, int error) {
  Drain(socket);
  if (unclaimed_error_ == 0 || (error != 0 && unclaimed_error_ != error)) return 0;
  const int claimed = unclaimed_error_;
  unclaimed_error_ = 0;
  return claimed;
}

void ErrorQueue::Take(std::vector<ErrorQueueEntry>* out) {
  out->swap(ring_);
  ring_.clear();
}

int ClaimAsyncError(SocketHandle socket, const SendBatch& batch, int error) {
  return batch.errors == nullptr ? 0 : batch.errors->Claim(socket, error);
}

void NoteAccepted(const SendBatch& batch) {
  if (batch.errors != nullptr) batch.errors->NoteAccepted();
}

}  // namespace wsk
