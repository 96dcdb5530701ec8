// UdpSocket: the exit peer's NAT sockets (src/native/udp-socket.ts wraps it) with batched system calls. node:dgram
// makes one sendmsg() per datagram and one recvmsg() + one JS callback per datagram received; a system call costs
// ~3-5 µs on the VMs we run on, so at 50 000 datagrams/s that alone was half a core, and the receiver of a burst
// lost datagrams to the CPU we took. Here:
// - send(payloads, dests, start, end): one sendmmsg() for up to kMaxMessages messages; consecutive datagrams to
//   the same destination of the same size (the last one may be shorter) go as ONE message with UDP_SEGMENT (UDP
//   GSO, Linux ≥ 4.18): the kernel cuts it into the same datagrams on the wire. A group the kernel refuses as GSO
//   (EMSGSIZE: larger than the path MTU allows; EIO: the device cannot checksum it) is sent datagram by datagram.
// - reads: a uv_poll_t; each wake-up drains with recvmmsg() into one shared slab and calls JS once per batch.
// Invariants (as in icmp.cc): the fd is closed once, after its poll is stopped; uv_close owns the handle's memory;
// while polling, the JS object is referenced so libuv never calls into a collected object.
#include "udp.h"

#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

namespace zks {
namespace {

constexpr int kMaxMessages = 64;      // messages per sendmmsg()/recvmmsg()
constexpr int kMaxSegments = 64;      // datagrams in one GSO message (the kernel's UDP_MAX_SEGMENTS is ≥ 64)
constexpr size_t kMaxGsoBytes = 65000;  // payload bytes in one GSO message (an IP packet holds 65 535)
constexpr size_t kSlot = 65536;       // receive buffer per datagram: the largest UDP payload fits
constexpr int kReadBatchesPerWake = 4;  // level-triggered: whatever is left comes at the next turn
constexpr size_t kDestSize = 18;      // destination: 16 address bytes (IPv4 in the first 4), port big-endian

enum Kind { kDatagrams = 0, kWritable = 1, kError = 2 };

Napi::Value ErrnoError(Napi::Env env, int err, const std::string& syscall) {
  Napi::Error e = Napi::Error::New(env, syscall + ": " + strerror(err));
  e.Value().Set("errno", Napi::Number::New(env, err));
  e.Value().Set("syscall", Napi::String::New(env, syscall));
  return e.Value();
}

// The receive slab, shared by every socket: JS copies what it keeps before the callback returns.
std::vector<uint8_t>& Slab() {
  static std::vector<uint8_t> slab(kSlot * kMaxMessages);
  return slab;
}

struct Datagram {
  uint8_t* data;
  size_t length;
  const uint8_t* dest;
};

struct Message {
  size_t first;  // index into the datagrams
  size_t count;
  uint16_t segment;  // GSO segment size; 0: a plain datagram
};

struct Control {
  alignas(struct cmsghdr) char bytes[CMSG_SPACE(sizeof(uint16_t))];
};

// send()'s working memory, shared by every socket of the thread (thousands of idle flows must stay small).
struct SendScratch {
  std::vector<Datagram> datagrams;
  std::vector<Message> messages;
  std::vector<struct iovec> iovs;
  std::vector<sockaddr_storage> addrs;
  std::vector<Control> controls;
  std::vector<struct mmsghdr> headers;
};

SendScratch& Scratch() {
  static thread_local SendScratch scratch;
  return scratch;
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
      Napi::Error(env, ErrnoError(env, errno, "socket")).ThrowAsJavaScriptException();
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
      Napi::Error(env, ErrnoError(env, err, failed)).ThrowAsJavaScriptException();
      return;
    }
    port_ = ntohs(v6_ ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    fd_ = fd;
  }

