/**
 * A NativeSender for unit tests of the send queue that models a kernel socket buffer: each
 * send takes up to `capacity` more datagrams, then stops with `wouldBlock` set (errno EAGAIN
 * unless told otherwise). The test drives the event loop by hand: `writable(n)` refills the
 * buffer and calls the poll callback the queue registered, as uv_poll would when POLLOUT fires.
 *
 * The fake reads the window of a Batch itself, the way the native reader does (spans, then
 * ranges, then buffers; every value checked before anything is sent), so what it records as
 * sent is independent of the queue's own bookkeeping.
 */
import * as os from 'node:os';
import type { NativeControls } from '../../lib/binding';
import { DESTINATION_RECORD_BYTES, type NativeBatch, type NativeSendResult } from '../../lib/batch';
import type { NativeSender } from '../../lib/send-queue';
import { MAX_UDP_PAYLOAD } from '../../lib/transport';

const { EAGAIN } = os.constants.errno;

export interface SendCall {
  /** The batch object the queue passed (identity: the queue sends the batch it was given). */
  batch: NativeBatch;
  first: number;
  count: number;
  /** The batch's fields, as read at the call. */
  segment: boolean;
  continueOnError: boolean;
  controls: NativeControls | undefined;
  targets: Uint32Array | null;
  destinations: Uint8Array | null;
  /** What the call returned (undefined when it threw). */
  result?: NativeSendResult;
  /** What it threw, if it did. */
  threw?: unknown;
}

/** One datagram the fake put on the wire. */
export interface WireDatagram {
  batch: NativeBatch;
  /** Its index in the batch. */
  index: number;
  /** A copy of its payload. */
  bytes: Uint8Array;
  /** A copy of its destination record, or null for the connected remote. */
  destination: Uint8Array | null;
}

/** One datagram the fake refused with continueOnError (not sent, the send went on). */
export interface FailedDatagram {
  batch: NativeBatch;
  index: number;
  errno: number;
}

interface ScriptedError {
  batch: NativeBatch;
  index: number;
  errno: number;
}

/** A datagram of the window, checked: its pieces (views, not yet copied) and its record. */
interface ReadDatagram {
  pieces: Uint8Array[];
  destination: Uint8Array | null;
}

const typedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as object;
const byteLengthGetter = Object.getOwnPropertyDescriptor(typedArrayPrototype, 'byteLength')!.get!;
const lengthGetter = Object.getOwnPropertyDescriptor(typedArrayPrototype, 'length')!.get!;
const typedArrayAt = Uint8Array.prototype.at;

export class FakeNative implements NativeSender {
  /** The socket's family: the records of a batch must name it. */
  family: 4 | 6 = 6;
  /** Datagrams the socket buffer takes before a send stops with wouldBlock. */
  capacity = 0;
  /** Every send call, in order. */
  readonly calls: SendCall[] = [];
  /** Every datagram that went out, in order. */
  readonly wire: WireDatagram[] = [];
  /** Every datagram refused with continueOnError, in order. */
  readonly failed: FailedDatagram[] = [];
  /** Whether the poll is on (the queue called startPolling and not yet stopPolling). */
  polling = false;
  pollStarts = 0;
  pollStops = 0;
  /** The callback the queue gave to the last successful startPolling. */
  onWritable: ((errno: number) => void) | null = null;
  /** Answers of the next startPolling calls (0 when empty). */
  readonly pollScript: number[] = [];
  /** Contract violations seen (start while on, stop while off). */
  readonly violations: string[] = [];
  /** Errno reported with wouldBlock when the buffer is full (EAGAIN unless set). */
  wouldBlockErrno = EAGAIN;
  /** Fail the datagram this many into the next call's window (one-shot), as failAt does. */
  failInNextCallAt: { offset: number; errno: number } | null = null;
  /**
   * Runs inside the next send, before it reads its window: JavaScript that a getter would run
   * there (it may close or cancel). One-shot.
   */
  duringNextSend: (() => void) | null = null;
  readonly #errors: ScriptedError[] = [];
  readonly #submitted = new WeakMap<Uint32Array, NativeBatch>();

  /** The payload of every datagram that went out, in order. */
  get sent(): Uint8Array[] {
    return this.wire.map((d) => d.bytes);
  }

  /**
   * Makes datagram `index` of `batch` fail with `errno` (once): with continueOnError it is
   * recorded in `failures` and the send goes on, otherwise the send stops there.
   */
  failAt(batch: NativeBatch, index: number, errno: number): void {
    this.#errors.push({ batch, index, errno });
  }

