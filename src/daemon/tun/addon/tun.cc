// zks_tun: a Linux TUN device for Node (linux/if_tun.h; virtio_net_hdr from the virtio 1.x spec, §5.1.6).
// Reads: a uv_poll_t watches the non-blocking fd; each wake-up drains up to maxPackets / maxBytes into ONE
// ArrayBuffer laid out [table | packets] and calls JS once through MakeCallback, so a throw in the callback
// becomes an uncaught exception instead of vanishing. The ArrayBuffer is malloc'd memory of the exact size
// (external, freed when collected): Napi::ArrayBuffer::New zero-fills, and at GB/s that pass over fresh pages
// cost more than the reads themselves. Writes: synchronous write()/writev() per packet that stop
// at EAGAIN and report how many went out; nothing here ever blocks the event loop.
// Invariants: the fd is closed exactly once, after its poll handle is stopped; uv_close owns the handle's memory;
// while the poll is started the JS object is strongly referenced, so it cannot be collected under libuv's feet.
// Also here, since zksd loads one addon: the two socket options Node lacks (SO_MARK, SO_PEERCRED; tun/sockets.ts).

#include <napi.h>
#include <uv.h>

#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

// struct virtio_net_hdr (virtio 1.x §5.1.6, legacy layout without num_buffers). Declared here because
// <linux/virtio_net.h> does not compile as C++ (a member named `class`).
struct VnetHdr {
  uint8_t flags;
  uint8_t gso_type;
  uint16_t hdr_len;
  uint16_t gso_size;
  uint16_t csum_start;
  uint16_t csum_offset;
};
static_assert(sizeof(VnetHdr) == 10, "virtio_net_hdr is 10 bytes");

// One row of the batch table per packet, as u32: where the IP packet starts in the data view, its length, then
// the virtio_net_hdr fields the kernel put in front of it (all zero in plain mode).
enum TableField : uint32_t {
  kOffset = 0,
  kLength,
  kFlags,
  kGsoType,
  kHdrLen,
  kGsoSize,
  kCsumStart,
  kCsumOffset,
  kStride,
};

constexpr size_t kVnetHdrLen = sizeof(VnetHdr);  // 10: we never negotiate the mergeable-buffers form
// Room for one read: the largest IP packet (64 KiB, a TSO super-packet in offload mode) plus its vnet header. A
// shorter buffer would silently truncate the packet.
constexpr size_t kMaxRead = 65536 + kVnetHdrLen;

Napi::Value ErrnoError(Napi::Env env, int err, const std::string& syscall) {
  Napi::Error e = Napi::Error::New(env, syscall + ": " + strerror(err));
  Napi::Object o = e.Value();
  o.Set("errno", Napi::Number::New(env, err));
  o.Set("syscall", Napi::String::New(env, syscall));
  return o;
}

void ThrowErrno(Napi::Env env, int err, const std::string& syscall) {
  Napi::Error(env, ErrnoError(env, err, syscall)).ThrowAsJavaScriptException();
}

