// UdpSocket: the exit peer's NAT sockets (src/native/udp-socket.ts wraps it) with batched system calls. node:dgram
// makes one sendmsg() per datagram and one recvmsg() + one JS callback per datagram received; a system call costs
// ~3-5 µs on the VMs we run on, so at 50 000 datagrams/s that alone was half a core, and the receiver of a burst
// lost datagrams to the CPU we took. Here:
// - send(payloads, dests, start, end): as few sendmmsg() calls as possible, runs to one destination as UDP GSO
//   messages (udp-send.h: BatchSender).
// - reads: a poll on the fd (fd-poll.h); each wake-up drains with recvmmsg() into one shared slab and calls JS once
//   per batch.
// Invariants (as in icmp.cc): the fd is closed once, after its poll is stopped; while polling, the JS object is
// referenced so libuv never calls into a collected object.
#include "udp.h"

#include "fd-poll.h"
#include "udp-send.h"

#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace zks {
namespace {

constexpr int kMaxMessages = 64;      // datagrams per recvmmsg()
constexpr size_t kSlot = 65536;       // receive buffer per datagram: the largest UDP payload fits
constexpr int kReadBatchesPerWake = 4;  // level-triggered: whatever is left comes at the next turn

bool IsBytes(const Napi::Value& v) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array;
}

enum Kind { kDatagrams = 0, kWritable = 1, kError = 2 };

// The receive slab, shared by every socket: JS copies what it keeps before the callback returns.
std::vector<uint8_t>& Slab() {
  static std::vector<uint8_t> slab(kSlot * kMaxMessages);
  return slab;
}

