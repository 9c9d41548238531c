/*
 * counter: the receiving side of the benchmark (scripts/bench/bench.ts). Linux only.
 *
 *   counter 4|6 RCVBUF_BYTES [SOCKETS]
 *
 * Binds SOCKETS UDP sockets (default 1, at most MAX_SOCKETS) to 127.0.0.1 (or ::1), each on a
 * free port, asks for a receive buffer of RCVBUF_BYTES on each with SO_RCVBUFFORCE (root; falls
 * back to SO_RCVBUF, which net.core.rmem_max caps) and prints one JSON line:
 * {"port":first port,"ports":[every port],"rcvbuf":bytes the kernel granted the first}.
 * Fan-out senders send to all of them; the others send to the first.
 *
 * It then counts every datagram that arrives on any of them, by run: a datagram's first 4 bytes
 * are its run id (u32 big-endian, written by every sender of the bench). To stay cheap it copies only those
 * 8 header bytes and asks for the real length with MSG_TRUNC, so it dequeues every datagram but
 * never copies payloads; its cost per datagram is a fraction of the sender's, and a second core
 * keeps up with the senders. Datagrams shorter than 4 bytes count as "foreign".
 *
 * On stdin it takes one command per line:
 *   R <run-id>   drain until the socket has been quiet for QUIET_MS, then print
 *                {"run":id,"datagrams":n,"bytes":b,"sockets":k,"drops":d,"late":l,"foreign":f,
 *                 "cpu":us}
 *                where sockets is how many of the sockets received datagrams of the run (a
 *                fan-out reaches them all, any other sender the first only),
 *                drops what the kernel dropped for lack of receive buffer since the previous
 *                report (SO_RXQ_OVFL, summed over the sockets), late the datagrams of runs
 *                already reported (they arrived after their report: counted nowhere else), foreign the
 *                datagrams without a known run id, and cpu this process's user + system CPU
 *                time so far in microseconds (getrusage), so that the bench can tell its own
 *                load from other work on the machine.
 * End of stdin ends the program.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef SO_RXQ_OVFL
#define SO_RXQ_OVFL 40
#endif

#define BATCH 1024      /* datagrams per recvmmsg */
#define HEADER 8        /* bytes copied per datagram: run id + index */
#define QUIET_MS 40     /* a run is over once nothing arrived for this long */
#define RUN_SLOTS 4096  /* runs remembered (indexed by id modulo) */
#define MAX_SOCKETS 256 /* a fan-out of the bench uses 64 */

struct run {
  uint32_t id;
  int used;
  int reported;
  unsigned long long datagrams;
  unsigned long long bytes;
  uint64_t sockets[MAX_SOCKETS / 64]; /* bit s: socket s received datagrams of this run */
};

static struct run runs[RUN_SLOTS];
static unsigned long long late;
static unsigned long long foreign_datagrams;
/* Per socket: SO_RXQ_OVFL's counter as last seen, and its value at the previous report. */
static uint32_t kernel_drops[MAX_SOCKETS];
static uint32_t kernel_drops_reported[MAX_SOCKETS];

static uint8_t headers[BATCH][HEADER];
static struct iovec iovecs[BATCH];
static struct mmsghdr messages[BATCH];
static union {
  char bytes[CMSG_SPACE(sizeof(uint32_t))];
  struct cmsghdr align;
} controls[BATCH];

static void die(const char *what) {
  fprintf(stderr, "counter: %s: %s\n", what, strerror(errno));
  exit(1);
}

static struct run *run_for(uint32_t id) {
  struct run *slot = &runs[id % RUN_SLOTS];
  if (!slot->used || slot->id != id) {
    memset(slot, 0, sizeof *slot);
    slot->id = id;
    slot->used = 1;
  }
  return slot;
}

