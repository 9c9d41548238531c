/**
 * The per-socket queue of sends that the kernel could not take at once (libuv style): try at
 * once; what is left waits, in call order, and is flushed when the socket is writable; the
 * poll runs only while something waits. Pure TypeScript over an injected native sender, so the
 * queue logic is unit-tested with a fake.
 */
import * as os from 'node:os';
import type { NativeUdpSocket } from './binding';
import type { Batch, NativeSendResult } from './batch';
import { rawFailures } from './results';
import type {
  PendingSend, RawFailure, RawSendResult, SendCompletion,
} from './transport';

/** What the queue needs of the native socket (native/socket_methods.cc). */
export type NativeSender = Pick<NativeUdpSocket, 'send' | 'startPolling' | 'stopPolling'>;

const { EAGAIN, EFAULT } = os.constants.errno;

/**
 * Datagrams per native call while flushing: the native side reads only the window it sends,
 * so resuming a long batch costs what is sent, not the whole batch again.
 */
export const FLUSH_WINDOW = 1024;

interface Request extends PendingSend {
  /** The batch as submitted: it holds its own arrays and every datagram's length. */
  readonly batch: Batch;
  readonly onComplete: (completion: SendCompletion) => void;
  /** First datagram not yet processed (sent or failed). */
  next: number;
  datagramsSent: number;
  bytesSent: number;
  segmentsSent: number;
  failures: RawFailure[];
  /** In #requests, so counted in pendingDatagrams / pendingBytes. */
  queued: boolean;
  /** Cancelled while its native send was running: it completes, cancelled, once that returns. */
  cancelRequested: boolean;
  done: boolean;
}

/** The payload bytes of datagram `index` of `batch`. */
function datagramLength(batch: Batch, index: number): number {
  const first = batch.spans[index * 2]!;
  const count = batch.spans[index * 2 + 1]!;
  let length = 0;
  for (let r = first; r < first + count; r++) length += batch.ranges[r * 3 + 2]!;
  return length;
}

/** The native result in the queue's form: failures as objects. */
function toRaw(result: NativeSendResult): RawSendResult {
  const failures = rawFailures(result.failures);
  return {
    datagrams: result.datagrams, bytes: result.bytes, segments: result.segments,
    errno: result.errno, syscall: result.syscall, wouldBlock: result.wouldBlock, failures,
  };
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
  trySend(batch: Batch): RawSendResult {
    if (this.#requests.length > 0) {
      return { datagrams: 0, bytes: 0, segments: 0, errno: EAGAIN, syscall: '', wouldBlock: true, failures: [] };
    }
    return toRaw(this.#native.send(batch, 0, batch.count));
  }

  /** See BatchSender.submit. */
  submit(batch: Batch, onComplete: (completion: SendCompletion) => void): RawSendResult | PendingSend {
    let next = 0;
    let first: RawSendResult | null = null;
    if (this.#requests.length === 0) {
      first = toRaw(this.#native.send(batch, 0, batch.count));
      next = first.datagrams + first.failures.length;
      if (next === batch.count || (first.errno !== 0 && !first.wouldBlock)) return first;
    }
    const request: Request = {
      pending: true,
      // Its own buffers array: whoever built the batch may change theirs (or have a getter on
      // it) while this waits, and nothing of theirs may run inside a flush.
      batch: { ...batch, buffers: batch.buffers.slice() },
      onComplete,
      next,
      datagramsSent: first?.datagrams ?? 0,
      bytesSent: first?.bytes ?? 0,
      segmentsSent: first?.segments ?? 0,
      failures: first?.failures ?? [],
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
      const window = Math.min(FLUSH_WINDOW, head.batch.count - head.next);
      let result: RawSendResult;
      this.#inFlight = head;
      try {
        result = toRaw(this.#native.send(head.batch, head.next, window));
      } catch {
        // The batch was checked when submitted and holds every datagram's length, so its
        // memory changed (shrunk or detached) while waiting: end it without sending it.
        result = {
          datagrams: 0, bytes: 0, segments: 0, errno: EFAULT, syscall: 'send', wouldBlock: false, failures: [],
        };
      } finally {
        this.#inFlight = null;
      }
      this.#account(head, result);
      if (head.cancelRequested) {
        this.#dequeue(head);
        this.#finish(head, 0, '', true);
      } else if (head.next === head.batch.count) {
        this.#dequeue(head);
        this.#finish(head, 0, '', false);
      } else if (result.wouldBlock || (result.errno === 0 && result.datagrams + result.failures.length === 0)) {
        return false; // keep polling (a call that took nothing and said nothing waits too)
      } else if (result.errno === 0) {
        continue; // the window went out whole; the next one may too
      } else {
        this.#dequeue(head);
        this.#finish(head, result.errno, result.syscall, false);
      }
    }
    return true;
  }

  /** Adds what one native call did to `request` and takes it out of the pending counts. */
  #account(request: Request, result: RawSendResult): void {
    const processed = result.datagrams + result.failures.length;
    let failedBytes = 0;
    for (const failure of result.failures) {
      request.failures.push(failure);
      failedBytes += datagramLength(request.batch, failure.index);
    }
    request.next += processed;
    request.datagramsSent += result.datagrams;
    request.bytesSent += result.bytes;
    request.segmentsSent += result.segments;
    if (request.queued) {
      this.#pendingDatagrams -= processed;
      this.#pendingBytes -= result.bytes + failedBytes;
    }
  }

  #enqueue(request: Request): void {
    this.#requests.push(request);
    request.queued = true;
    this.#pendingDatagrams += request.batch.count - request.next;
    this.#pendingBytes += request.batch.totalBytes - this.#processedBytes(request);
  }

  /** Bytes of the datagrams of `request` already sent or failed. */
  #processedBytes(request: Request): number {
    let bytes = request.bytesSent;
    for (const failure of request.failures) bytes += datagramLength(request.batch, failure.index);
    return bytes;
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
    this.#pendingDatagrams -= request.batch.count - request.next;
    this.#pendingBytes -= request.batch.totalBytes - this.#processedBytes(request);
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
    request.onComplete({
      datagrams: request.datagramsSent, bytes: request.bytesSent, segments: request.segmentsSent,
      errno, syscall, wouldBlock: false, failures: request.failures, cancelled,
    });
  }
}
