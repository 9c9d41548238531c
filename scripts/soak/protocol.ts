/**
 * What the soak's three processes (scripts/soak.ts, soak/sender.ts, soak/receiver.ts) agree on:
 * the paths, how a datagram is stamped, and the JSON lines they exchange.
 *
 * A datagram is stamped the way the bench stamps it (lib/cli/bench/contenders.ts: makePool and
 * stamp): bytes 0..3 a "run" id, bytes 4..7 the index within the call, then the pool's fixed
 * pattern. The soak makes every call of a path one run: run = tag << 28 | call number, so the
 * sequence number of a datagram is call number * batch + index, and the tag names the path.
 */
import * as fs from 'node:fs';
import { STAMP_BYTES } from '../../lib/cli/bench/contenders';

export { STAMP_BYTES };

export const PATH_IDS = ['plain', 'gso', 'pending', 'wsk'] as const;
export type PathId = (typeof PATH_IDS)[number];

export const PATH_TAGS: Record<PathId, number> = { plain: 1, gso: 2, pending: 3, wsk: 4 };

/** Calls per path that a run id can number (28 bits). */
export const MAX_CALLS = 2 ** 28;

export function runId(path: PathId, call: number): number {
  return ((PATH_TAGS[path] << 28) | call) >>> 0;
}

/**
 * Where a datagram's payload pattern comes from: `pool` = makePool(size, batch)[index] (the
 * whole datagram is one buffer: plain, GSO, pending); `split` = an 8-byte header followed by
 * makePool(size - 8, batch)[index] (the WSK layer's 2-MDL chains).
 */
export type Layout = 'pool' | 'split';

/** One path as the sender runs it and the receiver checks it. */
export interface PathPlan {
  id: PathId;
  size: number;
  /** Datagrams per call. */
  batch: number;
  /** Datagrams the sender may have sent beyond what the receiver acknowledged. */
  window: number;
  layout: Layout;
  host: string;
  port: number;
}

/** The sender's argument (JSON). */
export interface SenderConfig {
  paths: PathPlan[];
  /** Stop once this many datagrams (all paths) were handed out... */
  datagrams: number;
  /** ...or this many seconds passed, whichever comes first. */
  seconds: number;
  /** Fraction of the run (by count or by time, whichever is further) that counts as warm-up. */
  warmUp: number;
  /** A path waiting this long for an acknowledgement that does not come gives up. */
  stallMs: number;
  /** SO_SNDBUF of the pending path's socket. */
  pendingSendBuffer: number;
  /** sendBatch calls the pending path keeps outstanding. */
  pendingDepth: number;
}

/** The receiver's argument (JSON). */
export interface ReceiverConfig {
  paths: Array<Pick<PathPlan, 'id' | 'size' | 'batch' | 'layout' | 'host'>>;
  receiveBuffer: number;
  /** An acknowledgement per this many datagrams of a path (and a timer for the rest). */
  ackEvery: number;
  /** The receiver ends by itself after this long. */
  lifetimeMs: number;
}

export interface ReceiverPathReport {
  received: number;
  bytes: number;
  /** Datagrams whose sequence number was not the one expected next (later or earlier). */
  outOfOrder: number;
  /** Sequence numbers below the next expected one (repeated or late). */
  backwards: number;
  /** Wrong length, wrong tag, or a payload that is not the pattern. */
  corrupt: number;
  /** The next sequence number expected (= the count, when all arrived in order). */
  next: number;
  /** The first few surprises, as [expected, got] sequence numbers (-1: corrupt). */
  firstSurprises: Array<[number, number]>;
}

/** What the sender's per-path counters say. */
export interface SenderPathReport {
  id: PathId;
  /** Datagrams handed to the socket (and, for pending, the ones whose call completed). */
  sent: number;
  bytes: number;
  calls: number;
  /** Wall time from the path's first send to its last completion. */
  seconds: number;
  /** Time inside the send calls (the bench's measure: loopback paths only). */
  sendSeconds: number;
  /** Pending path: calls that could not complete at once and waited in the queue. */
  wentPending: number;
  /** Socket counters at the end (stats()). */
  syscalls: number;
  messages: number;
  gso: boolean;
  error: string | null;
}

/** The sender's memory at one moment. */
export interface MemoryReading {
  rss: number;
  /** Anonymous and file-backed parts of the RSS (/proc/self/status), -1 where unknown. */
  rssAnon: number;
  rssFile: number;
  /** V8's heap as committed (what of the RSS is the JavaScript heap) and as used. */
  heapTotal: number;
  heapUsed: number;
  /** Memory of ArrayBuffers and other objects outside the V8 heap (memoryUsage().external). */
  external: number;
}

export interface MemorySample extends MemoryReading {
  /** Seconds since the sender started sending. */
  t: number;
}

/** Lines the sender prints. */
export type SenderLine =
  | { event: 'started'; fds: number; rss: number }
  | ({ event: 'sample'; sent: Record<string, number>; fds: number } & MemorySample)
  | { event: 'warm'; t: number; rss: number; sent: number }
  | {
    event: 'result';
    paths: SenderPathReport[];
    seconds: number;
    fdsBefore: number;
    fdsAfter: number;
    /** Descriptors open at the end that were not at the start (readlink targets). */
    fdsNew: string[];
    /** Readings after the warm-up and at the end, each after a full GC where one could be forced. */
    warm: MemoryReading | null;
    end: MemoryReading;
    /** The highest RSS sampled between the two. */
    rssPeakAfterWarm: number | null;
    gcForced: boolean;
  };

/** Lines a receiver prints. */
export type ReceiverLine =
  | { event: 'ready'; ports: Record<string, number>; receiveBuffers: Record<string, number> }
  | { event: 'ack'; path: PathId; received: number }
  | { event: 'report'; id: number; paths: Record<string, ReceiverPathReport>; rss: number };

/** Lines the soak writes to the sender's stdin. */
export type SenderCommand = { cmd: 'ack'; path: PathId; received: number };

/** Lines the soak writes to a receiver's stdin. */
export type ReceiverCommand = { cmd: 'report'; id: number } | { cmd: 'exit' };

/** This process's memory now. */
export function readMemory(): MemoryReading {
  const usage = process.memoryUsage();
  return {
    rss: usage.rss, ...rssParts(), heapTotal: usage.heapTotal, heapUsed: usage.heapUsed, external: usage.external,
  };
}

/** RssAnon and RssFile of /proc/self/status in bytes (-1 where unknown). */
function rssParts(): { rssAnon: number; rssFile: number } {
  let status = '';
  try {
    status = fs.readFileSync('/proc/self/status', 'utf8');
  } catch {
    return { rssAnon: -1, rssFile: -1 };
  }
  const field = (name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    return match === null ? -1 : Number(match[1]) * 1024;
  };
  return { rssAnon: field('RssAnon'), rssFile: field('RssFile') };
}

/** Open descriptors of this process (the directory listing itself holds one, each time). */
export function openDescriptors(): string[] {
  const fds: string[] = [];
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let target: string;
    try {
      target = fs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      continue; // the listing's own descriptor, already closed
    }
    fds.push(`${fd} -> ${target}`);
  }
  return fds;
}
