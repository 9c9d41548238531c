// Portable POSIX back-end: one sendmsg(2) per message, for systems without sendmmsg (macOS,
// the BSDs). On Linux it is selected with WSK_DGRAM_BACKEND=sendmsg so that the whole suite,
// and an equivalence test, run on it too. Messages come from the same MessageBuilder as the
// sendmmsg back-end (super-packets only where the OS has UDP_SEGMENT).
#include <cerrno>
#include <new>

#include "messages_posix.h"
#include "send.h"

namespace wsk {
namespace {

// Messages prepared at a time: bounds the scratch arrays, not the batch.
constexpr size_t kMessagesPerRound = 64;

class SendmsgBackend final : public SendBackend {
 public:
  // Error policy, as the sendmmsg back-end's: EINTR retried; an ICMP's leftover error is handled
  // as send.h says (AsyncErrorPolicy: an unconnected socket sends the datagram again; on a
  // connected one it is the datagram's error); a refused super-packet lowers the segmentation
  // and goes again; with continue_on_error a destination's error is recorded for the message's
  // datagrams and the loop goes on; anything else stops it at that message.
  SendOutcome Send(SocketHandle socket, const SendBatch& batch) override {
    SendOutcome outcome;
    const bool connected = batch.destinations == nullptr;
    size_t next = 0;  // the first datagram neither sent nor recorded as failed
    while (next < batch.datagram_count) {
      size_t message_count;
      try {
        message_count = builder_.Prepare(batch, next, kMessagesPerRound);
      } catch (const std::bad_alloc&) {
        // The message arrays grow with the window; what went out so far stays counted.
        outcome.error = ENOMEM;
        outcome.syscall = Name();
        return outcome;
      }
      MessageSlot* slots = builder_.slots();
      size_t retries = 0;  // times message m went again for an ICMP's leftover error, in a row
      size_t m = 0;
      bool prepare_again = false;
      while (m < message_count && !prepare_again) {
        const uint32_t datagrams = builder_.datagrams_in(m);
        ssize_t sent;
        do {
          sent = sendmsg(socket, &slots[m].msg_hdr, 0);
          ++outcome.syscalls;
        } while (sent < 0 && errno == EINTR);
        if (sent >= 0) {
          outcome.bytes += static_cast<uint64_t>(sent);
          RecordSent(batch, next, datagrams, &outcome);
          NoteAccepted(batch);
          next += datagrams;
          ++outcome.messages;
          ++m;
          retries = 0;
          continue;
        }
        const int error = errno;
        const bool async = error != EAGAIN && error != EWOULDBLOCK && error != ENOBUFS &&
                           ClaimAsyncError(socket, batch, error) != 0;
        if (async && !connected && retries < kAsyncRetries) {
          ++retries;  // an earlier peer's ICMP, not this datagram's: send it again
          continue;
        }
        if (!async && datagrams > 1 && batch.segmentation != nullptr &&
            LowerSegmentation(*batch.segmentation, error, datagrams, builder_.segment_bytes(m))) {
          prepare_again = true;  // from the first unsent datagram, with the lower limits
          continue;
        }
        if (batch.continue_on_error && IsDestinationError(error)) {
          RecordFailed(batch, next, datagrams, error);
          next += datagrams;
          ++m;
          retries = 0;
          continue;
        }
        outcome.error = error;  // belongs to the first datagram of message m
        outcome.syscall = "sendmsg";
        outcome.would_block = !async && IsWouldBlock(error, socket);
        return outcome;
      }
    }
    return outcome;
  }

  const char* Name() const override { return "sendmsg"; }

  SegmentationState ProbeSegmentation(SocketHandle socket) override {
    return wsk::ProbeSegmentation(socket);
  }

 private:
  MessageBuilder builder_;
};

}  // namespace

std::unique_ptr<SendBackend> CreatePortableSendBackend() {
  return std::make_unique<SendmsgBackend>();
}

#ifndef __linux__
std::unique_ptr<SendBackend> CreateSendBackend() { return CreatePortableSendBackend(); }
#endif

}  // namespace wsk
