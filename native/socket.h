// The UDP socket object exposed to JavaScript. It owns the OS handle; all policy (address
// parsing, NTSTATUS mapping, typed errors) lives in TypeScript. Methods return raw OS error
// codes and never throw for them; they throw TypeError/RangeError only for malformed
// arguments, which the TypeScript layer should never pass.
#ifndef WSK_DGRAM_SOCKET_H_
#define WSK_DGRAM_SOCKET_H_

#include <napi.h>

#include <memory>
#include <unordered_set>
#include <vector>

#include "os_socket.h"
#include "send.h"

namespace wsk {

class UdpSocket;

// Per-environment state (one per main thread or worker): the send back-end, scratch arrays
// reused by every send, and the open sockets so that environment teardown can close them.
struct EnvState {
  std::unique_ptr<SendBackend> backend = CreateSendBackend();
  std::vector<ByteRange> ranges;
  std::vector<DatagramSpan> spans;
  std::vector<ByteRange> buffers;
  std::unordered_set<UdpSocket*> open_sockets;
  ~EnvState();
};

// Defined in addon.cc: the state of the environment `env` belongs to.
std::shared_ptr<EnvState> GetEnvState(Napi::Env env);

class UdpSocket : public Napi::ObjectWrap<UdpSocket> {
 public:
  static Napi::Function Define(Napi::Env env);
  UdpSocket(const Napi::CallbackInfo& info);
  ~UdpSocket() override;

  // Closes the handle if open; returns 0 or the OS error.
  int CloseHandle();

 private:
  Napi::Value Open(const Napi::CallbackInfo& info);
  Napi::Value Bind(const Napi::CallbackInfo& info);
  Napi::Value Connect(const Napi::CallbackInfo& info);
  Napi::Value LocalAddress(const Napi::CallbackInfo& info);
  Napi::Value RemoteAddress(const Napi::CallbackInfo& info);
  Napi::Value SetSendBufferSize(const Napi::CallbackInfo& info);
  Napi::Value GetSendBufferSize(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Send(const Napi::CallbackInfo& info);
  Napi::Value Descriptor(const Napi::CallbackInfo& info);

  // Parses (ip, port, scopeId) at info[index..] for this socket's family; throws on bad input.
  SocketAddress AddressArgument(const Napi::CallbackInfo& info, size_t index);
  // Reads buffers + layout into state_->spans/ranges; throws on any out-of-bounds value.
  void ReadBatch(const Napi::CallbackInfo& info);

  std::shared_ptr<EnvState> state_;
  SocketHandle handle_ = kInvalidSocket;
  IpFamily family_ = IpFamily::kV4;
};

}  // namespace wsk

#endif  // WSK_DGRAM_SOCKET_H_
