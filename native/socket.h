// The UDP socket object exposed to JavaScript. It owns the OS handle and, while a send waits
// for the socket to become writable, a uv_poll_t on the environment's loop. All policy
// (address parsing, the pending queue, NTSTATUS mapping, typed errors) lives in TypeScript.
// Methods return raw OS error codes and never throw for them; they throw TypeError/RangeError
// only for malformed arguments, which the TypeScript layer never passes.
//
// The rooms: socket_methods.cc (the JavaScript methods and their result objects),
// batch_reader.cc (reading a send's batch), poller.cc (uv_poll, callbacks, closing, teardown).
#ifndef WSK_DGRAM_SOCKET_H_
#define WSK_DGRAM_SOCKET_H_

#include <napi.h>
#include <uv.h>

#include <memory>
#include <unordered_set>

#include "batch_reader.h"
#include "error_queue.h"
#include "os_socket.h"
#include "send.h"

namespace wsk {

class UdpSocket;

// Per-environment state (one per main thread or worker): the send back-end, scratch arrays
// reused by every send, and the open sockets so that environment teardown can close them.
struct EnvState {
  std::unique_ptr<SendBackend> backend = CreateSendBackend();
  // Scratch of the current send (batch_reader.h), reused by every send of the environment.
  BatchScratch batch;
  bool sending = false;  // a send is reading its batch or sending
  std::unordered_set<UdpSocket*> open_sockets;
  // Environment teardown (napi async cleanup hook): poll handles still closing.
  bool tearing_down = false;
  napi_async_cleanup_hook_handle cleanup_hook = nullptr;
  size_t closing_pollers = 0;
  ~EnvState();
};

// Defined in addon.cc: the state of the environment `env` belongs to.
std::shared_ptr<EnvState> GetEnvState(Napi::Env env);

// Defined in addon.cc: %TypedArray%.prototype.at as it was when the addon loaded.
Napi::Function TypedArrayAt(Napi::Env env);

// Closes every socket of the environment; called by the async cleanup hook.
void CloseAllSockets(const std::shared_ptr<EnvState>& state);

// The poll handle lives apart from the socket object: libuv frees it asynchronously, after the
// socket (or the whole environment) may be gone.
struct Poller {
  uv_poll_t handle;
  UdpSocket* owner;
  std::shared_ptr<EnvState> state;
};

class UdpSocket : public Napi::ObjectWrap<UdpSocket> {
 public:
  static Napi::Function Define(Napi::Env env);
  UdpSocket(const Napi::CallbackInfo& info);
  ~UdpSocket() override;

  // Stops polling and closes the handle if open; returns 0 or the OS error. Calls no JS.
  int CloseHandle();
  // Called from the uv_poll callback with libuv's status and events.
  void OnPoll(int status, int events);

 private:
  Napi::Value Open(const Napi::CallbackInfo& info);
  Napi::Value Adopt(const Napi::CallbackInfo& info);
  Napi::Value Bind(const Napi::CallbackInfo& info);
  Napi::Value Connect(const Napi::CallbackInfo& info);
  Napi::Value LocalAddress(const Napi::CallbackInfo& info);
  Napi::Value RemoteAddress(const Napi::CallbackInfo& info);
  Napi::Value SetSendBufferSize(const Napi::CallbackInfo& info);
  Napi::Value GetSendBufferSize(const Napi::CallbackInfo& info);
  Napi::Value SetOption(const Napi::CallbackInfo& info);
  Napi::Value GetOption(const Napi::CallbackInfo& info);
  Napi::Value Membership(const Napi::CallbackInfo& info);
  Napi::Value SetMulticastInterface(const Napi::CallbackInfo& info);
  Napi::Value Disconnect(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value StartPolling(const Napi::CallbackInfo& info);
  Napi::Value StopPolling(const Napi::CallbackInfo& info);
  Napi::Value StartReading(const Napi::CallbackInfo& info);
  Napi::Value StopReading(const Napi::CallbackInfo& info);
  Napi::Value SetRef(const Napi::CallbackInfo& info);
  Napi::Value EnableReceiveInfo(const Napi::CallbackInfo& info);
  Napi::Value Receive(const Napi::CallbackInfo& info);
  Napi::Value Descriptor(const Napi::CallbackInfo& info);
  Napi::Value SegmentLimit(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  // The ICMP error queue (error_queue.h) and the options of socket_options.h.
  Napi::Value WatchErrors(const Napi::CallbackInfo& info);
  Napi::Value UnwatchErrors(const Napi::CallbackInfo& info);
  Napi::Value TakeErrors(const Napi::CallbackInfo& info);
  Napi::Value ErrorsPending(const Napi::CallbackInfo& info);

  // Parses (ip, port, scopeId) at info[index..] for this socket's family; throws on bad input.
  SocketAddress AddressArgument(const Napi::CallbackInfo& info, size_t index);
  int UpdatePolling(Napi::Env env);
  void ApplyRef();
  void Invoke(const Napi::FunctionReference& callback, int status);

  std::shared_ptr<EnvState> state_;
  SocketHandle handle_ = kInvalidSocket;
  // handle_ belongs to another owner (Adopt): never closed here, never polled or read.
  bool borrowed_ = false;
  IpFamily family_ = IpFamily::kV4;
  SegmentationState segmentation_;
  // The connected remote is IPv4-mapped (a dual-stack socket connected to an IPv4 peer): sends
  // without a destination then carry IPv4-level controls.
  bool remote_v4_mapped_ = false;
  // connect() fixed a remote (disconnect() clears it): an ICMP error then belongs to that one
  // peer, and a receive reports it as node:dgram's does.
  bool connected_ = false;
  // Totals over the socket's life, for diagnostics and tests.
  uint64_t total_syscalls_ = 0;
  uint64_t total_messages_ = 0;
  uint64_t total_datagrams_ = 0;
  uint64_t total_bytes_ = 0;
  uint64_t total_segments_ = 0;
  Poller* poller_ = nullptr;
  bool polling_ = false;
  bool want_writable_ = false;
  bool want_readable_ = false;
  // Whether the poll handle keeps the event loop alive (ref()/unref()); applied when the
  // handle is made, since it is made lazily on the first wait.
  bool ref_wanted_ = true;
  // Polling for POLLERR alone (UV_PRIORITIZED: a UDP socket never signals POLLPRI) while
  // JavaScript watches for ICMP errors; that alone never keeps the event loop alive.
  bool want_errors_ = false;
  ErrorQueue errors_;
  Napi::FunctionReference on_writable_;
  Napi::FunctionReference on_readable_;
  Napi::FunctionReference on_errors_;
  napi_async_context async_context_ = nullptr;
};

}  // namespace wsk

#endif  // WSK_DGRAM_SOCKET_H_
