/**
 * The per-socket queue of sends that the kernel could not take at once (libuv style): try at
 * once; what is left waits, in call order, and is flushed when the socket is writable; the
 * poll runs only while something waits. Pure TypeScript over an injected native sender, so the
 * queue logic is unit-tested with a fake.
 */
import * as os from 'node:os';
import type { NativeControls, NativeUdpSocket } from './binding';
import { isWsaWouldBlock } from './wsk/wsa';
import type {
  BatchLayout,
  Destination,
  PendingSend,
  RawSendResult,
  SendCompletion,
} from './transport';

/** What the queue needs of the native socket (native/socket.cc). */
export type NativeSender = Pick<NativeUdpSocket, 'send' | 'startPolling' | 'stopPolling'>;

const { EAGAIN, EWOULDBLOCK, ENOBUFS, EFAULT } = os.constants.errno;
const IS_WINDOWS = process.platform === 'win32';

/** True when `errno` means "the socket buffer is full, try later" rather than a failure. */
export function isWouldBlock(errno: number): boolean {
  // On Windows the native side reports WSA codes (WSAEWOULDBLOCK, WSAENOBUFS).
  if (IS_WINDOWS && isWsaWouldBlock(errno)) return true;
  return errno === EAGAIN || errno === EWOULDBLOCK || errno === ENOBUFS;
}

/**
 * Datagrams per native call while flushing: the native side reads only the window it sends,
 * so resuming a long batch costs what is sent, not the whole batch again.
 */
export const FLUSH_WINDOW = 1024;

interface Request extends PendingSend {
  /** The queue's own copy of the batch: a layout with every datagram's length (see #hold). */
  readonly buffers: readonly Uint8Array[];
  readonly layout: Uint32Array;
  readonly count: number;
  readonly totalBytes: number;
  readonly destination: Destination | null;
  readonly segment: boolean;
  readonly controls: NativeControls | undefined;
  readonly onComplete: (completion: SendCompletion) => void;
  /** First datagram not yet sent, and where it starts in `layout`. */
  next: number;
  word: number;
  bytesSent: number;
  /** In #requests, so counted in pendingDatagrams / pendingBytes. */
  queued: boolean;
  /** Cancelled while its native send was running: it completes, cancelled, once that returns. */
  cancelRequested: boolean;
  done: boolean;
}

export class SendQueue {
  readonly #native: NativeSender;
  readonly #onDrain: () => void;
  readonly #requests: Request[] = [];
  #polling = false;
  /** A poll that could not start has scheduled the failure of every waiting request. */
  #failing = false;
  /** A flush is running: it reports the drain itself when it ends. */
  #flushing = false;
  /** The request whose native send is running now (JavaScript may run inside that call). */
  #inFlight: Request | null = null;
  /** Bumped by cancelAll: a flush that saw it change does not report a drain. */
  #cancelGeneration = 0;
  #pendingDatagrams = 0;
  #pendingBytes = 0;
  readonly #onWritable = (): void => this.#flush();

  constructor(native: NativeSender, onDrain: () => void) {
    this.#native = native;
    this.#onDrain = onDrain;
  }

  /** Requests waiting (the one being flushed included). */
  get pendingRequests(): number {
    return this.#requests.length;
  }

  /** Datagrams of waiting requests not yet sent. */
  get pendingDatagrams(): number {
    return this.#pendingDatagrams;
  }