  /**
   * Registers a batch about to be submitted: the queue sends a waiting request from a copy
   * with its own buffers array (same typed arrays), and calls name the batch as submitted.
   */
  know(batch: NativeBatch): void {
    this.#submitted.set(batch.spans, batch);
  }

  send(given: NativeBatch, first: number, count: number): NativeSendResult {
    const batch = this.#submitted.get(given.spans) ?? given;
    // Each field once, as the native reader does: from the batch the queue passed.
    const buffers = given.buffers;
    const ranges = given.ranges;
    const spans = given.spans;
    const targets = given.targets;
    const destinations = given.destinations;
    const segment = given.segment;
    const continueOnError = given.continueOnError;
    const controls = given.controls;
    const call: SendCall = {
      batch, first, count, segment, continueOnError, controls, targets, destinations,
    };
    this.calls.push(call);
    const during = this.duringNextSend;
    this.duringNextSend = null;
    const callError = this.failInNextCallAt;
    this.failInNextCallAt = null;
    during?.();
    let window: ReadDatagram[];
    try {
      // The whole window is read and checked first: a bad value throws before anything goes out.
      window = readWindow({
        buffers, ranges, spans, targets, destinations, segment, continueOnError, controls,
      }, first, count, this.family);
    } catch (error) {
      call.threw = error;
      throw error;
    }

    let datagrams = 0;
    let bytes = 0;
    let segments = 0;
    let errno = 0;
    let wouldBlock = false;
    const failures: number[] = [];
    for (let i = 0; i < count; i++) {
      const index = first + i;
      let refused = 0;
      const scripted = this.#errors.findIndex((e) => e.batch === batch && e.index === index);
      if (scripted >= 0) {
        refused = this.#errors[scripted]!.errno;
        this.#errors.splice(scripted, 1);
      } else if (callError !== null && callError.offset === i) {
        refused = callError.errno;
      }
      if (refused !== 0) {
        if (!continueOnError) {
          errno = refused;
          break;
        }
        failures.push(index, refused);
        this.failed.push({ batch, index, errno: refused });
        continue;
      }
      if (this.capacity <= 0) {
        errno = this.wouldBlockErrno;
        wouldBlock = true;
        break;
      }
      this.capacity--;
      const datagram = window[i]!;
      const payload = concat(datagram.pieces);
      this.wire.push({
        batch, index, bytes: payload,
        destination: datagram.destination === null ? null : Uint8Array.from(datagram.destination),
      });
      datagrams++;
      bytes += payload.length;
      segments += segmentsOf(payload.length, controls?.segmentSize ?? 0);
    }
    const result: NativeSendResult = {
      datagrams, bytes, segments, errno,
      syscall: errno !== 0 || wouldBlock ? 'sendmmsg' : '',
      wouldBlock,
      failures: continueOnError ? failures : null,
    };
    call.result = result;
    return { ...result, failures: result.failures === null ? null : [...result.failures] };
  }

  startPolling(onWritable: (errno: number) => void): number {
    const errno = this.pollScript.shift() ?? 0;
    if (errno !== 0) return errno;
    if (this.polling) this.violations.push('startPolling while polling');
    this.polling = true;
    this.pollStarts++;
    this.onWritable = onWritable;
    return 0;
  }

  stopPolling(): void {
    if (!this.polling) this.violations.push('stopPolling while not polling');
    this.polling = false;
    this.pollStops++;
  }

  /**
   * The socket became writable: the buffer has room for `room` datagrams (when given), and
   * the poll callback runs, as from the event loop. Throws if the poll is off (uv_poll would
   * not call back).
   */
  writable(room?: number): void {
    if (!this.polling || this.onWritable === null) throw new Error('writable() while the poll is off');
    if (room !== undefined) this.capacity = room;
    this.onWritable(0);
  }
}

/** Datagrams on the wire for one payload: an explicit segment size cuts it in segments. */
export function segmentsOf(length: number, segmentSize: number): number {
  if (segmentSize <= 0 || length <= segmentSize) return 1;
  return Math.ceil(length / segmentSize);
}

/** A copy of the pieces of one datagram, back to back. */
function concat(pieces: readonly Uint8Array[]): Uint8Array {
  const datagram = new Uint8Array(pieces.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const piece of pieces) {
    datagram.set(piece, at);
    at += piece.length;
  }
  return datagram;
}

function checkIndex(value: unknown, what: string): number {
  if (typeof value !== 'number') throw new TypeError(`${what} must be a number`);
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`${what} must be an integer from 0 to 2^32-1`);
  }
  return value;
}

function typedLength(view: ArrayBufferView): number {
  return Reflect.apply(lengthGetter, view, []) as number;
}

