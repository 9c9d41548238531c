/*
 * ref_sender: the C reference sender of the benchmark (scripts/bench/bench.ts), the ceiling the
 * Node contenders are measured against. Linux only.
 *
 *   ref_sender MODE DEST_IP PORT PAYLOAD COUNT BATCH [RUN_ID] [MAX_SEGMENTS]
 *
 * MODE
 *   sendto    one sendto(2) per datagram (BATCH is ignored)
 *   sendmmsg  sendmmsg(2) with BATCH datagrams per call
 *   gso       sendmsg(2) with a UDP_SEGMENT control message: one super-packet per call holding
 *             as many PAYLOAD-byte segments as fit the UDP limit (65507 B over IPv4, 65527 B over
 *             IPv6) and the kernel's segment limit. The limit is 64 before Linux 6.9 and 128 from
 *             it (UDP_MAX_SEGMENTS); it is probed: a first call with 128 that fails with EINVAL
 *             drops to 64. MAX_SEGMENTS (optional) caps it further.
 *
 * Every datagram starts with RUN_ID (u32, big-endian) followed by its index in the run (u32,
 * big-endian) so that the counting receiver attributes it to this run only.
 *
 * Prints one JSON line on stdout:
 *   {"mode":..., "datagrams":n, "bytes":b, "seconds":s, "user":us, "sys":us, "calls":c,
 *    "segments":k}
 * where seconds is the wall time of the send loop (CLOCK_MONOTONIC) and user/sys are the
 * getrusage(RUSAGE_SELF) deltas over the same loop, in microseconds. The socket is blocking, so
 * "would block" cannot happen; ENOBUFS is retried. Any other error ends the program with exit
 * status 1 and a message on stderr.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* linux/udp.h, since Linux 4.18 */
#endif
#ifndef SOL_UDP
#define SOL_UDP 17
#endif

#define SEGMENTS_NEW_KERNEL 128 /* UDP_MAX_SEGMENTS since Linux 6.9 */
#define SEGMENTS_OLD_KERNEL 64  /* UDP_MAX_SEGMENTS before */

