/**
 * A pacer for the batch sends: a rate (datagrams/s or payload bits/s) kept with one timer at a
 * time, a tick's worth of datagrams per send call, so that paced traffic still takes the batch
 * and GSO paths (one system call per up to 1024 datagrams, super-packets for equal-size runs)
 * instead of one datagram per timer.
 *
 * It is a token bucket: credit grows with the clock at the rate and is capped at `burst`; each
 * tick sends what the credit allows and is charged for it. A timer that fires late finds more
 * credit and catches up, never past the cap; credit above the cap is forfeited and counted, so
 * a pacer that fell behind says so instead of bursting.
 *
 * ```ts
 * const pacer = new Pacer(socket, { rate: 100_000, port: 9000, address: '127.0.0.1',
 *   next: ({ datagrams }) => (left > 0 ? take(Math.min(datagrams, left)) : null) });
 * const stats = await pacer.done;
 * ```
 */
import { performance } from 'node:perf_hooks';
import { checkPieceCount, type BatchInput } from './batch';
import type { SendOptions, SendResult } from './socket';
import { checkOptionNames, PACER_OPTION_NAMES } from './option-names';
import { MAX_BATCH_DATAGRAMS } from './transport';
import { describeValue } from './describe';

/** What the pacer needs of a socket: UdpSocket has it. */
export interface PacedSocket {
  trySendBatch(batch: BatchInput, port?: number, address?: string, options?: SendOptions): SendResult;
  sendBatch(batch: BatchInput, port?: number, address?: string, options?: SendOptions): Promise<SendResult>;
  /** Datagrams waiting in the socket's queue (a queue-mode pacer waits while there are any). */
  readonly pendingDatagrams: number;
}

/** What one send call of a tick may carry. */
export interface PacerBudget {
  /** Most datagrams the batch may hold (at least 1). */
  readonly datagrams: number;
  /**
   * Payload bytes the credit allows (bitrate pacing; Infinity for a datagram rate). A batch may
   * go past it by its last datagram: the pacer charges what was offered and waits the debt off.
   */
  readonly bytes: number;
}

/**
 * Gives the next batch for a send call: at most `budget.datagrams` datagrams (an array or a
 * packed batch), an empty array to skip this call, or null when there is nothing more to send
 * (the pacer then ends, once what it sent has completed).
 */
export type PacerSource = (budget: PacerBudget) => BatchInput | null;

/** How sends are made. */
export type PacerMode = 'queue' | 'try';

export interface PacerOptions {
  /** Datagrams per second. Give this or `bitrate`. */
  rate?: number;
  /** UDP payload bits per second. Give this or `rate`. */
  bitrate?: number;
  /** Where the batches come from. */
  next: PacerSource;
  /** Destination of every send (omit both on a connected socket). */
  port?: number;
  address?: string;
  /** Options of every send call (controls, gso, continueOnError). */
  sendOptions?: SendOptions;
  /**
   * 'queue' (default): sendBatch; what the kernel cannot take at once waits in the socket's
   * queue and the pacer sends nothing more until it has gone (no datagram is lost to the
   * pacer). 'try': trySendBatch; what the kernel does not take is dropped and counted as
   * `unsent`, and pacing goes on.
   */
  mode?: PacerMode;
  /** Milliseconds between ticks (default 1; longer when the credit needs longer to reach one datagram). */
  intervalMs?: number;
  /**
   * Most credit a tick may find: datagrams (with `rate`) or bytes (with `bitrate`). Default:
   * four intervals' worth, at least one datagram (with a bitrate: at least the datagram size
   * sent so far, a batch's mean). What one tick sends is bounded by it.
   */
  burst?: number;
  /** Most datagrams per send call (default: the library's batch limit). A tick makes several calls when its credit holds more. */
  maxBatch?: number;
  /** The clock in milliseconds (default performance.now); for tests. */
  now?: () => number;
}

