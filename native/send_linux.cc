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
  SendOutcome Send(SocketHandle socket, const SendBatch& batch) override {
    SendOutcome outcome;
    size_t next = 0;
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
      int sent;
      do {
        sent = sendmmsg(socket, builder_.slots(), static_cast<unsigned int>(message_count), 0);
        ++outcome.syscalls;
      } while (sent < 0 && errno == EINTR);
      if (sent <= 0) {
        const int error = sent < 0 ? errno : EAGAIN;
        // The kernel reports an error only when the first message of the call failed. A
        // refused super-packet lowers what the socket tries and is sent again; bounded: each
        // refusal lowers a limit for good.
        if (builder_.datagrams_in(0) > 1 && batch.segmentation != nullptr &&
            LowerSegmentation(*batch.segmentation, error, builder_.datagrams_in(0),
                              builder_.segment_bytes(0))) {
          continue;
        }
        // Belongs to datagram `next`. (0 cannot happen for a non-empty call; treat it as
        // "would block" rather than loop.)
        outcome.error = error;
        outcome.syscall = "sendmmsg";
        return outcome;
      }
      // A super-packet is all or nothing: a sent message counts all of its datagrams.
      MessageSlot* slots = builder_.slots();
      for (int i = 0; i < sent; ++i) {
        outcome.bytes += slots[i].msg_len;
        outcome.datagrams += builder_.datagrams_in(static_cast<size_t>(i));
      }
      outcome.messages += static_cast<size_t>(sent);
      next = outcome.datagrams;
      // A short count means the next message failed or would block: the loop asks again from
      // the first unsent datagram, and that call reports the error if there is one.
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
