// The socket's JavaScript methods (declared in socket.h) and the objects they return. Each
// method returns 0 or an OS error, a value or an OS error, or (send) a result object with the
// error inside; TypeError/RangeError only for malformed arguments.
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "recv.h"
#include "socket.h"
#include "socket_options.h"

namespace wsk {
namespace {

uint32_t Uint32Argument(const Napi::CallbackInfo& info, size_t index, const char* name,
                        uint32_t max) {
  Napi::Value value = info[index];
  if (!value.IsNumber()) ThrowType(info.Env(), std::string(name) + " must be a number");
  const double number = value.As<Napi::Number>().DoubleValue();
  if (!(number >= 0) || number > max || std::floor(number) != number) {
    ThrowRange(info.Env(),
               std::string(name) + " must be an integer from 0 to " + std::to_string(max));
  }
  return static_cast<uint32_t>(number);
}

Napi::Value AddressObject(Napi::Env env, const SocketAddress& address) {
  char ip[64];
  uint16_t port = 0;
  uint32_t scope_id = 0;
  if (int error = FormatAddress(address, ip, sizeof(ip), &port, &scope_id)) {
    return Napi::Number::New(env, error);
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("family", Napi::Number::New(env, static_cast<int>(address.family())));
  result.Set("address", Napi::String::New(env, ip));
  result.Set("port", Napi::Number::New(env, port));
  result.Set("scopeId", Napi::Number::New(env, scope_id));
  return result;
}

// The result object of a send; failure indices are the batch's (first + window index).
Napi::Value SendResult(Napi::Env env, const SendOutcome& outcome, const SendBatch& batch,
                       uint32_t first) {
  Napi::Object result = Napi::Object::New(env);
  result.Set("datagrams", Napi::Number::New(env, static_cast<double>(outcome.datagrams)));
  result.Set("bytes", Napi::Number::New(env, static_cast<double>(outcome.bytes)));
  result.Set("segments", Napi::Number::New(env, static_cast<double>(outcome.segments)));
  result.Set("errno", Napi::Number::New(env, outcome.error));
  result.Set("syscall", Napi::String::New(env, outcome.syscall));
  result.Set("wouldBlock", Napi::Boolean::New(env, outcome.would_block));
  if (!batch.continue_on_error) {
    result.Set("failures", env.Null());
    return result;
  }
  const std::vector<SendFailure>& failures = *batch.failures;
  Napi::Array list = Napi::Array::New(env, 2 * failures.size());
  for (size_t i = 0; i < failures.size(); ++i) {
    list.Set(static_cast<uint32_t>(2 * i),
             Napi::Number::New(
                 env, static_cast<double>(first) + static_cast<double>(failures[i].datagram)));
    list.Set(static_cast<uint32_t>(2 * i + 1), Napi::Number::New(env, failures[i].error));
  }
  result.Set("failures", list);
  return result;
}

}  // namespace

Napi::Function UdpSocket::Define(Napi::Env env) {
  return DefineClass(env, "UdpSocket",
                     {
                         InstanceMethod<&UdpSocket::Open>("open"),
                         InstanceMethod<&UdpSocket::Bind>("bind"),
                         InstanceMethod<&UdpSocket::Connect>("connect"),
                         InstanceMethod<&UdpSocket::LocalAddress>("localAddress"),
                         InstanceMethod<&UdpSocket::RemoteAddress>("remoteAddress"),
                         InstanceMethod<&UdpSocket::SetSendBufferSize>("setSendBufferSize"),
                         InstanceMethod<&UdpSocket::GetSendBufferSize>("getSendBufferSize"),
                         InstanceMethod<&UdpSocket::Close>("close"),
                         InstanceMethod<&UdpSocket::Send>("send"),
                         InstanceMethod<&UdpSocket::StartPolling>("startPolling"),
                         InstanceMethod<&UdpSocket::StopPolling>("stopPolling"),
                         InstanceMethod<&UdpSocket::StartReading>("startReading"),
                         InstanceMethod<&UdpSocket::StopReading>("stopReading"),
                         InstanceMethod<&UdpSocket::EnableReceiveInfo>("enableReceiveInfo"),
                         InstanceMethod<&UdpSocket::Receive>("receive"),
                         InstanceAccessor<&UdpSocket::Descriptor>("fd"),
                         InstanceAccessor<&UdpSocket::SegmentLimit>("segmentLimit"),
                         InstanceMethod<&UdpSocket::Stats>("stats"),
                         InstanceMethod<&UdpSocket::WatchErrors>("watchErrors"),
                         InstanceMethod<&UdpSocket::UnwatchErrors>("unwatchErrors"),
                         InstanceMethod<&UdpSocket::TakeErrors>("takeErrors"),
                         InstanceAccessor<&UdpSocket::ErrorsPending>("errorsPending"),
                         InstanceMethod<&UdpSocket::SetOption>("setOption"),
                         InstanceMethod<&UdpSocket::GetOption>("getOption"),
                     });
}

UdpSocket::UdpSocket(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<UdpSocket>(info), state_(GetEnvState(info.Env())) {}

UdpSocket::~UdpSocket() { CloseHandle(); }

// enableReceiveInfo(gro) -> errno
Napi::Value UdpSocket::EnableReceiveInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (handle_ == kInvalidSocket) return Napi::Number::New(env, kErrorBadHandle);
  const bool gro = info[0].IsBoolean() && info[0].As<Napi::Boolean>().Value();
  return Napi::Number::New(env, wsk::EnableReceiveInfo(handle_, family_, gro));
}

// receive(arena, slotSize, maxDatagrams) -> errno | [{ offset, length, truncated, address,
//   port, destination, interfaceIndex, tos, ttl, segmentSize }]
Napi::Value UdpSocket::Receive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsTypedArray() ||
      info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowType(env, "arena must be a Uint8Array");
  }
  Napi::Uint8Array arena = info[0].As<Napi::Uint8Array>();
  const uint32_t slot_size = Uint32Argument(info, 1, "slotSize", 1u << 20);
  const uint32_t max_datagrams = Uint32Argument(info, 2, "maxDatagrams", 1024);
  if (slot_size == 0 || max_datagrams == 0)
    ThrowRange(env, "slotSize and maxDatagrams must be > 0");
  if (static_cast<uint64_t>(slot_size) * max_datagrams > arena.ByteLength()) {
    ThrowRange(env, "the arena is smaller than slotSize * maxDatagrams");
  }
  if (handle_ == kInvalidSocket) return Napi::Number::New(env, kErrorBadHandle);
  std::vector<ReceivedDatagram> datagrams;
  for (int attempt = 0;; ++attempt) {
    const int error = ReceiveDatagrams(handle_, arena.Data(), slot_size, max_datagrams, &datagrams);
    if (error == 0) break;
    // With IP_RECVERR the kernel leaves a sent datagram's ICMP error (ECONNREFUSED, ...) as the
    // socket's pending error, which the next receive reports instead of the data waiting. It is
    // not this receive's: read it into the error queue ('icmp') and receive again (bounded).
    if (error != EAGAIN && error != EWOULDBLOCK && attempt < kAsyncRetries &&
        errors_.Claim(handle_, error) != 0) {
      continue;
    }
    return Napi::Number::New(env, error);
  }
  Napi::Array result = Napi::Array::New(env, datagrams.size());
  for (size_t i = 0; i < datagrams.size(); ++i) {
    const ReceivedDatagram& d = datagrams[i];
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("offset", Napi::Number::New(env, static_cast<double>(i) * slot_size));
    entry.Set("length", Napi::Number::New(env, static_cast<double>(d.length)));
    entry.Set("truncated", Napi::Boolean::New(env, d.truncated));
    Napi::Value source = AddressObject(env, d.source);
    entry.Set("source", source);
    if (d.has_destination) {
      SocketAddress destination;
      MakeAddressFromBytes(family_, d.destination, &destination);
      char ip[64];
      uint16_t port = 0;
      uint32_t scope = 0;
      if (FormatAddress(destination, ip, sizeof(ip), &port, &scope) == 0) {
        entry.Set("destination", Napi::String::New(env, ip));
      }
    }
    entry.Set("interfaceIndex", Napi::Number::New(env, d.interface_index));
    entry.Set("tos", Napi::Number::New(env, d.tos));
    entry.Set("ttl", Napi::Number::New(env, d.ttl));
    entry.Set("segmentSize", Napi::Number::New(env, d.segment_size));
    result.Set(static_cast<uint32_t>(i), entry);
  }
  return result;
}

