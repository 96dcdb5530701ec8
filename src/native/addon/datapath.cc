// The data path's native helpers (src/native/datapath.ts wraps them):
// - AeadContext: AES-256-GCM / ChaCha20-Poly1305 records sealed and opened IN PLACE, in the caller's buffer, with
//   the OpenSSL that Node itself links (its EVP symbols are exported by the node binary; the headers are Node's).
//   node:crypto cannot write into a caller's buffer, so each record used to cost a fresh output buffer, and at
//   100 MB/s those ArrayBuffers drove V8 into a major GC every ~70 ms. The key schedule is made once per key.
// - tuneMalloc: glibc's dynamic thresholds trim the heap top and hand 128 KiB+ buffers to mmap, so a process that
//   once held many connections re-faults fresh pages for every record (300 000 minor faults per GB measured).
// - UdpSocket (udp.cc): the exit's NAT sockets with batched system calls and UDP GSO.
#include <napi.h>
#include <openssl/evp.h>
#include <v8.h>

#include "connection-watch.h"
#include "udp.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace {

constexpr int kTagSize = 16;
constexpr int kNonceSize = 12;
constexpr int kKeySize = 32;

// A (buffer, offset, length) region checked against the typed array's bounds; throws on violation.
bool Region(const Napi::CallbackInfo& info, size_t index, size_t extra, uint8_t** start, size_t* length) {
  Napi::Env env = info.Env();
  if (!info[index].IsTypedArray() || !info[index + 1].IsNumber() || !info[index + 2].IsNumber()) {
    Napi::TypeError::New(env, "expected (Uint8Array, offset, length)").ThrowAsJavaScriptException();
    return false;
  }
  Napi::Uint8Array buf = info[index].As<Napi::Uint8Array>();
  double offset = info[index + 1].As<Napi::Number>().DoubleValue();
  double len = info[index + 2].As<Napi::Number>().DoubleValue();
  if (!(offset >= 0) || !(len >= 0) || offset + len + extra > static_cast<double>(buf.ByteLength()) || len > (1 << 30)) {
    Napi::RangeError::New(env, "region outside the buffer").ThrowAsJavaScriptException();
    return false;
  }
  *start = buf.Data() + static_cast<size_t>(offset);
  *length = static_cast<size_t>(len);
  return true;
}

bool Nonce(const Napi::CallbackInfo& info, const uint8_t** nonce) {
  if (!info[0].IsTypedArray() || info[0].As<Napi::Uint8Array>().ByteLength() != kNonceSize) {
    Napi::TypeError::New(info.Env(), "the nonce must be a 12-byte Uint8Array").ThrowAsJavaScriptException();
    return false;
  }
  *nonce = info[0].As<Napi::Uint8Array>().Data();
  return true;
}