/**
 * Datagrams [first, first + count) of `batch`, checked: spans inside `spans`, ranges inside
 * `ranges`, buffer indices inside `buffers`, bytes inside their buffer (whose memory is there),
 * payloads within the UDP limit, targets inside the table, records of the socket's family.
 */
export function readWindow(batch: NativeBatch, firstInput: unknown, countInput: unknown,
  family: 4 | 6): ReadDatagram[] {
  const { buffers, ranges, spans, targets, destinations } = batch;
  if (!Array.isArray(buffers)) throw new TypeError('batch.buffers must be an array');
  if (!(ranges instanceof Uint32Array)) throw new TypeError('batch.ranges must be a Uint32Array');
  if (!(spans instanceof Uint32Array)) throw new TypeError('batch.spans must be a Uint32Array');
  if (targets !== null && !(targets instanceof Uint32Array)) {
    throw new TypeError('batch.targets must be a Uint32Array or null');
  }
  if (destinations !== null && !(destinations instanceof Uint8Array)) {
    throw new TypeError('batch.destinations must be a Uint8Array or null');
  }
  if (typeof batch.segment !== 'boolean') throw new TypeError('batch.segment must be a boolean');
  if (typeof batch.continueOnError !== 'boolean') throw new TypeError('batch.continueOnError must be a boolean');
  const first = checkIndex(firstInput, 'first');
  const count = checkIndex(countInput, 'count');

  const rangeWords = typedLength(ranges);
  const spanWords = typedLength(spans);
  if (rangeWords % 3 !== 0) throw new RangeError('batch.ranges is not a whole number of ranges');
  if (spanWords % 2 !== 0) throw new RangeError('batch.spans is not a whole number of spans');
  if (first + count > spanWords / 2) throw new RangeError('the window runs past the last span');
  let records = 0;
  if (destinations !== null) {
    const size = Reflect.apply(byteLengthGetter, destinations, []) as number;
    if (size % DESTINATION_RECORD_BYTES !== 0) throw new RangeError('batch.destinations is not whole records');
    records = size / DESTINATION_RECORD_BYTES;
    if (records === 0) throw new RangeError('batch.destinations is empty');
  }
  if (targets !== null) {
    if (destinations === null) throw new RangeError('batch.targets without a destination table');
    if (first + count > typedLength(targets)) throw new RangeError('the window runs past the last target');
  }

  const views = new Map<number, Uint8Array>();
  const viewOf = (index: number): Uint8Array => {
    let view = views.get(index);
    if (view !== undefined) return view;
    if (index >= buffers.length) throw new RangeError(`a range names buffer ${index}; there are ${buffers.length}`);
    const read: unknown = buffers[index];
    if (!(read instanceof Uint8Array)) throw new TypeError(`buffer ${index} is not a Uint8Array`);
    view = read;
    if ((Reflect.apply(byteLengthGetter, view, []) as number) === 0) {
      try {
        Reflect.apply(typedArrayAt, view, [0]);
      } catch {
        throw new RangeError(`buffer ${index} has no memory`);
      }
    }
    views.set(index, view);
    return view;
  };
  const recordOf = (target: number): Uint8Array => {
    if (target >= records) throw new RangeError(`target ${target} is outside the table of ${records}`);
    const record = destinations!.subarray(target * DESTINATION_RECORD_BYTES, (target + 1) * DESTINATION_RECORD_BYTES);
    if (record[0] !== family || record[1] !== 0) throw new RangeError(`record ${target} is not an IPv${family} destination`);
    return record;
  };

  const window: ReadDatagram[] = [];
  for (let d = first; d < first + count; d++) {
    const firstRange = spans[d * 2]!;
    const rangeCount = spans[d * 2 + 1]!;
    if (firstRange + rangeCount > rangeWords / 3) throw new RangeError(`datagram ${d} spans ranges past the last`);
    const pieces: Uint8Array[] = [];
    let length = 0;
    for (let r = firstRange; r < firstRange + rangeCount; r++) {
      const view = viewOf(ranges[r * 3]!);
      const offset = ranges[r * 3 + 1]!;
      const size = ranges[r * 3 + 2]!;
      const available = Reflect.apply(byteLengthGetter, view, []) as number;
      if (offset > available || size > available - offset) {
        throw new RangeError(`range ${r} lies outside its buffer`);
      }
      pieces.push(view.subarray(offset, offset + size));
      length += size;
    }
    if (length > MAX_UDP_PAYLOAD[family]) throw new RangeError(`datagram ${d} is over the UDP limit`);
    let destination: Uint8Array | null = null;
    if (destinations !== null) destination = recordOf(targets === null ? 0 : targets[d]!);
    window.push({ pieces, destination });
  }
  return window;
}