class TunDevice : public Napi::ObjectWrap<TunDevice> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "TunDevice",
                       {
                           InstanceMethod<&TunDevice::Start>("start"),
                           InstanceMethod<&TunDevice::Pause>("pause"),
                           InstanceMethod<&TunDevice::Resume>("resume"),
                           InstanceMethod<&TunDevice::Write>("write"),
                           InstanceMethod<&TunDevice::Close>("close"),
                           InstanceMethod<&TunDevice::SetRef>("setRef"),
                           InstanceAccessor<&TunDevice::GetFd>("fd"),
                           InstanceAccessor<&TunDevice::GetName>("name"),
                           InstanceAccessor<&TunDevice::GetVnetHdr>("vnetHdr"),
                       });
  }

  // new TunDevice(name: string, offload: boolean, maxPackets: number, maxBytes: number, mtu: number /* 0: keep */)
  explicit TunDevice(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TunDevice>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 5 || !info[0].IsString() || !info[1].IsBoolean() || !info[2].IsNumber() ||
        !info[3].IsNumber() || !info[4].IsNumber()) {
      Napi::TypeError::New(env, "TunDevice(name, offload, maxPackets, maxBytes, mtu)").ThrowAsJavaScriptException();
      return;
    }
    std::string name = info[0].As<Napi::String>().Utf8Value();
    vnet_ = info[1].As<Napi::Boolean>().Value();
    int64_t maxPackets = info[2].As<Napi::Number>().Int64Value();
    int64_t maxBytes = info[3].As<Napi::Number>().Int64Value();
    int64_t mtu = info[4].As<Napi::Number>().Int64Value();
    if (name.size() >= IFNAMSIZ) {
      Napi::TypeError::New(env, "interface name longer than 15 bytes").ThrowAsJavaScriptException();
      return;
    }
    if (maxPackets < 1 || maxPackets > 65536 || maxBytes < 1 || maxBytes > (64 << 20)) {
      Napi::RangeError::New(env, "maxPackets must be 1..65536 and maxBytes 1..64 MiB").ThrowAsJavaScriptException();
      return;
    }
    maxPackets_ = static_cast<uint32_t>(maxPackets);
    maxBytes_ = static_cast<size_t>(maxBytes);

    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
      ThrowErrno(env, errno, "open /dev/net/tun");
      return;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (vnet_ ? IFF_VNET_HDR : 0);
    memcpy(ifr.ifr_name, name.data(), name.size());  // empty name: the kernel picks tunN
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
      int err = errno;
      close(fd);
      ThrowErrno(env, err, "ioctl TUNSETIFF");
      return;
    }
    if (vnet_) {
      int hdrLen = static_cast<int>(kVnetHdrLen);
      if (ioctl(fd, TUNSETVNETHDRSZ, &hdrLen) < 0) {
        int err = errno;
        close(fd);
        ThrowErrno(env, err, "ioctl TUNSETVNETHDRSZ");
        return;
      }
      // Checksum offload plus TSO: the kernel may hand us TCP segments up to 64 KiB with a partial checksum, and
      // accepts the same from us. No UFO/USO: UDP stays one datagram per packet.
      unsigned long offloads = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
      if (ioctl(fd, TUNSETOFFLOAD, offloads) < 0) {
        int err = errno;
        close(fd);
        ThrowErrno(env, err, "ioctl TUNSETOFFLOAD");
        return;
      }
    }
    ifr.ifr_name[IFNAMSIZ - 1] = '\0';
    if (mtu > 0) {
      // SIOCSIFMTU goes through any socket of the namespace the device is in (it was just created here).
      int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      struct ifreq mreq;
      memset(&mreq, 0, sizeof mreq);
      memcpy(mreq.ifr_name, ifr.ifr_name, IFNAMSIZ);
      mreq.ifr_mtu = static_cast<int>(mtu > 65535 ? 65535 : mtu);
      if (sock < 0 || ioctl(sock, SIOCSIFMTU, &mreq) < 0) {
        int err = errno;
        if (sock >= 0) close(sock);
        close(fd);
        ThrowErrno(env, err, "ioctl SIOCSIFMTU");
        return;
      }
      close(sock);
    }
    name_ = ifr.ifr_name;
    fd_ = fd;
  }

  ~TunDevice() override {
    // Reached only when the object is collected (never while polling: we hold a reference then) or when the
    // environment is torn down; in the latter case detach the handle so a late callback finds nothing.
    if (poll_ != nullptr) {
      poll_->data = nullptr;
      if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(poll_))) {
        uv_close(reinterpret_cast<uv_handle_t*>(poll_), OnHandleClosed);
      }
      poll_ = nullptr;
    }
    if (fd_ >= 0) close(fd_);
    delete asyncContext_;
  }

 private:
  // start(callback): begins watching the fd. callback(err) on a read error, callback(null, table, data) per batch.
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ < 0) return ThrowClosed(env);
    if (info.Length() < 1 || !info[0].IsFunction()) {
      Napi::TypeError::New(env, "start(callback)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (poll_ != nullptr) {
      Napi::Error::New(env, "already started").ThrowAsJavaScriptException();
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
      delete poll;
      ThrowErrno(env, -rc, "uv_poll_init");
      return env.Undefined();
    }
    poll->data = this;
    poll_ = poll;
    if (!ref_) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    callback_ = Napi::Persistent(info[0].As<Napi::Function>());
    asyncContext_ = new Napi::AsyncContext(env, "ZksTun", Value());
    scratch_.resize(maxBytes_ + kMaxRead);
    rows_.resize(static_cast<size_t>(maxPackets_) * kStride);
    Ref();  // keeps `this` alive while libuv may call OnReadable
    return Resume(info);
  }

  Napi::Value Pause(const Napi::CallbackInfo& info) {
    if (poll_ != nullptr && polling_) {
      uv_poll_stop(poll_);
      polling_ = false;
    }
    return info.Env().Undefined();
  }

  Napi::Value Resume(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ < 0) return ThrowClosed(env);
    if (poll_ != nullptr && !polling_) {
      int rc = uv_poll_start(poll_, UV_READABLE, OnReadable);
      if (rc != 0) {
        ThrowErrno(env, -rc, "uv_poll_start");
        return env.Undefined();
      }
      polling_ = true;
    }
    return env.Undefined();
  }

  // setRef(bool): whether a started device keeps the event loop alive (like socket.ref()/unref()).
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

  // write(packets: Uint8Array[], headers?: Uint8Array) → number written. In vnet mode each packet is preceded by
  // headers[10*i .. 10*i+10) (zeros when absent). Stops at EAGAIN/ENOBUFS and returns the count so far; any other
  // error throws with `written` set.
  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ < 0) return ThrowClosed(env);
    if (info.Length() < 1 || !info[0].IsArray()) {
      Napi::TypeError::New(env, "write(packets[], headers?)").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    Napi::Array packets = info[0].As<Napi::Array>();
    uint32_t count = packets.Length();
    const uint8_t* headers = nullptr;
    if (info.Length() > 1 && !info[1].IsUndefined() && !info[1].IsNull()) {
      if (!vnet_ || !IsUint8Array(info[1]) || info[1].As<Napi::Uint8Array>().ByteLength() < count * kVnetHdrLen) {
        Napi::TypeError::New(env, "headers: a Uint8Array of 10 bytes per packet, offload mode only")
            .ThrowAsJavaScriptException();
        return env.Undefined();
      }
      headers = info[1].As<Napi::Uint8Array>().Data();
    }
    static const uint8_t kZeroHdr[kVnetHdrLen] = {};
    uint32_t written = 0;
    for (; written < count; written++) {
      Napi::Value v = packets.Get(written);
      if (!IsUint8Array(v)) {
        Napi::TypeError::New(env, "packets must be Uint8Arrays").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      Napi::Uint8Array pkt = v.As<Napi::Uint8Array>();
      ssize_t n;
      do {
        if (vnet_) {
          struct iovec iov[2];
          iov[0].iov_base = const_cast<uint8_t*>(headers ? headers + written * kVnetHdrLen : kZeroHdr);
          iov[0].iov_len = kVnetHdrLen;
          iov[1].iov_base = pkt.Data();
          iov[1].iov_len = pkt.ByteLength();
          n = writev(fd_, iov, 2);
        } else {
          n = write(fd_, pkt.Data(), pkt.ByteLength());
        }
      } while (n < 0 && errno == EINTR);
      if (n < 0) {
        int err = errno;
        if (err == EAGAIN || err == EWOULDBLOCK || err == ENOBUFS) break;
        Napi::Value e = ErrnoError(env, err, "write");
        e.As<Napi::Object>().Set("written", Napi::Number::New(env, written));
        Napi::Error(env, e).ThrowAsJavaScriptException();
        return env.Undefined();
      }
    }
    return Napi::Number::New(env, written);
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    return info.Env().Undefined();
  }

  Napi::Value GetFd(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), fd_); }
  Napi::Value GetName(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), name_); }
  Napi::Value GetVnetHdr(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), vnet_); }

  static bool IsUint8Array(const Napi::Value& v) {
    return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array;
  }

  Napi::Value ThrowClosed(Napi::Env env) {
    ThrowErrno(env, EBADF, "TUN device is closed");
    return env.Undefined();
  }

  // Idempotent; safe from inside the batch callback (uv_close on the running handle is allowed).
  void Shutdown() {
    if (poll_ != nullptr) {
      polling_ = false;
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

  static void OnReadable(uv_poll_t* handle, int status, int /*events*/) {
    auto* self = static_cast<TunDevice*>(handle->data);
    if (self != nullptr) self->Drain(status);
  }

  void Drain(int status) {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    int readErr = status < 0 ? -status : 0;
    size_t used = 0;
    uint32_t count = 0;
    // Level-triggered poll: stopping at a cap is fine, libuv calls again on the next loop turn.
    while (readErr == 0 && count < maxPackets_ && used < maxBytes_) {
      uint8_t* dst = scratch_.data() + used;
      ssize_t n = read(fd_, dst, kMaxRead);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) readErr = errno;
        break;
      }
      if (n == 0) break;
      uint32_t* row = rows_.data() + static_cast<size_t>(count) * kStride;
      if (vnet_) {
        if (static_cast<size_t>(n) < kVnetHdrLen) continue;  // cannot happen with a sane kernel; drop, don't misparse
        VnetHdr h;
        memcpy(&h, dst, kVnetHdrLen);
        row[kOffset] = static_cast<uint32_t>(used + kVnetHdrLen);
        row[kLength] = static_cast<uint32_t>(n - kVnetHdrLen);
        row[kFlags] = h.flags;
        row[kGsoType] = h.gso_type;
        // Legacy virtio headers are in host byte order, which TUN uses unless TUNSETVNETLE/BE says otherwise.
        row[kHdrLen] = h.hdr_len;
        row[kGsoSize] = h.gso_size;
        row[kCsumStart] = h.csum_start;
        row[kCsumOffset] = h.csum_offset;
      } else {
        row[kOffset] = static_cast<uint32_t>(used);
        row[kLength] = static_cast<uint32_t>(n);
        memset(row + kFlags, 0, (kStride - kFlags) * sizeof(uint32_t));
      }
      used += static_cast<size_t>(n);
      count++;
    }
    if (count > 0) {
      size_t tableBytes = static_cast<size_t>(count) * kStride * sizeof(uint32_t);
      auto* base = static_cast<uint8_t*>(malloc(tableBytes + used));
      if (base == nullptr) {
        Emit({ErrnoError(env, ENOMEM, "read")});
        return;
      }
      Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, base, tableBytes + used, [](Napi::Env, void* p) { free(p); });
      memcpy(base, rows_.data(), tableBytes);
      memcpy(base + tableBytes, scratch_.data(), used);
      Napi::Uint32Array table = Napi::Uint32Array::New(env, static_cast<size_t>(count) * kStride, ab, 0);
      Napi::Uint8Array data = Napi::Uint8Array::New(env, used, ab, tableBytes);
      Emit({env.Null(), table, data});
    }
    if (readErr != 0 && poll_ != nullptr) {  // poll_ is null if the callback closed us
      uv_poll_stop(poll_);
      polling_ = false;
      Emit({ErrnoError(env, readErr, "read")});
    }
  }

  void Emit(std::initializer_list<napi_value> args) {
    if (callback_.IsEmpty()) return;
    Napi::Env env = Env();
    callback_.MakeCallback(Value(), args, *asyncContext_);
    if (env.IsExceptionPending()) {
      // Not inside any JS frame: hand the exception to process 'uncaughtException' (default: print and exit).
      Napi::Error e = env.GetAndClearPendingException();
      napi_fatal_exception(env, e.Value());
    }
  }

  int fd_ = -1;
  bool vnet_ = false;
  bool polling_ = false;
  bool ref_ = true;
  uint32_t maxPackets_ = 64;
  size_t maxBytes_ = 1 << 20;
  std::string name_;
  uv_poll_t* poll_ = nullptr;
  Napi::FunctionReference callback_;
  Napi::AsyncContext* asyncContext_ = nullptr;
  std::vector<uint8_t> scratch_;
  std::vector<uint32_t> rows_;
};

