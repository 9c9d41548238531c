// The platform-neutral description of a batched receive: datagrams land in slots of a caller's
// arena (no copy per datagram), each with the packet information the kernel reported.
// recv_linux.cc implements it with recvmmsg(2).
#ifndef WSK_DGRAM_RECV_H_
#define WSK_DGRAM_RECV_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "os_socket.h"

namespace wsk {

struct ReceivedDatagram {
  size_t length = 0;       // bytes stored in the slot
  bool truncated = false;  // the datagram was longer than its slot
  SocketAddress source;
  bool has_destination = false;
  uint8_t destination[16] = {};  // IPv4 in the first 4 bytes, or IPv6
  uint32_t interface_index = 0;
  int tos = -1;               // TOS / traffic class byte; -1: not reported
  int ttl = -1;               // TTL / hop limit; -1: not reported
  uint32_t segment_size = 0;  // GRO: the size of the coalesced datagrams; 0: not coalesced
};

// Asks the kernel to report destination address, TOS/TCLASS and TTL/hop limit with every
// datagram, and to coalesce (GRO) when `gro` is set. Returns 0 or the OS error.
int EnableReceiveInfo(SocketHandle socket, IpFamily family, bool gro);

// Reads up to `max_datagrams` datagrams without blocking into slots of `slot_size` bytes of
// `arena`. Returns 0 with `out` filled (possibly empty only on error), or the OS error (EAGAIN:
// nothing to read now).
int ReceiveDatagrams(SocketHandle socket, uint8_t* arena, size_t slot_size, size_t max_datagrams,
                     std::vector<ReceivedDatagram>* out);

}  // namespace wsk

#endif  // WSK_DGRAM_RECV_H_
