#include "socket.h"

#include <cerrno>
#include <cmath>
#include <limits>
#include <string>

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

ByteRange BufferArgument(Napi::Env env, Napi::Value value) {
  if (!value.IsTypedArray() ||
      value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowType(env, "every buffer must be a Uint8Array");
  }
  auto array = value.As<Napi::Uint8Array>();
  // A detached buffer reports length 0, so it can never be read past its end.
  return ByteRange{array.Data(), array.ByteLength()};
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
  // Environment teardown: close whatever JavaScript left open. The socket objects may be
  // finalized later; they see a closed handle.
  for (UdpSocket* socket : std::unordered_set<UdpSocket*>(open_sockets)) socket->CloseHandle();
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
                         InstanceAccessor<&UdpSocket::Descriptor>("fd"),
                     });
}

UdpSocket::UdpSocket(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<UdpSocket>(info), state_(GetEnvState(info.Env())) {}

UdpSocket::~UdpSocket() { CloseHandle(); }

int UdpSocket::CloseHandle() {
  if (handle_ == kInvalidSocket) return 0;
  const int error = CloseSocket(handle_);
  handle_ = kInvalidSocket;
  state_->open_sockets.erase(this);
  return error;
}

Napi::Value UdpSocket::Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint32_t family = Uint32Argument(info, 0, "family", 6);
  if (family != 4 && family != 6) ThrowRange(env, "family must be 4 or 6");
  if (handle_ != kInvalidSocket) ThrowType(env, "socket is already open");
  family_ = static_cast<IpFamily>(family);
  const int error = OpenUdpSocket(family_, &handle_);
  if (error == 0) state_->open_sockets.insert(this);
  return Napi::Number::New(env, error);
}

SocketAddress UdpSocket::AddressArgument(const Napi::CallbackInfo& info, size_t index) {
  Napi::Env env = info.Env();
  if (!info[index].IsString()) ThrowType(env, "address must be a string");
  const std::string ip = info[index].As<Napi::String>().Utf8Value();
  if (ip.size() > 64) ThrowRange(env, "address is too long");
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
  if (handle_ == kInvalidSocket) return Napi::Number::New(info.Env(), EBADF);
  return Napi::Number::New(info.Env(), BindSocket(handle_, address));
}

Napi::Value UdpSocket::Connect(const Napi::CallbackInfo& info) {
  const SocketAddress address = AddressArgument(info, 0);
  if (handle_ == kInvalidSocket) return Napi::Number::New(info.Env(), EBADF);
  return Napi::Number::New(info.Env(), ConnectSocket(handle_, address));
}

Napi::Value UdpSocket::LocalAddress(const Napi::CallbackInfo& info) {
  if (handle_ == kInvalidSocket) return Napi::Number::New(info.Env(), EBADF);
  SocketAddress address;
  if (int error = GetLocalAddress(handle_, &address)) return Napi::Number::New(info.Env(), error);
  return AddressObject(info.Env(), address);
}

Napi::Value UdpSocket::RemoteAddress(const Napi::CallbackInfo& info) {
  if (handle_ == kInvalidSocket) return Napi::Number::New(info.Env(), EBADF);
  SocketAddress address;
  if (int error = GetRemoteAddress(handle_, &address)) {
    return Napi::Number::New(info.Env(), error);
  }
  return AddressObject(info.Env(), address);
}

Napi::Value UdpSocket::SetSendBufferSize(const Napi::CallbackInfo& info) {
  const uint32_t bytes = Uint32Argument(info, 0, "size", std::numeric_limits<int>::max());
  if (handle_ == kInvalidSocket) return Napi::Number::New(info.Env(), EBADF);
  return Napi::Number::New(info.Env(), wsk::SetSendBufferSize(handle_, static_cast<int>(bytes)));
}

// Returns the size in bytes, or -errno.
Napi::Value UdpSocket::GetSendBufferSize(const Napi::CallbackInfo& info) {
  if (handle_ == kInvalidSocket) return Napi::Number::New(info.Env(), -EBADF);
  int bytes = 0;
  if (int error = wsk::GetSendBufferSize(handle_, &bytes)) {
    return Napi::Number::New(info.Env(), -error);
  }
  return Napi::Number::New(info.Env(), bytes);
}

Napi::Value UdpSocket::Close(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), CloseHandle());
}

Napi::Value UdpSocket::Descriptor(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(),
                           handle_ == kInvalidSocket ? -1.0 : static_cast<double>(handle_));
}