  /** Payload bytes of waiting requests not yet sent. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /**
   * Sends what the kernel takes now without queueing. While requests wait, sends nothing
   * (it never jumps the queue) and reports "would block".
   */
  trySend(buffers: readonly Uint8Array[], layout: BatchLayout, count: number,
    destination: Destination | null, segment = false, controls?: NativeControls): RawSendResult {
    if (this.#requests.length > 0) return { datagrams: 0, bytes: 0, errno: EAGAIN, syscall: '' };
    return this.#send(buffers, layout, 0, 0, count, destination, segment, controls);
  }

  /**
   * See BatchSender.submit. `segment`: let the native side coalesce equal-size runs
   * (UDP_SEGMENT) where the socket can.
   */
  submit(buffers: readonly Uint8Array[], layout: BatchLayout, count: number, totalBytes: number,
    destination: Destination | null, onComplete: (completion: SendCompletion) => void,
    segment = false,
    controls?: NativeControls,
  ): RawSendResult | PendingSend {
    let next = 0;
    let word = 0;
    let bytesSent = 0;
    if (this.#requests.length === 0) {
      const result = this.#send(buffers, layout, 0, 0, count, destination, segment, controls);
      if (result.datagrams === count || !isWouldBlock(result.errno)) return result;
      ({ datagrams: next, word, bytes: bytesSent } = result);
    }
    const held = hold(buffers, layout, next, word, count);
    const request: Request = {
      pending: true,
      buffers: held.buffers, layout: held.layout, count, totalBytes, destination, segment,
      controls, onComplete,
      next, word: held.word, bytesSent,
      queued: false, cancelRequested: false, done: false,
      cancel: () => this.#cancel(request),
    };
    this.#enqueue(request);
    this.#startPolling();
    return request;
  }

  /** Completes every waiting request as cancelled, in order (socket close). */
  cancelAll(): void {
    this.#cancelGeneration++;
    this.#stopPolling();
    const requests = this.#takeAll();
    // A completion may cancel a later request of this group: #cancel finishes it then. The one
    // whose native send is running completes when that call returns, with what it sent.
    for (const request of requests) {
      if (request === this.#inFlight) request.cancelRequested = true;
      else if (!request.done) this.#finish(request, 0, '', true);
    }
  }

  #send(buffers: readonly Uint8Array[], layout: BatchLayout, first: number, firstWord: number,
    count: number, destination: Destination | null, segment: boolean, controls?: NativeControls,
  ): RawSendResult & { word: number } {
    return destination === null
      ? this.#native.send(buffers, layout, first, firstWord, count, null, 0, 0, segment, controls)
      : this.#native.send(buffers, layout, first, firstWord, count, destination.address,
        destination.port, destination.scopeId, segment, controls);
  }

  #startPolling(): void {
    if (this.#polling || this.#failing) return;
    const errno = this.#native.startPolling(this.#onWritable);
    if (errno === 0) {
      this.#polling = true;
      return;
    }
    // Cannot wait for writability (the socket is gone): end every request with that error,
    // from the event loop, as a pending completion must.
    this.#failing = true;
    process.nextTick(() => {
      this.#failing = false;
      const requests = this.#takeAll();
      for (const request of requests) if (!request.done) this.#finish(request, errno, 'poll', false);
      if (requests.length > 0) this.#onDrain();
    });
  }

  #stopPolling(): void {
    if (!this.#polling) return;
    this.#polling = false;
    this.#native.stopPolling();
  }