/* Receives everything queued now on socket `which`; returns the number of datagrams taken. */
static long drain(int fd, int which) {
  long total = 0;
  for (;;) {
    for (int i = 0; i < BATCH; i++) {
      messages[i].msg_hdr.msg_controllen = sizeof controls[i].bytes;
      messages[i].msg_hdr.msg_flags = 0;
    }
    int n = recvmmsg(fd, messages, BATCH, MSG_DONTWAIT | MSG_TRUNC, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return total;
      die("recvmmsg");
    }
    for (int i = 0; i < n; i++) {
      /* With MSG_TRUNC, msg_len is the datagram's real length, not what was copied. */
      unsigned int length = messages[i].msg_len;
      for (struct cmsghdr *c = CMSG_FIRSTHDR(&messages[i].msg_hdr); c != NULL;
           c = CMSG_NXTHDR(&messages[i].msg_hdr, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
          memcpy(&kernel_drops[which], CMSG_DATA(c), sizeof kernel_drops[which]);
        }
      }
      if (length < 4) {
        foreign_datagrams++;
        continue;
      }
      uint32_t id = ((uint32_t)headers[i][0] << 24) | ((uint32_t)headers[i][1] << 16) |
                    ((uint32_t)headers[i][2] << 8) | headers[i][3];
      struct run *run = run_for(id);
      if (run->reported) {
        late++;
        continue;
      }
      run->datagrams++;
      run->bytes += length;
      run->sockets[which / 64] |= 1ULL << (which % 64);
    }
    total += n;
    if (n < BATCH) return total;
  }
}

static void report(const struct pollfd *sockets, int count, uint32_t id) {
  /* On loopback a datagram is queued (or dropped) inside the sender's system call, or in the
   * softirq right after it; waiting for QUIET_MS of silence on every socket covers the latter
   * with room. */
  struct pollfd ready_sockets[MAX_SOCKETS];
  memcpy(ready_sockets, sockets, (size_t)count * sizeof *sockets);
  for (;;) {
    for (int s = 0; s < count; s++) drain(sockets[s].fd, s);
    int ready = poll(ready_sockets, (nfds_t)count, QUIET_MS);
    if (ready < 0 && errno != EINTR) die("poll");
    if (ready == 0) break;
  }
  struct run *run = run_for(id);
  run->reported = 1;
  struct rusage usage;
  if (getrusage(RUSAGE_SELF, &usage) != 0) die("getrusage");
  long long cpu = (long long)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000LL +
                  usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
  /* Each counter is a u32 that wraps: the difference in u32 is right across a wrap. */
  int reached = 0;
  for (int w = 0; w < MAX_SOCKETS / 64; w++) reached += __builtin_popcountll(run->sockets[w]);
  unsigned long long drops = 0;
  for (int s = 0; s < count; s++) {
    drops += (uint32_t)(kernel_drops[s] - kernel_drops_reported[s]);
    kernel_drops_reported[s] = kernel_drops[s];
  }
  printf("{\"run\":%u,\"datagrams\":%llu,\"bytes\":%llu,\"sockets\":%d,\"drops\":%llu,"
         "\"late\":%llu,\"foreign\":%llu,\"cpu\":%lld}\n",
         id, run->datagrams, run->bytes, reached, drops, late, foreign_datagrams, cpu);
  fflush(stdout);
}

/* A UDP socket bound to the loopback address of `family` on a free port; returns its port. */
static int open_socket(int family, int receive_buffer, int *fd_out, int *granted_out) {
  int fd = socket(family, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &receive_buffer, sizeof receive_buffer) != 0 &&
      setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer) != 0) {
    die("setsockopt(SO_RCVBUF)");
  }
  int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof on) != 0) die("setsockopt(SO_RXQ_OVFL)");

  struct sockaddr_storage local;
  memset(&local, 0, sizeof local);
  socklen_t local_length;
  if (family == AF_INET) {
    struct sockaddr_in *v4 = (struct sockaddr_in *)&local;
    v4->sin_family = AF_INET;
    v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    local_length = sizeof *v4;
  } else {
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&local;
    v6->sin6_family = AF_INET6;
    v6->sin6_addr = in6addr_loopback;
    local_length = sizeof *v6;
  }
  if (bind(fd, (struct sockaddr *)&local, local_length) != 0) die("bind");
  if (getsockname(fd, (struct sockaddr *)&local, &local_length) != 0) die("getsockname");
  int granted = 0;
  socklen_t granted_length = sizeof granted;
  if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &granted, &granted_length) != 0) die("getsockopt");
  *fd_out = fd;
  *granted_out = granted;
  return ntohs(family == AF_INET ? ((struct sockaddr_in *)&local)->sin_port
                                 : ((struct sockaddr_in6 *)&local)->sin6_port);
}

