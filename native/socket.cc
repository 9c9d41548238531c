#include "socket.h"

#include "recv.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace wsk {
namespace {

// Bounds that keep one call's scratch memory and run time finite. The TypeScript layer
// enforces the same ones with clearer messages.
constexpr uint32_t kMaxDatagramsPerCall = 1u << 20;
constexpr uint32_t kMaxRangesPerDatagram = 1024;  // UIO_MAXIOV
constexpr size_t kMaxPayload[2] = {65507, 65527};  // IPv4, IPv6: 65535 - headers

[[noreturn]] void ThrowType(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, "wsk-dgram native: " + message);
}
[[noreturn]] void ThrowRange(Napi::Env env, const std::string& message) {
  throw Napi::RangeError::New(env, "wsk-dgram native: " + message);
}

uint32_t Uint32Argument(const Napi::CallbackInfo& info, size_t index, const char* name,
                        uint32_t max) {
  Napi::Value value = info[index];
  if (!value.IsNumber()) ThrowType(info.Env(), std::string(name) + " must be a number");
  const double number = value.As<Napi::Number>().DoubleValue();
  if (!(number >= 0) || number > max || std::floor(number) != number) {
    ThrowRange(info.Env(), std::string(name) + " must be an integer from 0 to " +
                               std::to_string(max));
  }
  return static_cast<uint32_t>(number);
}

// The bytes of the Uint8Array `value` (buffer `index` of the call), as they are now.
ByteRange BufferArgument(Napi::Env env, napi_value value, uint32_t index) {
  // One call on the hot path (it fails for anything that is not a typed array); the wrapper
  // classes would make three or four.
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_value arraybuffer = nullptr;
  if (napi_get_typedarray_info(env, value, &type, &length, &data, &arraybuffer, nullptr) !=
          napi_ok ||
      type != napi_uint8_array) {
    ThrowType(env, "every buffer must be a Uint8Array");
  }
  // A view whose memory is gone (detached, or out of bounds of a shrunk resizable ArrayBuffer)
  // reports length 0, so it is never read past its end; but it must not go out as an empty
  // datagram either. Only empty views pay for the check: the intrinsic `at` (no caller code)
  // throws exactly for those whose memory is gone.
  if (length == 0) {
    bool detached = false;
    napi_value result = nullptr;
    napi_value argument = nullptr;
    const bool gone =
        (napi_is_detached_arraybuffer(env, arraybuffer, &detached) == napi_ok && detached) ||
        napi_create_uint32(env, 0, &argument) != napi_ok ||
        napi_call_function(env, value, TypedArrayAt(env), 1, &argument, &result) != napi_ok;
    if (gone) {
      bool pending = false;
      if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
        napi_value ignored = nullptr;
        napi_get_and_clear_last_exception(env, &ignored);
      }
      ThrowRange(env, "buffer " + std::to_string(index) +
                          " has no memory (its ArrayBuffer is detached, or shrunk below it)");
    }
  }
  return ByteRange{static_cast<const uint8_t*>(data), length};
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

}  // namespace

EnvState::~EnvState() {
  // Whatever JavaScript left open and the cleanup hook did not reach: close the descriptors.
  tearing_down = true;
  for (UdpSocket* socket : std::unordered_set<UdpSocket*>(open_sockets)) socket->CloseHandle();
}

namespace {

void OnPollerClosed(uv_handle_t* handle) {
  auto* poller = static_cast<Poller*>(handle->data);
  std::shared_ptr<EnvState> state = std::move(poller->state);
  delete poller;
  if (--state->closing_pollers == 0 && state->tearing_down && state->cleanup_hook != nullptr) {
    // Environment teardown waited for this last handle.
    napi_remove_async_cleanup_hook(state->cleanup_hook);
    state->cleanup_hook = nullptr;
  }
}

void OnPollEvent(uv_poll_t* handle, int status, int events) {
  auto* poller = static_cast<Poller*>(handle->data);
  if (poller->owner == nullptr || poller->state->tearing_down) return;
  // libuv calls this, not Node-API: nothing may be thrown back into it. N-API calls fail once
  // the environment is terminating (worker.terminate()), and node-addon-api turns that into a
  // C++ exception; the callbacks are not run then anyway.
  try {
    poller->owner->OnPoll(status, events);
  } catch (...) {
  }
}

}  // namespace

