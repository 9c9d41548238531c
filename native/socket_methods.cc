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

// A string argument of at most `max_length` bytes without NUL, as UTF-8; throws otherwise.
std::string TextArgument(const Napi::CallbackInfo& info, size_t index, const char* name,
                         size_t max_length) {
  if (!info[index].IsString()) ThrowType(info.Env(), std::string(name) + " must be a string");
  std::string text = info[index].As<Napi::String>().Utf8Value();
  if (text.size() > max_length) ThrowRange(info.Env(), std::string(name) + " is too long");
  if (text.find('\0') != std::string::npos) {
    ThrowType(info.Env(), std::string(name) + " contains a NUL character");
  }
  return text;
}

bool Absent(const Napi::Value& value) { return value.IsUndefined() || value.IsNull(); }

// A multicast interface argument: absent (the OS picks), for IPv4 an IPv4 literal, for IPv6
// "<IPv6 literal>%<zone>" or "<IPv6 literal>" where only the zone counts (an index, or a name
// looked up with InterfaceIndex), as node:dgram reads it. Throws for malformed text; returns 0
// or the OS error of the name lookup.
int InterfaceArgument(const Napi::CallbackInfo& info, size_t index, IpFamily family,
                      MulticastInterface* out) {
  *out = MulticastInterface{};
  if (Absent(info[index])) return 0;
  Napi::Env env = info.Env();
  const std::string text = TextArgument(info, index, "interface", 64 + 1 + 16);
  SocketAddress parsed;
  if (family == IpFamily::kV4) {
    if (MakeAddress(family, text.c_str(), 0, 0, &parsed) != 0) {
      ThrowType(env, "interface is not an IPv4 literal: " + text);
    }
    AddressBytes(parsed, out->ipv4);
    return 0;
  }
  const size_t percent = text.find('%');
  const std::string literal = text.substr(0, percent);
  if (MakeAddress(family, literal.c_str(), 0, 0, &parsed) != 0) {
    ThrowType(env, "interface is not an IPv6 literal with an optional %zone: " + text);
  }
  if (percent == std::string::npos) return 0;
  const std::string zone = text.substr(percent + 1);
  if (zone.empty() || zone.size() > 16) ThrowType(env, "interface zone must be 1 to 16 characters");
  if (zone.find_first_not_of("0123456789") == std::string::npos) {
    uint64_t number = 0;
    for (char digit : zone) {
      number = number * 10 + static_cast<uint64_t>(digit - '0');
      if (number > std::numeric_limits<uint32_t>::max()) {
        ThrowRange(env, "interface index must be at most 2^32-1");
      }
    }
    out->index = static_cast<uint32_t>(number);
    return 0;
  }
  return InterfaceIndex(zone.c_str(), &out->index);
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
                         InstanceMethod<&UdpSocket::Adopt>("adopt"),
                         InstanceMethod<&UdpSocket::Bind>("bind"),
                         InstanceMethod<&UdpSocket::Connect>("connect"),
                         InstanceMethod<&UdpSocket::LocalAddress>("localAddress"),
                         InstanceMethod<&UdpSocket::RemoteAddress>("remoteAddress"),
                         InstanceMethod<&UdpSocket::SetSendBufferSize>("setSendBufferSize"),
                         InstanceMethod<&UdpSocket::GetSendBufferSize>("getSendBufferSize"),
                         InstanceMethod<&UdpSocket::Membership>("membership"),
                         InstanceMethod<&UdpSocket::SetMulticastInterface>("setMulticastInterface"),
                         InstanceMethod<&UdpSocket::Disconnect>("disconnect"),
                         InstanceMethod<&UdpSocket::Close>("close"),
                         InstanceMethod<&UdpSocket::Send>("send"),
                         InstanceMethod<&UdpSocket::StartPolling>("startPolling"),
                         InstanceMethod<&UdpSocket::StopPolling>("stopPolling"),
                         InstanceMethod<&UdpSocket::StartReading>("startReading"),
                         InstanceMethod<&UdpSocket::StopReading>("stopReading"),
                         InstanceMethod<&UdpSocket::SetRef>("setRef"),
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
  if (borrowed_) return Napi::Number::New(env, kErrorNotOwned);
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
  // The owner (dgram) reads this descriptor; a datagram taken here would be lost to it.
  if (borrowed_) return Napi::Number::New(env, kErrorNotOwned);
  // Reading the error queue (a POLLERR, an earlier send) also clears the kernel's pending error,
  // which a connected socket's receive would have reported: report it here instead, once.
  // The queue is read first (one recvmsg, EAGAIN when empty) so that an ICMP is reported once:
  // left in the queue, it would raise POLLERR, be read later and be reported again.
  if (connected_ && ErrorQueueSupported()) {
    if (const int pending = errors_.Claim(handle_, 0)) return Napi::Number::New(env, pending);
  }
  std::vector<ReceivedDatagram> datagrams;
  for (int attempt = 0;; ++attempt) {
    const int error = ReceiveDatagrams(handle_, arena.Data(), slot_size, max_datagrams, &datagrams);
    if (error == 0) break;
    // With IP_RECVERR the kernel leaves a sent datagram's ICMP error (ECONNREFUSED, ...) as the
    // socket's pending error, which the next receive reports instead of the data waiting. It is
    // not this receive's: read it into the error queue ('icmp') and receive again (bounded).
    // On a connected socket it is the one peer's, and the receive reports it (as dgram does).
    if (!connected_ && error != EAGAIN && error != EWOULDBLOCK && attempt < kAsyncRetries &&
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
  // ipv6Only: absent means IPv6-only; false makes a dual-stack IPv6 socket.
  const Napi::Value ipv6_only_value = info[1];
  if (!ipv6_only_value.IsUndefined() && !ipv6_only_value.IsBoolean()) {
    ThrowType(env, "ipv6Only must be a boolean");
  }
  const bool ipv6_only =
      ipv6_only_value.IsUndefined() || ipv6_only_value.As<Napi::Boolean>().Value();
  if (!ipv6_only && family != 6) ThrowType(env, "ipv6Only is for IPv6 sockets");
  if (handle_ != kInvalidSocket) ThrowType(env, "socket is already open");
  family_ = static_cast<IpFamily>(family);
  int error = OpenUdpSocket(family_, ipv6_only, &handle_);
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

// adopt(fd, family) -> errno: sends on `fd`, an open UDP socket of `family` that another owner
// keeps (node:dgram's libuv handle). The descriptor is borrowed: close() forgets it without
// closing it, and polling, receiving, bind, connect and option changes are refused (libuv has
// its own watcher on it, and the socket's state is the owner's). Segmentation is probed.
Napi::Value UdpSocket::Adopt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const uint32_t fd = Uint32Argument(info, 0, "fd", std::numeric_limits<int>::max());
  const uint32_t family = Uint32Argument(info, 1, "family", 6);
  if (family != 4 && family != 6) ThrowRange(env, "family must be 4 or 6");
  if (handle_ != kInvalidSocket) ThrowType(env, "socket is already open");
  const auto handle = static_cast<SocketHandle>(fd);
  const auto ip_family = static_cast<IpFamily>(family);
  if (int error = CheckBorrowableUdpSocket(handle, ip_family)) return Napi::Number::New(env, error);
  handle_ = handle;
  family_ = ip_family;
  borrowed_ = true;
  state_->open_sockets.insert(this);
  segmentation_ = state_->backend->ProbeSegmentation(handle_);
  return Napi::Number::New(env, 0);
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
  if (borrowed_) return Napi::Number::New(info.Env(), kErrorNotOwned);
  return Napi::Number::New(info.Env(), BindSocket(handle_, address));
}

Napi::Value UdpSocket::Connect(const Napi::CallbackInfo& info) {
  const SocketAddress address = AddressArgument(info, 0);
  if (handle_ == kInvalidSocket) return Napi::Number::New(info.Env(), kErrorBadHandle);
  if (borrowed_) return Napi::Number::New(info.Env(), kErrorNotOwned);
  const int error = ConnectSocket(handle_, address);
  if (error == 0) {
    remote_v4_mapped_ = IsV4Mapped(address);
    connected_ = true;
  }
  return Napi::Number::New(info.Env(), error);
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
  if (borrowed_) return Napi::Number::New(info.Env(), kErrorNotOwned);
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

// Reads a SocketOption number at info[0]; throws RangeError for one that is not known.
static SocketOption OptionArgument(const Napi::CallbackInfo& info, int* min, int* max) {
  const uint32_t option = Uint32Argument(info, 0, "option", 1000);
  if (!SocketOptionRange(static_cast<int>(option), min, max)) {
    ThrowRange(info.Env(), "unknown socket option " + std::to_string(option));
  }
  return static_cast<SocketOption>(option);
}

// setOption(option, value) -> errno
Napi::Value UdpSocket::SetOption(const Napi::CallbackInfo& info) {
  int min = 0;
  int max = 0;
  const SocketOption option = OptionArgument(info, &min, &max);
  Napi::Value value = info[1];
  if (!value.IsNumber()) ThrowType(info.Env(), "option value must be a number");
  const double number = value.As<Napi::Number>().DoubleValue();
  if (!(number >= min) || number > max || std::floor(number) != number) {
    ThrowRange(info.Env(), "option value must be an integer from " + std::to_string(min) + " to " +
                               std::to_string(max));
  }
  if (option == SocketOption::kMtu) ThrowRange(info.Env(), "the MTU option is read-only");
  if (handle_ == kInvalidSocket) return Napi::Number::New(info.Env(), kErrorBadHandle);
  // A borrowed descriptor is another owner's (wrapDgram): its options are not ours to change.
  if (borrowed_) return Napi::Number::New(info.Env(), kErrorNotOwned);
  return Napi::Number::New(info.Env(),
                           SetSocketOption(handle_, family_, option, static_cast<int>(number)));
}

// getOption(option) -> { value } | errno
Napi::Value UdpSocket::GetOption(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int min = 0;
  int max = 0;
  const SocketOption option = OptionArgument(info, &min, &max);
  if (handle_ == kInvalidSocket) return Napi::Number::New(env, kErrorBadHandle);
  int value = 0;
  if (int error = GetSocketOption(handle_, family_, option, &value)) {
    return Napi::Number::New(env, error);
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("value", Napi::Number::New(env, value));
  return result;
}

// membership(join, group, source | null, interface | null) -> errno
Napi::Value UdpSocket::Membership(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBoolean()) ThrowType(env, "join must be a boolean");
  const bool join = info[0].As<Napi::Boolean>().Value();
  const std::string group_text = TextArgument(info, 1, "group", 64);
  SocketAddress group;
  if (MakeAddress(family_, group_text.c_str(), 0, 0, &group) != 0) {
    ThrowType(env, "group is not an IP literal of the socket's family: " + group_text);
  }
  SocketAddress source;
  const bool has_source = !Absent(info[2]);
  if (has_source) {
    const std::string source_text = TextArgument(info, 2, "source", 64);
    if (MakeAddress(family_, source_text.c_str(), 0, 0, &source) != 0) {
      ThrowType(env, "source is not an IP literal of the socket's family: " + source_text);
    }
  }
  MulticastInterface via;
  if (int error = InterfaceArgument(info, 3, family_, &via)) return Napi::Number::New(env, error);
  if (handle_ == kInvalidSocket) return Napi::Number::New(env, kErrorBadHandle);
  // A borrowed descriptor is another owner's (wrapDgram): its options are not ours to change.
  if (borrowed_) return Napi::Number::New(env, kErrorNotOwned);
  return Napi::Number::New(
      env, SetMembership(handle_, family_, join, group, has_source ? &source : nullptr, via));
}

// setMulticastInterface(interface) -> errno
Napi::Value UdpSocket::SetMulticastInterface(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) ThrowType(env, "interface must be a string");
  MulticastInterface via;
  if (int error = InterfaceArgument(info, 0, family_, &via)) return Napi::Number::New(env, error);
  if (handle_ == kInvalidSocket) return Napi::Number::New(env, kErrorBadHandle);
  // A borrowed descriptor is another owner's (wrapDgram): its options are not ours to change.
  if (borrowed_) return Napi::Number::New(env, kErrorNotOwned);
  return Napi::Number::New(env, wsk::SetMulticastInterface(handle_, family_, via));
}

// disconnect() -> errno
Napi::Value UdpSocket::Disconnect(const Napi::CallbackInfo& info) {
  if (handle_ == kInvalidSocket) return Napi::Number::New(info.Env(), kErrorBadHandle);
  // A borrowed descriptor is another owner's (wrapDgram): its options are not ours to change.
  if (borrowed_) return Napi::Number::New(info.Env(), kErrorNotOwned);
  const int error = DisconnectSocket(handle_, family_);
  if (error == 0) {
    connected_ = false;
    remote_v4_mapped_ = false;
  }
  return Napi::Number::New(info.Env(), error);
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
  // A borrowed descriptor's error queue is its owner's to read.
  if (handle_ != kInvalidSocket && !borrowed_) errors_.Drain(handle_);
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
    batch.remote_v4_mapped = remote_v4_mapped_;
    batch.errors = ErrorQueueSupported() && !borrowed_ ? &errors_ : nullptr;
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