Napi::Value UdpSocket::Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint32_t family = Uint32Argument(info, 0, "family", 6);
  if (family != 4 && family != 6) ThrowRange(env, "family must be 4 or 6");
  if (handle_ != kInvalidSocket) ThrowType(env, "socket is already open");
  family_ = static_cast<IpFamily>(family);
  int error = OpenUdpSocket(family_, &handle_);
  // Every socket hears the ICMP errors its datagrams cause (error_queue.h), where the OS can.
  if (error == 0 && ErrorQueueSupported() && (error = EnableErrorQueue(handle_, family_)) != 0) {
    CloseSocket(handle_);
    handle_ = kInvalidSocket;
  }
  if (error == 0) {
    state_->open_sockets.insert(this);
    segmentation_ = state_->backend->ProbeSegmentation(handle_);
  }
  return Napi::Number::New(env, error);
}

SocketAddress UdpSocket::AddressArgument(const Napi::CallbackInfo& info, size_t index) {
  Napi::Env env = info.Env();
  if (!info[index].IsString()) ThrowType(env, "address must be a string");
  const std::string ip = info[index].As<Napi::String>().Utf8Value();
  if (ip.size() > 64) ThrowRange(env, "address is too long");
  if (ip.find('\0') != std::string::npos) ThrowType(env, "address contains a NUL character");
  const uint16_t port = static_cast<uint16_t>(Uint32Argument(info, index + 1, "port", 65535));
  const uint32_t scope_id =
      Uint32Argument(info, index + 2, "scopeId", std::numeric_limits<uint32_t>::max());
  SocketAddress address;
  if (MakeAddress(family_, ip.c_str(), port, scope_id, &address) != 0) {
    ThrowType(env, "address is not an IPv" + std::to_string(static_cast<int>(family_)) +
                       " literal: " + ip);
  }
  return address;
}

