/*
 * ref_sender: the C reference sender of the benchmark (scripts/bench/bench.ts), the ceiling the
 * Node contenders are measured against. Linux only.
 *
 *   ref_sender MODE DEST_IP PORT PAYLOAD COUNT BATCH [RUN_ID] [MAX_SEGMENTS]
 *   ref_sender fanout DEST_IP PORT,PORT,... PAYLOAD COUNT PAYLOADS [RUN_ID]
 *
 * MODE
 *   sendto    one sendto(2) per datagram (BATCH is ignored)
 *   sendmmsg  sendmmsg(2) with BATCH datagrams per call
 *   gso       sendmsg(2) with a UDP_SEGMENT control message: one super-packet per call holding
 *             as many PAYLOAD-byte segments as fit the UDP limit (65507 B over IPv4, 65527 B over
 *             IPv6) and the kernel's segment limit. The limit is 64 before Linux 6.9 and 128 from
 *             it (UDP_MAX_SEGMENTS); it is probed: a first call with 128 that fails with EINVAL
 *             drops to 64. MAX_SEGMENTS (optional) caps it further.
 *   fanout    sendmmsg(2) to several destinations (DEST_IP at each of the listed ports): each
 *             call takes PAYLOADS datagrams to every destination, message d * PAYLOADS + i being
 *             datagram i to destination d, each with its own msg_name; the iovecs of datagram
 *             i for every destination point at the same memory (nothing is copied), as a
 *             server sending one update to many peers would. PAYLOADS times the number of
 *             ports is at most 1024 (UIO_MAXIOV messages per call).
 *
 * Every datagram starts with RUN_ID (u32, big-endian) followed by its index in the run (u32,
 * big-endian) so that the counting receiver attributes it to this run only. In fanout mode the
 * index is the payload's (each destination's copy of a payload carries the same one).
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
          "[MAX_SEGMENTS]\n"
          "       ref_sender fanout DEST_IP PORT,PORT,... PAYLOAD COUNT PAYLOADS [RUN_ID]\n");
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

#define MAX_MESSAGES 1024 /* UIO_MAXIOV: messages per sendmmsg */

/* Parses "p1,p2,..." into `ports` (at most MAX_MESSAGES); returns how many. */
static long parse_ports(const char *text, uint16_t *ports) {
  long count = 0;
  const char *at = text;
  for (;;) {
    char *end = NULL;
    errno = 0;
    long port = strtol(at, &end, 10);
    if (errno != 0 || end == at || port < 1 || port > 65535 || count == MAX_MESSAGES ||
        (*end != ',' && *end != '\0')) {
      fprintf(stderr, "ref_sender: PORT must be ports from 1 to 65535, comma-separated (at most %d), "
              "got %s\n", MAX_MESSAGES, text);
      usage();
    }
    ports[count++] = (uint16_t)port;
    if (*end == '\0') return count;
    at = end + 1;
  }
}

/* ENOBUFS on a blocking socket means a transient shortage: try the same call again. */
static int retryable(int error) { return error == EINTR || error == ENOBUFS || error == EAGAIN; }

