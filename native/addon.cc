// Addon entry: exports the UdpSocket class and the back-end's name. All state is per
// environment (main thread or worker), held by the Napi::Addon instance: no statics.
#include <napi.h>

#include "socket.h"

namespace wsk {

class WskAddon : public Napi::Addon<WskAddon> {
 public:
  WskAddon(Napi::Env env, Napi::Object exports) : state_(std::make_shared<EnvState>()) {
    DefineAddon(exports, {
                             InstanceValue("UdpSocket", UdpSocket::Define(env), napi_enumerable),
                             InstanceValue("backend",
                                           Napi::String::New(env, state_->backend->Name()),
                                           napi_enumerable),
                         });
  }

  const std::shared_ptr<EnvState>& state() const { return state_; }

 private:
  std::shared_ptr<EnvState> state_;
};

std::shared_ptr<EnvState> GetEnvState(Napi::Env env) {
  return env.GetInstanceData<WskAddon>()->state();
}

}  // namespace wsk

using WskDgramAddon = wsk::WskAddon;
NODE_API_ADDON(WskDgramAddon)