Napi::Value UdpSocket::Bind(const Napi::CallbackInfo& info) {
  const SocketAddress address = AddressArgument(info, 0);
  if (handle_ == kInvalidSocket) return Napi::Number::New(info.Env(), kErrorBadHandle);
  return Napi::Number::New(info.Env(), BindSocket(handle_, address));
}

Napi::Value UdpSocket::Connect(const Napi::CallbackInfo& info) {
  const SocketAddress address = AddressArgument(info, 0);
  if (handle_ == kInvalidSocket) return Napi::Number::New(info.Env(), kErrorBadHandle);
  return Napi::Number::New(info.Env(), ConnectSocket(handle_, address));
}

Napi::Value UdpSocket::LocalAddress(const Napi::CallbackInfo& info) {
  if (handle_ == kInvalidSocket) return Napi::Number::New(info.Env(), kErrorBadHandle);
  SocketAddress address;
  if (int error = GetLocalAddress(handle_, &address)) return Napi::Number::New(info.Env(), error);
  return AddressObject(info.Env(), address);
}

Napi::Value UdpSocket::RemoteAddress(const Napi::CallbackInfo& info) {
  if (handle_ == kInvalidSocket) return Napi::Number::New(info.Env(), kErrorBadHandle);
  SocketAddress address;
  if (int error = GetRemoteAddress(handle_, &address)) {
    return Napi::Number::New(info.Env(), error);
  }
  return AddressObject(info.Env(), address);
}

Napi::Value UdpSocket::SetSendBufferSize(const Napi::CallbackInfo& info) {
  const uint32_t bytes = Uint32Argument(info, 0, "size", std::numeric_limits<int>::max());
  if (handle_ == kInvalidSocket) return Napi::Number::New(info.Env(), kErrorBadHandle);
  return Napi::Number::New(info.Env(), wsk::SetSendBufferSize(handle_, static_cast<int>(bytes)));
}

