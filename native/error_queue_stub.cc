// Systems without an ICMP error queue (Windows; POSIX systems other than Linux): nothing is ever
// queued or read. Windows reports a peer's ICMP port unreachable as WSAECONNRESET on a later
// receive instead, which os_socket_win.cc turns off at open (SIO_UDP_CONNRESET).
#ifdef _WIN32
#include <winsock2.h>
#else
#include <sys/socket.h>

#include <cerrno>
#endif

#include "error_queue.h"

namespace wsk {

bool ErrorQueueSupported() { return false; }

int EnableErrorQueue(SocketHandle, IpFamily) {
#ifdef _WIN32
  return WSAENOPROTOOPT;
#else
  return ENOPROTOOPT;
#endif
}

int ReadErrorQueueEntry(SocketHandle, ErrorQueueEntry*) {
#ifdef _WIN32
  return WSAEWOULDBLOCK;
#else
  return EAGAIN;
#endif
}

int TakeSocketError(SocketHandle socket) {
  int error = 0;
#ifdef _WIN32
  int length = sizeof(error);
  if (getsockopt(socket, SOL_SOCKET, SO_ERROR, reinterpret_cast<char*>(&error), &length) != 0) {
    return 0;
  }
#else
  socklen_t length = sizeof(error);
  if (getsockopt(socket, SOL_SOCKET, SO_ERROR, &error, &length) != 0) return 0;
#endif
  return error;
}

}  // namespace wsk
