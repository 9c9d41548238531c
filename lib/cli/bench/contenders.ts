/**
 * The bench's contenders: each sends `count` datagrams of one payload size to the counting
 * receiver and measures its own send time and CPU. In-process contenders measure with
 * performance.now() and process.cpuUsage(); the C reference sender measures itself (its send
 * loop only, with getrusage), so process start-up never counts.
 *
 * Every datagram starts with the run id (u32 big-endian) and an index (u32 big-endian), which
 * is how the receiver attributes it to one run. The in-process contenders stamp their buffers
 * before the clock starts and send the same buffers round after round, as an application
 * sending from a ring of prepared buffers would.
 *
 * The fan-out contenders send the same payloads to FANOUT_PEERS destinations (the receiver's
 * ports), `fanoutPayloads` datagrams to each per call or round: datagram `d * fanoutPayloads + i`
 * of a round is payload i to destination d, every destination's copy read from the same memory.
 */
import * as dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import {
  createSocket,
  type DestinationSet,
  IoAllocateIrp,
  IoAllocateMdl,
  ntStatusName,
  STATUS_PENDING,
  STATUS_SUCCESS,
  wskBufList,
  WskSendMessages,
  type SocketStats,
  type UdpSocket,
  type WSK_BUF,
  type WSK_BUF_LIST,
} from '../..';
import { runRefSender, type RefMode } from './c-tools';

/** Contender ids, in the order of the table (and of each repetition, rotated). */
export const CONTENDER_IDS = [
  'dgram', 'dgram-connected', 'plain', 'packed-plain', 'gso', 'packed-gso', 'wsk',
  'c-sendto', 'c-sendmmsg', 'c-gso', 'dgram-fanout', 'fanout', 'c-fanout',
] as const;
export type ContenderId = (typeof CONTENDER_IDS)[number];

export const CONTENDER_NAMES: Record<ContenderId, string> = {
  dgram: 'node:dgram',
  'dgram-connected': 'node:dgram connected',
  plain: 'wsk-dgram plain batch',
  'packed-plain': 'wsk-dgram packed plain',
  gso: 'wsk-dgram GSO',
  'packed-gso': 'wsk-dgram packed GSO',
  wsk: 'WSK layer (MDL chains)',
  'c-sendto': 'C sendto',
  'c-sendmmsg': 'C sendmmsg',
  'c-gso': 'C UDP_SEGMENT',
  'dgram-fanout': 'node:dgram fan-out 64',
  fanout: 'wsk-dgram fan-out 64',
  'c-fanout': 'C sendmmsg fan-out 64',
};

/** Destinations of the fan-out contenders (the receiver opens this many ports for them). */
export const FANOUT_PEERS = 64;
/** The fan-out contenders. */
export const FANOUT_IDS: readonly ContenderId[] = ['dgram-fanout', 'fanout', 'c-fanout'];

/** Bytes at the start of every datagram: run id and index. Payloads are at least this long. */
export const STAMP_BYTES = 8;

/** Where and how to send. */
export interface Target {
  readonly family: 4 | 6;
  readonly host: string;
  readonly port: number;
  /** Datagrams per call (wsk-dgram, WSK layer, C sendmmsg) or per round (node:dgram). */
  readonly batch: number;
  /**
   * The fan-out destinations' ports (FANOUT_PEERS of them when a fan-out contender runs).
   * Only the fan-out contenders read it, and they refuse to open without it.
   */
  readonly fanoutPorts?: readonly number[];
  /** Datagrams to each fan-out destination per call or round (default 1). */
  readonly fanoutPayloads?: number;
  readonly refSender: string;
}

/** One run, as the sender measured it. */
export interface SendMeasure {
  sent: number;
  bytes: number;
  seconds: number;
  userUs: number;
  sysUs: number;
  /** Sending system calls made, where known (C; wsk-dgram through socket.stats()). */
  syscalls: number | null;
  /** Messages the kernel took (a UDP_SEGMENT super-packet is one), where known. */
  messages: number | null;
}

export interface Contender {
  readonly id: ContenderId;
  readonly name: string;
  /** False for the C reference sender (a fresh process each run: nothing to warm up). */
  readonly inProcess: boolean;
  /** Sets up buffers for payloads of `size` bytes (untimed). */
  prepare(size: number): void;
  /** Sends `count` datagrams stamped with `run` and returns the measure. */
  run(run: number, count: number): Promise<SendMeasure>;
  close(): Promise<void>;
}

