// Linux back-end: sendmmsg(2), in chunks of at most UIO_MAXIOV messages.
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "send.h"

#ifndef UIO_MAXIOV
#define UIO_MAXIOV 1024
#endif

namespace wsk {
namespace {

class SendmmsgBackend final : public SendBackend {
 public:
  SendOutcome Send(SocketHandle socket, const SendBatch& batch) override {
    SendOutcome outcome;
    size_t next = 0;
    while (next < batch.datagram_count) {
      const size_t chunk = std::min<size_t>(batch.datagram_count - next, UIO_MAXIOV);
      Prepare(batch, next, chunk);
      int sent;
      do {
        sent = sendmmsg(socket, messages_.data(), static_cast<unsigned int>(chunk), 0);
      } while (sent < 0 && errno == EINTR);
      if (sent <= 0) {
        // The kernel reports an error only when the first message of the call failed, so it
        // belongs to datagram `next`. (0 cannot happen for a non-empty call; treat it as
        // "would block" rather than loop.)
        outcome.error = sent < 0 ? errno : EAGAIN;
        outcome.syscall = "sendmmsg";
        return outcome;
      }
      for (int i = 0; i < sent; ++i) outcome.bytes += messages_[i].msg_len;
      outcome.datagrams += static_cast<size_t>(sent);
      next += static_cast<size_t>(sent);
      // A short count means the next message failed or would block: the loop asks again from
      // the first unsent datagram, and that call reports the error if there is one.
    }
    return outcome;
  }

  const char* Name() const override { return "sendmmsg"; }

 private:
  // Fills messages_/iovecs_ for datagrams [first, first + count). The vectors only grow, so the
  // hot path allocates nothing once warm.
  void Prepare(const SendBatch& batch, size_t first, size_t count) {
    size_t range_total = 0;
    for (size_t i = 0; i < count; ++i) range_total += batch.datagrams[first + i].range_count;
    if (messages_.size() < count) messages_.resize(count);
    if (iovecs_.size() < range_total) iovecs_.resize(range_total);

    sockaddr* name = nullptr;
    socklen_t name_length = 0;
    if (batch.destination != nullptr) {
      name = const_cast<sockaddr*>(
          reinterpret_cast<const sockaddr*>(&batch.destination->storage));
      name_length = batch.destination->length;
    }
    size_t iov_index = 0;
    for (size_t i = 0; i < count; ++i) {
      const DatagramSpan& span = batch.datagrams[first + i];
      iovec* iov = iovecs_.data() + iov_index;
      for (uint32_t r = 0; r < span.range_count; ++r) {
        const ByteRange& range = batch.ranges[span.first_range + r];
        iov[r].iov_base = const_cast<uint8_t*>(range.data);
        iov[r].iov_len = range.length;
      }
      iov_index += span.range_count;
      msghdr& header = messages_[i].msg_hdr;
      header.msg_name = name;
      header.msg_namelen = name_length;
      header.msg_iov = span.range_count > 0 ? iov : nullptr;
      header.msg_iovlen = span.range_count;
      header.msg_control = nullptr;
      header.msg_controllen = 0;
      header.msg_flags = 0;
      messages_[i].msg_len = 0;
    }
  }

  std::vector<mmsghdr> messages_;
  std::vector<iovec> iovecs_;
};

}  // namespace

std::unique_ptr<SendBackend> CreateSendBackend() { return std::make_unique<SendmmsgBackend>(); }

}  // namespace wsk
