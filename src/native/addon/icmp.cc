// zks_icmp: ICMP echo sockets for the exit peer (Linux; icmp(7), "ping sockets"; ip(7)/ipv6(7) IP_RECVERR).
// Two kinds, chosen by the caller: SOCK_DGRAM + IPPROTO_ICMP[V6] needs no privilege when the process's gid is in
// net.ipv4.ping_group_range (per network namespace); the kernel then sets the echo identifier to the socket's
// "port" and fills the checksum, delivers only replies to that identifier, and queues ICMP errors about our echoes
// on the error queue (IP_RECVERR). SOCK_RAW needs CAP_NET_RAW, sees every ICMP message (filtered to replies and
// errors below) and, for IPv4, the IP header too: the caller parses those in TypeScript (src/exit/icmp-wire.ts).
// Reads: a uv_poll_t on the non-blocking fd; each wake-up drains the error queue, then the receive queue, and
// calls JS once per message with { data, from, ttl, error }. libuv reports POLLERR (a queued ICMP error) as
// UV_EBADF and stops the poll: we drain and restart it. Sends: one sendmsg() that never blocks, errno returned.
// Invariants (as in tun.cc): the fd is closed once, after its poll is stopped; uv_close owns the handle's memory;
// while polling, the JS object is referenced so libuv never calls into a collected object.

#include <napi.h>
#include <uv.h>

#include "fd-poll.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/errqueue.h>
#include <linux/icmp.h>  // ICMP_FILTER (raw IPv4)
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

constexpr int kMaxPerWake = 64;   // messages per queue per wake-up; level-triggered, so the rest come next turn
constexpr size_t kMaxMessage = 65536;

using zks::ErrnoError;
using zks::FdPoll;
using zks::ThrowErrno;