class UdpSocket : public Napi::ObjectWrap<UdpSocket> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "UdpSocket",
                       {InstanceMethod<&UdpSocket::Start>("start"), InstanceMethod<&UdpSocket::Send>("send"),
                        InstanceMethod<&UdpSocket::WaitWritable>("waitWritable"),
                        InstanceMethod<&UdpSocket::Close>("close"), InstanceMethod<&UdpSocket::SetRef>("setRef"),
                        InstanceAccessor<&UdpSocket::GetPort>("port"),
                        InstanceAccessor<&UdpSocket::GetSendErrno>("sendErrno"),
                        InstanceAccessor<&UdpSocket::GetSendFailed>("sendFailed")});
  }

  // new UdpSocket(family: 4 | 6, receiveBuffer?: bytes, address?: string): bound to `address` (default: the
  // wildcard address), an ephemeral port; IPv6 sockets are v6-only. receiveBuffer asks for SO_RCVBUF (the kernel
  // caps it at net.core.rmem_max and doubles it). Throws an Error with errno/syscall (EMFILE, EADDRNOTAVAIL...).
  explicit UdpSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<UdpSocket>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber() || (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNumber()) ||
        (info.Length() > 2 && !info[2].IsUndefined() && !info[2].IsString())) {
      Napi::TypeError::New(env, "UdpSocket(family: 4 | 6, receiveBuffer?: number, address?: string)").ThrowAsJavaScriptException();
      return;
    }
    int receiveBuffer = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : 0;
    v6_ = info[0].As<Napi::Number>().Int32Value() == 6;
    int fd = socket(v6_ ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      ThrowErrno(env, errno, "socket");
      return;
    }
    const int one = 1;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len = v6_ ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    ss.ss_family = v6_ ? AF_INET6 : AF_INET;
    if (info.Length() > 2 && info[2].IsString()) {
      std::string text = info[2].As<Napi::String>().Utf8Value();
      void* dst = v6_ ? static_cast<void*>(&reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr)
                      : static_cast<void*>(&reinterpret_cast<sockaddr_in*>(&ss)->sin_addr);
      if (inet_pton(v6_ ? AF_INET6 : AF_INET, text.c_str(), dst) != 1) {
        close(fd);
        Napi::TypeError::New(env, "not an IPv" + std::string(v6_ ? "6" : "4") + " address: " + text).ThrowAsJavaScriptException();
        return;
      }
    }
    const char* failed = nullptr;
    if (v6_ && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) failed = "setsockopt";
    if (failed == nullptr && receiveBuffer > 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receiveBuffer, sizeof receiveBuffer) != 0) {
      failed = "setsockopt";
    }
    if (failed == nullptr && bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) failed = "bind";
    if (failed == nullptr && getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) failed = "getsockname";
    if (failed != nullptr) {
      int err = errno;
      close(fd);
      ThrowErrno(env, err, failed);
      return;
    }
    port_ = ntohs(v6_ ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    fd_ = fd;
  }

  ~UdpSocket() override {
    poll_.Close();  // environment teardown: detach so a late callback finds nothing
    if (fd_ >= 0) close(fd_);
  }

 private:
  // start(callback): callback.call(socket, 0, data: ArrayBuffer, meta: Int32Array [end, port] per datagram, hosts)
  // per batch read; callback(1) once the socket is writable after waitWritable(); callback(2, error) when the fd
  // fails. Once.
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ < 0) return ThrowClosed(env);
    if (info.Length() < 1 || !info[0].IsFunction() || poll_.IsOpen()) {
      Napi::TypeError::New(env, "start(callback), once").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    StartPolled(this, env, poll_, fd_, OnWake, UV_READABLE, callback_, info[0].As<Napi::Function>());
    return env.Undefined();
  }

  // send(payloads: Uint8Array[], dests: Uint8Array[], start, end) → how many datagrams from `start` went to the
  // kernel. Fewer than end - start: the next `sendFailed` datagrams failed with `sendErrno` (EAGAIN: the send
  // buffer is full, waitWritable() tells when to go on), and the caller goes on after them.
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ < 0) return ThrowClosed(env);
    if (info.Length() < 4 || !info[0].IsArray() || !info[1].IsArray() || !info[2].IsNumber() || !info[3].IsNumber()) {
      Napi::TypeError::New(env, "send(payloads, dests, start, end)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Array payloads = info[0].As<Napi::Array>();
    Napi::Array dests = info[1].As<Napi::Array>();
    uint32_t start = info[2].As<Napi::Number>().Uint32Value();
    uint32_t end = info[3].As<Napi::Number>().Uint32Value();
    if (end > payloads.Length() || end > dests.Length() || start > end) {
      Napi::RangeError::New(env, "send: start/end outside the arrays").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    // Every datagram's bytes and destination first (JS may not run while the iovecs point into its buffers).
    std::vector<OutDatagram>& datagrams = OutDatagrams();
    datagrams.clear();
    for (uint32_t i = start; i < end; i++) {
      Napi::Value p = payloads[i];
      Napi::Value d = dests[i];
      if (!IsBytes(p) || !IsBytes(d) || d.As<Napi::Uint8Array>().ByteLength() != kDestSize) {
        Napi::TypeError::New(env, "send: payloads must be Uint8Arrays, dests 18-byte Uint8Arrays").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      Napi::Uint8Array pa = p.As<Napi::Uint8Array>();
      datagrams.push_back({pa.Data(), pa.ByteLength(), d.As<Napi::Uint8Array>().Data()});
    }
    size_t sent = sender_.Send(fd_, v6_, datagrams);
    return Napi::Number::New(env, static_cast<double>(sent));
  }


  // waitWritable(): callback(1) once the kernel takes datagrams again (after an EAGAIN).
  Napi::Value WaitWritable(const Napi::CallbackInfo& info) {
    if (poll_.IsOpen() && poll_.Start(UV_READABLE | UV_WRITABLE) != 0) {
      Emit({Napi::Number::New(info.Env(), kError), ErrnoError(info.Env(), EBADF, "uv_poll_start")});
    }
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  Napi::Value SetRef(const Napi::CallbackInfo& info) {
    poll_.SetRef(info.Length() > 0 && info[0].ToBoolean().Value());
    return info.Env().Undefined();
  }

  Napi::Value GetPort(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), port_); }
  Napi::Value GetSendErrno(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), sender_.Errno()); }
  Napi::Value GetSendFailed(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), sender_.Failed()); }

  Napi::Value ThrowClosed(Napi::Env env) {
    ThrowErrno(env, EBADF, "UDP socket is closed");
    return env.Undefined();
  }

  void Shutdown() { ShutdownPolled(this, poll_, callback_, fd_); }

  static void OnWake(void* owner, int status, int events) { static_cast<UdpSocket*>(owner)->Wake(status, events); }

  void Wake(int status, int events) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (status < 0) {
      // libuv reports POLLERR as UV_EBADF and stops the poll: a pending socket error (SO_ERROR reads and clears it)
      // or a really closed fd, which is fatal.
      if (fcntl(fd_, F_GETFD) < 0) {
        Emit({Napi::Number::New(env, kError), ErrnoError(env, EBADF, "poll")});
        return;
      }
      int soError = 0;
      socklen_t len = sizeof soError;
      getsockopt(fd_, SOL_SOCKET, SO_ERROR, &soError, &len);
      events = UV_READABLE | (poll_.Events() & UV_WRITABLE);
    }
    if ((events & UV_WRITABLE) != 0 && (poll_.Events() & UV_WRITABLE) != 0) {
      if (poll_.Start(UV_READABLE) != 0) return;
      Emit({Napi::Number::New(env, kWritable)});
    }
    for (int i = 0; i < kReadBatchesPerWake && poll_.IsOpen() && (events & UV_READABLE) != 0; i++) {
      if (ReadBatch(env) < kMaxMessages) break;
    }
    if (status < 0 && poll_.IsOpen() && poll_.Start(poll_.Events()) != 0) {  // closed when a callback closed us
      Emit({Napi::Number::New(env, kError), ErrnoError(env, EBADF, "uv_poll_start")});
    }
  }

  // One recvmmsg() into the slab and one callback with what it read; returns how many datagrams.
  int ReadBatch(Napi::Env env) {
    std::vector<uint8_t>& slab = Slab();
    struct mmsghdr msgs[kMaxMessages];
    struct iovec iovs[kMaxMessages];
    struct sockaddr_storage from[kMaxMessages];
    memset(msgs, 0, sizeof msgs);
    for (int i = 0; i < kMaxMessages; i++) {
      iovs[i] = {slab.data() + i * kSlot, kSlot};
      msgs[i].msg_hdr.msg_iov = &iovs[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    }
    int n;
    do {
      n = recvmmsg(fd_, msgs, kMaxMessages, MSG_DONTWAIT, nullptr);
    } while (n < 0 && errno == EINTR);
    if (n <= 0) {
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) Emit({Napi::Number::New(env, kError), ErrnoError(env, errno, "recvmmsg")});
      return 0;
    }
    size_t total = 0;
    for (int i = 0; i < n; i++) total += msgs[i].msg_len;
    Napi::ArrayBuffer data = Napi::ArrayBuffer::New(env, total);
    Napi::Int32Array meta = Napi::Int32Array::New(env, 2 * static_cast<size_t>(n));
    Napi::Array hosts = Napi::Array::New(env, n);
    size_t at = 0;
    Napi::String host;
    for (int i = 0; i < n; i++) {
      memcpy(static_cast<uint8_t*>(data.Data()) + at, slab.data() + i * kSlot, msgs[i].msg_len);
      at += msgs[i].msg_len;
      bool same = i > 0 && msgs[i].msg_hdr.msg_namelen == msgs[i - 1].msg_hdr.msg_namelen &&
                  memcmp(&from[i], &from[i - 1], msgs[i].msg_hdr.msg_namelen) == 0;
      if (!same) host = Napi::String::New(env, HostText(from[i]));
      hosts[static_cast<uint32_t>(i)] = host;
      meta[2 * i] = static_cast<int32_t>(at);
      meta[2 * i + 1] = ntohs(reinterpret_cast<sockaddr_in*>(&from[i])->sin_port);  // same offset in sockaddr_in6
    }
    Emit({Napi::Number::New(env, kDatagrams), data, meta, hosts});
    return n;
  }

  static std::string HostText(const sockaddr_storage& ss) {
    char buf[INET6_ADDRSTRLEN] = "";
    if (ss.ss_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
    } else if (ss.ss_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof buf);
    }
    return buf;
  }

  // Called with the socket object as `this`, so one JS function can serve every socket. No async context of its
  // own (a resource object per socket would cost more than the socket); microtasks run after it as usual.
  void Emit(std::initializer_list<napi_value> args) {
    if (callback_.IsEmpty()) return;
    Napi::Env env = Env();
    callback_.MakeCallback(Value(), args);
    if (env.IsExceptionPending()) {
      Napi::Error e = env.GetAndClearPendingException();
      napi_fatal_exception(env, e.Value());
    }
  }

  int fd_ = -1;
  bool v6_ = false;
  uint16_t port_ = 0;
  FdPoll poll_;
  BatchSender sender_;
  Napi::FunctionReference callback_;
};

}  // namespace

Napi::Function DefineUdpSocket(Napi::Env env) { return UdpSocket::Define(env); }

}  // namespace zks
