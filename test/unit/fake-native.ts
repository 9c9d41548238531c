/**
 * A NativeSender for unit tests of the send queue that models a kernel socket buffer: each
 * send takes up to `capacity` more datagrams, then stops with EAGAIN. The test drives the
 * event loop by hand: `writable(n)` refills the buffer and calls the poll callback the queue
 * registered, as uv_poll would when POLLOUT fires.
 *
 * The fake reads datagrams from `buffers` + `layout` itself (the same format the native side
 * reads, see lib/transport.ts BatchLayout), so what it records as "sent" is independent of the
 * queue's own bookkeeping.
 */
import * as os from 'node:os';
import type { NativeControls } from '../../lib/binding';
import type { NativeSender } from '../../lib/send-queue';
import type { BatchLayout, RawSendResult } from '../../lib/transport';

const { EAGAIN } = os.constants.errno;

export interface SendCall {
  buffers: readonly Uint8Array[];
  layout: BatchLayout;
  first: number;
  firstWord: number;
  count: number;
  address: string | null;
  port: number;
  scopeId: number;
  segment: boolean;
  controls: NativeControls | undefined;
  /** The word where datagram `first` starts, found by walking the layout from word 0. */
  expectedFirstWord: number;
  /** What the call returned (undefined when it threw). */
  result?: RawSendResult & { word: number };
}

interface ScriptedError {
  buffers: readonly Uint8Array[];
  index: number;
  errno: number;
}

export class FakeNative implements NativeSender {
  /** Datagrams the socket buffer takes before a send stops with EAGAIN. */
  capacity = 0;
  /** Every send call, in order. */
  readonly calls: SendCall[] = [];
  /** Every datagram that went out, as a copy of its bytes, in order. */
  readonly sent: Uint8Array[] = [];
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
  /** Errno of the next send that fails for lack of room (EAGAIN unless set). */
  wouldBlockErrno = EAGAIN;
  /** Fail the next call that reaches this many datagrams into its window (one-shot). */
  failInNextCallAt: { offset: number; errno: number } | null = null;
  /**
   * Runs inside the next send, before it reads its window: JavaScript that a getter on the
   * caller's buffers would run there (it may close or cancel). One-shot.
   */
  duringNextSend: (() => void) | null = null;
  readonly #errors: ScriptedError[] = [];

  /** Makes datagram `index` of the batch held in `buffers` fail with `errno` (once). */
  failAt(buffers: readonly Uint8Array[], index: number, errno: number): void {
    this.#errors.push({ buffers, index, errno });
  }

  send(...args: Parameters<NativeSender['send']>): RawSendResult & { word: number } {
    const [buffers, layout, first, firstWord, count, address, port, scopeId, segment, controls] = args;
    const call: SendCall = {
      buffers, layout, first, firstWord, count, address, port, scopeId, segment, controls,
      expectedFirstWord: layout === null ? 0 : wordOf(layout, first),
    };
    this.calls.push(call);
    const during = this.duringNextSend;
    this.duringNextSend = null;
    during?.();
    // Read the whole window first, as the native side does: a bad range throws before
    // anything goes out.
    const window = readWindow(buffers, layout, first, firstWord, count);
    let datagrams = 0;
    let bytes = 0;
    let errno = 0;
    const callError = this.failInNextCallAt;
    this.failInNextCallAt = null;
    for (let i = 0; i < count; i++) {
      const scripted = this.#errors.findIndex((e) => sameBuffers(e.buffers, buffers) && e.index === first + i);
      if (scripted >= 0) {
        errno = this.#errors[scripted]!.errno;
        this.#errors.splice(scripted, 1);
        break;
      }
      if (callError !== null && callError.offset === i) {
        errno = callError.errno;
        break;
      }
      if (this.capacity <= 0) {
        errno = this.wouldBlockErrno;
        break;
      }
      this.capacity--;
      const datagram = concat(window.datagrams[i]!);
      this.sent.push(datagram);
      datagrams++;
      bytes += datagram.length;
    }
    const result = {
      datagrams,
      bytes,
      errno,
      syscall: errno === 0 ? '' : 'sendmmsg',
      word: window.words[datagrams]!,
    };
    call.result = result;
    return { ...result };
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

/**
 * Whether two buffers arrays hold the same Uint8Arrays in the same order: the queue sends a
 * waiting request from its own copy of the caller's array.
 */
export function sameBuffers(a: readonly Uint8Array[], b: readonly Uint8Array[]): boolean {
  return a === b || (a.length === b.length && a.every((buffer, i) => buffer === b[i]));
}

/** The layout word where datagram `index` starts, walking from word 0. */
export function wordOf(layout: Uint32Array, index: number): number {
  let cursor = 0;
  for (let d = 0; d < index; d++) {
    if (cursor >= layout.length) throw new RangeError('layout ends before datagram ' + index);
    cursor += 1 + 3 * layout[cursor]!;
  }
  return cursor;
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

/**
 * Datagrams [first, first + count) as their pieces (checked, not yet copied), and the word
 * each starts at.
 */
function readWindow(buffers: readonly Uint8Array[], layout: BatchLayout, first: number,
  firstWord: number, count: number): { datagrams: Uint8Array[][]; words: number[] } {
  const datagrams: Uint8Array[][] = [];
  const words: number[] = [];
  if (layout === null) {
    if (first + count > buffers.length) throw new RangeError('first + count exceeds buffers.length');
    for (let i = 0; i < count; i++) {
      datagrams.push([buffers[first + i]!]);
      words.push(0);
    }
    words.push(0);
    return { datagrams, words };
  }
  let cursor = firstWord;
  if (cursor > layout.length) throw new RangeError('firstWord lies past the end of the layout');
  for (let d = 0; d < count; d++) {
    words.push(cursor);
    if (cursor >= layout.length) throw new RangeError('layout ends before the last datagram');
    const ranges = layout[cursor++]!;
    if (ranges * 3 > layout.length - cursor) throw new RangeError('layout is truncated');
    const pieces: Uint8Array[] = [];
    for (let r = 0; r < ranges; r++) {
      const index = layout[cursor]!;
      const offset = layout[cursor + 1]!;
      const length = layout[cursor + 2]!;
      cursor += 3;
      const buffer = buffers[index];
      if (buffer === undefined) throw new RangeError('layout names a buffer that does not exist');
      if (offset + length > buffer.length) throw new RangeError('byte range lies outside its buffer');
      pieces.push(buffer.subarray(offset, offset + length));
    }
    datagrams.push(pieces);
  }
  words.push(cursor);
  return { datagrams, words };
}
