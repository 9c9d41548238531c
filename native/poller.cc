// The socket's event-loop side: the uv_poll_t that watches for writable/readable, the
// JavaScript callbacks it runs, closing the handle, and environment teardown.
#include "socket.h"

namespace wsk {

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

// Starts, changes or stops the poll to match what is wanted (writable for pending sends,
// readable for a waiting receive). Returns 0 or an errno.
int UdpSocket::UpdatePolling(Napi::Env env) {
  const int events = (want_writable_ ? UV_WRITABLE : 0) | (want_readable_ ? UV_READABLE : 0) |
                     (want_errors_ ? UV_PRIORITIZED : 0);
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
  // libuv watches a borrowed descriptor already: a second poll handle on it is not allowed.
  if (borrowed_) return kErrorNotOwned;
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
  ApplyRef();
  if (!polling_) {
    polling_ = true;
    Ref();
  }
  return 0;
}

// The poll handle keeps the event loop alive only while a send or receive waits on it and the
// socket is ref'd (ref()/unref()); watching for ICMP errors alone never does.
void UdpSocket::ApplyRef() {
  if (poller_ == nullptr) return;
  auto* handle = reinterpret_cast<uv_handle_t*>(&poller_->handle);
  if (ref_wanted_ && (want_writable_ || want_readable_)) {
    uv_ref(handle);
  } else {
    uv_unref(handle);
  }
}

int UdpSocket::CloseHandle() {
  want_writable_ = false;
  want_readable_ = false;
  want_errors_ = false;
  connected_ = false;
  remote_v4_mapped_ = false;
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
    on_errors_.Reset();
    if (async_context_ != nullptr) {
      napi_async_destroy(Env(), async_context_);
      async_context_ = nullptr;
    }
  }
  segmentation_ = SegmentationState{};  // a closed socket offloads nothing
  if (handle_ == kInvalidSocket) return 0;
  // A borrowed descriptor is forgotten, not closed: its owner closes it.
  const int error = borrowed_ ? 0 : CloseSocket(handle_);
  handle_ = kInvalidSocket;
  borrowed_ = false;
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

// setRef(ref): whether a waiting send or receive keeps the event loop alive (uv_ref/uv_unref,
// as node:dgram's ref()/unref()). Remembered for a poll handle made later.
Napi::Value UdpSocket::SetRef(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsBoolean()) ThrowType(env, "ref must be a boolean");
  ref_wanted_ = info[0].As<Napi::Boolean>().Value();
  ApplyRef();
  return env.Undefined();
}

void UdpSocket::OnPoll(int status, int events) {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  // Keeps the JS object (and so this) alive across the callbacks, which may close the socket.
  [[maybe_unused]] Napi::Object self = Value();
  int wake = status;
  // POLLERR: for a UDP socket, entries in the error queue or a pending error. libuv reports it
  // as UV_EBADF and stops the handle, unless POLLPRI is asked for (want_errors_): then it merges
  // POLLPRI in and reports UV_PRIORITIZED with status 0 (src/unix/linux.c uv__io_poll, poll.c).
  const bool error_wake = status < 0 || (events & UV_PRIORITIZED) != 0;
  if (error_wake && handle_ != kInvalidSocket) {
    // The queue is read out now, since its entries are charged to the receive buffer. With
    // nothing queued the pending error is cleared (an ICMP whose entry was read just before its
    // error was set), or POLLERR would wake again at once. Either way the socket itself is
    // fine: sends and receives are woken to try again.
    wake = errors_.Drain(handle_) > 0 ? 0 : -TakeSocketError(handle_);
  }
  // An error wakes both directions: the next send or receive reports it.
  if (want_writable_ && (error_wake || (events & UV_WRITABLE) != 0)) {
    Invoke(on_writable_, wake);
  }
  if (want_readable_ && (error_wake || (events & UV_READABLE) != 0)) {
    Invoke(on_readable_, wake);
  }
  if (want_errors_ && errors_.pending() > 0) Invoke(on_errors_, 0);
  // libuv stopped the handle on POLLERR: start it again for whatever still waits, or settle the
  // stopped state.
  if (status < 0 && poller_ != nullptr) UpdatePolling(env);
}

// watchErrors(onErrors) / unwatchErrors(): while watched, ICMP errors are kept for takeErrors()
// and onErrors() runs from the event loop when some were read; 0 or an errno (EOPNOTSUPP where
// there is no error queue). Idempotent.
Napi::Value UdpSocket::WatchErrors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) ThrowType(env, "onErrors must be a function");
  if (handle_ == kInvalidSocket) return Napi::Number::New(env, kErrorBadHandle);
  if (!ErrorQueueSupported()) return Napi::Number::New(env, kErrorNotSupported);
  if (borrowed_) return Napi::Number::New(env, kErrorNotOwned);
  on_errors_.Reset(info[0].As<Napi::Function>(), 1);
  want_errors_ = true;
  errors_.set_keep(true);
  const int error = UpdatePolling(env);
  if (error != 0) {
    want_errors_ = false;
    errors_.set_keep(false);
  }
  return Napi::Number::New(env, error);
}

Napi::Value UdpSocket::UnwatchErrors(const Napi::CallbackInfo& info) {
  want_errors_ = false;
  errors_.set_keep(false);
  errors_.Clear();
  on_errors_.Reset();
  UpdatePolling(info.Env());
  return info.Env().Undefined();
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

}  // namespace wsk