int main(int argc, char **argv) {
  if (argc < 3 || argc > 4 || (strcmp(argv[1], "4") != 0 && strcmp(argv[1], "6") != 0)) {
    fprintf(stderr, "usage: counter 4|6 RCVBUF_BYTES [SOCKETS]\n");
    return 2;
  }
  int family = argv[1][0] == '6' ? AF_INET6 : AF_INET;
  char *end = NULL;
  long requested = strtol(argv[2], &end, 10);
  if (*end != '\0' || requested < 4096 || requested > 0x7fffffffL) {
    fprintf(stderr, "counter: RCVBUF_BYTES must be from 4096 to 2^31-1\n");
    return 2;
  }
  long socket_count = 1;
  if (argc == 4) {
    socket_count = strtol(argv[3], &end, 10);
    if (*end != '\0' || socket_count < 1 || socket_count > MAX_SOCKETS) {
      fprintf(stderr, "counter: SOCKETS must be from 1 to %d\n", MAX_SOCKETS);
      return 2;
    }
  }

  /* The sockets first, stdin last: report() polls the first socket_count entries. */
  struct pollfd fds[MAX_SOCKETS + 1];
  int granted = 0;
  printf("{\"port\":");
  for (int s = 0; s < socket_count; s++) {
    int granted_here = 0;
    int port = open_socket(family, (int)requested, &fds[s].fd, &granted_here);
    fds[s].events = POLLIN;
    if (s == 0) {
      granted = granted_here;
      printf("%d,\"ports\":[%d", port, port);
    } else {
      printf(",%d", port);
    }
  }
  printf("],\"rcvbuf\":%d}\n", granted);
  fflush(stdout);
  const int input = (int)socket_count;
  fds[input].fd = STDIN_FILENO;
  fds[input].events = POLLIN;

  for (int i = 0; i < BATCH; i++) {
    iovecs[i].iov_base = headers[i];
    iovecs[i].iov_len = HEADER;
    messages[i].msg_hdr.msg_iov = &iovecs[i];
    messages[i].msg_hdr.msg_iovlen = 1;
    messages[i].msg_hdr.msg_control = controls[i].bytes;
  }

  char line[128];
  size_t line_used = 0;
  for (;;) {
    if (poll(fds, (nfds_t)socket_count + 1, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    for (int s = 0; s < socket_count; s++) {
      if (fds[s].revents & POLLIN) drain(fds[s].fd, s);
    }
    if (fds[input].revents & (POLLIN | POLLHUP)) {
      ssize_t n = read(STDIN_FILENO, line + line_used, sizeof line - 1 - line_used);
      if (n < 0) {
        if (errno == EINTR) continue;
        die("read");
      }
      if (n == 0) break; /* the bench closed our stdin */
      line_used += (size_t)n;
      char *newline;
      while ((newline = memchr(line, '\n', line_used)) != NULL) {
        *newline = '\0';
        unsigned long id;
        if (sscanf(line, "R %lu", &id) == 1) {
          report(fds, (int)socket_count, (uint32_t)id);
        } else {
          fprintf(stderr, "counter: unknown command: %s\n", line);
        }
        size_t consumed = (size_t)(newline - line) + 1;
        memmove(line, newline + 1, line_used - consumed);
        line_used -= consumed;
      }
      if (line_used == sizeof line - 1) line_used = 0; /* an overlong line: drop it */
    }
  }
  for (int s = 0; s < socket_count; s++) close(fds[s].fd);
  return 0;
}