void CloseAllSockets(const std::shared_ptr<EnvState>& state) {
  for (UdpSocket* socket : std::unordered_set<UdpSocket*>(state->open_sockets)) {
    socket->CloseHandle();
  }
}

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
                     });
}

UdpSocket::UdpSocket(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<UdpSocket>(info), state_(GetEnvState(info.Env())) {}

UdpSocket::~UdpSocket() { CloseHandle(); }

// Starts, changes or stops the poll to match what is wanted (writable for pending sends,
// readable for a waiting receive). Returns 0 or an errno.
int UdpSocket::UpdatePolling(Napi::Env env) {
  const int events = (want_writable_ ? UV_WRITABLE : 0) | (want_readable_ ? UV_READABLE : 0);
  if (events == 0) {
    if (polling_) {
      uv_poll_stop(&poller_->handle);
      polling_ = false;
      // While polling, the JS object was held strongly so that it cannot be collected with
      // sends or a receive still waiting.
      if (!state_->tearing_down) Unref();
    }
    return 0;
  }
  if (handle_ == kInvalidSocket) return kErrorBadHandle;
  if (async_context_ == nullptr) {
    napi_async_init(env, Value(), Napi::String::New(env, "wsk-dgram:socket"), &async_context_);
  }
  if (poller_ == nullptr) {
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    poller_ = new Poller{uv_poll_t{}, this, state_};
    const int result = uv_poll_init_socket(loop, &poller_->handle, handle_);
    if (result != 0) {
      delete poller_;
      poller_ = nullptr;
      return -result;  // libuv errors: -errno on POSIX, -UV_E* (a libuv code) on Windows
    }
    poller_->handle.data = poller_;
  }
  const int result = uv_poll_start(&poller_->handle, events, OnPollEvent);
  if (result != 0) return -result;
  if (!polling_) {
    polling_ = true;
    Ref();
  }
  return 0;
}

int UdpSocket::CloseHandle() {
  want_writable_ = false;
  want_readable_ = false;
  if (poller_ != nullptr) {
    if (polling_) {
      uv_poll_stop(&poller_->handle);
      polling_ = false;
      if (!state_->tearing_down) Unref();
    }
    // libuv requires the poll handle to be stopped before the descriptor closes; it frees the
    // handle itself later, in OnPollerClosed.
    poller_->owner = nullptr;
    state_->closing_pollers++;
    uv_close(reinterpret_cast<uv_handle_t*>(&poller_->handle), OnPollerClosed);
    poller_ = nullptr;
  }
  if (!state_->tearing_down) {
    on_writable_.Reset();
    on_readable_.Reset();
    if (async_context_ != nullptr) {
      napi_async_destroy(Env(), async_context_);
      async_context_ = nullptr;
    }
  }
  segmentation_ = SegmentationState{};  // a closed socket offloads nothing
  if (handle_ == kInvalidSocket) return 0;
  const int error = CloseSocket(handle_);
  handle_ = kInvalidSocket;
  state_->open_sockets.erase(this);
  return error;
}

// startPolling(onWritable): calls onWritable(errno) from the event loop whenever the socket can
// take more (errno 0) or has failed; returns 0 or an errno. Idempotent.
Napi::Value UdpSocket::StartPolling(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) ThrowType(env, "onWritable must be a function");
  if (handle_ == kInvalidSocket) return Napi::Number::New(env, kErrorBadHandle);
  on_writable_.Reset(info[0].As<Napi::Function>(), 1);
  want_writable_ = true;
  const int error = UpdatePolling(env);
  if (error != 0) want_writable_ = false;
  return Napi::Number::New(env, error);
}

Napi::Value UdpSocket::StopPolling(const Napi::CallbackInfo& info) {
  want_writable_ = false;
  UpdatePolling(info.Env());
  return info.Env().Undefined();
}

// startReading(onReadable) / stopReading(): the same for incoming datagrams.
Napi::Value UdpSocket::StartReading(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) ThrowType(env, "onReadable must be a function");
  if (handle_ == kInvalidSocket) return Napi::Number::New(env, kErrorBadHandle);
  on_readable_.Reset(info[0].As<Napi::Function>(), 1);
  want_readable_ = true;
  const int error = UpdatePolling(env);
  if (error != 0) want_readable_ = false;
  return Napi::Number::New(env, error);
}

