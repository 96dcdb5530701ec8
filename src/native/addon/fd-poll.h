// What the socket addons (icmp.cc, udp.cc, connection-watch.cc) share: errors that carry errno/syscall, FdPoll (a
// uv_poll_t on a non-blocking fd owned by one addon object) and ShutdownPolled.
// FdPoll's invariants: the handle is registered with the loop from Open() until Close(); Close() detaches it at
// once (a wake-up already queued finds no owner) and libuv frees it in the close callback; the owner closes its fd
// only after Close(). libuv reports POLLERR as status UV_EBADF and stops the poll: the owner restarts it.
#pragma once
#include <napi.h>
#include <uv.h>

#include <string.h>
#include <unistd.h>

#include <string>

namespace zks {

inline Napi::Value ErrnoError(Napi::Env env, int err, const std::string& syscall) {
  Napi::Error e = Napi::Error::New(env, syscall + ": " + strerror(err));
  e.Value().Set("errno", Napi::Number::New(env, err));
  e.Value().Set("syscall", Napi::String::New(env, syscall));
  return e.Value();
}

inline void ThrowErrno(Napi::Env env, int err, const std::string& syscall) {
  Napi::Error(env, ErrnoError(env, err, syscall)).ThrowAsJavaScriptException();
}

class FdPoll {
 public:
  // Called on the loop thread with the owner given to Open(): status < 0 is a libuv error, else `events` is ready.
  using Wake = void (*)(void* owner, int status, int events);

  FdPoll() = default;
  FdPoll(const FdPoll&) = delete;
  FdPoll& operator=(const FdPoll&) = delete;
  ~FdPoll() { Close(); }

  // Registers `fd` with the environment's loop (not polling yet); 0 or a negative libuv error code.
  int Open(napi_env env, int fd, void* owner, Wake wake) {
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) return UV_EINVAL;
    auto* handle = new uv_poll_t;
    int rc = uv_poll_init(loop, handle, fd);
    if (rc != 0) {
      delete handle;  // not registered with the loop
      return rc;
    }
    handle->data = this;
    handle_ = handle;
    owner_ = owner;
    wake_ = wake;
    if (!ref_) uv_unref(reinterpret_cast<uv_handle_t*>(handle_));
    return 0;
  }

  bool IsOpen() const { return handle_ != nullptr; }
  int Events() const { return events_; }

  // Polls for `events` (UV_READABLE | UV_WRITABLE); 0 or a negative libuv error code.
  int Start(int events) {
    if (handle_ == nullptr) return UV_EBADF;
    events_ = events;
    return uv_poll_start(handle_, events, OnPoll);
  }

  // Whether a polling handle keeps the loop alive (remembered before Open()).
  void SetRef(bool ref) {
    ref_ = ref;
    if (handle_ == nullptr) return;
    if (ref) {
      uv_ref(reinterpret_cast<uv_handle_t*>(handle_));
    } else {
      uv_unref(reinterpret_cast<uv_handle_t*>(handle_));
    }
  }

  // Idempotent.
  void Close() {
    if (handle_ == nullptr) return;
    handle_->data = nullptr;
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(handle_))) {
      uv_close(reinterpret_cast<uv_handle_t*>(handle_), OnClosed);
    }
    handle_ = nullptr;
  }

 private:
  static void OnPoll(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<FdPoll*>(handle->data);
    if (self != nullptr) self->wake_(self->owner_, status, events);
  }
  static void OnClosed(uv_handle_t* handle) { delete reinterpret_cast<uv_poll_t*>(handle); }

  uv_poll_t* handle_ = nullptr;
  void* owner_ = nullptr;
  Wake wake_ = nullptr;
  int events_ = 0;
  bool ref_ = true;
};

// An addon object's start(callback): polls `fd` for `events` (the process's lifetime is not held unless the poll
// was SetRef(true) before), keeps `callback` and the JS object alive while it polls; false (with a JS exception
// pending) when libuv refuses.
template <typename Wrap>
bool StartPolled(Wrap* self, Napi::Env env, FdPoll& poll, int fd, FdPoll::Wake wake, int events,
                 Napi::FunctionReference& callback, const Napi::Function& fn) {
  int rc = poll.Open(env, fd, self, wake);
  if (rc == 0) rc = poll.Start(events);
  if (rc != 0) {
    poll.Close();
    ThrowErrno(env, -rc, "uv_poll_start");
    return false;
  }
  callback = Napi::Persistent(fn);
  self->Ref();
  return true;
}

// An addon object's end: stops polling, drops the callback and the self-reference taken while polling (so the JS
// object may be collected), then closes the fd, once. `self` is the Napi::ObjectWrap that owns the rest.
template <typename Wrap>
void ShutdownPolled(Wrap* self, FdPoll& poll, Napi::FunctionReference& callback, int& fd) {
  if (poll.IsOpen()) {
    poll.Close();
    callback.Reset();
    self->Unref();
  }
  if (fd >= 0) {
    close(fd);
    fd = -1;
  }
}

}  // namespace zks
