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
  readonly buffers: readonly Uint8Array[];
  readonly layout: BatchLayout;
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
    const request: Request = {
      pending: true,
      buffers, layout, count, totalBytes, destination, segment, controls, onComplete,
      next, word, bytesSent, done: false,
      cancel: () => this.#cancel(request),
    };
    this.#requests.push(request);
    this.#pendingDatagrams += count - next;
    this.#pendingBytes += totalBytes - bytesSent;
    this.#startPolling();
    return request;
  }

  /** Completes every waiting request as cancelled, in order (socket close). */
  cancelAll(): void {
    this.#stopPolling();
    const requests = this.#requests.splice(0);
    this.#pendingDatagrams = 0;
    this.#pendingBytes = 0;
    // A completion may cancel a later request of this group: #cancel finishes it then.
    for (const request of requests) if (!request.done) this.#finish(request, 0, '', true);
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
      const requests = this.#requests.splice(0);
      this.#pendingDatagrams = 0;
      this.#pendingBytes = 0;
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
    this.#flushing = true;
    try {
      if (!this.#flushRequests()) return;
    } finally {
      this.#flushing = false;
    }
    this.#stopPolling();
    this.#onDrain();
  }

  /** Sends from the head of the queue; true once the queue is empty. */
  #flushRequests(): boolean {
    while (this.#requests.length > 0) {
      const head = this.#requests[0]!;
      const window = Math.min(FLUSH_WINDOW, head.count - head.next);
      let result: RawSendResult & { word: number };
      try {
        result = this.#send(head.buffers, head.layout, head.next, head.word, window,
          head.destination, head.segment, head.controls);
      } catch {
        // The batch was checked when submitted, so its buffers changed (shrunk or detached)
        // while waiting: end it without reading them.
        result = { datagrams: 0, bytes: 0, errno: EFAULT, syscall: 'send', word: head.word };
      }
      head.next += result.datagrams;
      head.word = result.word;
      head.bytesSent += result.bytes;
      this.#pendingDatagrams -= result.datagrams;
      this.#pendingBytes -= result.bytes;
      if (head.next === head.count) {
        this.#dequeueHead();
        this.#finish(head, 0, '', false);
      } else if (result.errno === 0) {
        continue; // the window went out whole; the next one may too
      } else if (isWouldBlock(result.errno)) {
        return false; // keep polling
      } else {
        this.#dequeueHead();
        this.#finish(head, result.errno, result.syscall, false);
      }
    }
    return true;
  }

  #dequeueHead(): void {
    const head = this.#requests.shift()!;
    this.#pendingDatagrams -= head.count - head.next;
    this.#pendingBytes -= head.totalBytes - head.bytesSent;
  }

  #cancel(request: Request): boolean {
    if (request.done) return false;
    const index = this.#requests.indexOf(request);
    // Not in the queue: cancelAll or a poll failure has taken it out and is ending it.
    if (index >= 0) {
      this.#requests.splice(index, 1);
      this.#pendingDatagrams -= request.count - request.next;
      this.#pendingBytes -= request.totalBytes - request.bytesSent;
    }
    this.#finish(request, 0, '', true);
    if (index >= 0 && this.#requests.length === 0 && !this.#flushing) {
      this.#stopPolling();
      this.#onDrain();
    }
    return true;
  }

  #finish(request: Request, errno: number, syscall: string, cancelled: boolean): void {
    request.done = true;
    request.onComplete({ datagrams: request.next, bytes: request.bytesSent, errno, syscall, cancelled });
  }
}