Napi::Value UdpSocket::StopReading(const Napi::CallbackInfo& info) {
  want_readable_ = false;
  UpdatePolling(info.Env());
  return info.Env().Undefined();
}

void UdpSocket::OnPoll(int status, int events) {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  // Keeps the JS object (and so this) alive across the callbacks, which may close the socket.
  [[maybe_unused]] Napi::Object self = Value();
  // An error wakes both directions: the next send or receive reports it.
  if (want_writable_ && (status < 0 || (events & UV_WRITABLE) != 0)) {
    Invoke(on_writable_, status);
  }
  if (want_readable_ && (status < 0 || (events & UV_READABLE) != 0)) {
    Invoke(on_readable_, status);
  }
  if (status < 0 && poller_ != nullptr) {
    // On POLLERR (a UDP socket with a pending ICMP error) libuv stops the handle itself:
    // start it again for whatever still waits, or settle the stopped state.
    if (want_writable_ || want_readable_) {
      uv_poll_start(&poller_->handle,
                    (want_writable_ ? UV_WRITABLE : 0) | (want_readable_ ? UV_READABLE : 0),
                    OnPollEvent);
    } else {
      UpdatePolling(env);
    }
  }
}

void UdpSocket::Invoke(const Napi::FunctionReference& callback, int status) {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  napi_value argv[1] = {Napi::Number::New(env, status < 0 ? -status : 0)};
  napi_value result = nullptr;
  // MakeCallback: runs microtasks afterwards and keeps async_hooks context, as Node's own
  // handles do. A throwing callback is reported like any uncaught exception.
  if (napi_make_callback(env, async_context_, Value(), callback.Value(), 1, argv, &result) ==
      napi_pending_exception) {
    // Either the callback threw, or the environment is terminating and ran nothing (then no
    // exception is pending and there is nothing to report).
    bool pending = false;
    napi_value error = nullptr;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending &&
        napi_get_and_clear_last_exception(env, &error) == napi_ok) {
      napi_fatal_exception(env, error);
    }
  }
}

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
  if (slot_size == 0 || max_datagrams == 0) ThrowRange(env, "slotSize and maxDatagrams must be > 0");
  if (static_cast<uint64_t>(slot_size) * max_datagrams > arena.ByteLength()) {
    ThrowRange(env, "the arena is smaller than slotSize * maxDatagrams");
  }
  if (handle_ == kInvalidSocket) return Napi::Number::New(env, kErrorBadHandle);
  std::vector<ReceivedDatagram> datagrams;
  if (int error = ReceiveDatagrams(handle_, arena.Data(), slot_size, max_datagrams, &datagrams)) {
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
  const int error = OpenUdpSocket(family_, &handle_);
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

// Returns the size in bytes, or -errno.
Napi::Value UdpSocket::GetSendBufferSize(const Napi::CallbackInfo& info) {
  if (handle_ == kInvalidSocket) return Napi::Number::New(info.Env(), -kErrorBadHandle);
  int bytes = 0;
  if (int error = wsk::GetSendBufferSize(handle_, &bytes)) {
    return Napi::Number::New(info.Env(), -error);
  }
  return Napi::Number::New(info.Env(), bytes);
}

Napi::Value UdpSocket::Close(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), CloseHandle());
}

// stats() -> { syscalls, messages, datagrams, bytes } sent over the socket's life.
Napi::Value UdpSocket::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  result.Set("syscalls", Napi::Number::New(env, static_cast<double>(total_syscalls_)));
  result.Set("messages", Napi::Number::New(env, static_cast<double>(total_messages_)));
  result.Set("datagrams", Napi::Number::New(env, static_cast<double>(total_datagrams_)));
  result.Set("bytes", Napi::Number::New(env, static_cast<double>(total_bytes_)));
  return result;
}

// Segments per super-packet this socket may send now; 0 when segmentation is off (unsupported,
// or refused by the kernel once).
Napi::Value UdpSocket::SegmentLimit(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(),
                           segmentation_.Active() ? segmentation_.max_segments : 0);
}

