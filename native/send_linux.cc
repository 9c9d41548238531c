// Linux back-end: sendmmsg(2), in calls of at most UIO_MAXIOV messages, over the messages
// MessageBuilder makes (GSO super-packets and cmsgs included).
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include "messages_posix.h"
#include "send.h"

namespace wsk {
namespace {

class SendmmsgBackend final : public SendBackend {
 public:
  // Error policy: EINTR is retried; an ICMP's leftover error is handled as send.h says
  // (AsyncErrorPolicy): after a short count the error queue tells whether the kernel consumed
  // one at the first unsent message (connected: that message's error; unconnected: the next call
  // sends it again), and a call whose first message fails with one goes again (unconnected) or
  // reports it (connected); a refused super-packet lowers the socket's segmentation and goes
  // again (LowerSegmentation); with continue_on_error a destination's error (IsDestinationError)
  // is recorded for the message's datagrams and the send goes on after it; anything else, "would
  // block" included, stops the send at the failing message.
  SendOutcome Send(SocketHandle socket, const SendBatch& batch) override {
    SendOutcome outcome;
    const bool connected = batch.destinations == nullptr;
    size_t next = 0;  // the first datagram neither sent nor recorded as failed
    while (next < batch.datagram_count) {
      size_t message_count;
      try {
        message_count = builder_.Prepare(batch, next, UIO_MAXIOV);
      } catch (const std::bad_alloc&) {
        // The message arrays grow with the window; what went out so far stays counted.
        outcome.error = ENOMEM;
        outcome.syscall = Name();
        return outcome;
      }
      MessageSlot* slots = builder_.slots();
      // Messages [m, message_count) of this preparation are still to go.
      size_t m = 0;
      size_t retries = 0;  // calls that began at message m again for an ICMP's leftover error
      bool prepare_again = false;
      while (m < message_count && !prepare_again) {
        int sent;
        do {
          sent = sendmmsg(socket, slots + m, static_cast<unsigned int>(message_count - m), 0);
          ++outcome.syscalls;
        } while (sent < 0 && errno == EINTR);
        int error;
        bool async = false;
        if (sent > 0) {
          // A super-packet is all or nothing: a sent message counts all of its datagrams.
          for (int i = 0; i < sent; ++i, ++m) {
            outcome.bytes += slots[m].msg_len;
            RecordSent(batch, next, builder_.datagrams_in(m), &outcome);
            next += builder_.datagrams_in(m);
          }
          outcome.messages += static_cast<size_t>(sent);
          NoteAccepted(batch);
          retries = 0;
          if (m == message_count) continue;
          // A short count: message m failed or would block, and the kernel kept its error to
          // itself. If that was an ICMP's leftover (the error queue holds it), a connected socket
          // reports it at m, as the sendmsg loop does; otherwise the next call starts at m and
          // reports m's own error, if any.
          error = ClaimAsyncError(socket, batch, 0);
          if (error == 0 || !connected) continue;
          async = true;
        } else {
          // The kernel reports an error only when the first message of the call failed: m.
          // (0 cannot happen for a non-empty call; treat it as "would block" rather than loop.)
          error = sent < 0 ? errno : EAGAIN;
          async = error != EAGAIN && error != EWOULDBLOCK && error != ENOBUFS &&
                  ClaimAsyncError(socket, batch, error) != 0;
          if (async && !connected && retries < kAsyncRetries) {
            ++retries;  // an earlier peer's ICMP, not this message's: the call goes again
            continue;
          }
        }
        const uint32_t datagrams = builder_.datagrams_in(m);
        // A refused super-packet lowers what the socket tries; its datagrams are prepared again.
        // Bounded: each refusal lowers a limit for good.
        if (!async && datagrams > 1 && batch.segmentation != nullptr &&
            LowerSegmentation(*batch.segmentation, error, datagrams, builder_.segment_bytes(m))) {
          prepare_again = true;
          continue;
        }
        if (batch.continue_on_error && IsDestinationError(error)) {
          RecordFailed(batch, next, datagrams, error);
          next += datagrams;
          ++m;
          continue;
        }
        outcome.error = error;
        outcome.syscall = "sendmmsg";
        outcome.would_block = !async && IsWouldBlock(error, socket);
        return outcome;
      }
    }
    return outcome;
  }

  const char* Name() const override { return "sendmmsg"; }

  SegmentationState ProbeSegmentation(SocketHandle socket) override {
    return wsk::ProbeSegmentation(socket);
  }

 private:
  MessageBuilder builder_;
};

}  // namespace

std::unique_ptr<SendBackend> CreateSendBackend() {
  // WSK_DGRAM_BACKEND=sendmsg selects the portable loop (send_posix.cc) at load time, so the
  // whole test suite can run on it here too.
  const char* choice = std::getenv("WSK_DGRAM_BACKEND");
  if (choice != nullptr && std::strcmp(choice, "sendmsg") == 0) return CreatePortableSendBackend();
  return std::make_unique<SendmmsgBackend>();
}

}  // namespace wsk
