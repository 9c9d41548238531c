// Windows back-end: a WSASendMsg loop, one call per message. Windows has no sendmmsg; its batch
// primitive for UDP is USO (UDP segmentation offload, Windows 10 2004+): a run of equal-size
// datagrams goes out as one WSASendMsg carrying a UDP_SEND_MSG_SIZE control, and the stack
// splits it back into those datagrams. Control information travels in Windows' own WSACMSGHDR
// form, with the levels and types of ws2ipdef.h.
//
// Error policy (as on Linux): stop at the first datagram the OS refuses, WSAEWOULDBLOCK
// included, and report exactly what went out before it; with continue_on_error an error that
// belongs to the destination (IsDestinationError) is recorded for the message's datagrams and
// the loop goes on. A super-packet refused with WSAEINVAL or WSAEOPNOTSUPP turns USO off for the
// socket and the same datagrams go out one by one.
#include <winsock2.h>
#include <mswsock.h>
#include <ws2tcpip.h>

#include <cstring>
#include <new>
#include <vector>

#include "send.h"

// ws2ipdef.h: the option/control the USO segment size travels in (level IPPROTO_UDP, a DWORD).
// MinGW-w64's headers do not define it; the value is the Windows SDK's.
#ifndef UDP_SEND_MSG_SIZE
#define UDP_SEND_MSG_SIZE 2
#endif

