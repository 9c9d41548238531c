/**
 * The network the fuzz targets send into: receivers on loopback that are drained synchronously
 * with the native receive(), and, inside the private network namespace each target runs in
 * (run.ts starts it with `unshare --net`), a slow lane that makes sends go pending.
 *
 * The private namespace holds only `lo`, so a fuzzed address that is not local has no route
 * (ENETUNREACH) and nothing ever leaves the machine. The slow lane is an htb class on that `lo`:
 * traffic to 127.0.0.2 is held to SLOW_RATE, everything else passes at once. A sender with a
 * small SO_SNDBUF then meets a full socket buffer (EAGAIN), which plain loopback never gives.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { buildBatch, type NativeBatch } from '../../lib/batch';
import { binding, type NativeUdpSocket } from '../../lib/binding';
import { EAGAIN, errnoName, sleep, sleepSync } from './common';

/** A native socket of `family`, opened (IPv6-only unless `ipv6Only` is false); throws if it cannot be. */
export function openNative(family: 4 | 6, ipv6Only = true): NativeUdpSocket {
  const native = new (binding().UdpSocket)();
  const error = native.open(family, ipv6Only);
  if (error !== 0) throw new Error(`open(${family}) failed: ${errnoName(error)}`);
  return native;
}

/** A well-formed batch of `datagrams` to one destination, no controls. */
export function plainBatch(datagrams: readonly Uint8Array[], family: 4 | 6, address: string, port: number): NativeBatch {
  return buildBatch(datagrams, { family, address, port, scopeId: 0 },
    { family, segment: false, continueOnError: false, controls: undefined });
}

export const FAST_V4 = '127.0.0.1';
export const FAST_V6 = '::1';
export const SLOW_V4 = '127.0.0.2';
export const SLOW_RATE = '50mbit';

/** The network namespace of this process, as /proc names it ("net:[4026531840]"). */
export function currentNamespace(): string {
  return fs.readlinkSync('/proc/self/ns/net');
}

/**
 * Brings up `lo` of the private namespace and installs the slow lane. Refuses to run in the
 * namespace the parent runs in: the host's own `lo` is never touched.
 */
