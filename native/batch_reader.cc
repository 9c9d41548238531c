// The batch reader (batch_reader.h). Reading a property or an array element may run JavaScript
// (getters, proxies) that could change or detach what was read before, and a typed array in a
// SharedArrayBuffer may change under us at any time. So every input is read once, then checked,
// then used from our copy, in three phases:
// (0) each field of the batch object is read once (getters may run), then the typed-array words
//     the window needs are copied into scratch and only the copies are checked: no JavaScript;
// (1) each distinct buffer the copied ranges use is fetched once: JavaScript may run;
// (2) each fetched buffer's view is taken once and every range is checked against it: no
//     JavaScript runs between these checks and the send.
// A send started from such JavaScript is refused (the socket's SendGuard), so the scratch stays
// this call's. A packed batch (one buffer, any number of ranges) costs the same few N-API calls
// whatever its size.
#include "batch_reader.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "socket.h"  // TypedArrayAt

namespace wsk {

void ThrowType(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, "wsk-dgram native: " + message);
}

void ThrowRange(Napi::Env env, const std::string& message) {
  throw Napi::RangeError::New(env, "wsk-dgram native: " + message);
}

void DistinctIndices::Begin(uint32_t max_index, size_t lookups) {
  ++call_;
  sparse_.clear();
  dense_ = max_index < 2 * lookups + 4096;
  if (dense_ && stamp_.size() <= max_index) {
    stamp_.resize(static_cast<size_t>(max_index) + 1, 0);
    slot_.resize(static_cast<size_t>(max_index) + 1);
  }
}

uint32_t DistinctIndices::SlotOf(uint32_t index, uint32_t fresh, bool* is_new) {
  if (dense_) {
    *is_new = stamp_[index] != call_;
    if (*is_new) {
      stamp_[index] = call_;
      slot_[index] = fresh;
    }
    return slot_[index];
  }
  auto found = sparse_.emplace(index, fresh);
  *is_new = found.second;
  return found.first->second;
}

namespace {

constexpr size_t kKeep = 1 << 16;

template <typename Vector>
void TrimVector(Vector& vector) {
  if (vector.capacity() > kKeep) Vector().swap(vector);
}

}  // namespace

void DistinctIndices::Trim() {
  TrimVector(stamp_);
  TrimVector(slot_);
  if (sparse_.bucket_count() > kKeep) std::unordered_map<uint32_t, uint32_t>().swap(sparse_);
}

void BatchScratch::Trim() {
  // A call of many datagrams (or naming a high index) leaves big arrays behind: give them back
  // rather than hold the peak for the life of the environment.
  TrimVector(span_words);
  TrimVector(range_words);
  TrimVector(range_index);
  TrimVector(coverage);
  TrimVector(targets);
  TrimVector(destinations);
  TrimVector(buffers);
  TrimVector(range_buffer);
  TrimVector(spans);
  TrimVector(ranges);
  TrimVector(failures);
  record_slots.Trim();
  buffer_slots.Trim();
}

namespace {

std::string Text(uint64_t n) { return std::to_string(n); }

bool IsAbsent(const Napi::Value& value) { return value.IsNull() || value.IsUndefined(); }

bool BooleanField(Napi::Env env, const Napi::Value& value, const char* name) {
  if (!value.IsBoolean()) ThrowType(env, std::string("batch.") + name + " must be a boolean");
  return value.As<Napi::Boolean>().Value();
}

struct Elements {
  const void* data;
  size_t length;
};

// The elements of the typed array `value`, which must be of `type`, as they are now. One N-API
// call; no JavaScript runs.
Elements TypedArrayOf(Napi::Env env, napi_value value, napi_typedarray_type want,
                      const char* name) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  if (napi_get_typedarray_info(env, value, &type, &length, &data, nullptr, nullptr) != napi_ok ||
      type != want) {
    ThrowType(env,
              std::string("batch.") + name +
                  (want == napi_uint32_array ? " must be a Uint32Array" : " must be a Uint8Array"));
  }
  return Elements{data, length};
}