int main(int argc, char **argv) {
  if (argc < 7 || argc > 9) usage();
  const char *mode = argv[1];
  int use_sendto = strcmp(mode, "sendto") == 0;
  int use_sendmmsg = strcmp(mode, "sendmmsg") == 0;
  int use_gso = strcmp(mode, "gso") == 0;
  int use_fanout = strcmp(mode, "fanout") == 0;
  if (!use_sendto && !use_sendmmsg && !use_gso && !use_fanout) usage();
  if (use_fanout && argc > 8) usage();

  static uint16_t ports[MAX_MESSAGES];
  const long port_count = parse_ports(argv[3], ports);
  if (!use_fanout && port_count != 1) {
    fprintf(stderr, "ref_sender: only fanout takes several ports, got %s\n", argv[3]);
    usage();
  }
  /* One socket address per port; destinations[0] is the destination of the other modes. */
  static struct sockaddr_storage destinations[MAX_MESSAGES];
  socklen_t destination_length;
  int family;
  struct in_addr address4;
  struct in6_addr address6;
  if (inet_pton(AF_INET, argv[2], &address4) == 1) {
    family = AF_INET;
    destination_length = sizeof(struct sockaddr_in);
  } else if (inet_pton(AF_INET6, argv[2], &address6) == 1) {
    family = AF_INET6;
    destination_length = sizeof(struct sockaddr_in6);
  } else {
    fprintf(stderr, "ref_sender: DEST_IP must be an IPv4 or IPv6 literal, got %s\n", argv[2]);
    usage();
  }
  for (long d = 0; d < port_count; d++) {
    if (family == AF_INET) {
      struct sockaddr_in *v4 = (struct sockaddr_in *)&destinations[d];
      v4->sin_family = AF_INET;
      v4->sin_addr = address4;
      v4->sin_port = htons(ports[d]);
    } else {
      struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&destinations[d];
      v6->sin6_family = AF_INET6;
      v6->sin6_addr = address6;
      v6->sin6_port = htons(ports[d]);
    }
  }
  struct sockaddr_storage *const destination = &destinations[0];
  const long max_payload = family == AF_INET ? 65507 : 65527;
  const long payload = parse_long(argv[4], 8, max_payload, "PAYLOAD");
  const long count = parse_long(argv[5], 1, 1000000000L, "COUNT");
  /* In fanout mode: payloads per destination per call, so that a call stays within UIO_MAXIOV. */
  const long batch = use_fanout ? parse_long(argv[6], 1, MAX_MESSAGES / port_count, "PAYLOADS")
                                : parse_long(argv[6], 1, MAX_MESSAGES, "BATCH");
  const uint32_t run_id = argc > 7 ? (uint32_t)parse_long(argv[7], 0, 0xffffffffL, "RUN_ID") : 0;
  long segment_cap = argc > 8 ? parse_long(argv[8], 1, SEGMENTS_NEW_KERNEL, "MAX_SEGMENTS")
                              : SEGMENTS_NEW_KERNEL;

  int fd = socket(family, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");

  /* One buffer per datagram of a call, laid out back to back: a GSO super-packet is exactly
   * such a run, and sendmmsg reads the same memory. */
  long slots = use_gso ? segment_cap : use_sendmmsg || use_fanout ? batch : 1;
  if (use_gso && slots > max_payload / payload) slots = max_payload / payload;
  if (slots < 1) slots = 1;
  uint8_t *buffer = malloc((size_t)slots * (size_t)payload);
  if (buffer == NULL) die("malloc");
  for (long i = 0; i < slots * payload; i++) buffer[i] = (uint8_t)(i * 7 + 3);

  struct mmsghdr *messages = NULL;
  struct iovec *iovecs = NULL;
  /* A call's messages: sendmmsg sends `batch` to one destination; fanout sends `batch` to each
   * destination, message d * batch + i pointing at payload i and destination d. */
  const long per_call = use_fanout ? batch * port_count : batch;
  if (use_sendmmsg || use_fanout) {
    messages = calloc((size_t)per_call, sizeof *messages);
    iovecs = calloc((size_t)per_call, sizeof *iovecs);
    if (messages == NULL || iovecs == NULL) die("calloc");
    for (long m = 0; m < per_call; m++) {
      iovecs[m].iov_base = buffer + (m % batch) * payload;
      iovecs[m].iov_len = (size_t)payload;
      messages[m].msg_hdr.msg_name = &destinations[m / batch];
      messages[m].msg_hdr.msg_namelen = destination_length;
      messages[m].msg_hdr.msg_iov = &iovecs[m];
      messages[m].msg_hdr.msg_iovlen = 1;
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
      ssize_t n = sendto(fd, buffer, (size_t)payload, 0, (struct sockaddr *)destination,
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
  } else if (use_fanout) {
    /* `position` is the next message of the current round (all of a round's messages go out
     * before the next round restamps the payloads). */
    long position = 0;
    long round = 0;
    while (sent < count) {
      if (position == 0) {
        for (long i = 0; i < batch; i++) {
          stamp(buffer + i * payload, run_id, (uint32_t)(round * batch + i));
        }
      }
      long want = per_call - position;
      if (count - sent < want) want = count - sent;
      int n = sendmmsg(fd, messages + position, (unsigned int)want, 0);
      calls++;
      if (n < 0) {
        if (retryable(errno)) continue;
        die("sendmmsg(fanout)");
      }
      for (int i = 0; i < n; i++) bytes += messages[position + i].msg_len;
      sent += n;
      position += n;
      if (position == per_call) {
        position = 0;
        round++;
      }
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
    message.msg_name = destination;
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
