// The send side of udp.cc's UdpSocket: datagrams to any destinations in as few system calls as the kernel allows.
// One sendmmsg() carries up to kMaxMessages messages; consecutive datagrams to one destination of one size (the
// last may be shorter) go as ONE message with UDP_SEGMENT (UDP GSO, Linux >= 4.18), which the kernel cuts into the
// same datagrams on the wire. A group the kernel refuses as GSO is sent datagram by datagram, and what the refusal
// taught is kept per socket: EMSGSIZE/EINVAL lowers the largest segment tried (the path MTU), anything else turns
// GSO off for that socket — but only when the plain sends then succeed (else the error is the datagram's own).
#pragma once
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace zks {

// A destination: 16 address bytes (IPv4 in the first 4), then the port, big-endian.
constexpr size_t kDestSize = 18;

struct OutDatagram {
  uint8_t* data;
  size_t length;
  const uint8_t* dest;
};

// Scratch for the datagrams of one send() call, shared by every socket of the thread.
std::vector<OutDatagram>& OutDatagrams();

class BatchSender {
 public:
  // Sends `datagrams` in order: how many went to the kernel. Fewer than all: the next Failed() datagrams failed
  // with Errno() (EAGAIN: the send buffer is full) and the caller goes on after them.
  size_t Send(int fd, bool v6, const std::vector<OutDatagram>& datagrams);
  int Errno() const { return errno_; }
  uint32_t Failed() const { return failed_; }

 private:
  size_t GroupAt(size_t from) const;
  size_t SendSome(size_t from);
  int Transmit();
  socklen_t FillAddress(const uint8_t* dest, sockaddr_storage* ss) const;

  bool gso_ = true;
  size_t gsoMaxSegment_ = 65535;
  // During Send():
  int fd_ = -1;
  bool v6_ = false;
  const std::vector<OutDatagram>* datagrams_ = nullptr;
  size_t plainUntil_ = 0;  // datagrams before this index go without GSO
  int errno_ = 0;
  uint32_t failed_ = 0;
};

}  // namespace zks