// The bytes of the Uint8Array `value` (buffer `index` of the batch), as they are now.
ByteRange BufferView(Napi::Env env, napi_value value, uint32_t index) {
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  napi_value arraybuffer = nullptr;
  if (napi_get_typedarray_info(env, value, &type, &length, &data, &arraybuffer, nullptr) !=
          napi_ok ||
      type != napi_uint8_array) {
    ThrowType(env, "batch.buffers[" + Text(index) + "] must be a Uint8Array");
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
      ThrowRange(env, "buffer " + Text(index) +
                          " has no memory (its ArrayBuffer is detached, or shrunk below it)");
    }
  }
  return ByteRange{static_cast<const uint8_t*>(data), length};
}

// Reads the optional controls object { sourceAddress, interfaceIndex, tos, ttl, segmentSize },
// each property once (getters may run); false when there are none.
bool ReadControls(Napi::Env env, const Napi::Value& value, IpFamily family,
                  SendControls* controls) {
  if (IsAbsent(value)) return false;
  if (!value.IsObject()) ThrowType(env, "batch.controls must be an object");
  Napi::Object object = value.As<Napi::Object>();
  auto number = [&](const char* name, uint32_t min, uint32_t max) -> int64_t {
    Napi::Value field = object.Get(name);
    if (field.IsUndefined()) return -1;
    if (!field.IsNumber()) ThrowType(env, std::string("controls.") + name + " must be a number");
    const double n = field.As<Napi::Number>().DoubleValue();
    if (!(n >= min) || n > max || std::floor(n) != n) {
      ThrowRange(env, std::string("controls.") + name + " must be an integer from " + Text(min) +
                          " to " + Text(max));
    }
    return static_cast<int64_t>(n);
  };
  const int64_t interface_index = number("interfaceIndex", 0, std::numeric_limits<uint32_t>::max());
  const int64_t tos = number("tos", 0, 255);
  const int64_t ttl = number("ttl", 1, 255);
  const int64_t segment_size =
      number("segmentSize", 1, static_cast<uint32_t>(MaxPayload(IpFamily::kV6)));
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
        MakeAddress(family, ip.c_str(), 0, 0, &parsed) != 0) {
      ThrowType(env, "controls.sourceAddress is not an IPv" + Text(static_cast<int>(family)) +
                         " literal");
    }
    controls->has_source = true;
    AddressBytes(parsed, controls->source);
  }
  return controls->Any();
}

// Destination record `record` of the table, copied out of the caller's bytes, checked in the
// copy, and converted (lib/batch.ts encodeDestination: family, 0, port big-endian, scope id
// little-endian, 16 address bytes).
SocketAddress ConvertRecord(Napi::Env env, const uint8_t* table, uint32_t record, IpFamily family) {
  uint8_t bytes[kDestinationRecordBytes];
  std::copy_n(table + kDestinationRecordBytes * static_cast<size_t>(record),
              kDestinationRecordBytes, bytes);
  const std::string which = "destination " + Text(record);
  const int family_number = static_cast<int>(family);
  if (bytes[0] != family_number) {
    ThrowRange(
        env, which + " has family " + Text(bytes[0]) + "; the socket is IPv" + Text(family_number));
  }
  if (bytes[1] != 0) ThrowRange(env, which + " has a reserved byte that is not 0");
  const uint16_t port = static_cast<uint16_t>((bytes[2] << 8) | bytes[3]);
  if (port == 0) ThrowRange(env, which + " has port 0");
  const uint32_t scope_id =
      static_cast<uint32_t>(bytes[4]) | (static_cast<uint32_t>(bytes[5]) << 8) |
      (static_cast<uint32_t>(bytes[6]) << 16) | (static_cast<uint32_t>(bytes[7]) << 24);
  if (family == IpFamily::kV4 && scope_id != 0) {
    ThrowRange(env, which + " is IPv4 with a scope id");
  }
  SocketAddress address;
  MakeAddressFromBytes(family, bytes + 8, port, scope_id, &address);
  return address;
}

}  // namespace