/** Exact counts of what a pacer did. */
export interface PacerStats {
  /** Timer callbacks run. */
  ticks: number;
  /** Send calls made. */
  calls: number;
  /** Datagrams and payload bytes sent (taken by the kernel: completed sends only). */
  datagrams: number;
  bytes: number;
  /** Datagrams handed to sendBatch that have not completed yet (queue mode). */
  queued: number;
  /** Datagrams the kernel did not take in try mode ("would block"): dropped, not sent. */
  unsent: number;
  /** Datagrams the kernel refused for their destination (with continueOnError). */
  failed: number;
  /** Ticks that sent nothing because the socket's queue was not empty (queue mode). */
  waitingTicks: number;
  /** Credit lost at the burst cap (datagrams or bytes): above 0, the pacer fell behind its rate. */
  forfeited: number;
  /** Milliseconds since start(), frozen once done. */
  elapsedMs: number;
}

interface BatchSize {
  datagrams: number;
  bytes: number;
}

/**
 * One read of what the source gave: the datagram array (and each datagram's pieces) copied, or
 * a packed batch's fields read into a plain object. The pacer counts, charges and sends this
 * snapshot, so a getter or Proxy in the source's batch cannot make the count the pacer charges
 * differ from what the send reads. The shape is checked here (a batch the pacer cannot count is
 * a TypeError, never a call skipped); lengths, limits and element types are the send's checks.
 */
function snapshotOf(batch: unknown, budget: number): { batch: BatchInput; size: BatchSize } {
  if (Array.isArray(batch)) {
    const count = batch.length;
    checkBudget(count, budget);
    const datagrams: (Uint8Array | readonly Uint8Array[])[] = new Array(count);
    let bytes = 0;
    let pieceCount = 0;
    for (let i = 0; i < count; i++) {
      const datagram: unknown = batch[i];
      const length = Array.isArray(datagram) ? datagram.length : 1;
      checkPieceCount(i, length, pieceCount);
      pieceCount += length;
      if (Array.isArray(datagram)) {
        const pieces = datagram.slice(0, length) as unknown[];
        for (const piece of pieces) if (piece instanceof Uint8Array) bytes += piece.byteLength;
        datagrams[i] = pieces as Uint8Array[];
      } else {
        if (datagram instanceof Uint8Array) bytes += datagram.byteLength;
        datagrams[i] = datagram as Uint8Array; // anything else: the send's TypeError names it
      }
    }
    return { batch: datagrams, size: { datagrams: count, bytes } };
  }
  if (typeof batch !== 'object' || batch === null) {
    throw new TypeError(`the pacer's source must give an array of datagrams, a packed batch or null, got ${describeValue(batch)}`);
  }
  const packed = batch as Record<string, unknown>;
  const buffer = packed.buffer;
  if (!(buffer instanceof Uint8Array)) throw new TypeError("the pacer's source gave a packed batch without buffer: a Uint8Array");
  if ('lengths' in packed) {
    if ('segmentSize' in packed) throw new TypeError("the pacer's source gave a packed batch with both lengths and segmentSize");
    const given = packed.lengths;
    if (!(given instanceof Uint32Array) && !Array.isArray(given)) {
      throw new TypeError("the pacer's source gave packed lengths that are not a Uint32Array or an array of numbers");
    }
    const count = given.length;
    checkBudget(count, budget);
    // A Uint32Array's elements run no code of the caller's; an array's may.
    const lengths: Uint32Array | number[] = Array.isArray(given) ? (given.slice(0, count) as number[]) : given;
    let bytes = 0;
    for (const length of lengths) if (typeof length === 'number' && length > 0) bytes += length;
    return { batch: { buffer, lengths }, size: { datagrams: count, bytes: Math.min(bytes, buffer.byteLength) } };
  }
  const segmentSize = packed.segmentSize;
  if (typeof segmentSize !== 'number' || !Number.isInteger(segmentSize) || segmentSize < 1) {
    throw new TypeError(`the pacer's source gave a packed batch whose segmentSize is not a whole number above 0: ${describeValue(segmentSize)}`);
  }
  const bytes = buffer.byteLength;
  const count = Math.ceil(bytes / segmentSize);
  checkBudget(count, budget);
  return { batch: { buffer, segmentSize }, size: { datagrams: count, bytes } };
}

/** Before any copy: a source that gives more than its budget is an error, not a burst. */
function checkBudget(count: number, budget: number): void {
  if (count > budget) throw new RangeError(`the pacer's source gave ${count} datagrams for a budget of ${budget}`);
}

function positive(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`${name} must be a finite number above 0, got ${String(value)}`);
  }
  return value;
}