/** `count` datagrams of `size` bytes back to back in `memory`, with a fixed pattern; `views`
 * are the datagrams one by one (views of `memory`). */
export function makePacked(size: number, count: number): { memory: Buffer; views: Buffer[] } {
  const memory = Buffer.alloc(size * count);
  for (let i = 0; i < memory.length; i++) memory[i] = (i * 7 + 3) & 0xff;
  return { memory, views: Array.from({ length: count }, (_, i) => memory.subarray(i * size, (i + 1) * size)) };
}

/** `count` views of `size` bytes, back to back in one ArrayBuffer, with a fixed pattern. */
export function makePool(size: number, count: number): Buffer[] {
  return makePacked(size, count).views;
}

/** A packed batch of equal-size datagrams, in either of its two forms. */
type PackedWindow =
  | { readonly buffer: Uint8Array; readonly lengths: Uint32Array }
  | { readonly buffer: Uint8Array; readonly segmentSize: number };

/** What a wsk-dgram batch call returns, as far as the contenders read it. */
interface BatchResult {
  datagrams: number;
  bytes: number;
  failures: readonly { index: number; code: string; address?: string; port?: number }[];
}

/** Throws when the kernel refused any datagram (on loopback none should be). */
function checkNoFailures(who: string, result: BatchResult): void {
  if (result.failures.length === 0) return;
  const first = result.failures[0]!;
  throw new Error(`${who}: ${result.failures.length} datagrams refused, the first (index ${first.index}) ` +
    `with ${first.code} for ${first.address ?? 'the connected remote'}:${first.port ?? ''}`);
}

export function stamp(pool: readonly Buffer[], run: number): void {
  for (let i = 0; i < pool.length; i++) {
    pool[i]!.writeUInt32BE(run, 0);
    pool[i]!.writeUInt32BE(i, 4);
  }
}

/** Runs `body` under the clock and the CPU meter. */
async function measured(body: () => Promise<{ sent: number; bytes: number }>,
  counters?: () => SocketStats | null): Promise<SendMeasure> {
  const before = counters?.() ?? null;
  const cpu = process.cpuUsage();
  const start = performance.now();
  const { sent, bytes } = await body();
  const seconds = (performance.now() - start) / 1000;
  const usage = process.cpuUsage(cpu);
  const after = counters?.() ?? null;
  return {
    sent,
    bytes,
    seconds,
    userUs: usage.user,
    sysUs: usage.system,
    syscalls: before && after ? after.syscalls - before.syscalls : null,
    messages: before && after ? after.messages - before.messages : null,
  };
}

/** socket.stats() where the build has it (diagnostics only). */
function statsOf(socket: UdpSocket): () => SocketStats | null {
  const withStats = socket as unknown as { stats?: () => SocketStats };
  return typeof withStats.stats === 'function' ? () => withStats.stats!() : () => null;
}

/**
 * Node's dgram, best case: a callback only on the last datagram of each round of `batch`, and
 * the round is awaited, so nothing is left in libuv's queue when the clock stops. Unconnected
 * sends pass the destination (Node then does its lookup step per datagram); connected ones
 * do not.
 */
class NodeDgram implements Contender {
  readonly inProcess = true;
  readonly #socket: dgram.Socket;
  readonly #target: Target;
  readonly #connected: boolean;
  #pool: Buffer[] = [];
  #error: Error | null = null;

  private constructor(readonly id: ContenderId, readonly name: string, socket: dgram.Socket,
    target: Target, connected: boolean) {
    this.#socket = socket;
    this.#target = target;
    this.#connected = connected;
    socket.on('error', (error) => {
      this.#error ??= error;
    });
  }