void ReadBatch(Napi::Env env, napi_value value, uint32_t first, uint32_t count, IpFamily family,
               BatchScratch* scratch, BatchWindow* window) {
  BatchScratch& st = *scratch;
  const Napi::Value batch_value(env, value);
  if (!batch_value.IsObject()) ThrowType(env, "batch must be an object");
  const Napi::Object batch = batch_value.As<Napi::Object>();

  // Phase 0, the fields: each read once, here, where the caller's getters may run.
  const Napi::Value buffers = batch.Get("buffers");
  const Napi::Value ranges = batch.Get("ranges");
  const Napi::Value spans = batch.Get("spans");
  const Napi::Value targets = batch.Get("targets");
  const Napi::Value destinations = batch.Get("destinations");
  const Napi::Value segment = batch.Get("segment");
  const Napi::Value continue_on_error = batch.Get("continueOnError");
  const Napi::Value controls = batch.Get("controls");
  window->segment = BooleanField(env, segment, "segment");
  const bool keep_going = BooleanField(env, continue_on_error, "continueOnError");
  const bool has_controls = ReadControls(env, controls, family, &window->controls);
  if (!buffers.IsArray()) ThrowType(env, "batch.buffers must be an array");
  const Napi::Array buffer_array = buffers.As<Napi::Array>();
  const uint32_t buffer_count = buffer_array.Length();

  // Phase 0, the words: the typed arrays as they are now, the window's words copied out of them,
  // and only the copies checked. No JavaScript runs from here to phase 1.
  const Elements range_array = TypedArrayOf(env, ranges, napi_uint32_array, "ranges");
  const Elements span_array = TypedArrayOf(env, spans, napi_uint32_array, "spans");
  const bool has_targets = !IsAbsent(targets);
  const bool has_destinations = !IsAbsent(destinations);
  const Elements target_array =
      has_targets ? TypedArrayOf(env, targets, napi_uint32_array, "targets") : Elements{nullptr, 0};
  const Elements record_array =
      has_destinations ? TypedArrayOf(env, destinations, napi_uint8_array, "destinations")
                       : Elements{nullptr, 0};
  if (range_array.length % 3 != 0) {
    ThrowRange(env, "batch.ranges holds 3 words per range, not " + Text(range_array.length));
  }
  if (span_array.length % 2 != 0) {
    ThrowRange(env, "batch.spans holds 2 words per datagram, not " + Text(span_array.length));
  }
  if (record_array.length % kDestinationRecordBytes != 0) {
    ThrowRange(
        env, "batch.destinations holds 24 bytes per destination, not " + Text(record_array.length));
  }
  const size_t range_total = range_array.length / 3;
  const size_t datagram_total = span_array.length / 2;
  const size_t record_total = record_array.length / kDestinationRecordBytes;
  if (first > datagram_total || count > datagram_total - first) {
    ThrowRange(env, "the window [" + Text(first) + ", " + Text(uint64_t{first} + count) +
                        ") lies outside the batch's " + Text(datagram_total) + " datagrams");
  }
  if (has_targets) {
    if (!has_destinations) ThrowType(env, "batch.targets needs batch.destinations");
    if (first > target_array.length || count > target_array.length - first) {
      ThrowRange(env, "batch.targets ends before the window does");
    }
  }
  if (has_destinations && !has_targets && record_total == 0) {
    ThrowRange(env, "batch.destinations holds no destination for untargeted datagrams");
  }

  // The window's spans.
  const uint32_t* span_source = static_cast<const uint32_t*>(span_array.data);
  st.span_words.resize(2 * static_cast<size_t>(count));
  if (count > 0)
    std::copy_n(span_source + 2 * static_cast<size_t>(first), 2 * count, st.span_words.begin());
  uint64_t referenced = 0;  // ranges the spans name, shared ones once per span
  size_t min_range = std::numeric_limits<size_t>::max();
  size_t max_end = 0;
  for (uint32_t d = 0; d < count; ++d) {
    const uint32_t first_range = st.span_words[2 * d];
    const uint32_t range_count = st.span_words[2 * d + 1];
    if (range_count > kMaxRangesPerDatagram) {
      ThrowRange(env, "datagram " + Text(uint64_t{first} + d) + " has " + Text(range_count) +
                          " byte ranges; at most 1024");
    }
    if (first_range > range_total || range_count > range_total - first_range) {
      ThrowRange(env, "datagram " + Text(uint64_t{first} + d) + " names ranges [" +
                          Text(first_range) + ", " + Text(uint64_t{first_range} + range_count) +
                          ") of batch.ranges, which holds " + Text(range_total));
    }
    if (range_count == 0) continue;
    min_range = std::min<size_t>(min_range, first_range);
    max_end = std::max<size_t>(max_end, size_t{first_range} + range_count);
    referenced += range_count;
  }

  // The ranges the spans name. Usually one block [min_range, max_end) copied once, so that spans
  // sharing ranges (a fan-out) share the copy; ranges inside it that no span names are neither
  // checked nor fetched. When the block is much larger than what the spans name, each span's
  // ranges are copied on their own instead: scratch stays proportional to the window.
  const uint32_t* range_source = static_cast<const uint32_t*>(range_array.data);
  const size_t block = max_end > min_range ? max_end - min_range : 0;
  const bool dense = block <= 2 * referenced + 65536;
  const size_t copied = dense ? block : static_cast<size_t>(referenced);
  st.spans.resize(count);
  st.range_words.resize(3 * copied);
  if (dense) {
    if (block > 0) std::copy_n(range_source + 3 * min_range, 3 * block, st.range_words.begin());
    st.coverage.assign(block + 1, 0);
    for (uint32_t d = 0; d < count; ++d) {
      const uint32_t range_count = st.span_words[2 * d + 1];
      const uint32_t local =
          range_count == 0 ? 0 : static_cast<uint32_t>(st.span_words[2 * d] - min_range);
      st.spans[d] = DatagramSpan{local, range_count};
      if (range_count == 0) continue;
      ++st.coverage[local];
      --st.coverage[local + range_count];
    }
    int32_t depth = 0;
    for (size_t r = 0; r < block; ++r) {
      depth += st.coverage[r];
      st.coverage[r] = depth > 0 ? 1 : 0;
    }
  } else {
    st.range_index.resize(copied);
    size_t at = 0;
    for (uint32_t d = 0; d < count; ++d) {
      const uint32_t first_range = st.span_words[2 * d];
      const uint32_t range_count = st.span_words[2 * d + 1];
      st.spans[d] = DatagramSpan{static_cast<uint32_t>(at), range_count};
      std::copy_n(range_source + 3 * static_cast<size_t>(first_range), 3 * size_t{range_count},
                  st.range_words.begin() + 3 * at);
      for (uint32_t r = 0; r < range_count; ++r) st.range_index[at + r] = first_range + r;
      at += range_count;
    }
  }
  const auto covered = [&](size_t r) { return !dense || st.coverage[r] != 0; };
  const auto batch_range = [&](size_t r) -> uint64_t {
    return dense ? min_range + r : st.range_index[r];
  };
  uint32_t max_buffer = 0;
  size_t used = 0;
  for (size_t r = 0; r < copied; ++r) {
    if (!covered(r)) continue;
    const uint32_t index = st.range_words[3 * r];
    if (index >= buffer_count) {
      ThrowRange(env, "range " + Text(batch_range(r)) + " names buffer " + Text(index) +
                          "; batch.buffers holds " + Text(buffer_count));
    }
    max_buffer = std::max(max_buffer, index);
    ++used;
  }

  // The destinations the window uses, each record converted once.
  st.destinations.clear();
  if (has_destinations && count > 0) {
    const uint8_t* table = static_cast<const uint8_t*>(record_array.data);
    if (!has_targets) {
      st.destinations.push_back(ConvertRecord(env, table, 0, family));
    } else {
      const uint32_t* target_source = static_cast<const uint32_t*>(target_array.data);
      st.targets.resize(count);
      std::copy_n(target_source + first, count, st.targets.begin());
      uint32_t max_target = 0;
      for (uint32_t d = 0; d < count; ++d) {
        if (st.targets[d] >= record_total) {
          ThrowRange(env, "datagram " + Text(uint64_t{first} + d) + " goes to destination " +
                              Text(st.targets[d]) + "; batch.destinations holds " +
                              Text(record_total));
        }
        max_target = std::max(max_target, st.targets[d]);
      }
      // From here `targets` holds slots of `destinations`, not record numbers.
      st.record_slots.Begin(max_target, count);
      for (uint32_t d = 0; d < count; ++d) {
        bool is_new = false;
        const uint32_t record = st.targets[d];
        const uint32_t slot =
            st.record_slots.SlotOf(record, static_cast<uint32_t>(st.destinations.size()), &is_new);
        if (is_new) st.destinations.push_back(ConvertRecord(env, table, record, family));
        st.targets[d] = slot;
      }
    }
  }

  // Phase 1: fetch each buffer the used ranges name, once. JavaScript may run here.
  st.buffers.clear();
  st.range_buffer.resize(copied);
  st.buffer_slots.Begin(max_buffer, used);
  for (size_t r = 0; r < copied; ++r) {
    if (!covered(r)) continue;
    const uint32_t index = st.range_words[3 * r];
    bool is_new = false;
    const uint32_t slot =
        st.buffer_slots.SlotOf(index, static_cast<uint32_t>(st.buffers.size()), &is_new);
    if (is_new) st.buffers.push_back(BatchScratch::Buffer{index, buffer_array.Get(index), {}});
    st.range_buffer[r] = slot;
  }

  // Phase 2: each buffer's view, taken now that no JavaScript will run before the send, and
  // every range checked against it. A range outside its buffer as the buffer is now (detached
  // or shrunk by JavaScript that ran in phase 1, or described wrongly) is refused: memory that
  // is gone is never sent.
  for (BatchScratch::Buffer& buffer : st.buffers) {
    buffer.view = BufferView(env, buffer.value, buffer.index);
  }
  st.ranges.resize(copied);
  for (size_t r = 0; r < copied; ++r) {
    if (!covered(r)) {
      st.ranges[r] = ByteRange{nullptr, 0};
      continue;
    }
    const uint64_t offset = st.range_words[3 * r + 1];
    const uint64_t length = st.range_words[3 * r + 2];
    const BatchScratch::Buffer& buffer = st.buffers[st.range_buffer[r]];
    if (offset > buffer.view.length || length > buffer.view.length - offset) {
      ThrowRange(env, "range " + Text(batch_range(r)) + " (" + Text(offset) + "+" + Text(length) +
                          ") lies outside buffer " + Text(buffer.index) + " (" +
                          Text(buffer.view.length) + " bytes now)");
    }
    st.ranges[r] = ByteRange{buffer.view.data + offset, static_cast<size_t>(length)};
  }
  const size_t max_payload = MaxPayload(family);
  for (uint32_t d = 0; d < count; ++d) {
    const DatagramSpan& span = st.spans[d];
    size_t length = 0;
    for (uint32_t r = 0; r < span.range_count && length <= max_payload; ++r) {
      length += st.ranges[span.first_range + r].length;
    }
    if (length > max_payload) {
      ThrowRange(env, "datagram " + Text(uint64_t{first} + d) + " is larger than a UDP payload (" +
                          Text(max_payload) + " bytes over IPv" + Text(static_cast<int>(family)) +
                          ")");
    }
  }

  // Room for a failure per datagram: the back-end records them without allocating.
  st.failures.clear();
  if (keep_going) st.failures.reserve(count);

  SendBatch& out = window->batch;
  out.datagrams = st.spans.data();
  out.datagram_count = count;
  out.ranges = st.ranges.data();
  out.range_count = copied;
  out.destinations = st.destinations.empty() ? nullptr : st.destinations.data();
  out.destination_count = st.destinations.size();
  out.targets = has_targets && count > 0 ? st.targets.data() : nullptr;
  out.segmentation = nullptr;
  out.max_payload = max_payload;
  out.controls = has_controls ? &window->controls : nullptr;
  out.family = family;
  out.remote_v4_mapped = false;  // the socket knows its remote (UdpSocket::Send)
  out.continue_on_error = keep_going;
  out.failures = &st.failures;
}

}  // namespace wsk
