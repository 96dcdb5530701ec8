// See udp-send.h.
#include "udp-send.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

namespace zks {
namespace {

constexpr size_t kMaxMessages = 64;     // messages per sendmmsg()
constexpr size_t kMaxSegments = 64;     // datagrams in one GSO message (the kernel's UDP_MAX_SEGMENTS is >= 64)
constexpr size_t kMaxGsoBytes = 65000;  // payload bytes in one GSO message (an IP packet holds 65 535)

struct Message {
  size_t first;  // index into the datagrams
  size_t count;
  uint16_t segment;  // GSO segment size; 0: a plain datagram
};

struct Control {
  alignas(struct cmsghdr) char bytes[CMSG_SPACE(sizeof(uint16_t))];
};

// The messages being built, shared by every socket of the thread (thousands of idle flows must stay small).
struct Scratch {
  std::vector<Message> messages;
  std::vector<struct iovec> iovs;
  std::vector<sockaddr_storage> addrs;
  std::vector<Control> controls;
  std::vector<struct mmsghdr> headers;
};

Scratch& TheScratch() {
  static thread_local Scratch scratch;
  return scratch;
}

}  // namespace

std::vector<OutDatagram>& OutDatagrams() {
  static thread_local std::vector<OutDatagram> datagrams;
  return datagrams;
}

size_t BatchSender::Send(int fd, bool v6, const std::vector<OutDatagram>& datagrams) {
  fd_ = fd;
  v6_ = v6;
  datagrams_ = &datagrams;
  plainUntil_ = 0;
  errno_ = 0;
  failed_ = 0;
  size_t sent = 0;
  while (sent < datagrams.size()) {
    size_t n = SendSome(sent);
    if (n == 0) break;  // errno_/failed_ say why
    sent += n;
  }
  datagrams_ = nullptr;
  return sent;
}

// Datagrams [from, from + n) that may go as one GSO message: same destination, same size except a shorter last.
size_t BatchSender::GroupAt(size_t from) const {
  const std::vector<OutDatagram>& dg = *datagrams_;
  const OutDatagram& head = dg[from];
  if (!gso_ || from < plainUntil_ || head.length > gsoMaxSegment_ || head.length == 0) return 1;
  size_t n = 1;
  size_t bytes = head.length;
  while (from + n < dg.size() && n < kMaxSegments) {
    const OutDatagram& d = dg[from + n];
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

// One sendmmsg() from datagram `from`: returns how many datagrams went; 0 with errno_/failed_ set when
// the first message failed.
size_t BatchSender::SendSome(size_t from) {
  std::vector<Message>& messages = TheScratch().messages;
  messages.clear();
  size_t at = from;
  while (at < datagrams_->size() && messages.size() < kMaxMessages) {
    size_t n = GroupAt(at);
    messages.push_back({at, n, static_cast<uint16_t>(n > 1 ? (*datagrams_)[at].length : 0)});
    at += n;
  }
  int sent = Transmit();
  if (sent < 0) {
    const Message m = messages[0];
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
    errno_ = err;
    failed_ = static_cast<uint32_t>(m.count);
    return 0;
  }
  size_t datagrams = 0;
  for (int i = 0; i < sent; i++) datagrams += messages[i].count;
  return datagrams;
}

// sendmmsg() of the scratch messages: how many messages went, or -errno when the first one failed.
int BatchSender::Transmit() {
  Scratch& sc = TheScratch();
  const std::vector<OutDatagram>& dg = *datagrams_;
  size_t iovCount = 0;
  for (const Message& m : sc.messages) iovCount += m.count;
  sc.iovs.resize(iovCount);
  sc.addrs.resize(sc.messages.size());
  sc.controls.resize(sc.messages.size());
  sc.headers.resize(sc.messages.size());
  size_t iov = 0;
  for (size_t i = 0; i < sc.messages.size(); i++) {
    const Message& m = sc.messages[i];
    memset(&sc.headers[i], 0, sizeof sc.headers[i]);
    struct msghdr& h = sc.headers[i].msg_hdr;
    h.msg_iov = &sc.iovs[iov];
    h.msg_iovlen = m.count;
    for (size_t k = 0; k < m.count; k++, iov++) sc.iovs[iov] = {dg[m.first + k].data, dg[m.first + k].length};
    h.msg_name = &sc.addrs[i];
    h.msg_namelen = FillAddress(dg[m.first].dest, &sc.addrs[i]);
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

socklen_t BatchSender::FillAddress(const uint8_t* dest, sockaddr_storage* ss) const {
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

}  // namespace zks