// Text form of an AF_INET/AF_INET6 address ("" for anything else, e.g. an error without offender).
std::string AddressText(const struct sockaddr* sa) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (sa->sa_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, buf, sizeof buf);
  } else if (sa->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

class IcmpSocket : public Napi::ObjectWrap<IcmpSocket> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "IcmpSocket",
                       {
                           InstanceMethod<&IcmpSocket::Start>("start"),
                           InstanceMethod<&IcmpSocket::Send>("send"),
                           InstanceMethod<&IcmpSocket::Close>("close"),
                           InstanceMethod<&IcmpSocket::SetRef>("setRef"),
                           InstanceAccessor<&IcmpSocket::GetIdent>("ident"),
                       });
  }

  // new IcmpSocket(family: 4 | 6, raw: boolean). Throws an Error with errno/syscall (EACCES: gid not in
  // ping_group_range; EPERM: no CAP_NET_RAW for raw; EAFNOSUPPORT: no IPv6 in this kernel/namespace).
  explicit IcmpSocket(const Napi::CallbackInfo& info) : Napi::ObjectWrap<IcmpSocket>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsBoolean()) {
      Napi::TypeError::New(env, "IcmpSocket(family: 4 | 6, raw: boolean)").ThrowAsJavaScriptException();
      return;
    }
    v6_ = info[0].As<Napi::Number>().Int32Value() == 6;
    raw_ = info[1].As<Napi::Boolean>().Value();
    int fd = socket(v6_ ? AF_INET6 : AF_INET, (raw_ ? SOCK_RAW : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    v6_ ? static_cast<int>(IPPROTO_ICMPV6) : static_cast<int>(IPPROTO_ICMP));
    if (fd < 0) {
      ThrowErrno(env, errno, "socket");
      return;
    }
    const int one = 1;
    bool ok;
    if (v6_) {
      ok = setsockopt(fd, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof one) == 0;
      if (ok && raw_) {
        // Only echo replies and the two errors we report; everything else stays in the kernel.
        struct icmp6_filter filter;
        ICMP6_FILTER_SETBLOCKALL(&filter);
        ICMP6_FILTER_SETPASS(ICMP6_ECHO_REPLY, &filter);
        ICMP6_FILTER_SETPASS(ICMP6_DST_UNREACH, &filter);
        ICMP6_FILTER_SETPASS(ICMP6_TIME_EXCEEDED, &filter);
        ok = setsockopt(fd, IPPROTO_ICMPV6, ICMP6_FILTER, &filter, sizeof filter) == 0;
      }
      // Raw sockets receive ICMP errors as ordinary messages; IP_RECVERR would deliver each one twice.
      if (ok && !raw_) ok = setsockopt(fd, IPPROTO_IPV6, IPV6_RECVERR, &one, sizeof one) == 0;
    } else {
      ok = setsockopt(fd, IPPROTO_IP, IP_RECVTTL, &one, sizeof one) == 0;
      if (ok && raw_) {
        struct icmp_filter filter;  // a set bit blocks that type: pass echo reply (0), unreachable (3), time exceeded (11)
        filter.data = ~((1U << 0) | (1U << 3) | (1U << 11));
        ok = setsockopt(fd, SOL_RAW, ICMP_FILTER, &filter, sizeof filter) == 0;
      }
      if (ok && !raw_) ok = setsockopt(fd, IPPROTO_IP, IP_RECVERR, &one, sizeof one) == 0;
    }
    if (!ok) {
      int err = errno;
      close(fd);
      ThrowErrno(env, err, "setsockopt");
      return;
    }
    if (!raw_) {
      // Binding to port 0 makes the kernel pick the echo identifier now, so replies can be matched from the
      // first one; getsockname() tells us which it is.
      struct sockaddr_storage ss;
      memset(&ss, 0, sizeof ss);
      socklen_t len = v6_ ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
      ss.ss_family = v6_ ? AF_INET6 : AF_INET;
      if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
          getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
        int err = errno;
        close(fd);
        ThrowErrno(env, err, "bind");
        return;
      }
      ident_ = ntohs(v6_ ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    }
    fd_ = fd;
  }

  ~IcmpSocket() override {
    poll_.Close();  // environment teardown: detach so a late callback finds nothing
    if (fd_ >= 0) close(fd_);
    delete asyncContext_;
  }

 private:
  // start(callback): callback(null, { data, from, ttl, error }) per message; callback(err) once if the fd fails.
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ < 0) return ThrowClosed(env);
    if (info.Length() < 1 || !info[0].IsFunction() || poll_.IsOpen()) {
      Napi::TypeError::New(env, "start(callback), once").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    int rc = poll_.Open(env, fd_, this, OnWake);
    if (rc == 0) rc = poll_.Start(UV_READABLE);
    if (rc != 0) {
      poll_.Close();
      ThrowErrno(env, -rc, "uv_poll_start");
      return env.Undefined();
    }
    callback_ = Napi::Persistent(info[0].As<Napi::Function>());
    asyncContext_ = new Napi::AsyncContext(env, "ZksIcmp", Value());
    buf_.resize(kMaxMessage);
    Ref();
    return env.Undefined();
  }

  // send(address: string, packet: Uint8Array, ttl?: number) → 0, or the errno of sendmsg (EHOSTUNREACH,
  // ENETUNREACH, EAGAIN...). The packet is a whole ICMP message (header + data); a dgram socket rewrites its
  // identifier and checksum. ttl 1..255 limits this one packet's hops (IP_TTL / IPV6_HOPLIMIT as ancillary data,
  // so echoes in flight on the same socket keep theirs): what traceroute needs.
  Napi::Value Send(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ < 0) return ThrowClosed(env);
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsTypedArray() ||
        info[1].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
        (info.Length() > 2 && !info[2].IsUndefined() && !info[2].IsNumber())) {
      Napi::TypeError::New(env, "send(address: string, packet: Uint8Array, ttl?: number)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    int ttl = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : 0;
    if (ttl < 0 || ttl > 255) {
      Napi::RangeError::New(env, "ttl must be 1..255 (0: the socket's default)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    std::string text = info[0].As<Napi::String>().Utf8Value();
    Napi::Uint8Array packet = info[1].As<Napi::Uint8Array>();
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    int parsed;
    if (v6_) {
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
      sin6->sin6_family = AF_INET6;
      parsed = inet_pton(AF_INET6, text.c_str(), &sin6->sin6_addr);
      len = sizeof *sin6;
    } else {
      auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
      sin->sin_family = AF_INET;
      parsed = inet_pton(AF_INET, text.c_str(), &sin->sin_addr);
      len = sizeof *sin;
    }
    if (parsed != 1) {
      Napi::TypeError::New(env, "not an IPv" + std::string(v6_ ? "6" : "4") + " address: " + text)
          .ThrowAsJavaScriptException();
      return env.Undefined();
    }
    struct iovec iov = {packet.Data(), packet.ByteLength()};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_name = &ss;
    msg.msg_namelen = len;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    if (ttl > 0) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      struct cmsghdr* c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = v6_ ? IPPROTO_IPV6 : IPPROTO_IP;
      c->cmsg_type = v6_ ? IPV6_HOPLIMIT : IP_TTL;
      c->cmsg_len = CMSG_LEN(sizeof(int));
      memcpy(CMSG_DATA(c), &ttl, sizeof ttl);
    }
    // The kernel also records every ICMP error as the socket's pending error (sk_err), and the next send reports
    // THAT (consuming it) instead of sending: an unreachable host would fail the next echo to any other host. So a
    // failure is retried once; a real local failure (no route) fails the same way again.
    ssize_t n = -1;
    for (int attempt = 0; attempt < 2 && n < 0; attempt++) {
      do {
        n = sendmsg(fd_, &msg, MSG_DONTWAIT);
      } while (n < 0 && errno == EINTR);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) break;
    }
    return Napi::Number::New(env, n < 0 ? errno : 0);
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  Napi::Value SetRef(const Napi::CallbackInfo& info) {
    poll_.SetRef(info.Length() > 0 && info[0].ToBoolean().Value());
    return info.Env().Undefined();
  }

  // The echo identifier the kernel gave a dgram socket; 0 for raw sockets (the caller picks its own).
  Napi::Value GetIdent(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), ident_); }

  Napi::Value ThrowClosed(Napi::Env env) {
    ThrowErrno(env, EBADF, "ICMP socket is closed");
    return env.Undefined();
  }

  void Shutdown() { ShutdownPolled(this, poll_, callback_, fd_); }

  static void OnWake(void* owner, int status, int /*events*/) { static_cast<IcmpSocket*>(owner)->Drain(status); }

  void Drain(int status) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (status < 0) {
      // libuv turns POLLERR into UV_EBADF and stops the poll. POLLERR here means a queued ICMP error (or a
      // pending sk_err, which SO_ERROR reads and clears so it cannot spin); only a really closed fd is fatal.
      if (fcntl(fd_, F_GETFD) < 0) {
        Emit({ErrnoError(env, EBADF, "poll")});
        return;
      }
      int soError = 0;
      socklen_t len = sizeof soError;
      getsockopt(fd_, SOL_SOCKET, SO_ERROR, &soError, &len);
    }
    for (int i = 0; i < kMaxPerWake && poll_.IsOpen() && ReadOne(env, MSG_ERRQUEUE) != kEmpty; i++) {
    }
    for (int i = 0; i < kMaxPerWake && poll_.IsOpen() && ReadOne(env, 0) != kEmpty; i++) {
    }
    if (status < 0 && poll_.IsOpen()) {  // closed when a callback closed us
      int rc = poll_.Start(UV_READABLE);
      if (rc != 0) Emit({ErrnoError(env, -rc, "uv_poll_start")});
    }
  }

  enum ReadResult { kRead, kEmpty, kPendingError };

  // Reads one message from the receive queue (flags 0) or the error queue. kPendingError: recvmsg reported (and
  // cleared) the socket's pending error, an ICMP error the error queue also holds: read on.
  ReadResult ReadOne(Napi::Env env, int flags) {
    struct sockaddr_storage from;
    alignas(struct cmsghdr) char control[512];
    struct iovec iov = {buf_.data(), buf_.size()};
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    memset(&from, 0, sizeof from);
    ssize_t n;
    do {
      n = recvmsg(fd_, &msg, flags | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? kEmpty : kPendingError;

    int ttl = -1;
    Napi::Value error = env.Null();
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      bool ttlMsg = (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) ||
                    (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT);
      bool errMsg = (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
                    (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR);
      if (ttlMsg && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
        memcpy(&ttl, CMSG_DATA(c), sizeof ttl);
      } else if (errMsg && c->cmsg_len >= CMSG_LEN(sizeof(sock_extended_err))) {
        // The extended error, then (when the error came from an ICMP message) the sender of that message.
        auto* ee = reinterpret_cast<const sock_extended_err*>(CMSG_DATA(c));
        Napi::Object e = Napi::Object::New(env);
        e.Set("errno", Napi::Number::New(env, ee->ee_errno));
        e.Set("origin", Napi::Number::New(env, ee->ee_origin));
        e.Set("type", Napi::Number::New(env, ee->ee_type));
        e.Set("code", Napi::Number::New(env, ee->ee_code));
        const sockaddr* offender = SO_EE_OFFENDER(ee);
        bool hasOffender = c->cmsg_len >= CMSG_LEN(sizeof(sock_extended_err) + sizeof(sockaddr_in));
        e.Set("offender", Napi::String::New(env, hasOffender ? AddressText(offender) : ""));
        error = e;
      }
    }
    if ((flags & MSG_ERRQUEUE) != 0 && error.IsNull()) return kRead;  // not an ICMP error (cannot happen here)

    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, static_cast<size_t>(n));
    memcpy(ab.Data(), buf_.data(), static_cast<size_t>(n));
    Napi::Object m = Napi::Object::New(env);
    m.Set("data", Napi::Uint8Array::New(env, static_cast<size_t>(n), ab, 0));
    // For an error, msg_name is the destination of the echo it is about (see ip_recv_error()).
    m.Set("from", Napi::String::New(env, AddressText(reinterpret_cast<sockaddr*>(&from))));
    m.Set("ttl", Napi::Number::New(env, ttl));
    m.Set("error", error);
    Emit({env.Null(), m});
    return kRead;
  }

  void Emit(std::initializer_list<napi_value> args) {
    if (callback_.IsEmpty()) return;
    Napi::Env env = Env();
    callback_.MakeCallback(Value(), args, *asyncContext_);
    if (env.IsExceptionPending()) {
      Napi::Error e = env.GetAndClearPendingException();
      napi_fatal_exception(env, e.Value());
    }
  }

  int fd_ = -1;
  bool v6_ = false;
  bool raw_ = false;
  uint16_t ident_ = 0;
  FdPoll poll_;
  Napi::FunctionReference callback_;
  Napi::AsyncContext* asyncContext_ = nullptr;
  std::vector<uint8_t> buf_;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("IcmpSocket", IcmpSocket::Define(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(zks_icmp, Init)