Napi::Value UdpSocket::Descriptor(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(),
                           handle_ == kInvalidSocket ? -1.0 : static_cast<double>(handle_));
}

// Arguments: buffers, layout, first, firstWord, count. Only the datagrams [first, first + count)
// and the buffers they use are read, so a queue that resumes a long batch pays for what it
// sends, not for the whole batch again.
//
// Reading array elements may run JavaScript (getters, proxies) that could change or detach
// what was read before, and a layout in a SharedArrayBuffer may change under us at any time.
// So every input is read once, then checked, then used from our copy, in three phases:
// (0) the layout window is copied word by word and each word is checked in the copy, no
// JavaScript; (1) the elements are fetched, JavaScript may run; (2) the data pointers and
// lengths are taken and every range is checked against them, no JavaScript. A send started
// from such JavaScript is refused (see SendGuard), so the scratch arrays stay ours.
void UdpSocket::ReadBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) ThrowType(env, "buffers must be an array");
  Napi::Array buffers = info[0].As<Napi::Array>();
  const uint32_t buffer_count = buffers.Length();
  const uint32_t first = Uint32Argument(info, 2, "first", std::numeric_limits<uint32_t>::max());
  const uint32_t first_word =
      Uint32Argument(info, 3, "firstWord", std::numeric_limits<uint32_t>::max());
  const uint32_t count = Uint32Argument(info, 4, "count", kMaxDatagramsPerCall);
  const size_t max_payload = kMaxPayload[family_ == IpFamily::kV6 ? 1 : 0];
  const bool has_layout = !(info[1].IsNull() || info[1].IsUndefined());

  EnvState& st = *state_;
  st.spans.resize(count);
  st.span_words.resize(static_cast<size_t>(count) + 1);
  st.ranges.clear();
  st.values.clear();

  if (!has_layout) {
    // Datagram i is buffers[first + i], whole.
    if (first > buffer_count || count > buffer_count - first) {
      ThrowRange(env, "without a layout, first + count must not exceed buffers.length");
    }
    // Phase 1: fetch. Phase 2: pointers and lengths.
    st.values.resize(count);
    for (uint32_t i = 0; i < count; ++i) st.values[i] = buffers.Get(first + i);
    st.ranges.resize(count);
    for (uint32_t i = 0; i < count; ++i) {
      st.ranges[i] = BufferArgument(env, st.values[i], first + i);
      if (st.ranges[i].length > max_payload) {
        ThrowRange(env, "datagram " + std::to_string(first + i) +
                            " is larger than a UDP payload");
      }
      st.spans[i] = DatagramSpan{i, 1};
      st.span_words[i] = 0;
    }
    st.span_words[count] = 0;
    return;
  }

  // Phase 0: the layout window, copied one word at a time; only the copy is checked and used.
  if (!info[1].IsTypedArray() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
    ThrowType(env, "layout must be a Uint32Array or null");
  }
  Napi::Uint32Array layout = info[1].As<Napi::Uint32Array>();
  const uint32_t* words = layout.Data();
  const size_t word_count = layout.ElementLength();
  if (first_word > word_count) ThrowRange(env, "firstWord lies past the end of the layout");
  std::vector<uint32_t>& copy = st.layout_copy;
  copy.clear();
  size_t cursor = first_word;
  uint32_t max_index = 0;
  for (uint32_t d = 0; d < count; ++d) {
    if (cursor >= word_count) ThrowRange(env, "layout ends before the last datagram");
    const uint32_t range_count = words[cursor++];
    copy.push_back(range_count);
    if (range_count > kMaxRangesPerDatagram) {
      ThrowRange(env, "datagram " + std::to_string(first + d) +
                          " has more than 1024 byte ranges");
    }
    // 3 words per range; compare without overflow.
    if (range_count > (word_count - cursor) / 3) ThrowRange(env, "layout is truncated");
    const size_t at = copy.size();
    copy.insert(copy.end(), words + cursor, words + cursor + 3 * static_cast<size_t>(range_count));
    cursor += 3 * static_cast<size_t>(range_count);
    for (size_t r = at; r < copy.size(); r += 3) {
      if (copy[r] >= buffer_count) ThrowRange(env, "layout names a buffer that does not exist");
      if (copy[r] > max_index) max_index = copy[r];
    }
  }
  const size_t window_words = cursor - first_word;
  const size_t range_total = (copy.size() - count) / 3;

  // Phase 1: fetch each buffer the window uses, once. JavaScript may run here.
  st.values.resize(range_total);
  const bool dense = max_index < 2 * range_total + 4096;
  const uint64_t call = ++st.call_number;
  if (dense && st.fetched_in.size() <= max_index) {
    st.fetched_in.resize(static_cast<size_t>(max_index) + 1, 0);
    st.fetched.resize(static_cast<size_t>(max_index) + 1);
  }
  st.fetched_sparse.clear();
  size_t range = 0;
  for (size_t w = 0; w < copy.size();) {
    const uint32_t range_count = copy[w++];
    for (uint32_t r = 0; r < range_count; ++r, w += 3, ++range) {
      const uint32_t index = copy[w];
      napi_value value;
      if (dense) {
        if (st.fetched_in[index] != call) {
          st.fetched[index] = buffers.Get(index);
          st.fetched_in[index] = call;
        }
        value = st.fetched[index];
      } else {
        auto found = st.fetched_sparse.find(index);
        if (found == st.fetched_sparse.end()) {
          found = st.fetched_sparse.emplace(index, buffers.Get(index)).first;
        }
        value = found->second;
      }
      st.values[range] = value;
    }
  }

  // Phase 2: pointers and lengths, taken now that no JavaScript will run before the send. A
  // range outside its buffer as the buffer is now (detached or shrunk by JavaScript that ran
  // in phase 1, or described wrongly) is refused: memory that is gone is never sent.
  st.ranges.reserve(range_total);
  size_t w = 0;
  range = 0;
  for (uint32_t d = 0; d < count; ++d) {
    st.span_words[d] = static_cast<uint32_t>(first_word + w);
    const uint32_t range_count = copy[w++];
    st.spans[d] = DatagramSpan{static_cast<uint32_t>(st.ranges.size()), range_count};
    size_t datagram_length = 0;
    for (uint32_t r = 0; r < range_count; ++r, w += 3, ++range) {
      const uint32_t index = copy[w];
      const uint64_t offset = copy[w + 1];
      const uint64_t length = copy[w + 2];
      const ByteRange view = BufferArgument(env, st.values[range], index);
      if (offset > view.length || length > view.length - offset) {
        ThrowRange(env, "byte range " + std::to_string(offset) + "+" + std::to_string(length) +
                            " lies outside buffer " + std::to_string(index) + " (" +
                            std::to_string(view.length) + " bytes now)");
      }
      datagram_length += length;
      if (datagram_length > max_payload) {
        ThrowRange(env, "datagram " + std::to_string(first + d) +
                            " is larger than a UDP payload");
      }
      st.ranges.push_back(ByteRange{view.data + offset, static_cast<size_t>(length)});
    }
  }
  // Words after the window are not read: the queue sends long batches a window at a time.
  st.span_words[count] = static_cast<uint32_t>(first_word + window_words);
}