static void die(const char *what) {
  fprintf(stderr, "ref_sender: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void usage(void) {
  fprintf(stderr,
          "usage: ref_sender sendto|sendmmsg|gso DEST_IP PORT PAYLOAD COUNT BATCH [RUN_ID] "
          "[MAX_SEGMENTS]\n");
  exit(2);
}

static long parse_long(const char *text, long min, long max, const char *name) {
  char *end = NULL;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || value < min || value > max) {
    fprintf(stderr, "ref_sender: %s must be an integer from %ld to %ld, got %s\n", name, min, max,
            text);
    usage();
  }
  return value;
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long long microseconds(struct timeval tv) {
  return (long long)tv.tv_sec * 1000000LL + tv.tv_usec;
}

static void put_u32(uint8_t *at, uint32_t value) {
  at[0] = (uint8_t)(value >> 24);
  at[1] = (uint8_t)(value >> 16);
  at[2] = (uint8_t)(value >> 8);
  at[3] = (uint8_t)value;
}

/* Stamps datagram `index` of the run at `at` (PAYLOAD bytes, at least 8). */
static void stamp(uint8_t *at, uint32_t run_id, uint32_t index) {
  put_u32(at, run_id);
  put_u32(at + 4, index);
}

/* ENOBUFS on a blocking socket means a transient shortage: try the same call again. */
static int retryable(int error) { return error == EINTR || error == ENOBUFS || error == EAGAIN; }

int main(int argc, char **argv) {
  if (argc < 7 || argc > 9) usage();
  const char *mode = argv[1];
  int use_sendto = strcmp(mode, "sendto") == 0;
  int use_sendmmsg = strcmp(mode, "sendmmsg") == 0;
  int use_gso = strcmp(mode, "gso") == 0;
  if (!use_sendto && !use_sendmmsg && !use_gso) usage();

  struct sockaddr_storage destination;
  socklen_t destination_length;
  memset(&destination, 0, sizeof destination);
  int family;
  long port = parse_long(argv[3], 1, 65535, "PORT");
  struct sockaddr_in *v4 = (struct sockaddr_in *)&destination;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&destination;
  if (inet_pton(AF_INET, argv[2], &v4->sin_addr) == 1) {
    family = AF_INET;
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)port);
    destination_length = sizeof *v4;
  } else if (inet_pton(AF_INET6, argv[2], &v6->sin6_addr) == 1) {
    family = AF_INET6;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    destination_length = sizeof *v6;
  } else {
    fprintf(stderr, "ref_sender: DEST_IP must be an IPv4 or IPv6 literal, got %s\n", argv[2]);
    usage();
  }
  const long max_payload = family == AF_INET ? 65507 : 65527;
  const long payload = parse_long(argv[4], 8, max_payload, "PAYLOAD");
  const long count = parse_long(argv[5], 1, 1000000000L, "COUNT");
  const long batch = parse_long(argv[6], 1, 1024, "BATCH"); /* UIO_MAXIOV messages per call */
  const uint32_t run_id = argc > 7 ? (uint32_t)parse_long(argv[7], 0, 0xffffffffL, "RUN_ID") : 0;
  long segment_cap = argc > 8 ? parse_long(argv[8], 1, SEGMENTS_NEW_KERNEL, "MAX_SEGMENTS")
                              : SEGMENTS_NEW_KERNEL;

  int fd = socket(family, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");

  /* One buffer per datagram of a call, laid out back to back: a GSO super-packet is exactly
   * such a run, and sendmmsg reads the same memory. */
  long slots = use_gso ? segment_cap : use_sendmmsg ? batch : 1;
  if (use_gso && slots > max_payload / payload) slots = max_payload / payload;
  if (slots < 1) slots = 1;
  uint8_t *buffer = malloc((size_t)slots * (size_t)payload);
  if (buffer == NULL) die("malloc");
  for (long i = 0; i < slots * payload; i++) buffer[i] = (uint8_t)(i * 7 + 3);

  struct mmsghdr *messages = NULL;
  struct iovec *iovecs = NULL;
  if (use_sendmmsg) {
    messages = calloc((size_t)batch, sizeof *messages);
    iovecs = calloc((size_t)batch, sizeof *iovecs);
    if (messages == NULL || iovecs == NULL) die("calloc");
    for (long i = 0; i < batch; i++) {
      iovecs[i].iov_base = buffer + i * payload;
      iovecs[i].iov_len = (size_t)payload;
      messages[i].msg_hdr.msg_name = &destination;
      messages[i].msg_hdr.msg_namelen = destination_length;
      messages[i].msg_hdr.msg_iov = &iovecs[i];
      messages[i].msg_hdr.msg_iovlen = 1;
    }
  }

  long sent = 0;
  long long bytes = 0;
  long calls = 0;
  long segments = 0;
  struct rusage usage_start, usage_end;
  if (getrusage(RUSAGE_SELF, &usage_start) != 0) die("getrusage");
  double start = now_seconds();

  if (use_sendto) {
    while (sent < count) {
      stamp(buffer, run_id, (uint32_t)sent);
      ssize_t n = sendto(fd, buffer, (size_t)payload, 0, (struct sockaddr *)&destination,
                         destination_length);
      calls++;
      if (n < 0) {
        if (retryable(errno)) continue;
        die("sendto");
      }
      sent++;
      bytes += n;
    }
  } else if (use_sendmmsg) {
    while (sent < count) {
      long want = count - sent < batch ? count - sent : batch;
      for (long i = 0; i < want; i++) stamp(buffer + i * payload, run_id, (uint32_t)(sent + i));
      int n = sendmmsg(fd, messages, (unsigned int)want, 0);
      calls++;
      if (n < 0) {
        if (retryable(errno)) continue;
        die("sendmmsg");
      }
      /* A short count leaves the rest for the next call, restamped from the first unsent. */
      for (int i = 0; i < n; i++) bytes += messages[i].msg_len;
      sent += n;
    }
  } else {
    segments = slots;
    union {
      char bytes[CMSG_SPACE(sizeof(uint16_t))];
      struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct iovec iov;
    struct msghdr message;
    memset(&message, 0, sizeof message);
    message.msg_name = &destination;
    message.msg_namelen = destination_length;
    message.msg_iov = &iov;
    message.msg_iovlen = 1;
    message.msg_control = control.bytes;
    message.msg_controllen = sizeof control.bytes;
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&message);
    cmsg->cmsg_level = SOL_UDP;
    cmsg->cmsg_type = UDP_SEGMENT;
    cmsg->cmsg_len = CMSG_LEN(sizeof(uint16_t));
    uint16_t segment_size = (uint16_t)payload;
    memcpy(CMSG_DATA(cmsg), &segment_size, sizeof segment_size);
    int probed = 0;
    while (sent < count) {
      long want = count - sent < segments ? count - sent : segments;
      for (long i = 0; i < want; i++) stamp(buffer + i * payload, run_id, (uint32_t)(sent + i));
      iov.iov_base = buffer;
      iov.iov_len = (size_t)(want * payload);
      /* A single segment needs no UDP_SEGMENT (the kernel accepts it either way). */
      ssize_t n = sendmsg(fd, &message, 0);
      calls++;
      if (n < 0) {
        if (!probed && errno == EINVAL && segments > SEGMENTS_OLD_KERNEL) {
          /* An older kernel: at most 64 segments per super-packet. */
          segments = SEGMENTS_OLD_KERNEL;
          continue;
        }
        if (retryable(errno)) continue;
        die("sendmsg(UDP_SEGMENT)");
      }
      probed = 1;
      /* A super-packet is all or nothing. */
      sent += want;
      bytes += n;
    }
  }

  double seconds = now_seconds() - start;
  if (getrusage(RUSAGE_SELF, &usage_end) != 0) die("getrusage");
  printf(
      "{\"mode\":\"%s\",\"datagrams\":%ld,\"bytes\":%lld,\"seconds\":%.9f,\"user\":%lld,"
      "\"sys\":%lld,\"calls\":%ld,\"segments\":%ld}\n",
      mode, sent, bytes, seconds,
      microseconds(usage_end.ru_utime) - microseconds(usage_start.ru_utime),
      microseconds(usage_end.ru_stime) - microseconds(usage_start.ru_stime), calls, segments);
  close(fd);
  free(buffer);
  free(messages);
  free(iovecs);
  return 0;
}