void UdpSocket::ReadBatch(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsArray()) ThrowType(env, "buffers must be an array");
  Napi::Array buffers = info[0].As<Napi::Array>();
  const uint32_t buffer_count = buffers.Length();
  const uint32_t datagram_count = Uint32Argument(info, 2, "datagramCount", kMaxDatagramsPerCall);
  const size_t max_payload = kMaxPayload[family_ == IpFamily::kV6 ? 1 : 0];

  std::vector<DatagramSpan>& spans = state_->spans;
  std::vector<ByteRange>& ranges = state_->ranges;
  spans.resize(datagram_count);
  ranges.clear();

  if (info[1].IsNull() || info[1].IsUndefined()) {
    // Datagram i is buffers[i], whole.
    if (buffer_count != datagram_count) {
      ThrowRange(env, "without a layout, datagramCount must equal buffers.length");
    }
    ranges.resize(datagram_count);
    for (uint32_t i = 0; i < datagram_count; ++i) {
      ranges[i] = BufferArgument(env, buffers.Get(i));
      if (ranges[i].length > max_payload) {
        ThrowRange(env, "datagram " + std::to_string(i) + " is larger than a UDP payload");
      }
      spans[i] = DatagramSpan{i, 1};
    }
    return;
  }

  if (!info[1].IsTypedArray() ||
      info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint32_array) {
    ThrowType(env, "layout must be a Uint32Array or null");
  }
  Napi::Uint32Array layout = info[1].As<Napi::Uint32Array>();
  const uint32_t* words = layout.Data();
  const size_t word_count = layout.ElementLength();

  std::vector<ByteRange>& views = state_->buffers;
  views.resize(buffer_count);
  for (uint32_t i = 0; i < buffer_count; ++i) views[i] = BufferArgument(env, buffers.Get(i));

  size_t cursor = 0;
  for (uint32_t d = 0; d < datagram_count; ++d) {
    if (cursor >= word_count) ThrowRange(env, "layout ends before the last datagram");
    const uint32_t range_count = words[cursor++];
    if (range_count > kMaxRangesPerDatagram) {
      ThrowRange(env, "datagram " + std::to_string(d) + " has more than 1024 byte ranges");
    }
    // 3 words per range; compare without overflow.
    if (range_count > (word_count - cursor) / 3) ThrowRange(env, "layout is truncated");
    spans[d] = DatagramSpan{static_cast<uint32_t>(ranges.size()), range_count};
    size_t datagram_length = 0;
    for (uint32_t r = 0; r < range_count; ++r) {
      const uint32_t index = words[cursor];
      const uint64_t offset = words[cursor + 1];
      const uint64_t length = words[cursor + 2];
      cursor += 3;
      if (index >= buffer_count) ThrowRange(env, "layout names a buffer that does not exist");
      const ByteRange& view = views[index];
      if (offset > view.length || length > view.length - offset) {
        ThrowRange(env, "byte range " + std::to_string(offset) + "+" + std::to_string(length) +
                            " lies outside buffer " + std::to_string(index));
      }
      datagram_length += length;
      if (datagram_length > max_payload) {
        ThrowRange(env, "datagram " + std::to_string(d) + " is larger than a UDP payload");
      }
      ranges.push_back(ByteRange{view.data + offset, static_cast<size_t>(length)});
    }
  }
  if (cursor != word_count) ThrowRange(env, "layout has words after the last datagram");
}

// send(buffers, layout, datagramCount, address | null, port, scopeId)
//   -> { datagrams, bytes, errno, syscall }
Napi::Value UdpSocket::Send(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ReadBatch(info);
  SocketAddress destination;
  const bool connected = info[3].IsNull() || info[3].IsUndefined();
  if (!connected) destination = AddressArgument(info, 3);

  SendOutcome outcome;
  if (handle_ == kInvalidSocket) {
    outcome.error = EBADF;
    outcome.syscall = state_->backend->Name();
  } else {
    SendBatch batch{connected ? nullptr : &destination, state_->spans.data(),
                    state_->spans.size(), state_->ranges.data(), state_->ranges.size()};
    outcome = state_->backend->Send(handle_, batch);
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("datagrams", Napi::Number::New(env, static_cast<double>(outcome.datagrams)));
  result.Set("bytes", Napi::Number::New(env, static_cast<double>(outcome.bytes)));
  result.Set("errno", Napi::Number::New(env, outcome.error));
  result.Set("syscall", Napi::String::New(env, outcome.syscall));
  return result;
}

}  // namespace wsk