void EnvState::TrimScratch() {
  // A call of many datagrams (or naming a high buffer index) leaves big arrays behind: give
  // them back rather than hold the peak for the life of the environment.
  constexpr size_t kKeep = 1 << 16;
  auto trim = [](auto& vector) {
    if (vector.capacity() > kKeep) std::decay_t<decltype(vector)>().swap(vector);
  };
  trim(ranges);
  trim(spans);
  trim(span_words);
  trim(layout_copy);
  trim(values);
  trim(fetched);
  trim(fetched_in);
  if (fetched_sparse.bucket_count() > kKeep) {
    std::unordered_map<uint32_t, napi_value>().swap(fetched_sparse);
  }
}

// Reads the optional controls object { sourceAddress, interfaceIndex, tos, ttl, segmentSize }.
bool UdpSocket::ControlsArgument(const Napi::CallbackInfo& info, size_t index,
                                 SendControls* controls) {
  Napi::Env env = info.Env();
  if (info[index].IsUndefined() || info[index].IsNull()) return false;
  if (!info[index].IsObject()) ThrowType(env, "controls must be an object");
  Napi::Object object = info[index].As<Napi::Object>();
  auto number = [&](const char* name, uint32_t min, uint32_t max) -> int64_t {
    Napi::Value value = object.Get(name);
    if (value.IsUndefined()) return -1;
    if (!value.IsNumber()) ThrowType(env, std::string("controls.") + name + " must be a number");
    const double n = value.As<Napi::Number>().DoubleValue();
    if (!(n >= min) || n > max || std::floor(n) != n) {
      ThrowRange(env, std::string("controls.") + name + " must be an integer from " +
                          std::to_string(min) + " to " + std::to_string(max));
    }
    return static_cast<int64_t>(n);
  };
  const int64_t interface_index = number("interfaceIndex", 0, std::numeric_limits<uint32_t>::max());
  const int64_t tos = number("tos", 0, 255);
  const int64_t ttl = number("ttl", 1, 255);
  const int64_t segment_size = number("segmentSize", 1, static_cast<uint32_t>(kMaxPayload[1]));
  if (interface_index > 0) controls->interface_index = static_cast<uint32_t>(interface_index);
  controls->tos = static_cast<int>(tos);
  controls->ttl = static_cast<int>(ttl);
  if (segment_size > 0) controls->segment_size = static_cast<uint32_t>(segment_size);
  Napi::Value source = object.Get("sourceAddress");
  if (!source.IsUndefined()) {
    if (!source.IsString()) ThrowType(env, "controls.sourceAddress must be a string");
    const std::string ip = source.As<Napi::String>().Utf8Value();
    SocketAddress parsed;
    if (ip.size() > 64 || ip.find('\0') != std::string::npos ||
        MakeAddress(family_, ip.c_str(), 0, 0, &parsed) != 0) {
      ThrowType(env, "controls.sourceAddress is not an IPv" +
                         std::to_string(static_cast<int>(family_)) + " literal");
    }
    controls->has_source = true;
    AddressBytes(parsed, controls->source);
  }
  return controls->Any();
}