export function setUpPrivateLoopback(parentNamespace: string): void {
  if (currentNamespace() === parentNamespace) {
    throw new Error('refusing to configure lo: this process is not in a private network namespace');
  }
  const run = (argv: string[]): void => {
    execFileSync(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10000 });
  };
  run(['ip', 'link', 'set', 'lo', 'up']);
  // r2q keeps htb from warning about the quantum of a 10gbit class on a 64 KiB MTU.
  run(['tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'handle', '1:', 'htb', 'default', '10', 'r2q', '100000']);
  run(['tc', 'class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:10', 'htb', 'rate', '40gbit']);
  run(['tc', 'class', 'add', 'dev', 'lo', 'parent', '1:', 'classid', '1:20', 'htb', 'rate', SLOW_RATE,
    'burst', '200', 'cburst', '200']);
  run(['tc', 'filter', 'add', 'dev', 'lo', 'parent', '1:', 'protocol', 'ip', 'u32', 'match', 'ip', 'dst',
    `${SLOW_V4}/32`, 'flowid', '1:20']);
}

const SLOT = 65536;
const SLOTS = 64;
const arena = new Uint8Array(SLOT * SLOTS);

/** A bound native socket whose datagrams are read with receive(), without the event loop. */
export class Receiver {
  readonly native: NativeUdpSocket;
  readonly port: number;
  /** Datagrams read so far and not yet taken. */
  readonly queue: Uint8Array[] = [];

  constructor(readonly address: string, readonly family: 4 | 6) {
    const native = new (binding().UdpSocket)();
    const opened = native.open(family);
    if (opened !== 0) throw new Error(`receiver: open(${family}) failed: ${errnoName(opened)}`);
    const bound = native.bind(address, 0, 0);
    if (bound !== 0) {
      native.close();
      throw new Error(`receiver: bind(${address}) failed: ${errnoName(bound)}`);
    }
    const local = native.localAddress();
    if (typeof local === 'number') throw new Error(`receiver: getsockname failed: ${errnoName(local)}`);
    this.native = native;
    this.port = local.port;
  }

  /** Reads everything waiting now into `queue`; returns how many datagrams came. */
  poll(): number {
    let count = 0;
    // Bounded: the socket cannot hold more than its buffer; 64 rounds of 64 is far above that.
    for (let round = 0; round < 64; round++) {
      const result = this.native.receive(arena, SLOT, SLOTS);
      if (typeof result === 'number') {
        if (result !== EAGAIN) throw new Error(`receiver ${this.address}: receive failed: ${errnoName(result)}`);
        break;
      }
      for (const d of result) {
        if (d.truncated) throw new Error(`receiver ${this.address}: a datagram was truncated`);
        this.queue.push(arena.slice(d.offset, d.offset + d.length));
      }
      count += result.length;
      if (result.length < SLOTS) break;
    }
    return count;
  }

  /** Everything read so far; empties the queue. */
  take(): Uint8Array[] {
    this.poll();
    return this.queue.splice(0);
  }

  /**
   * Synchronous wait for `count` datagrams in the queue (loopback delivers inside the send, so
   * this normally returns at once); gives up after `timeoutMs`.
   */
  waitSync(count: number, timeoutMs: number): boolean {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < 100000; i++) {
      this.poll();
      if (this.queue.length >= count) return true;
      if (Date.now() >= deadline) return false;
      sleepSync(1);
    }
    return false;
  }

  /** The same, letting the event loop run (for sends that complete later). */
  async wait(count: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (let i = 0; i < 100000; i++) {
      this.poll();
      if (this.queue.length >= count) return true;
      if (Date.now() >= deadline) return false;
      await sleep(1);
    }
    return false;
  }

  /** Bytes in the queue. */
  queuedBytes(): number {
    let total = 0;
    for (const d of this.queue) total += d.byteLength;
    return total;
  }

  /** The kernel's drop counter for this socket (/proc/net/udp*), or -1 when not found. */
  drops(): number {
    const table = this.family === 6 ? '/proc/net/udp6' : '/proc/net/udp';
    const portHex = this.port.toString(16).toUpperCase().padStart(4, '0');
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      if (local !== undefined && local.endsWith(`:${portHex}`)) return Number(fields[fields.length - 1]);
    }
    return -1;
  }

  close(): void {
    this.native.close();
  }
}

/** True when IPv6 loopback works here (a namespace may lack it). */
export function ipv6Available(): boolean {
  try {
    new Receiver(FAST_V6, 6).close();
    return true;
  } catch {
    return false;
  }
}

/**
 * Datagrams sent first on the slow lane: enough bytes to fill a minimal SO_SNDBUF, so that the
 * fuzzed send behind them waits in the queue (and its buffers are read again in the flush).
 */
export function fillerDatagrams(): Uint8Array[] {
  // Sizes differ, so that segmentation offload cannot make them one message.
  return Array.from({ length: 6 }, (_, i) => {
    const d = new Uint8Array(900 + 37 * i);
    for (let j = 0; j < d.length; j++) d[j] = (0xf0 + i + j * 3) & 0xff;
    return d;
  });
}

/** Packets the qdisc on `lo` dropped so far (tc -s); -1 when it cannot tell. */
export function qdiscDrops(): number {
  try {
    const text = execFileSync('tc', ['-s', 'qdisc', 'show', 'dev', 'lo'], { encoding: 'utf8', timeout: 5000 });
    let total = 0;
    for (const match of text.matchAll(/dropped (\d+)/g)) total += Number(match[1]);
    return total;
  } catch {
    return -1;
  }
}

/**
 * UDP error counters of this network namespace (/proc/net/snmp), e.g. RcvbufErrors for
 * receive-buffer overflows. In the private namespace they are the fuzzer's alone.
 */
export function udpErrorCounters(): Record<string, number> {
  try {
    const lines = fs.readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
    const names = (lines[0] ?? '').split(/\s+/).slice(1);
    const values = (lines[1] ?? '').split(/\s+/).slice(1).map(Number);
    const out: Record<string, number> = {};
    names.forEach((name, i) => {
      // (SndbufErrors also counts every EAGAIN of a full send buffer: not a loss.)
      if (/Errors$/.test(name) && name !== 'SndbufErrors') out[`udp ${name}`] = values[i] ?? -1;
    });
    return out;
  } catch {
    return {};
  }
}