namespace wsk {
namespace {

// Windows bounds a USO super-packet by its total size (one UDP payload), not by a segment
// count; this bound keeps the WSABUF array of one message small.
constexpr uint32_t kMaxSegments = 512;
// Byte ranges per message, as on Linux (UIO_MAXIOV): the socket layer allows 1024 per datagram.
constexpr size_t kMaxBuffersPerMessage = 1024;

// Room for every control a message may carry: packet info (IN6_PKTINFO is the larger), TOS or
// ECN, TTL or hop limit, and the segment size.
constexpr size_t kControlSpace = WSA_CMSG_SPACE(sizeof(IN6_PKTINFO)) +
                                 2 * WSA_CMSG_SPACE(sizeof(INT)) + WSA_CMSG_SPACE(sizeof(DWORD));

// Appends one control at `offset` of a zeroed, 8-aligned buffer; returns the next offset.
size_t AppendControl(unsigned char* buffer, size_t offset, int level, int type, const void* data,
                     size_t length) {
  auto* header = reinterpret_cast<WSACMSGHDR*>(buffer + offset);
  header->cmsg_len = WSA_CMSG_LEN(length);
  header->cmsg_level = level;
  header->cmsg_type = type;
  std::memcpy(WSA_CMSG_DATA(header), data, length);
  return offset + WSA_CMSG_SPACE(length);
}

size_t AppendInt(unsigned char* buffer, size_t offset, int level, int type, int value) {
  const INT data = value;
  return AppendControl(buffer, offset, level, type, &data, sizeof(data));
}

// The controls common to every message of a call, in Windows form, at the socket family's
// level, or (`ipv4_peer`) at the IPv4 level for an IPv4-mapped destination of a dual-stack IPv6
// socket: Windows sends that datagram as IPv4 and takes IPPROTO_IP controls for it (MsQuic
// picks the level by the peer's family the same way).
size_t EncodeFixedControls(const SendControls& controls, IpFamily family, bool ipv4_peer,
                           unsigned char* buffer) {
  size_t offset = 0;
  const bool v4 = family == IpFamily::kV4 || ipv4_peer;
  if (controls.has_source || controls.interface_index != 0) {
    // On an IPv6 socket an IPv4 source is IPv4-mapped: its address is the last 4 bytes.
    const bool v6_socket = family == IpFamily::kV6;
    const bool v4_source = !v6_socket || !controls.has_source || IsV4MappedBytes(controls.source);
    if (v4 && v4_source) {
      IN_PKTINFO info{};  // Windows: the source is ipi_addr (Linux uses ipi_spec_dst)
      std::memcpy(&info.ipi_addr, controls.source + (v6_socket ? 12 : 0), 4);
      info.ipi_ifindex = controls.interface_index;
      offset = AppendControl(buffer, offset, IPPROTO_IP, IP_PKTINFO, &info, sizeof(info));
    } else {
      // Also a source of the other family than the peer: the stack's verdict to report.
      IN6_PKTINFO info{};
      std::memcpy(&info.ipi6_addr, controls.source, 16);
      info.ipi6_ifindex = controls.interface_index;
      offset = AppendControl(buffer, offset, IPPROTO_IPV6, IPV6_PKTINFO, &info, sizeof(info));
    }
  }
  if (controls.tos >= 0) {
    // Windows takes the ECN codepoint alone as IP_ECN / IPV6_ECN; a DSCP needs the whole byte
    // as IP_TOS / IPV6_TCLASS (MsQuic does the same).
    if ((controls.tos & ~3) == 0) {
      offset = AppendInt(buffer, offset, v4 ? IPPROTO_IP : IPPROTO_IPV6, v4 ? IP_ECN : IPV6_ECN,
                         controls.tos & 3);
    } else {
      offset = AppendInt(buffer, offset, v4 ? IPPROTO_IP : IPPROTO_IPV6, v4 ? IP_TOS : IPV6_TCLASS,
                         controls.tos);
    }
  }
  if (controls.ttl >= 0) {
    offset = AppendInt(buffer, offset, v4 ? IPPROTO_IP : IPPROTO_IPV6, v4 ? IP_TTL : IPV6_HOPLIMIT,
                       controls.ttl);
  }
  return offset;
}

bool IsSegmentationRefusal(int error) {
  // WSAEINVAL: the stack does not take UDP_SEND_MSG_SIZE here (or not this size or count);
  // WSAEOPNOTSUPP: no USO on this path.
  return error == WSAEINVAL || error == WSAEOPNOTSUPP;
}

bool IsWouldBlock(int error) { return error == WSAEWOULDBLOCK || error == WSAENOBUFS; }

// The WSA equivalents of the POSIX list (messages_posix.h). Not WSAEINVAL: Windows reports it
// for a malformed call or an unbound socket, and for USO refusals, not for a destination.
bool IsDestinationError(int error) {
  switch (error) {
    case WSAEACCES:  // a broadcast address without SO_BROADCAST
    case WSAENETUNREACH:
    case WSAEHOSTUNREACH:
    case WSAEHOSTDOWN:
    case WSAENETDOWN:
    case WSAECONNRESET:  // UDP: an earlier datagram drew an ICMP port unreachable
    case WSAECONNREFUSED:
    case WSAENETRESET:  // UDP: an ICMP time exceeded for an earlier datagram
    case WSAEMSGSIZE:
    case WSAEADDRNOTAVAIL:  // e.g. port 0 or the any address as a destination
    case WSAEAFNOSUPPORT:
      return true;
    default:
      return false;
  }
}

class WsaSendMsgBackend final : public SendBackend {
 public:
  SendOutcome Send(SocketHandle socket, const SendBatch& batch) override {
    SendOutcome outcome;
    LPFN_WSASENDMSG send_msg = nullptr;
    if (int error = SendMsgFunction(socket, batch.family, &send_msg)) {
      outcome.error = error;
      outcome.syscall = "WSAIoctl";
      return outcome;
    }
    // Both encodings once per call; each message takes the one its destination needs.
    fixed_control_length_ = 0;
    ipv4_peer_control_length_ = 0;
    if (batch.controls != nullptr) {
      std::memset(fixed_control_, 0, sizeof(fixed_control_));
      fixed_control_length_ =
          EncodeFixedControls(*batch.controls, batch.family, false, fixed_control_);
      if (batch.family == IpFamily::kV6) {
        std::memset(ipv4_peer_control_, 0, sizeof(ipv4_peer_control_));
        ipv4_peer_control_length_ =
            EncodeFixedControls(*batch.controls, batch.family, true, ipv4_peer_control_);
      }
    }
    const uint32_t explicit_segment = batch.controls != nullptr ? batch.controls->segment_size : 0;

    WSAMSG message{};
    size_t next = 0;  // the first datagram neither sent nor recorded as failed
    while (next < batch.datagram_count) {
      const uint32_t run = SegmentRunLength(batch, next, kMaxBuffersPerMessage);
      // A run never spans a change of target: its first datagram's destination is the message's.
      const SocketAddress* destination = batch.DestinationOf(next);
      message.name =
          destination == nullptr
              ? nullptr
              : const_cast<sockaddr*>(reinterpret_cast<const sockaddr*>(&destination->storage));
      message.namelen = destination == nullptr ? 0 : destination->length;
      // Gather the run's byte ranges.
      buffers_.clear();
      size_t message_length = 0;
      size_t segment_size = 0;
      try {
        for (uint32_t i = 0; i < run; ++i) {
          const DatagramSpan& span = batch.datagrams[next + i];
          size_t length = 0;
          for (uint32_t r = 0; r < span.range_count; ++r) {
            const ByteRange& range = batch.ranges[span.first_range + r];
            WSABUF buffer;
            buffer.len = static_cast<ULONG>(range.length);
            buffer.buf = reinterpret_cast<CHAR*>(const_cast<uint8_t*>(range.data));
            buffers_.push_back(buffer);
            length += range.length;
          }
          if (i == 0) segment_size = length;
          message_length += length;
        }
      } catch (const std::bad_alloc&) {
        // The WSABUF array grows with the largest message; what went out so far stays counted.
        outcome.error = WSA_NOT_ENOUGH_MEMORY;
        outcome.syscall = Name();
        return outcome;
      }
      message.lpBuffers = buffers_.empty() ? nullptr : buffers_.data();
      message.dwBufferCount = static_cast<DWORD>(buffers_.size());
      message.dwFlags = 0;

      // UDP_SEND_MSG_SIZE only where there is more than one segment.
      DWORD segment = 0;
      if (explicit_segment != 0) {
        if (message_length > explicit_segment) segment = explicit_segment;
      } else if (run > 1) {
        segment = static_cast<DWORD>(segment_size);
      }
      const bool ipv4_peer = batch.ForIPv4Peer(next);
      const unsigned char* fixed = ipv4_peer ? ipv4_peer_control_ : fixed_control_;
      size_t control_length = ipv4_peer ? ipv4_peer_control_length_ : fixed_control_length_;
      if (segment != 0 || control_length != 0) {
        std::memset(control_, 0, sizeof(control_));
        std::memcpy(control_, fixed, control_length);
        if (segment != 0) {
          control_length = AppendControl(control_, control_length, IPPROTO_UDP, UDP_SEND_MSG_SIZE,
                                         &segment, sizeof(segment));
        }
      }
      // Windows rejects a non-null control buffer of length 0 (WSAEINVAL).
      message.Control.buf = control_length != 0 ? reinterpret_cast<CHAR*>(control_) : nullptr;
      message.Control.len = static_cast<ULONG>(control_length);

      DWORD sent = 0;
      int result;
      int error = 0;
      do {
        result = send_msg(socket, &message, 0, &sent, nullptr, nullptr);
        ++outcome.syscalls;
        error = result == 0 ? 0 : WSAGetLastError();
      } while (error == WSAEINTR);
      if (error != 0) {
        if (run > 1 && explicit_segment == 0 && batch.segmentation != nullptr &&
            IsSegmentationRefusal(error)) {
          // Stop asking for this socket, and send the same datagrams plain.
          batch.segmentation->max_segments = 0;
          continue;
        }
        if (batch.continue_on_error && IsDestinationError(error)) {
          RecordFailed(batch, next, run, error);
          next += run;
          continue;
        }
        outcome.error = error;
        outcome.syscall = "WSASendMsg";
        outcome.would_block = IsWouldBlock(error);
        return outcome;
      }
      // A super-packet is all or nothing: a sent message counts all of its datagrams.
      RecordSent(batch, next, run, &outcome);
      outcome.bytes += sent;
      ++outcome.messages;
      next += run;
    }
    return outcome;
  }