// send(buffers, layout, first, firstWord, count, address | null, port, scopeId, segment,
//      controls?) -> { datagrams, bytes, errno, syscall, word }
// `segment`: coalesce runs of equal-size datagrams where the kernel can (see send.h).
// Sends datagrams [first, first + count); `word` is the layout word where the first unsent
// datagram starts (where a resumed send continues), 0 without a layout.
Napi::Value UdpSocket::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  // Getters on the arguments run JavaScript; a send from there would reuse the scratch arrays
  // this call is filling, so it is refused.
  if (state_->sending) ThrowType(env, "send was called again from inside a send's arguments");
  struct SendGuard {
    EnvState& state;
    explicit SendGuard(EnvState& s) : state(s) { state.sending = true; }
    ~SendGuard() {
      state.sending = false;
      state.TrimScratch();
    }
  } guard(*state_);
  SocketAddress destination;
  const bool connected = info[5].IsNull() || info[5].IsUndefined();
  if (!connected) destination = AddressArgument(info, 5);
  SendControls controls;
  const bool has_controls = ControlsArgument(info, 9, &controls);
  try {
    ReadBatch(info);  // last: its final phase runs no JavaScript before the send below
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
    const bool segment = info[8].IsBoolean() && info[8].As<Napi::Boolean>().Value();
    SendBatch batch{connected ? nullptr : &destination,
                    state_->spans.data(),
                    state_->spans.size(),
                    state_->ranges.data(),
                    state_->ranges.size(),
                    segment ? &segmentation_ : nullptr,
                    kMaxPayload[family_ == IpFamily::kV6 ? 1 : 0],
                    has_controls ? &controls : nullptr,
                    family_};
    outcome = state_->backend->Send(handle_, batch);
    total_syscalls_ += outcome.syscalls;
    total_messages_ += outcome.messages;
    total_datagrams_ += outcome.datagrams;
    total_bytes_ += outcome.bytes;
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("datagrams", Napi::Number::New(env, static_cast<double>(outcome.datagrams)));
  result.Set("bytes", Napi::Number::New(env, static_cast<double>(outcome.bytes)));
  result.Set("errno", Napi::Number::New(env, outcome.error));
  result.Set("syscall", Napi::String::New(env, outcome.syscall));
  result.Set("word", Napi::Number::New(env, state_->span_words[outcome.datagrams]));
  return result;
}

}  // namespace wsk