/**
 * Sends batches from `next` over `socket` at a rate, one timer at a time (see the file
 * comment). Starts at once; `done` resolves with the final counts when `next` returns null or
 * stop() is called and the last send has completed, and rejects with the send's error if one
 * fails (the pacer then stops). Works wherever UdpSocket does; the timing is Node's timers.
 */
export class Pacer {
  /** Resolves with the final counts; rejects with the first send error. */
  readonly done: Promise<PacerStats>;
  readonly #socket: PacedSocket;
  readonly #next: PacerSource;
  readonly #port: number | undefined;
  readonly #address: string | undefined;
  readonly #sendOptions: SendOptions | undefined;
  readonly #try: boolean;
  readonly #byBits: boolean;
  /** Credit per millisecond: datagrams, or bytes with a bitrate. */
  readonly #perMs: number;
  readonly #intervalMs: number;
  #burst: number;
  // With a bitrate and no burst given, the cap grows to the datagram size sent (a batch's mean), so that one
  // datagram bigger than four intervals' worth of bytes never stalls the pacer.
  readonly #burstGrows: boolean;
  readonly #maxBatch: number;
  readonly #now: () => number;
  readonly #started: number;
  #credit: number;
  #last: number;
  #timer: NodeJS.Timeout | null = null;
  #stopping = false;
  #finished = false;
  #inFlight = 0;
  #error: unknown = null;
  readonly #stats: PacerStats = {
    ticks: 0, calls: 0, datagrams: 0, bytes: 0, queued: 0, unsent: 0, failed: 0, waitingTicks: 0, forfeited: 0, elapsedMs: 0,
  };
  #resolve!: (stats: PacerStats) => void;
  #reject!: (error: unknown) => void;

  constructor(socket: PacedSocket, options: PacerOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    checkOptionNames(options, PACER_OPTION_NAMES, 'Pacer');
    const { rate, bitrate, next, mode = 'queue', intervalMs = 1, burst, maxBatch = MAX_BATCH_DATAGRAMS } = options;
    if ((rate === undefined) === (bitrate === undefined)) throw new TypeError('give one of rate (datagrams/s) or bitrate (bits/s)');
    if (typeof next !== 'function') throw new TypeError('next must be a function returning the next batch');
    if (mode !== 'queue' && mode !== 'try') throw new TypeError(`mode must be 'queue' or 'try', got ${String(mode)}`);
    if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > MAX_BATCH_DATAGRAMS) {
      throw new RangeError(`maxBatch must be an integer from 1 to ${MAX_BATCH_DATAGRAMS}, got ${String(maxBatch)}`);
    }
    this.#byBits = bitrate !== undefined;
    this.#perMs = this.#byBits ? positive(bitrate, 'bitrate') / 8000 : positive(rate, 'rate') / 1000;
    this.#intervalMs = positive(intervalMs, 'intervalMs');
    // The unit a send needs: one datagram, or (with a bitrate) any positive credit.
    const fourIntervals = this.#perMs * this.#intervalMs * 4;
    this.#burst = burst === undefined ? Math.max(this.#byBits ? 0 : 1, fourIntervals) : positive(burst, 'burst');
    if (!this.#byBits && this.#burst < 1) throw new RangeError('burst must allow at least one datagram');
    this.#burstGrows = this.#byBits && burst === undefined;
    this.#socket = socket;
    this.#next = next;
    this.#port = options.port;
    this.#address = options.address;
    this.#sendOptions = options.sendOptions;
    this.#try = mode === 'try';
    this.#maxBatch = maxBatch;
    this.#now = options.now ?? (() => performance.now());
    this.done = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#started = this.#now();
    this.#last = this.#started;
    // The first datagram goes out at the first tick, not one period later.
    this.#credit = Math.min(this.#burst, this.#byBits ? Math.max(1, fourIntervals / 4) : 1);
    this.#schedule(0);
  }

  /** A snapshot of the counts so far. */
  stats(): PacerStats {
    const elapsedMs = this.#finished ? this.#stats.elapsedMs : this.#now() - this.#started;
    return { ...this.#stats, elapsedMs };
  }

  /** Stops after the sends already made; `done` resolves once they have completed. Idempotent. */
  stop(): void {
    if (this.#stopping) return;
    this.#stopping = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#settleIfIdle();
  }

  #schedule(delayMs: number): void {
    this.#timer = setTimeout(() => this.#tick(), delayMs);
  }

  #tick(): void {
    this.#timer = null;
    if (this.#stopping) return;
    const now = this.#now();
    const credit = this.#credit + (now - this.#last) * this.#perMs;
    this.#last = now;
    if (credit > this.#burst) {
      this.#stats.forfeited += credit - this.#burst;
      this.#credit = this.#burst;
    } else {
      this.#credit = credit;
    }
    this.#stats.ticks++;
    try {
      this.#sendTick();
    } catch (error) {
      this.#fail(error);
      return;
    }
    if (this.#stopping) return;
    // Wait one interval, or longer when the credit needs longer to allow a send.
    const needed = this.#byBits ? -this.#credit : 1 - this.#credit;
    this.#schedule(Math.max(this.#intervalMs, needed > 0 ? needed / this.#perMs : 0));
  }

  /** Sends what the credit allows now, in calls of at most maxBatch datagrams. */
  #sendTick(): void {
    if (!this.#try && this.#socket.pendingDatagrams > 0) {
      this.#stats.waitingTicks++;
      return;
    }
    // Bounded: every call is charged at least one datagram (or byte), and the credit is capped.
    while (this.#byBits ? this.#credit > 0 : this.#credit >= 1) {
      const budget: PacerBudget = this.#byBits
        ? { datagrams: this.#maxBatch, bytes: Math.max(1, Math.floor(this.#credit)) }
        : { datagrams: Math.min(this.#maxBatch, Math.floor(this.#credit)), bytes: Infinity };
      const given = this.#next(budget);
      if (given === null) {
        this.stop();
        return;
      }
      const { batch, size } = snapshotOf(given, budget.datagrams);
      if (size.datagrams === 0) return;
      this.#credit -= this.#byBits ? Math.max(1, size.bytes) : size.datagrams;
      if (this.#burstGrows) this.#burst = Math.max(this.#burst, size.bytes / size.datagrams);
      this.#stats.calls++;
      if (this.#try) {
        this.#trySend(batch, size);
      } else {
        this.#queueSend(batch, size);
        // One sendBatch at a time: the next waits for the kernel to have taken this one.
        if (this.#socket.pendingDatagrams > 0) return;
      }
    }
  }

  #trySend(batch: BatchInput, size: BatchSize): void {
    let result: SendResult;
    try {
      result = this.#socket.trySendBatch(batch, this.#port, this.#address, this.#sendOptions);
    } catch (error) {
      this.#countPartial(error);
      throw error;
    }
    this.#stats.datagrams += result.datagrams;
    this.#stats.bytes += result.bytes;
    this.#stats.failed += result.failures.length;
    this.#stats.unsent += size.datagrams - result.datagrams - result.failures.length;
  }

  #queueSend(batch: BatchInput, size: BatchSize): void {
    this.#inFlight++;
    this.#stats.queued += size.datagrams;
    this.#socket.sendBatch(batch, this.#port, this.#address, this.#sendOptions).then((result) => {
      this.#inFlight--;
      this.#stats.queued -= size.datagrams;
      this.#stats.datagrams += result.datagrams;
      this.#stats.bytes += result.bytes;
      this.#stats.failed += result.failures.length;
      this.#settleIfIdle();
    }, (error: unknown) => {
      this.#inFlight--;
      this.#stats.queued -= size.datagrams;
      this.#countPartial(error);
      this.#fail(error);
    });
  }

  /** What a failed call sent before its error (a WskError says) still counts as sent. */
  #countPartial(error: unknown): void {
    if (typeof error !== 'object' || error === null) return;
    const sent = error as { datagramsSent?: unknown; bytesSent?: unknown };
    if (typeof sent.datagramsSent === 'number') this.#stats.datagrams += sent.datagramsSent;
    if (typeof sent.bytesSent === 'number') this.#stats.bytes += sent.bytesSent;
  }

  #fail(error: unknown): void {
    this.#error ??= error;
    this.stop();
    this.#settleIfIdle(); // stop() was perhaps called before: the last send to settle settles done
  }

  #settleIfIdle(): void {
    if (!this.#stopping || this.#inFlight > 0 || this.#finished) return;
    this.#stats.elapsedMs = this.#now() - this.#started;
    this.#finished = true;
    if (this.#error !== null) this.#reject(this.#error);
    else this.#resolve({ ...this.#stats });
  }
}