  /** Runs from the event loop when the socket is writable: sends from the head, in order. */
  #flush(): void {
    const generation = this.#cancelGeneration;
    this.#flushing = true;
    try {
      if (!this.#flushRequests()) return;
    } finally {
      this.#flushing = false;
    }
    this.#stopPolling();
    // Emptied by sending, not by a close from inside the flush.
    if (generation === this.#cancelGeneration) this.#onDrain();
  }

  /**
   * Sends from the head of the queue; true once the queue is empty. The native call may run
   * JavaScript (getters on the caller's buffers) that cancels or closes: the head then
   * completes once the call returns, with what it sent, and the loop goes on with what is left.
   */
  #flushRequests(): boolean {
    while (this.#requests.length > 0) {
      const head = this.#requests[0]!;
      const window = Math.min(FLUSH_WINDOW, head.count - head.next);
      let result: RawSendResult & { word: number };
      this.#inFlight = head;
      try {
        result = this.#send(head.buffers, head.layout, head.next, head.word, window,
          head.destination, head.segment, head.controls);
      } catch {
        // The batch was checked when submitted and the queue holds every datagram's length, so
        // its memory changed (shrunk or detached) while waiting: end it without sending it.
        result = { datagrams: 0, bytes: 0, errno: EFAULT, syscall: 'send', word: head.word };
      } finally {
        this.#inFlight = null;
      }
      head.next += result.datagrams;
      head.word = result.word;
      head.bytesSent += result.bytes;
      if (head.queued) {
        this.#pendingDatagrams -= result.datagrams;
        this.#pendingBytes -= result.bytes;
      }
      if (head.cancelRequested) {
        this.#dequeue(head);
        this.#finish(head, 0, '', true);
      } else if (head.next === head.count) {
        this.#dequeue(head);
        this.#finish(head, 0, '', false);
      } else if (result.errno === 0) {
        continue; // the window went out whole; the next one may too
      } else if (isWouldBlock(result.errno)) {
        return false; // keep polling
      } else {
        this.#dequeue(head);
        this.#finish(head, result.errno, result.syscall, false);
      }
    }
    return true;
  }

  #enqueue(request: Request): void {
    this.#requests.push(request);
    request.queued = true;
    this.#pendingDatagrams += request.count - request.next;
    this.#pendingBytes += request.totalBytes - request.bytesSent;
  }

  /** Empties the queue; returns what was in it. */
  #takeAll(): Request[] {
    const requests = this.#requests.splice(0);
    for (const request of requests) request.queued = false;
    this.#pendingDatagrams = 0;
    this.#pendingBytes = 0;
    return requests;
  }

  /** Takes `request` out of the queue (if it is still there) and out of the pending counts. */
  #dequeue(request: Request): void {
    if (!request.queued) return;
    request.queued = false;
    const index = this.#requests.indexOf(request);
    if (index >= 0) this.#requests.splice(index, 1);
    this.#pendingDatagrams -= request.count - request.next;
    this.#pendingBytes -= request.totalBytes - request.bytesSent;
  }

  #cancel(request: Request): boolean {
    if (request.done || request.cancelRequested) return false;
    if (request === this.#inFlight) {
      // Its native send is running (we are inside a getter it called): it completes, cancelled,
      // when that call returns, with exactly what it sent.
      request.cancelRequested = true;
      return true;
    }
    // Not queued: cancelAll or a poll failure has taken it out and is ending it.
    const wasQueued = request.queued;
    this.#dequeue(request);
    this.#finish(request, 0, '', true);
    if (wasQueued && this.#requests.length === 0 && !this.#flushing) {
      this.#stopPolling();
      this.#onDrain();
    }
    return true;
  }

  #finish(request: Request, errno: number, syscall: string, cancelled: boolean): void {
    if (request.done) return;
    request.done = true;
    request.onComplete({ datagrams: request.next, bytes: request.bytesSent, errno, syscall, cancelled });
  }
}

/**
 * The queue's copy of a batch that waits: its own buffers array (the caller may reuse theirs,
 * and no getter of theirs runs while the queue flushes) and a layout giving every datagram's
 * length, so that a buffer detached or shrunk while the
 * request waits is refused by the native send (EFAULT) instead of going out short or empty.
 * Datagram i of a layout-free batch is at word 4 * i; `word` is where datagram `next` starts.
 */
function hold(buffers: readonly Uint8Array[], layout: BatchLayout, next: number, word: number,
  count: number): { buffers: readonly Uint8Array[]; layout: Uint32Array; word: number } {
  if (layout !== null) return { buffers: buffers.slice(), layout, word };
  const own = buffers.slice(0, count);
  const words = new Uint32Array(count * 4);
  for (let i = 0; i < count; i++) {
    words[i * 4] = 1;
    words[i * 4 + 1] = i;
    // Sent datagrams are never read again: their length stays 0.
    if (i >= next) words[i * 4 + 3] = own[i]?.byteLength ?? 0;
  }
  return { buffers: own, layout: words, word: next * 4 };
}
