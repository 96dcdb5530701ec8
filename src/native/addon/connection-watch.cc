// ConnectionWatch: a TCP connection whose only remaining meaning is its end — a SOCKS5 UDP association's control
// connection (RFC 1928 §7) — held for a fraction of a net.Socket's memory (measured: ~1.5 KiB of JS objects and
// native handles per connection, most of an idle association). new ConnectionWatch(fd) dup()s the caller's fd (the
// caller then destroys its net.Socket; the connection lives on in the copy); start(callback) polls the copy, reads
// and discards whatever arrives, and calls callback(errno) once when the peer closes (0), resets or the connection
// fails; close() closes the connection. Invariants as in udp.cc: the fd is closed once, after its poll is stopped;
// while polling, the JS object is referenced so libuv never calls into a collected object.
#include "connection-watch.h"

#include "fd-poll.h"

#include <uv.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

namespace zks {
namespace {

constexpr int kReadsPerWake = 16;  // level-triggered: a client that keeps sending is read again next turn

class ConnectionWatch : public Napi::ObjectWrap<ConnectionWatch> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ConnectionWatch",
                       {InstanceMethod<&ConnectionWatch::Start>("start"), InstanceMethod<&ConnectionWatch::Close>("close")});
  }

  explicit ConnectionWatch(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ConnectionWatch>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) {
      Napi::TypeError::New(env, "ConnectionWatch(fd: number)").ThrowAsJavaScriptException();
      return;
    }
    int fd = fcntl(info[0].As<Napi::Number>().Int32Value(), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) {
      ThrowErrno(env, errno, "dup");
      return;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
      int err = errno;
      close(fd);
      ThrowErrno(env, err, "fcntl");
      return;
    }
    fd_ = fd;
  }

  ~ConnectionWatch() override {
    poll_.Close();
    if (fd_ >= 0) close(fd_);
  }

 private:
  // start(callback): callback(errno) once, when the connection ends. The poll does not keep the process alive.
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ < 0) {
      ThrowErrno(env, EBADF, "connection watch is closed");
      return env.Undefined();
    }
    if (info.Length() < 1 || !info[0].IsFunction() || poll_.IsOpen()) {
      Napi::TypeError::New(env, "start(callback), once").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    poll_.SetRef(false);
    StartPolled(this, env, poll_, fd_, OnWake, UV_READABLE | UV_DISCONNECT, callback_, info[0].As<Napi::Function>());
    return env.Undefined();
  }

  // close(): closes the connection (the peer reads EOF, or a reset if it sent something unread); no callback.
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  void Shutdown() { ShutdownPolled(this, poll_, callback_, fd_); }

  static void OnWake(void* owner, int status, int events) { static_cast<ConnectionWatch*>(owner)->Wake(status, events); }

  void Wake(int status, int /* events */) {
    int ended = -1;  // -1: still open; else the errno to report (0: the peer closed)
    if (status < 0) {
      // POLLERR (libuv: UV_EBADF, poll stopped): the pending socket error says what happened.
      int soError = 0;
      socklen_t len = sizeof soError;
      ended = getsockopt(fd_, SOL_SOCKET, SO_ERROR, &soError, &len) == 0 && soError != 0 ? soError : EBADF;
    }
    char discard[4096];
    for (int i = 0; i < kReadsPerWake && ended < 0; i++) {
      ssize_t n = recv(fd_, discard, sizeof discard, MSG_DONTWAIT);
      if (n > 0) continue;
      if (n == 0) ended = 0;
      else if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      else if (errno != EINTR) ended = errno;
    }
    if (ended < 0) return;
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    Napi::FunctionReference callback = std::move(callback_);
    Shutdown();
    if (callback.IsEmpty()) return;
    callback.MakeCallback(Value(), {Napi::Number::New(env, ended)});
    if (env.IsExceptionPending()) {
      Napi::Error e = env.GetAndClearPendingException();
      napi_fatal_exception(env, e.Value());
    }
  }

  int fd_ = -1;
  FdPoll poll_;
  Napi::FunctionReference callback_;
};

}  // namespace

Napi::Function DefineConnectionWatch(Napi::Env env) { return ConnectionWatch::Define(env); }

}  // namespace zks