// getSendBufferSize() -> { bytes } | errno
Napi::Value UdpSocket::GetSendBufferSize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (handle_ == kInvalidSocket) return Napi::Number::New(env, kErrorBadHandle);
  int bytes = 0;
  if (int error = wsk::GetSendBufferSize(handle_, &bytes)) return Napi::Number::New(env, error);
  Napi::Object result = Napi::Object::New(env);
  result.Set("bytes", Napi::Number::New(env, bytes));
  return result;
}

Napi::Value UdpSocket::Close(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), CloseHandle());
}

// stats() -> { syscalls, messages, datagrams, bytes, segments } sent over the socket's life.
Napi::Value UdpSocket::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("syscalls", Napi::Number::New(env, static_cast<double>(total_syscalls_)));
  result.Set("messages", Napi::Number::New(env, static_cast<double>(total_messages_)));
  result.Set("datagrams", Napi::Number::New(env, static_cast<double>(total_datagrams_)));
  result.Set("bytes", Napi::Number::New(env, static_cast<double>(total_bytes_)));
  result.Set("segments", Napi::Number::New(env, static_cast<double>(total_segments_)));
  const ErrorQueueCounters& c = errors_.counters();
  Napi::Object icmp = Napi::Object::New(env);
  icmp.Set("received", Napi::Number::New(env, static_cast<double>(c.received)));
  icmp.Set("portUnreachable", Napi::Number::New(env, static_cast<double>(c.port_unreachable)));
  icmp.Set("hostUnreachable", Napi::Number::New(env, static_cast<double>(c.host_unreachable)));
  icmp.Set("netUnreachable", Napi::Number::New(env, static_cast<double>(c.net_unreachable)));
  icmp.Set("fragmentationNeeded",
           Napi::Number::New(env, static_cast<double>(c.fragmentation_needed)));
  icmp.Set("prohibited", Napi::Number::New(env, static_cast<double>(c.prohibited)));
  icmp.Set("other", Napi::Number::New(env, static_cast<double>(c.other)));
  icmp.Set("local", Napi::Number::New(env, static_cast<double>(c.local)));
  icmp.Set("dropped", Napi::Number::New(env, static_cast<double>(c.dropped)));
  result.Set("icmp", icmp);
  return result;
}

// takeErrors() -> [{ errno, origin, type, code, info, kind, destination, offender, payload }]:
// reads the kernel's error queue out, then hands over (and forgets) the ICMP errors kept since
// the last call, oldest first. destination/offender are address objects or null.
Napi::Value UdpSocket::TakeErrors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (handle_ != kInvalidSocket) errors_.Drain(handle_);
  std::vector<ErrorQueueEntry> entries;
  errors_.Take(&entries);
  Napi::Array list = Napi::Array::New(env, entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    const ErrorQueueEntry& e = entries[i];
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("errno", Napi::Number::New(env, e.error));
    entry.Set("origin", Napi::Number::New(env, static_cast<int>(e.origin)));
    entry.Set("type", Napi::Number::New(env, e.type));
    entry.Set("code", Napi::Number::New(env, e.code));
    entry.Set("info", Napi::Number::New(env, e.info));
    entry.Set("kind", Napi::Number::New(env, static_cast<int>(ClassifyIcmp(e))));
    Napi::Value destination = AddressObject(env, e.destination);
    entry.Set("destination", destination.IsObject() ? destination : env.Null());
    Napi::Value offender = AddressObject(env, e.offender);
    entry.Set("offender", offender.IsObject() ? offender : env.Null());
    entry.Set("payload", Napi::Buffer<uint8_t>::Copy(env, e.payload, e.payload_length));
    list.Set(static_cast<uint32_t>(i), entry);
  }
  return list;
}

// ICMP errors kept and not yet taken.
Napi::Value UdpSocket::ErrorsPending(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(errors_.pending()));
}

namespace {

SocketOption OptionArgument(const Napi::CallbackInfo& info) {
  const uint32_t option = Uint32Argument(info, 0, "option", 1000);
  switch (static_cast<SocketOption>(option)) {
    case SocketOption::kMtuDiscovery:
    case SocketOption::kDontFragment:
    case SocketOption::kMtu:
    case SocketOption::kRecvErr:
      return static_cast<SocketOption>(option);
    default:
      ThrowRange(info.Env(), "unknown socket option " + std::to_string(option));
  }
}

}  // namespace

