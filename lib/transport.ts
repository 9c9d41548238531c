/**
 * The contract between the public layers (idiomatic socket, WSK layer) and the socket that
 * owns the native handle. Kept apart from the addon so that the WSK layer can be unit-tested
 * with a fake sender, without loading native code.
 */
import type { Batch } from './batch';

/** A resolved destination: an IP literal (no zone suffix), a port and, for IPv6, a scope id. */
export interface Destination {
  readonly family: 4 | 6;
  readonly address: string;
  readonly port: number;
  /** IPv6 scope (interface index) for link-local addresses; 0 otherwise. */
  readonly scopeId: number;
  /** The address's bytes (4 or 16), when already parsed. */
  readonly bytes?: Uint8Array;
}

/** A datagram the kernel refused for its destination, while the batch went on. */
export interface RawFailure {
  /** Its index in the batch. */
  readonly index: number;
  /** The OS error code (errno; a WSA code on Windows). */
  readonly errno: number;
}

/**
 * What one batch send did, as the OS said it. `errno` is 0 when the send did not stop early;
 * otherwise it is the OS error code of the first datagram not processed (index
 * `datagrams + failures.length`), and `syscall` names the call that failed. `datagrams`,
 * `bytes` and `segments` count only what the kernel accepted.
 */
export interface RawSendResult {
  datagrams: number;
  bytes: number;
  /** Datagrams on the wire: one cut by an explicit segmentSize counts each segment. */
  segments: number;
  errno: number;
  syscall: string;
  /** The send stopped because the socket buffer was full (set by the native back-end). */
  wouldBlock: boolean;
  /** Datagrams refused for their destination, in order (continueOnError batches only). */
  failures: RawFailure[];
}

/**
 * Per-call control information, applied to every datagram of the call: the platform-neutral
 * form of WSK's CMSGHDR blocks and of the idiomatic send options. Absent fields are not sent.
 */
export interface SendControls {
  /**
   * Source address (IP_PKTINFO / IPV6_PKTINFO): an IP literal of the socket's family; on a
   * dual-stack socket an IPv4 one (or its IPv4-mapped form) for IPv4 peers.
   */
  sourceAddress?: string;
  /** Outgoing interface index (IP_PKTINFO / IPV6_PKTINFO). */
  interfaceIndex?: number;
  /** The whole TOS / traffic-class byte, 0..255 (IP_TOS / IPV6_TCLASS). */
  tos?: number;
  /** ECN codepoint 0..3, the low two bits of the TOS / traffic-class byte (IP_ECN / IPV6_ECN). */
  ecn?: number;
  /** TTL / hop limit, 1..255 (IP_TTL / IPV6_HOPLIMIT). */
  ttl?: number;
  /**
   * Segment size (Windows UDP_SEND_MSG_SIZE, Linux UDP_SEGMENT): each datagram of the call
   * longer than this leaves as datagrams of this size (the last may be shorter).
   */
  segmentSize?: number;
}

/** How a queued send ended: totals for the whole request, including what went out at once. */
export interface SendCompletion extends RawSendResult {
  /** True when the request was cancelled (IoCancelIrp, or the socket closed) before it ended. */
  cancelled: boolean;
}

/** A send waiting in the socket's queue. */
export interface PendingSend {
  readonly pending: true;
  /**
   * Takes the request out of the queue; nothing more of it is sent and its completion runs
   * now, with `cancelled` set and the counts of what had already gone out. False when it had
   * already completed.
   */
  cancel(): boolean;
}

/** The socket operations the WSK layer needs. The idiomatic `UdpSocket` implements it. */
export interface BatchSender {
  readonly family: 4 | 6;
  /** False for a dual-stack IPv6 socket (IPv4 peers as IPv4-mapped addresses); else true or absent. */
  readonly ipv6Only?: boolean;
  readonly closed: boolean;
  /** The fixed remote (set by connect), or null. */
  readonly remote: Destination | null;
  /** Whether sends coalesce equal-size runs (the socket's `gso`). */
  readonly gso: boolean;
  /**
   * Sends `batch` (lib/batch.ts) without copying payloads.
   *
   * When nothing is queued before it and the batch ends at once (all sent, or an OS error other
   * than "would block"), returns the RawSendResult and never calls `onComplete`. Otherwise the
   * rest waits in the socket's queue, behind earlier requests, and a PendingSend is returned;
   * `onComplete` then runs exactly once, later, from the event loop (or from cancel()/close()).
   * The buffers must stay unchanged until then. Never throws for OS errors.
   */
  submit(batch: Batch, onComplete: (completion: SendCompletion) => void): RawSendResult | PendingSend;
}

/** Largest UDP payload: 65535 - 8 (UDP header) - 20 (IPv4 header) for IPv4, 65535 - 8 for IPv6. */
export const MAX_UDP_PAYLOAD = { 4: 65507, 6: 65527 } as const;

/** Most datagrams one batch call takes (bounds the native scratch memory of one call). */
export const MAX_BATCH_DATAGRAMS = 1 << 20;

/** Most byte ranges in one datagram: the kernel's UIO_MAXIOV. */
export const MAX_DATAGRAM_PIECES = 1024;