// openMarkedTcpSocket(family 4|6, mark): a fresh non-blocking TCP socket with SO_MARK set before it ever sends a
// packet (net.Socket({ fd }) then connects it). The kill switch accepts relay traffic only with this mark, and
// setting a mark needs CAP_NET_ADMIN, so no unprivileged process can forge it.
Napi::Value OpenMarkedTcpSocket(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsNumber() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "openMarkedTcpSocket(family: 4 | 6, mark: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  int family = info[0].As<Napi::Number>().Int32Value() == 6 ? AF_INET6 : AF_INET;
  uint32_t mark = info[1].As<Napi::Number>().Uint32Value();
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ThrowErrno(env, errno, "socket");
    return env.Undefined();
  }
  if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) != 0) {
    int err = errno;
    close(fd);
    ThrowErrno(env, err, "setsockopt(SO_MARK)");
    return env.Undefined();
  }
  return Napi::Number::New(env, fd);
}

// peerCredentials(fd): { pid, uid, gid } of the process that connected this unix socket (SO_PEERCRED: taken
// by the kernel at connect(), so the peer cannot change it afterwards).
Napi::Value PeerCredentials(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsNumber()) {
    Napi::TypeError::New(env, "peerCredentials(fd: number)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(info[0].As<Napi::Number>().Int32Value(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    ThrowErrno(env, errno, "getsockopt(SO_PEERCRED)");
    return env.Undefined();
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("pid", Napi::Number::New(env, cred.pid));
  o.Set("uid", Napi::Number::New(env, cred.uid));
  o.Set("gid", Napi::Number::New(env, cred.gid));
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("TunDevice", TunDevice::Define(env));
  exports.Set("openMarkedTcpSocket", Napi::Function::New(env, OpenMarkedTcpSocket));
  exports.Set("peerCredentials", Napi::Function::New(env, PeerCredentials));
  exports.Set("TABLE_STRIDE", Napi::Number::New(env, kStride));
  exports.Set("VNET_HDR_LEN", Napi::Number::New(env, kVnetHdrLen));
  return exports;
}

}  // namespace

NODE_API_MODULE(zks_tun, Init)