  static async open(target: Target, connected: boolean): Promise<NodeDgram> {
    const socket = dgram.createSocket(target.family === 6 ? 'udp6' : 'udp4');
    if (connected) {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.connect(target.port, target.host, () => {
          socket.off('error', reject);
          resolve();
        });
      });
    }
    const id: ContenderId = connected ? 'dgram-connected' : 'dgram';
    return new NodeDgram(id, CONTENDER_NAMES[id], socket, target, connected);
  }

  prepare(size: number): void {
    this.#pool = makePool(size, this.#target.batch);
  }

  run(run: number, count: number): Promise<SendMeasure> {
    stamp(this.#pool, run);
    const size = this.#pool[0]!.length;
    return measured(async () => {
      let sent = 0;
      while (sent < count) {
        const n = Math.min(this.#pool.length, count - sent);
        await this.#round(n);
        if (this.#error) throw this.#error;
        sent += n;
      }
      return { sent, bytes: sent * size };
    });
  }

  #round(n: number): Promise<void> {
    const socket = this.#socket;
    const pool = this.#pool;
    const { port, host } = this.#target;
    return new Promise((resolve, reject) => {
      const done = (error: Error | null): void => (error ? reject(error) : resolve());
      if (this.#connected) {
        for (let i = 0; i < n - 1; i++) socket.send(pool[i]!);
        socket.send(pool[n - 1]!, done);
      } else {
        for (let i = 0; i < n - 1; i++) socket.send(pool[i]!, port, host);
        socket.send(pool[n - 1]!, port, host, done);
      }
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }
}

/**
 * wsk-dgram's idiomatic path: trySendBatch with `batch` datagrams per call, to an explicit
 * destination (like node:dgram unconnected and the C sender). `gso` false passes
 * `{ gso: false }` per call (the plain sendmmsg path); true uses the socket's default, GSO on.
 * Should the kernel not take a whole batch (it does not happen on loopback), the rest goes
 * through sendBatch and is awaited, inside the clock.
 */
class WskBatch implements Contender {
  readonly inProcess = true;
  readonly id: ContenderId;
  readonly name: string;
  readonly socket: UdpSocket;
  readonly #target: Target;
  readonly #options: { gso: boolean } | undefined;
  #pool: Buffer[] = [];

  constructor(target: Target, gso: boolean) {
    this.id = gso ? 'gso' : 'plain';
    this.name = CONTENDER_NAMES[this.id];
    this.#target = target;
    this.#options = gso ? undefined : { gso: false };
    this.socket = createSocket({ type: target.family === 6 ? 'udp6' : 'udp4' });
  }

  prepare(size: number): void {
    this.#pool = makePool(size, this.#target.batch);
  }

  run(run: number, count: number): Promise<SendMeasure> {
    stamp(this.#pool, run);
    const { port, host } = this.#target;
    const options = this.#options;
    const socket = this.socket;
    const full = this.#pool;
    return measured(async () => {
      let sent = 0;
      let bytes = 0;
      while (sent < count) {
        const datagrams = count - sent >= full.length ? full : full.slice(0, count - sent);
        const now = socket.trySendBatch(datagrams, port, host, options);
        checkNoFailures(this.name, now);
        bytes += now.bytes;
        if (now.datagrams < datagrams.length) {
          const rest = await socket.sendBatch(datagrams.slice(now.datagrams), port, host, options);
          bytes += rest.bytes;
        }
        sent += datagrams.length;
      }
      return { sent, bytes };
    }, statsOf(socket));
  }

  close(): Promise<void> {
    this.socket.close();
    return Promise.resolve();
  }
}

/**
 * wsk-dgram with a packed batch: the `batch` datagrams of a call back to back in one
 * Uint8Array, as QUIC stacks hold them. Plain sends `{ buffer, lengths }` with
 * `{ gso: false }`; GSO sends `{ buffer, segmentSize }` on a socket with GSO on (its default).
 * What the kernel does not take at once goes through sendBatch and is awaited, inside the clock,
 * as for the array form.
 */
class WskPacked implements Contender {
  readonly inProcess = true;
  readonly id: ContenderId;
  readonly name: string;
  readonly socket: UdpSocket;
  readonly #target: Target;
  readonly #gso: boolean;
  readonly #options: { gso: boolean } | undefined;
  #memory: Buffer = Buffer.alloc(0);
  #views: Buffer[] = [];
  #lengths = new Uint32Array(0);
  #size = 0;

  constructor(target: Target, gso: boolean) {
    this.id = gso ? 'packed-gso' : 'packed-plain';
    this.name = CONTENDER_NAMES[this.id];
    this.#target = target;
    this.#gso = gso;
    this.#options = gso ? undefined : { gso: false };
    this.socket = createSocket({ type: target.family === 6 ? 'udp6' : 'udp4' });
  }

  prepare(size: number): void {
    ({ memory: this.#memory, views: this.#views } = makePacked(size, this.#target.batch));
    this.#lengths = new Uint32Array(this.#target.batch).fill(size);
    this.#size = size;
  }

  /** Datagrams [from, to) of the buffer as a packed batch. */
  #window(from: number, to: number): PackedWindow {
    const buffer = this.#memory.subarray(from * this.#size, to * this.#size);
    return this.#gso
      ? { buffer, segmentSize: this.#size }
      : { buffer, lengths: this.#lengths.subarray(from, to) };
  }

  run(run: number, count: number): Promise<SendMeasure> {
    stamp(this.#views, run);
    const { port, host } = this.#target;
    const options = this.#options;
    const socket = this.socket;
    const batch = this.#target.batch;
    const full = this.#window(0, batch);
    const last = this.#window(0, count % batch === 0 ? batch : count % batch);
    return measured(async () => {
      let sent = 0;
      let bytes = 0;
      while (sent < count) {
        const n = Math.min(batch, count - sent);
        const now = socket.trySendBatch(n === batch ? full : last, port, host, options);
        checkNoFailures(this.name, now);
        bytes += now.bytes;
        const next = now.datagrams + now.failures.length;
        if (next < n) {
          const rest = await socket.sendBatch(this.#window(next, n), port, host, options);
          bytes += rest.bytes;
        }
        sent += n;
      }
      return { sent, bytes };
    }, statsOf(socket));
  }

  close(): Promise<void> {
    this.socket.close();
    return Promise.resolve();
  }
}

/**
 * wsk-dgram's fan-out: one trySendToMany per round, the round's `fanoutPayloads` datagrams to
 * every destination. GSO is off on the socket, as in the C fan-out (one message per datagram).
 * A round the kernel takes only in part is finished destination by destination: what is left
 * of the current destination's share through trySendBatch (awaited through sendBatch when the
 * socket takes nothing), then the remaining destinations by trySendToMany again.
 */
class WskFanOut implements Contender {
  readonly inProcess = true;
  readonly id: ContenderId = 'fanout';
  readonly name = CONTENDER_NAMES.fanout;
  readonly socket: UdpSocket;
  readonly #payloads: number;
  readonly #destinations: readonly { port: number; address: string }[];
  /** The peers checked and encoded once, as a server sending every tick to them would. */
  readonly #prepared: DestinationSet;
  #pool: Buffer[] = [];

  constructor(target: Target) {
    const fanOut = fanOutOf(target);
    this.#payloads = fanOut.payloads;
    this.#destinations = fanOut.ports.map((port) => ({ port, address: target.host }));
    this.socket = createSocket({ type: target.family === 6 ? 'udp6' : 'udp4', gso: false });
    this.#prepared = this.socket.prepareDestinations(this.#destinations);
  }

  prepare(size: number): void {
    this.#pool = makePool(size, this.#payloads);
  }

  run(run: number, count: number): Promise<SendMeasure> {
    stamp(this.#pool, run);
    const round = this.#payloads * this.#destinations.length;
    return measured(async () => {
      let sent = 0;
      let bytes = 0;
      while (sent < count) {
        const n = Math.min(round, count - sent);
        bytes += await this.#round(n);
        sent += n;
      }
      return { sent, bytes };
    }, statsOf(this.socket));
  }

  /** Sends the first `n` datagrams of a round; returns their bytes. */
  async #round(n: number): Promise<number> {
    const socket = this.socket;
    const payloads = this.#payloads;
    const pool = this.#pool;
    const destinations = this.#destinations;
    let next = 0;
    let bytes = 0;
    while (next < n) {
      const d = Math.floor(next / payloads);
      const i = next % payloads;
      const peers = Math.floor((n - next) / payloads);
      if (i === 0 && peers > 0) {
        const to = peers === destinations.length ? this.#prepared : destinations.slice(d, d + peers);
        const now = socket.trySendToMany(pool, to);
        checkNoFailures(this.name, now);
        bytes += now.bytes;
        next += now.datagrams + now.failures.length;
        if (now.datagrams + now.failures.length > 0) continue;
      }
      // Mid-destination (or the socket took nothing): finish this destination's share.
      const end = Math.min(payloads, i + (n - next));
      const { port, address } = destinations[d]!;
      const share = i === 0 && end === payloads ? pool : pool.slice(i, end);
      const now = socket.trySendBatch(share, port, address);
      checkNoFailures(this.name, now);
      bytes += now.bytes;
      const taken = now.datagrams + now.failures.length;
      if (taken < share.length) {
        const rest = await socket.sendBatch(share.slice(taken), port, address);
        bytes += rest.bytes;
      }
      next += share.length;
    }
    return bytes;
  }

  close(): Promise<void> {
    this.socket.close();
    return Promise.resolve();
  }
}

/**
 * node:dgram's fan-out: each round sends every payload to every destination with socket.send
 * (unconnected, as a server talking to many peers must), a callback on the round's last datagram,
 * the round awaited.
 */
class NodeDgramFanOut implements Contender {
  readonly inProcess = true;
  readonly id: ContenderId = 'dgram-fanout';
  readonly name = CONTENDER_NAMES['dgram-fanout'];
  readonly #socket: dgram.Socket;
  readonly #host: string;
  readonly #fanOut: FanOut;
  #pool: Buffer[] = [];
  #error: Error | null = null;

  constructor(target: Target) {
    this.#host = target.host;
    this.#fanOut = fanOutOf(target);
    this.#socket = dgram.createSocket(target.family === 6 ? 'udp6' : 'udp4');
    this.#socket.on('error', (error) => {
      this.#error ??= error;
    });
  }

  prepare(size: number): void {
    this.#pool = makePool(size, this.#fanOut.payloads);
  }

  run(run: number, count: number): Promise<SendMeasure> {
    stamp(this.#pool, run);
    const size = this.#pool[0]!.length;
    const round = this.#pool.length * this.#fanOut.ports.length;
    return measured(async () => {
      let sent = 0;
      while (sent < count) {
        const n = Math.min(round, count - sent);
        await this.#round(n);
        if (this.#error) throw this.#error;
        sent += n;
      }
      return { sent, bytes: sent * size };
    });
  }

  /** Sends the first `n` datagrams of a round: destination by destination, every payload. */
  #round(n: number): Promise<void> {
    const socket = this.#socket;
    const pool = this.#pool;
    const { ports } = this.#fanOut;
    const host = this.#host;
    return new Promise((resolve, reject) => {
      const done = (error: Error | null): void => (error ? reject(error) : resolve());
      for (let m = 0; m < n - 1; m++) socket.send(pool[m % pool.length]!, ports[Math.floor(m / pool.length)], host);
      socket.send(pool[(n - 1) % pool.length]!, ports[Math.floor((n - 1) / pool.length)], host, done);
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }
}

/**
 * The WSK layer as a driver would use it: each datagram is a WSK_BUF over a 2-MDL chain (an
 * 8-byte header MDL linked to a payload MDL), the WSK_BUF_LIST is built once per payload size
 * and reused, and every call gets a fresh IRP. The socket has GSO off, so this measures the
 * translation of the list (buildBatch) over the plain sendmmsg path.
 */
class WskLayer implements Contender {
  readonly inProcess = true;
  readonly id: ContenderId = 'wsk';
  readonly name = CONTENDER_NAMES.wsk;
  readonly socket: UdpSocket;
  readonly #target: Target;
  readonly #remote: { family: 4 | 6; address: string; port: number };
  #headers: Buffer[] = [];
  #bufs: WSK_BUF[] = [];
  #size = 0;
  readonly #lists = new Map<number, WSK_BUF_LIST>();

  constructor(target: Target) {
    this.#target = target;
    this.#remote = { family: target.family, address: target.host, port: target.port };
    this.socket = createSocket({ type: target.family === 6 ? 'udp6' : 'udp4', gso: false });
  }

  prepare(size: number): void {
    const batch = this.#target.batch;
    this.#size = size;
    this.#headers = makePool(STAMP_BYTES, batch);
    const payloads = makePool(size - STAMP_BYTES, batch);
    this.#lists.clear();
    this.#bufs = this.#headers.map((header, i) => ({
      Mdl: IoAllocateMdl(header, IoAllocateMdl(payloads[i]!)),
      Offset: 0,
      Length: size,
    }));
  }

  /** The list of the first `n` datagrams (built once per length). */
  #list(n: number): WSK_BUF_LIST {
    let list = this.#lists.get(n);
    if (list === undefined) {
      list = wskBufList(this.#bufs.slice(0, n));
      this.#lists.set(n, list);
    }
    return list;
  }

  run(run: number, count: number): Promise<SendMeasure> {
    stamp(this.#headers, run);
    const batch = this.#target.batch;
    const full = this.#list(batch);
    const last = count % batch === 0 ? full : this.#list(count % batch);
    const socket = this.socket;
    const remote = this.#remote;
    const size = this.#size;
    return measured(async () => {
      let sent = 0;
      let bytes = 0;
      while (sent < count) {
        const n = Math.min(batch, count - sent);
        const irp = IoAllocateIrp();
        let status = WskSendMessages(socket, n === batch ? full : last, 0, remote, 0, null, irp);
        if (status === STATUS_PENDING) status = (await irp.promise).Status;
        if (status !== STATUS_SUCCESS) {
          throw new Error(`WskSendMessages: ${ntStatusName(status)}: ${irp.FailureInfo?.reason ?? ''}`);
        }
        if (irp.IoStatus.Information !== n * size) {
          throw new Error(`WskSendMessages: Information ${irp.IoStatus.Information}, expected ${n * size}`);
        }
        bytes += irp.IoStatus.Information;
        sent += n;
      }
      return { sent, bytes };
    }, statsOf(socket));
  }

  close(): Promise<void> {
    this.socket.close();
    return Promise.resolve();
  }
}

/** The C reference sender (scripts/c/ref_sender.c), one child process per run. */
class CReference implements Contender {
  readonly inProcess = false;
  readonly name: string;
  readonly #target: Target;
  readonly #mode: RefMode;
  #size = 0;
  /** Segments per super-packet of the last gso run (the probed kernel limit and 65507 B). */
  segments = 0;

  constructor(readonly id: ContenderId, target: Target) {
    this.name = CONTENDER_NAMES[id];
    this.#target = target;
    this.#mode = id === 'c-sendto' ? 'sendto' : id === 'c-sendmmsg' ? 'sendmmsg' : id === 'c-fanout' ? 'fanout' : 'gso';
  }

  prepare(size: number): void {
    this.#size = size;
  }

  async run(run: number, count: number): Promise<SendMeasure> {
    const { refSender, host, port, batch } = this.#target;
    let result;
    if (this.#mode === 'fanout') {
      const fanOut = fanOutOf(this.#target);
      result = await runRefSender(refSender, 'fanout', host, fanOut.ports, this.#size, count, fanOut.payloads, run);
    } else {
      result = await runRefSender(refSender, this.#mode, host, [port], this.#size, count, batch, run);
    }
    this.segments = result.segments;
    return {
      sent: result.datagrams,
      bytes: result.bytes,
      seconds: result.seconds,
      userUs: result.user,
      sysUs: result.sys,
      syscalls: result.calls,
      messages: this.#mode === 'gso' ? result.calls : result.datagrams,
    };
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The fan-out part of a target, checked: a fan-out contender cannot run without its ports. */
interface FanOut {
  readonly ports: readonly number[];
  readonly payloads: number;
}

function fanOutOf(target: Target): FanOut {
  const ports = target.fanoutPorts ?? [];
  if (ports.length === 0) throw new Error('a fan-out contender needs the fan-out ports (Target.fanoutPorts)');
  return { ports, payloads: target.fanoutPayloads ?? 1 };
}

/** Opens the contenders named by `ids`, in table order. */
export async function openContenders(ids: readonly ContenderId[], target: Target): Promise<Contender[]> {
  const contenders: Contender[] = [];
  for (const id of CONTENDER_IDS) {
    if (!ids.includes(id)) continue;
    switch (id) {
      case 'dgram':
      case 'dgram-connected':
        contenders.push(await NodeDgram.open(target, id === 'dgram-connected'));
        break;
      case 'plain':
      case 'gso':
        contenders.push(new WskBatch(target, id === 'gso'));
        break;
      case 'packed-plain':
      case 'packed-gso':
        contenders.push(new WskPacked(target, id === 'packed-gso'));
        break;
      case 'fanout':
        contenders.push(new WskFanOut(target));
        break;
      case 'dgram-fanout':
        contenders.push(new NodeDgramFanOut(target));
        break;
      case 'wsk':
        contenders.push(new WskLayer(target));
        break;
      default:
        contenders.push(new CReference(id, target));
    }
  }
  return contenders;
}

/**
 * Whether GSO is in effect on the GSO contenders' sockets (false when the kernel refused it);
 * null when neither runs.
 */
export function gsoInEffect(contenders: readonly Contender[]): boolean | null {
  const sockets = contenders
    .filter((c): c is WskBatch | WskPacked => (c instanceof WskBatch || c instanceof WskPacked) && c.id.endsWith('gso'))
    .map((c) => c.socket.gso);
  return sockets.length === 0 ? null : sockets.every(Boolean);
}