  ~UdpSocket() override {
    if (poll_ != nullptr) {  // environment teardown: detach so a late callback finds nothing
      poll_->data = nullptr;
      if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(poll_))) {
        uv_close(reinterpret_cast<uv_handle_t*>(poll_), OnHandleClosed);
      }
      poll_ = nullptr;
    }
    if (fd_ >= 0) close(fd_);
  }

 private:
  // start(callback): callback.call(socket, 0, data: ArrayBuffer, meta: Int32Array [end, port] per datagram, hosts)
  // per batch read; callback(1) once the socket is writable after waitWritable(); callback(2, error) when the fd
  // fails. Once.
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ < 0) return ThrowClosed(env);
    if (info.Length() < 1 || !info[0].IsFunction() || poll_ != nullptr) {
      Napi::TypeError::New(env, "start(callback), once").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
      Napi::Error::New(env, "no event loop").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    auto* poll = new uv_poll_t;
    int rc = uv_poll_init(loop, poll, fd_);
    if (rc != 0) {
      delete poll;  // not registered with the loop
      Napi::Error(env, ErrnoError(env, -rc, "uv_poll_init")).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    poll->data = this;
    poll_ = poll;
    if (!Poll(UV_READABLE)) {
      Shutdown();
      Napi::Error(env, ErrnoError(env, EBADF, "uv_poll_start")).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (!ref_) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    callback_ = Napi::Persistent(info[0].As<Napi::Function>());
    Ref();
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
    SendScratch& sc = Scratch();
    sc.datagrams.clear();
    for (uint32_t i = start; i < end; i++) {
      Napi::Value p = payloads[i];
      Napi::Value d = dests[i];
      if (!p.IsTypedArray() || !d.IsTypedArray() || d.As<Napi::Uint8Array>().ByteLength() != kDestSize) {
        Napi::TypeError::New(env, "send: payloads must be Uint8Arrays, dests 18-byte Uint8Arrays").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      Napi::Uint8Array pa = p.As<Napi::Uint8Array>();
      sc.datagrams.push_back({pa.Data(), pa.ByteLength(), d.As<Napi::Uint8Array>().Data()});
    }
    sendErrno_ = 0;
    sendFailed_ = 0;
    plainUntil_ = 0;
    size_t sent = 0;
    while (sent < sc.datagrams.size()) {
      size_t n = SendSome(sent);
      if (n == 0) break;  // sendErrno_/sendFailed_ say why
      sent += n;
    }
    return Napi::Number::New(env, static_cast<double>(sent));
  }

  // Datagrams [from, from + n) that may go as one GSO message: same destination, same size except a shorter last.
  size_t GroupAt(size_t from) const {
    SendScratch& sc = Scratch();
    const Datagram& head = sc.datagrams[from];
    if (!gso_ || from < plainUntil_ || head.length > gsoMaxSegment_ || head.length == 0) return 1;
    size_t n = 1;
    size_t bytes = head.length;
    while (from + n < sc.datagrams.size() && n < kMaxSegments) {
      const Datagram& d = sc.datagrams[from + n];
      if (d.length > head.length || d.length == 0 || bytes + d.length > kMaxGsoBytes ||
          memcmp(d.dest, head.dest, kDestSize) != 0) {
        break;
      }
      bytes += d.length;
      n++;
      if (d.length < head.length) break;  // only the last segment may be shorter
    }
    return n;
  }

  // One sendmmsg() from datagram `from`: returns how many datagrams went; 0 with sendErrno_/sendFailed_ set when
  // the first message failed.
  size_t SendSome(size_t from) {
    SendScratch& sc = Scratch();
    sc.messages.clear();
    size_t at = from;
    while (at < sc.datagrams.size() && sc.messages.size() < kMaxMessages) {
      size_t n = GroupAt(at);
      sc.messages.push_back({at, n, static_cast<uint16_t>(n > 1 ? sc.datagrams[at].length : 0)});
      at += n;
    }
    int sent = Transmit();
    if (sent < 0) {
      const Message m = sc.messages[0];
      int err = -sent;
      if (m.segment != 0) {
        // Refused as a GSO message. Sent plainly, one by one: when the first then goes, GSO was the problem —
        // EMSGSIZE/EINVAL: the segment is larger than the path MTU allows (remember the size); EIO and the like:
        // the device or kernel cannot do it at all. When it fails too, the error is the datagram's own.
        plainUntil_ = m.first + m.count;
        size_t n = SendSome(from);
        if (n > 0) {
          if (err == EMSGSIZE || err == EINVAL) {
            gsoMaxSegment_ = m.segment - 1;
          } else {
            gso_ = false;
          }
        }
        return n;
      }
      sendErrno_ = err;
      sendFailed_ = static_cast<uint32_t>(m.count);
      return 0;
    }
    size_t datagrams = 0;
    for (int i = 0; i < sent; i++) datagrams += sc.messages[i].count;
    return datagrams;
  }

  // sendmmsg() of the scratch messages: how many messages went, or -errno when the first one failed.
  int Transmit() {
    SendScratch& sc = Scratch();
    size_t iovCount = 0;
    for (const Message& m : sc.messages) iovCount += m.count;
    sc.iovs.resize(iovCount);
    sc.addrs.resize(sc.messages.size());
    sc.controls.resize(sc.messages.size());
    sc.headers.resize(sc.messages.size());
    size_t iov = 0;
    for (size_t i = 0; i < sc.messages.size(); i++) {
      const Message& m = sc.messages[i];
      struct msghdr& h = sc.headers[i].msg_hdr;
      memset(&sc.headers[i], 0, sizeof sc.headers[i]);
      h.msg_iov = &sc.iovs[iov];
      h.msg_iovlen = m.count;
      for (size_t k = 0; k < m.count; k++, iov++) sc.iovs[iov] = {sc.datagrams[m.first + k].data, sc.datagrams[m.first + k].length};
      h.msg_name = &sc.addrs[i];
      h.msg_namelen = FillAddress(sc.datagrams[m.first].dest, &sc.addrs[i]);
      if (m.segment != 0) {
        h.msg_control = sc.controls[i].bytes;
        h.msg_controllen = sizeof sc.controls[i].bytes;
        struct cmsghdr* c = CMSG_FIRSTHDR(&h);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        memcpy(CMSG_DATA(c), &m.segment, sizeof m.segment);
      }
    }
    int r;
    do {
      r = sendmmsg(fd_, sc.headers.data(), static_cast<unsigned>(sc.headers.size()), MSG_DONTWAIT);
    } while (r < 0 && errno == EINTR);
    if (r > 0) return r;
    return r == 0 ? -EAGAIN : -errno;
  }

  socklen_t FillAddress(const uint8_t* dest, sockaddr_storage* ss) const {
    memset(ss, 0, sizeof(sockaddr_in6));
    uint16_t port;
    memcpy(&port, dest + 16, 2);  // already big-endian
    if (v6_) {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(ss);
      sin6->sin6_family = AF_INET6;
      sin6->sin6_port = port;
      memcpy(&sin6->sin6_addr, dest, 16);
      return sizeof *sin6;
    }
    auto* sin = reinterpret_cast<sockaddr_in*>(ss);
    sin->sin_family = AF_INET;
    sin->sin_port = port;
    memcpy(&sin->sin_addr, dest, 4);
    return sizeof *sin;
  }

  // waitWritable(): callback(1) once the kernel takes datagrams again (after an EAGAIN).
  Napi::Value WaitWritable(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr && !Poll(UV_READABLE | UV_WRITABLE)) {
      Emit({Napi::Number::New(info.Env(), kError), ErrnoError(info.Env(), EBADF, "uv_poll_start")});
    }
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  Napi::Value SetRef(const Napi::CallbackInfo& info) {
    ref_ = info.Length() > 0 && info[0].ToBoolean().Value();
    if (poll_ != nullptr) {
      if (ref_) {
        uv_ref(reinterpret_cast<uv_handle_t*>(poll_));
      } else {
        uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
      }
    }
    return info.Env().Undefined();
  }

  Napi::Value GetPort(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), port_); }
  Napi::Value GetSendErrno(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), sendErrno_); }
  Napi::Value GetSendFailed(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), sendFailed_); }

  Napi::Value ThrowClosed(Napi::Env env) {
    Napi::Error(env, ErrnoError(env, EBADF, "UDP socket is closed")).ThrowAsJavaScriptException();
    return env.Undefined();
  }

  bool Poll(int events) {
    events_ = events;
    return uv_poll_start(poll_, events, OnPoll) == 0;
  }

  void Shutdown() {
    if (poll_ != nullptr) {
      poll_->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), OnHandleClosed);
      poll_ = nullptr;
      callback_.Reset();
      Unref();
    }
    if (fd_ >= 0) {
      close(fd_);
      fd_ = -1;
    }
  }

  static void OnHandleClosed(uv_handle_t* handle) { delete reinterpret_cast<uv_poll_t*>(handle); }

  static void OnPoll(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<UdpSocket*>(handle->data);
    if (self != nullptr) self->Wake(status, events);
  }

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
      events = UV_READABLE | (events_ & UV_WRITABLE);
    }
    if ((events & UV_WRITABLE) != 0 && (events_ & UV_WRITABLE) != 0) {
      if (!Poll(UV_READABLE)) return;
      Emit({Napi::Number::New(env, kWritable)});
    }
    for (int i = 0; i < kReadBatchesPerWake && poll_ != nullptr && (events & UV_READABLE) != 0; i++) {
      if (ReadBatch(env) < kMaxMessages) break;
    }
    if (status < 0 && poll_ != nullptr && !Poll(events_)) {  // null when a callback closed us
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
  bool ref_ = true;
  bool gso_ = true;
  size_t gsoMaxSegment_ = 65535;
  size_t plainUntil_ = 0;  // datagrams before this index (of the current send) go without GSO
  int events_ = 0;
  uint16_t port_ = 0;
  int sendErrno_ = 0;
  uint32_t sendFailed_ = 0;
  uv_poll_t* poll_ = nullptr;
  Napi::FunctionReference callback_;
};

}  // namespace

Napi::Function DefineUdpSocket(Napi::Env env) { return UdpSocket::Define(env); }

}  // namespace zks