  const char* Name() const override { return "WSASendMsg"; }

  SegmentationState ProbeSegmentation(SocketHandle socket) override {
    // Reading the socket-wide UDP_SEND_MSG_SIZE succeeds only where the stack has USO (Windows
    // 10 2004+; MsQuic probes the same way). Nothing is set, so nothing needs resetting: each
    // super-packet carries its own size as a control.
    SegmentationState state;
    DWORD size = 0;
    int length = sizeof(size);
    if (getsockopt(socket, IPPROTO_UDP, UDP_SEND_MSG_SIZE, reinterpret_cast<char*>(&size),
                   &length) == 0) {
      state.supported = true;
      state.max_segments = kMaxSegments;
    }
    return state;
  }

 private:
  // WSASendMsg is an extension function: its address comes from the socket's provider. Looked
  // up once per family and kept for the environment's life.
  int SendMsgFunction(SocketHandle socket, IpFamily family, LPFN_WSASENDMSG* out) {
    LPFN_WSASENDMSG& cached = send_msg_[family == IpFamily::kV6 ? 1 : 0];
    if (cached == nullptr) {
      GUID guid = WSAID_WSASENDMSG;
      DWORD bytes = 0;
      LPFN_WSASENDMSG function = nullptr;
      if (WSAIoctl(socket, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof(guid), &function,
                   sizeof(function), &bytes, nullptr, nullptr) != 0) {
        return WSAGetLastError();
      }
      if (function == nullptr) return WSAEOPNOTSUPP;
      cached = function;
    }
    *out = cached;
    return 0;
  }

  LPFN_WSASENDMSG send_msg_[2] = {nullptr, nullptr};
  alignas(8) unsigned char fixed_control_[kControlSpace];
  alignas(8) unsigned char ipv4_peer_control_[kControlSpace];
  alignas(8) unsigned char control_[kControlSpace];
  size_t fixed_control_length_ = 0;
  size_t ipv4_peer_control_length_ = 0;
  std::vector<WSABUF> buffers_;
};

}  // namespace

std::unique_ptr<SendBackend> CreateSendBackend() { return std::make_unique<WsaSendMsgBackend>(); }

}  // namespace wsk
