// Reads the JavaScript batch of a send (lib/batch.ts NativeBatch: buffers, ranges, spans,
// targets, destinations, segment, continueOnError, controls) for a window [first, first + count)
// into native scratch and a SendBatch (send.h). Every field, every typed-array word the window
// needs and every buffer it uses is read once, checked in our copy, and used from there.
#ifndef WSK_DGRAM_BATCH_READER_H_
#define WSK_DGRAM_BATCH_READER_H_

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "send.h"

namespace wsk {

// Bounds that keep one call's scratch memory and run time finite. The TypeScript layer
// enforces the same ones with clearer messages (lib/transport.ts).
constexpr uint32_t kMaxDatagramsPerCall = 1u << 20;
constexpr uint32_t kMaxRangesPerDatagram = 1024;  // UIO_MAXIOV
constexpr size_t kDestinationRecordBytes = 24;    // lib/batch.ts DESTINATION_RECORD_BYTES

// The largest UDP payload over `family`: 65535 less the IP and UDP headers.
inline size_t MaxPayload(IpFamily family) { return family == IpFamily::kV6 ? 65527 : 65507; }

// The addon's argument errors: a TypeError or RangeError whose message starts "wsk-dgram
// native: ", thrown as a C++ exception that node-addon-api turns into a JavaScript one.
[[noreturn]] void ThrowType(Napi::Env env, const std::string& message);
[[noreturn]] void ThrowRange(Napi::Env env, const std::string& message);

// A slot for each distinct index one call looks up (buffer indices, destination records): a
// table stamped with the call number while the indices stay near the number of look-ups, a hash
// map for sparse ones, so that neither memory nor time grows with a caller's array length.
class DistinctIndices {
 public:
  // Starts a call whose indices are at most `max_index` and that makes about `lookups` look-ups.
  void Begin(uint32_t max_index, size_t lookups);
  // The slot given to `index` earlier in this call; else `fresh`, and *is_new is set.
  uint32_t SlotOf(uint32_t index, uint32_t fresh, bool* is_new);
  void Trim();

 private:
  std::vector<uint64_t> stamp_;
  std::vector<uint32_t> slot_;
  std::unordered_map<uint32_t, uint32_t> sparse_;
  uint64_t call_ = 0;
  bool dense_ = true;
};

// Scratch of the current send, sized by what the window uses, never by the length of the
// caller's arrays; released after a call that made it large (Trim). One per environment.
struct BatchScratch {
  // Phase 0: copies of the caller's words, checked in place.
  std::vector<uint32_t> span_words;   // 2 per datagram of the window
  std::vector<uint32_t> range_words;  // 3 per copied range
  std::vector<uint32_t> range_index;  // the batch's index of each copied range (for messages)
  std::vector<int32_t> coverage;      // +1/-1 marks: which copied ranges the window's spans use
  std::vector<uint32_t> targets;      // per datagram of the window: its slot in `destinations`
  std::vector<SocketAddress> destinations;  // each record the window uses, converted once
  DistinctIndices record_slots;
  // Phases 1 and 2: each distinct buffer the window uses, fetched once, its view taken once.
  struct Buffer {
    uint32_t index;
    napi_value value;
    ByteRange view;
  };
  std::vector<Buffer> buffers;
  std::vector<uint32_t> range_buffer;  // per copied range: its slot in `buffers`
  DistinctIndices buffer_slots;
  // What the back-end reads (send.h).
  std::vector<DatagramSpan> spans;
  std::vector<ByteRange> ranges;
  std::vector<SendFailure> failures;

  void Trim();
};

// What ReadBatch gives the socket: a SendBatch over the scratch (segmentation left to the
// socket) and the batch's flags. Not copyable: `batch.controls` points at `controls`.
struct BatchWindow {
  BatchWindow() = default;
  BatchWindow(const BatchWindow&) = delete;
  BatchWindow& operator=(const BatchWindow&) = delete;

  SendBatch batch{};
  SendControls controls;
  bool segment = false;
};

// Reads datagrams [first, first + count) of the batch object `value` for a socket of `family`.
// Throws TypeError/RangeError (or what a getter of the caller's threw) for a malformed batch,
// before anything is sent; std::bad_alloc when the scratch cannot grow. Must not run while
// another ReadBatch of the same scratch does (the socket's SendGuard refuses that).
void ReadBatch(Napi::Env env, napi_value value, uint32_t first, uint32_t count, IpFamily family,
               BatchScratch* scratch, BatchWindow* window);

}  // namespace wsk

#endif  // WSK_DGRAM_BATCH_READER_H_