// setOption(option, value) -> errno (socket_options.h).
Napi::Value UdpSocket::SetOption(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const SocketOption option = OptionArgument(info);
  const uint32_t value = Uint32Argument(info, 1, "value", std::numeric_limits<int>::max());
  if (option == SocketOption::kMtu) ThrowRange(env, "the MTU option is read-only");
  if (option == SocketOption::kMtuDiscovery && value > 3) {
    ThrowRange(env, "MTU discovery mode must be from 0 to 3");
  }
  if (handle_ == kInvalidSocket) return Napi::Number::New(env, kErrorBadHandle);
  return Napi::Number::New(env, SetSocketOption(handle_, family_, option, static_cast<int>(value)));
}

// getOption(option) -> { value } | errno (socket_options.h).
Napi::Value UdpSocket::GetOption(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const SocketOption option = OptionArgument(info);
  if (handle_ == kInvalidSocket) return Napi::Number::New(env, kErrorBadHandle);
  int value = 0;
  if (int error = GetSocketOption(handle_, family_, option, &value)) {
    return Napi::Number::New(env, error);
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("value", Napi::Number::New(env, value));
  return result;
}

// Segments per super-packet this socket may send now; 0 when segmentation is off (unsupported,
// or refused by the kernel once).
Napi::Value UdpSocket::SegmentLimit(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), segmentation_.Active() ? segmentation_.max_segments : 0);
}

Napi::Value UdpSocket::Descriptor(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(),
                           handle_ == kInvalidSocket ? -1.0 : static_cast<double>(handle_));
}

// send(batch, first, count) -> { datagrams, bytes, segments, errno, syscall, wouldBlock,
//   failures }: sends datagrams [first, first + count) of `batch` (lib/batch.ts NativeBatch, read
// by batch_reader.cc). `failures` is null unless batch.continueOnError, else [index, errno, ...]
// with batch indices; the first datagram neither sent nor failed is first + datagrams +
// failures.length / 2.
Napi::Value UdpSocket::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // Getters on the batch run JavaScript; a send from there would reuse the scratch arrays this
  // call is filling, so it is refused.
  if (state_->sending) ThrowType(env, "send was called again from inside a send's batch");
  struct SendGuard {
    EnvState& state;
    explicit SendGuard(EnvState& s) : state(s) { state.sending = true; }
    ~SendGuard() {
      state.sending = false;
      state.batch.Trim();
    }
  } guard(*state_);
  const uint32_t first = Uint32Argument(info, 1, "first", std::numeric_limits<uint32_t>::max());
  const uint32_t count = Uint32Argument(info, 2, "count", kMaxDatagramsPerCall);
  BatchWindow window;
  try {
    // Its last phase runs no JavaScript before the send below.
    ReadBatch(env, info[0], first, count, family_, &state_->batch, &window);
  } catch (const std::bad_alloc&) {
    // Scratch grows with the window; a C++ allocation failure must never leave the callback.
    ThrowRange(env, "not enough memory to describe a batch of this size");
  } catch (const std::length_error&) {
    ThrowRange(env, "not enough memory to describe a batch of this size");
  }

  SendOutcome outcome;
  if (handle_ == kInvalidSocket) {
    outcome.error = kErrorBadHandle;
    outcome.syscall = state_->backend->Name();
  } else {
    SendBatch& batch = window.batch;
    batch.segmentation = window.segment ? &segmentation_ : nullptr;
    batch.errors = ErrorQueueSupported() ? &errors_ : nullptr;
    outcome = state_->backend->Send(handle_, batch);
    total_syscalls_ += outcome.syscalls;
    total_messages_ += outcome.messages;
    total_datagrams_ += outcome.datagrams;
    total_bytes_ += outcome.bytes;
    total_segments_ += outcome.segments;
  }
  return SendResult(env, outcome, window.batch, first);
}

}  // namespace wsk