class AeadContext : public Napi::ObjectWrap<AeadContext> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "AeadContext",
                       {InstanceMethod<&AeadContext::Seal>("seal"), InstanceMethod<&AeadContext::Open>("open"),
                        InstanceMethod<&AeadContext::Dispose>("dispose")});
  }

  // new AeadContext(suite: 'aes-256-gcm' | 'chacha20-poly1305', key: Uint8Array(32), encrypt: boolean)
  explicit AeadContext(const Napi::CallbackInfo& info) : Napi::ObjectWrap<AeadContext>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsString() || !info[1].IsTypedArray() || !info[2].IsBoolean()) {
      Napi::TypeError::New(env, "expected (suite, key, encrypt)").ThrowAsJavaScriptException();
      return;
    }
    std::string suite = info[0].As<Napi::String>().Utf8Value();
    const EVP_CIPHER* cipher = suite == "aes-256-gcm"         ? EVP_aes_256_gcm()
                               : suite == "chacha20-poly1305" ? EVP_chacha20_poly1305()
                                                              : nullptr;
    Napi::Uint8Array key = info[1].As<Napi::Uint8Array>();
    if (!cipher || key.ByteLength() != kKeySize) {
      Napi::TypeError::New(env, "unknown suite or a key that is not 32 bytes").ThrowAsJavaScriptException();
      return;
    }
    encrypt_ = info[2].As<Napi::Boolean>().Value() ? 1 : 0;
    ctx_ = EVP_CIPHER_CTX_new();
    if (!ctx_ || EVP_CipherInit_ex(ctx_, cipher, nullptr, key.Data(), nullptr, encrypt_) != 1) {
      Free();
      Napi::Error::New(env, "OpenSSL refused the cipher").ThrowAsJavaScriptException();
    }
  }

  ~AeadContext() { Free(); }

 private:
  // seal(nonce, buf, offset, length): buf[offset, +length) becomes ciphertext, the tag goes to buf[offset+length, +16).
  Napi::Value Seal(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const uint8_t* nonce;
    uint8_t* p;
    size_t n;
    if (!Usable(env, 1) || !Nonce(info, &nonce) || !Region(info, 1, kTagSize, &p, &n)) return env.Undefined();
    int out = 0, fin = 0;
    if (EVP_CipherInit_ex(ctx_, nullptr, nullptr, nullptr, nonce, 1) != 1 ||
        EVP_CipherUpdate(ctx_, p, &out, p, static_cast<int>(n)) != 1 || EVP_CipherFinal_ex(ctx_, p + out, &fin) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_GET_TAG, kTagSize, p + n) != 1) {
      Napi::Error::New(env, "OpenSSL failed to seal the record").ThrowAsJavaScriptException();
    }
    return env.Undefined();
  }

  // open(nonce, buf, offset, length): length includes the tag. true: buf[offset, +length-16) is the plaintext.
  // false: the tag did not verify, and the region was wiped (no unauthenticated plaintext is left behind).
  Napi::Value Open(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const uint8_t* nonce;
    uint8_t* p;
    size_t n;
    if (!Usable(env, 0) || !Nonce(info, &nonce) || !Region(info, 1, 0, &p, &n)) return env.Undefined();
    if (n < static_cast<size_t>(kTagSize)) return Napi::Boolean::New(env, false);
    size_t body = n - kTagSize;
    int out = 0, fin = 0;
    bool ok = EVP_CipherInit_ex(ctx_, nullptr, nullptr, nullptr, nonce, 0) == 1 &&
              EVP_CIPHER_CTX_ctrl(ctx_, EVP_CTRL_AEAD_SET_TAG, kTagSize, p + body) == 1 &&
              EVP_CipherUpdate(ctx_, p, &out, p, static_cast<int>(body)) == 1 &&
              EVP_CipherFinal_ex(ctx_, p + out, &fin) == 1;
    if (!ok) OPENSSL_cleanse(p, body);
    return Napi::Boolean::New(env, ok);
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    Free();
    return info.Env().Undefined();
  }

  bool Usable(Napi::Env env, int wantEncrypt) {
    if (!ctx_) {
      Napi::Error::New(env, "the AEAD context was disposed").ThrowAsJavaScriptException();
      return false;
    }
    if (encrypt_ != wantEncrypt) {
      Napi::Error::New(env, wantEncrypt ? "a decrypting context cannot seal" : "an encrypting context cannot open")
          .ThrowAsJavaScriptException();
      return false;
    }
    return true;
  }

  void Free() {
    if (ctx_) EVP_CIPHER_CTX_free(ctx_);  // cleanses the key schedule
    ctx_ = nullptr;
  }

  EVP_CIPHER_CTX* ctx_ = nullptr;
  int encrypt_ = 0;
};

// tuneMalloc(trimThreshold, mmapThreshold): fixed thresholds (which also stop glibc's dynamic ones); false when
// this is not glibc.
Napi::Value TuneMalloc(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsNumber() || !info[1].IsNumber()) {
    Napi::TypeError::New(env, "expected (trimThreshold, mmapThreshold)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
#if defined(__GLIBC__)
  int trim = info[0].As<Napi::Number>().Int32Value();
  int mmap = info[1].As<Napi::Number>().Int32Value();
  return Napi::Boolean::New(env, mallopt(M_TRIM_THRESHOLD, trim) == 1 && mallopt(M_MMAP_THRESHOLD, mmap) == 1);
#else
  return Napi::Boolean::New(env, false);
#endif
}

// trimMalloc(): gives the free memory malloc keeps (up to the trim threshold above) back to the system; false off
// glibc. For memory reports, so that RSS shows the live state.
Napi::Value TrimMalloc(const Napi::CallbackInfo& info) {
#if defined(__GLIBC__)
  malloc_trim(0);
  return Napi::Boolean::New(info.Env(), true);
#else
  return Napi::Boolean::New(info.Env(), false);
#endif
}

// reduceMemory(): V8's memory-reducing collection, what it runs on a low-memory notification (several full passes
// that compact the heap and drop its caches). For memory reports: Node 20's gc() runs a plain full collection,
// which leaves the old generation as fragmented as the last burst made it (2x the live bytes after opening
// thousands of SOCKS5 UDP associations, measured).
Napi::Value ReduceMemory(const Napi::CallbackInfo& info) {
  v8::Isolate* isolate = v8::Isolate::GetCurrent();
  if (isolate != nullptr) isolate->LowMemoryNotification();
  return Napi::Boolean::New(info.Env(), isolate != nullptr);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("AeadContext", AeadContext::Define(env));
  exports.Set("tuneMalloc", Napi::Function::New(env, TuneMalloc));
  exports.Set("trimMalloc", Napi::Function::New(env, TrimMalloc));
  exports.Set("reduceMemory", Napi::Function::New(env, ReduceMemory));
  exports.Set("UdpSocket", zks::DefineUdpSocket(env));
  exports.Set("ConnectionWatch", zks::DefineConnectionWatch(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(zks_datapath, Init)
