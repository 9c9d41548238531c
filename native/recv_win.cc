// Windows: the batched receiver (recvmmsg with packet information and GRO) is Linux-only for
// now. Both entry points report WSAEOPNOTSUPP, which the TypeScript layer maps to
// STATUS_NOT_SUPPORTED; sending does not depend on them.
#include <winsock2.h>

#include "recv.h"

namespace wsk {

int EnableReceiveInfo(SocketHandle, IpFamily, bool) { return WSAEOPNOTSUPP; }

int ReceiveDatagrams(SocketHandle, uint8_t*, size_t, size_t, std::vector<ReceivedDatagram>*) {
  return WSAEOPNOTSUPP;
}

}  // namespace wsk
