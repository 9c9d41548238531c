// Addon entry: exports the UdpSocket class and the back-end's name. All state is per
// environment (main thread or worker), held by the Napi::Addon instance: no statics.
#include <napi.h>

#include "socket.h"

namespace wsk {

class WskAddon : public Napi::Addon<WskAddon> {
 public:
  WskAddon(Napi::Env env, Napi::Object exports) : state_(std::make_shared<EnvState>()) {
    // A poll handle still open when a worker's loop closes aborts the process, and libuv closes
    // handles asynchronously: so an async cleanup hook closes every socket and returns only
    // once the last handle is gone.
    napi_add_async_cleanup_hook(env, OnEnvironmentTeardown, new std::shared_ptr<EnvState>(state_),
                                &state_->cleanup_hook);
    // %TypedArray%.prototype.at, taken before any caller code runs: it throws for a view
    // whose memory is gone, which is how the send tells an out-of-bounds view (a resizable
    // ArrayBuffer shrunk below it, reported as 0 bytes) from an empty one (BufferArgument).
    typed_array_at_ = Napi::Persistent(env.Global()
                                           .Get("Uint8Array")
                                           .As<Napi::Object>()
                                           .Get("prototype")
                                           .As<Napi::Object>()
                                           .Get("at")
                                           .As<Napi::Function>());
    DefineAddon(exports,
                {
                    InstanceValue("UdpSocket", UdpSocket::Define(env), napi_enumerable),
                    InstanceValue("backend", Napi::String::New(env, state_->backend->Name()),
                                  napi_enumerable),
                });
  }

  const std::shared_ptr<EnvState>& state() const { return state_; }
  Napi::Function typed_array_at() const { return typed_array_at_.Value(); }

 private:
  static void OnEnvironmentTeardown(napi_async_cleanup_hook_handle handle, void* arg) {
    auto* holder = static_cast<std::shared_ptr<EnvState>*>(arg);
    std::shared_ptr<EnvState> state = *holder;
    delete holder;
    state->tearing_down = true;
    CloseAllSockets(state);
    // Done now, or when the last poll handle's close callback runs (OnPollerClosed).
    if (state->closing_pollers == 0) {
      napi_remove_async_cleanup_hook(handle);
      state->cleanup_hook = nullptr;
    }
  }

  std::shared_ptr<EnvState> state_;
  // Held by the addon instance, which the environment frees while it can still delete it
  // (EnvState may outlive the environment in a closing poll handle).
  Napi::FunctionReference typed_array_at_;
};

std::shared_ptr<EnvState> GetEnvState(Napi::Env env) {
  return env.GetInstanceData<WskAddon>()->state();
}

Napi::Function TypedArrayAt(Napi::Env env) {
  return env.GetInstanceData<WskAddon>()->typed_array_at();
}

}  // namespace wsk

using WskDgramAddon = wsk::WskAddon;
NODE_API_ADDON(WskDgramAddon)
