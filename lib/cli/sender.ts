/**
 * One blast sender: a socket of its own, a packed buffer of `batch` datagrams whose headers are
 * rewritten for each call, and the library's Pacer (or, with no rate, back-to-back sendBatch
 * calls). Runs in the main thread (one thread) or in a worker (blast-worker.ts).
 */
import { performance } from 'node:perf_hooks';
import { createSocket, type UdpSocket } from '../socket';
import { Pacer, type PacerBudget } from '../pacer';
import type { SendOptions } from '../socket';
import { writeHeader } from './header';

export interface SenderConfig {
  host: string;
  port: number;
  family: 4 | 6;
  size: number;
  /** This sender's share of --count, or null with a duration. */
  count: number | null;
  durationMs: number | null;
  /** This sender's share of the rate (datagrams/s or bits/s), or null: as fast as it goes. */
  rate: number | null;
  bitrate: number | null;
  batch: number;
  gso: boolean;
  tos: number | null;
  ttl: number | null;
  src: string | null;
  session: number;
  thread: number;
}

/** Cumulative counts of one sender (what went out: completed sends only). */
export interface SenderCounts {
  datagrams: number;
  bytes: number;
  /** Sending system calls and kernel messages (a GSO super-packet is one), from socket.stats(). */
  syscalls: number;
  messages: number;
  /** Refused by the kernel for the destination (continueOnError), never sent. */
  failed: number;
  /** Pacer figures (0 unpaced). */
  ticks: number;
  forfeited: number;
  waitingTicks: number;
  /** The local port the sender sends from. */
  sourcePort: number;
}

/** How often an unpaced sender lets timers and messages run (ms). */
const YIELD_MS = 5;

export class Sender {
  readonly #config: SenderConfig;
  readonly #socket: UdpSocket;
  readonly #buffer: Uint8Array;
  readonly #view: DataView;
  readonly #options: SendOptions;
  #sequence = 0;
  #stopped = false;
  #pacer: Pacer | null = null;
  #datagrams = 0;
  #bytes = 0;
  #failed = 0;
  #deadline = Infinity;
  readonly #sourcePort: number;
  /** The socket's counters as last read (a closed socket has none to read). */
  #lastStats = { syscalls: 0, messages: 0 };

  constructor(config: SenderConfig) {
    this.#config = config;
    this.#socket = createSocket({ type: config.family === 6 ? 'udp6' : 'udp4', gso: config.gso });
    this.#socket.bind(0, config.src ?? undefined);
    this.#sourcePort = this.#socket.address().port;
    this.#buffer = new Uint8Array(config.batch * config.size);
    // A fixed filler after each header, so payload bytes are not all zero.
    for (let i = 0; i < this.#buffer.length; i++) this.#buffer[i] = (i * 7 + 3) & 0xff;
    this.#view = new DataView(this.#buffer.buffer);
    this.#options = {};
    if (config.tos !== null) this.#options.tos = config.tos;
    if (config.ttl !== null) this.#options.ttl = config.ttl;
  }

  /** Sends until the count or duration is reached, or stop(); resolves with the final counts. */
  async run(): Promise<SenderCounts> {
    const start = performance.now();
    if (this.#config.durationMs !== null) this.#deadline = start + this.#config.durationMs;
    try {
      if (this.#config.rate !== null || this.#config.bitrate !== null) await this.#paced();
      else await this.#unpaced();
    } finally {
      // The counters as the socket ends (a closed socket has none to read).
      this.#lastStats = this.#socket.stats();
      this.#socket.close();
    }
    return this.counts();
  }

  stop(): void {
    this.#stopped = true;
    this.#pacer?.stop();
  }

  counts(): SenderCounts {
    const stats = this.#socket.closed ? this.#lastStats : (this.#lastStats = this.#socket.stats());
    const pacer = this.#pacer?.stats();
    return {
      datagrams: pacer?.datagrams ?? this.#datagrams,
      bytes: pacer?.bytes ?? this.#bytes,
      syscalls: stats.syscalls,
      messages: stats.messages,
      failed: pacer?.failed ?? this.#failed,
      ticks: pacer?.ticks ?? 0,
      forfeited: pacer?.forfeited ?? 0,
      waitingTicks: pacer?.waitingTicks ?? 0,
      sourcePort: this.#sourcePort,
    };
  }


  /** How many datagrams the next call may carry (0: done). */
  #left(wanted: number): number {
    if (this.#stopped || performance.now() >= this.#deadline) return 0;
    const count = this.#config.count === null ? wanted : Math.min(wanted, this.#config.count - this.#sequence);
    return Math.max(0, Math.min(count, this.#config.batch));
  }

  /** The next `n` datagrams, stamped, as one packed batch. */
  #fill(n: number): { buffer: Uint8Array; segmentSize: number } {
    const [seconds, nanoseconds] = process.hrtime();
    const { size, session, thread } = this.#config;
    for (let i = 0; i < n; i++) writeHeader(this.#view, i * size, session, thread, this.#sequence++, seconds, nanoseconds);
    return { buffer: this.#buffer.subarray(0, n * size), segmentSize: size };
  }

  async #paced(): Promise<void> {
    const { size, port, host, rate, bitrate, batch } = this.#config;
    // Ticks of 1 ms; sendBatch mode: what the kernel cannot take at once waits and the pacer
    // holds back (no datagram is dropped by the sender). The buffer is rewritten only when the
    // socket's queue is empty: everything sent before has been copied by the kernel.
    this.#pacer = new Pacer(this.#socket, {
      ...(rate !== null ? { rate } : { bitrate: bitrate! }),
      port, address: host, sendOptions: this.#options, maxBatch: batch,
      next: (budget: PacerBudget) => {
        const wanted = Number.isFinite(budget.bytes) ? Math.max(1, Math.floor(budget.bytes / size)) : budget.datagrams;
        const n = this.#left(Math.min(wanted, budget.datagrams));
        return n === 0 ? null : this.#fill(n);
      },
    });
    await this.#pacer.done;
  }

  async #unpaced(): Promise<void> {
    const { port, host } = this.#config;
    let lastYield = performance.now();
    for (;;) {
      const n = this.#left(this.#config.batch);
      if (n === 0) return;
      const result = await this.#socket.sendBatch(this.#fill(n), port, host, this.#options);
      this.#datagrams += result.datagrams;
      this.#bytes += result.bytes;
      this.#failed += result.failures.length;
      const now = performance.now();
      if (now - lastYield >= YIELD_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        lastYield = performance.now();
      }
    }
  }
}

