/**
 * Batch sends on an existing node:dgram socket (Linux and other POSIX systems): an application
 * built on dgram keeps its socket, its 'message' handler and everything else, and sends its
 * batches with one system call per up to 1024 datagrams.
 *
 * ```ts
 * const socket = dgram.createSocket('udp4');
 * socket.bind(0, () => {
 *   const sender = wrapDgram(socket);
 *   await sender.sendBatch(datagrams, 4433, '127.0.0.1');
 * });
 * ```
 *
 * How it works: the native socket borrows dgram's descriptor (native/socket_methods.cc adopt):
 * it sends on it synchronously and never closes it, polls it or reads it. What the kernel
 * cannot take now goes through dgram's own `send`, so that libuv queues it on its own watcher;
 * a second poll handle on libuv's descriptor is never made. While anything handed to dgram has
 * not been reported on, later sends go the same way, so every datagram leaves in call order.
 */
import * as dgram from 'node:dgram';
import * as os from 'node:os';
import {
  buildAddressedBatch, buildBatch, buildFanOutBatch, byteLengthOf, DestinationCache, DestinationSet,
  type Batch, type BatchInput, type BuildOptions, type NativeSendResult,
} from './batch';
import { binding, type NativeUdpSocket, type SocketStats } from './binding';
import { nativeControls } from './controls';
import { describeValue } from './describe';
import { destinationAt, WskError } from './errors';
import { readEndpoints, readMessages } from './endpoints';
import { checkOptionNames, SEND_OPTION_NAMES } from './option-names';
import { rawFailures, sendResult } from './results';
import type { Endpoint, Message, SendOptions, SendResult } from './socket';
import type { Destination, RawFailure } from './transport';
import { osErrorName } from './wsk/wsa';

/** The send options of a wrapped socket: UdpSocket's but `signal`. */
const WRAPPED_SEND_OPTION_NAMES = SEND_OPTION_NAMES.filter((name) => name !== 'signal');

/** The destination of the datagram a direct send stopped at (the first neither sent nor failed). */
function stoppedAt(batch: Batch, raw: NativeSendResult): { address?: string; port?: number } {
  return destinationAt(batch, raw.datagrams + (raw.failures === null ? 0 : raw.failures.length / 2), null);
}

/** Options of wrapDgram. */
export interface WrapDgramOptions {
  /** Segmentation offload on the direct part (Linux UDP_SEGMENT), default true: see SocketOptions.gso. */
  gso?: boolean;
}

/**
 * What a send of a wrapped dgram socket did: a SendResult, plus how many of its `datagrams`
 * went through the dgram socket's own send (libuv's queue) rather than the direct system call.
 */
export interface DgramSendResult extends SendResult {
  viaDgram: number;
}

/**
 * What a wrapped dgram socket sent over its life. The SocketStats fields count the direct part
 * (the batching system calls on the borrowed descriptor); the `dgram` fields count what went
 * through the dgram socket's own send, as its callbacks reported it, in datagrams on the wire
 * (a datagram cut by `segmentSize` counts each piece).
 */
export interface DgramSenderStats extends SocketStats {
  /** Datagrams the dgram socket's send reported sent. */
  dgramDatagrams: number;
  /** Their payload bytes. */
  dgramBytes: number;
  /** Datagrams the dgram socket's send reported failed (cancelled by its close included). */
  dgramFailures: number;
}

/** The part of a dgram socket's libuv handle (Node's UDPWrap) the wrapper reads. */
interface DgramHandle {
  readonly fd: unknown;
}

const { EBADF, ECANCELED, EFAULT, EIO, EISCONN } = os.constants.errno;

// Intrinsics, so that making a view of the caller's memory runs none of the caller's code.
const typedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as object;
const bufferOf = Object.getOwnPropertyDescriptor(typedArrayPrototype, 'buffer')!.get!;
const byteOffsetOf = Object.getOwnPropertyDescriptor(typedArrayPrototype, 'byteOffset')!.get!;

/** Sockets wrapped now: a second wrapper would not know of the first one's queued datagrams. */
const wrapped = new WeakSet<dgram.Socket>();

/**
 * A reader of the dgram socket's libuv handle (null once it is closed). Node keeps it in the
 * socket's 'state symbol' property; `socket._handle` reads the same but warns (DEP0112), so
 * it is the fallback only.
 */
function handleReader(socket: dgram.Socket): () => DgramHandle | null {
  const symbol = Object.getOwnPropertySymbols(socket).find((s) => s.description === 'state symbol');
  const state: unknown = symbol === undefined ? undefined : (socket as unknown as Record<symbol, unknown>)[symbol];
  if (typeof state === 'object' && state !== null && 'handle' in state) {
    const holder = state as { handle: DgramHandle | null };
    return () => holder.handle ?? null;
  }
  return () => (socket as unknown as { _handle?: DgramHandle | null })._handle ?? null;
}

/** The positive errno of an error a dgram send reported (libuv gives -errno). */
function errnoOf(error: unknown): number {
  const { errno, code } = (typeof error === 'object' && error !== null ? error : {}) as
    { errno?: unknown; code?: unknown };
  if (typeof errno === 'number' && Number.isInteger(errno) && errno !== 0) return Math.abs(errno);
  if (code === 'ERR_SOCKET_DGRAM_IS_CONNECTED') return EISCONN;
  if (code === 'ERR_SOCKET_DGRAM_NOT_RUNNING') return EBADF;
  if (typeof code === 'string' && code in os.constants.errno) {
    return os.constants.errno[code as keyof typeof os.constants.errno];
  }
  return EIO;
}

/** The error of a send on a wrapper whose dgram socket is gone. */
function detachedError(): WskError {
  const error = new WskError(EBADF, 'send');
  error.message += ': the dgram socket is closed (or the wrapper detached); nothing was sent';
  return error;
}

/**
 * The error of a send on a wrapper whose dgram socket was connected after wrapping: dgram's own
 * code for a destination given to a connected socket.
 */
function connectedError(): TypeError {
  const error = new TypeError('the dgram socket was connected after it was wrapped: the wrapper sends to ' +
    'destinations, which a connected dgram socket refuses; disconnect() it, or send through dgram');
  (error as TypeError & { code: string }).code = 'ERR_SOCKET_DGRAM_IS_CONNECTED';
  return error;
}

/** Runs `run` once libuv's closing phase has run (the one after the current loop iteration's). */
function afterClosingPhase(run: () => void): void {
  // uv_run: timers, poll, check (setImmediate), closing handles. A first setImmediate may still
  // run before this iteration's closing phase; the second runs in the next iteration's.
  setImmediate(() => setImmediate(run));
}

/** One datagram handed to the dgram socket's send (in `pieces` datagrams with segmentSize). */
interface Handover {
  readonly index: number;
  readonly bytes: number;
  pieces: number;
  errno: number;
}

/** A sendBatch/sendTo/sendToMany whose rest waits in the dgram socket's queue. */
interface Request {
  readonly batch: Batch;
  readonly resolve: (result: DgramSendResult) => void;
  readonly reject: (error: WskError) => void;
  datagrams: number;
  bytes: number;
  segments: number;
  viaDgram: number;
  failures: RawFailure[];
  /** Datagrams handed to dgram's send not yet reported on. */
  outstanding: number;
  cancelled: boolean;
  /** Settled (or given up on after dgram's close): later reports are ignored. */
  done: boolean;
}

/**
 * Sends batches on a bound node:dgram socket's descriptor (made by wrapDgram). Linux and other
 * POSIX systems. Receiving, binding, options and closing stay the dgram socket's; the wrapper
 * holds no handle of its own, so it never keeps the process alive. It detaches itself when the
 * dgram socket closes: later sends fail with EBADF, and the descriptor (whose number the OS may
 * give to the next socket opened) is never written to again.
 *
 * Limits: unconnected dgram sockets only (one connected after wrapping, from its 'connect' event
 * until it is disconnected, has its wrapped sends refused with dgram's ERR_SOCKET_DGRAM_IS_CONNECTED);
 * the send options tos, ecn, ttl, sourceAddress,
 * interfaceIndex and destinations with an IPv6 zone work with the try calls only (dgram's send
 * cannot carry them); segmentation offload applies to the direct part only (what goes through
 * dgram is sent as the datagrams it stands for); the application's own `socket.send()` calls
 * are ordered with the wrapper's only once they reach libuv's queue (a dgram send is held one
 * tick for its address lookup first, and a direct send made in that tick goes out before it).
 * What goes through dgram fails as libuv fails it: a refusal of the first datagram of one of
 * libuv's sendmmsg calls (up to 20 datagrams) is reported for all of them, and none is sent.
 */
export class DgramBatchSender {
  /** The wrapped socket. */
  readonly socket: dgram.Socket;
  /** 4 or 6: the address family of the dgram socket. */
  readonly family: 4 | 6;
  readonly #native: NativeUdpSocket;
  readonly #readHandle: () => DgramHandle | null;
  readonly #fd: number;
  readonly #addresses: DestinationCache;
  readonly #onClose = (): void => this.#dgramClosed();
  /** dgram's 'connect' was seen: from then on each send asks whether it still is connected. */
  #connectSeen = false;
  readonly #onConnect = (): void => {
    this.#connectSeen = true;
  };
  #attached = true;
  /** dgram's close was seen (its event, or a send finding the descriptor gone). */
  #closeSeen = false;
  #gso: boolean;
  /** Datagrams handed to dgram's send, not yet reported on (all requests). */
  #outstanding = 0;
  readonly #requests = new Set<Request>();
  #drainWaiters: Array<() => void> = [];
  #dgramDatagrams = 0;
  #dgramBytes = 0;
  #dgramFailures = 0;

  /** Use wrapDgram. */
  constructor(socket: dgram.Socket, options?: WrapDgramOptions) {
    if (!(socket instanceof dgram.Socket)) {
      throw new TypeError(`wrapDgram needs a node:dgram Socket, got ${describeValue(socket)}`);
    }
    this.#gso = readOptions(options);
    if (process.platform === 'win32') {
      throw new Error('wrapDgram works on Linux and other POSIX systems: Node gives no descriptor of a dgram socket on Windows');
    }
    if (wrapped.has(socket)) {
      throw new TypeError('this dgram socket is wrapped already: send through the wrapper wrapDgram returned');
    }
    const readHandle = handleReader(socket);
    const handle = readHandle();
    if (handle === null) throw new TypeError('the dgram socket is closed');
    const fd = handle.fd;
    if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0) {
      throw new TypeError('the dgram socket is not bound: call bind() and wrap it once bound (its callback or \'listening\')');
    }
    let connected = true;
    try {
      socket.remoteAddress();
    } catch {
      connected = false;
    }
    if (connected) throw new TypeError('connected dgram sockets are not supported: wrap an unconnected one');
    const family = socket.address().family === 'IPv6' ? 6 : 4;
    const native = new (binding().UdpSocket)();
    const error = native.adopt(fd, family);
    if (error !== 0) {
      const code = osErrorName(error) ?? `E${error}`;
      throw new TypeError(`the dgram socket's descriptor ${fd} cannot be borrowed: ${code}`);
    }
    this.socket = socket;
    this.family = family;
    this.#native = native;
    this.#readHandle = readHandle;
    this.#fd = fd;
    this.#addresses = new DestinationCache(family);
    wrapped.add(socket);
    socket.once('close', this.#onClose);
    socket.on('connect', this.#onConnect);
  }

  /**
   * Whether the wrapper still sends on the dgram socket's descriptor. Checks it now: false once
   * the dgram socket is closed (also before its 'close' event) or detach() was called.
   */
  get attached(): boolean {
    return this.#check();
  }

  /** The borrowed descriptor, -1 once detached; for diagnostics. */
  get fd(): number {
    return this.#attached ? this.#fd : -1;
  }

  /** Whether the direct part coalesces equal-size runs into super-packets (see UdpSocket#gso). */
  get gso(): boolean {
    return this.#gso && this.#native.segmentLimit > 0;
  }

  set gso(enabled: boolean) {
    if (typeof enabled !== 'boolean') throw new TypeError('gso must be a boolean');
    this.#gso = enabled;
  }

  /**
   * Datagrams handed to the dgram socket's send that it has not reported on yet (a datagram cut
   * by segmentSize counts each piece). While there are any, sends go the same way, behind them.
   */
  get pendingDatagrams(): number {
    return this.#outstanding;
  }

  /** Resolves once nothing handed to the dgram socket's send waits (at once if nothing does). */
  drained(): Promise<void> {
    if (this.#outstanding === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** What the wrapper sent over its life: the direct system calls, and what went through dgram. */
  stats(): DgramSenderStats {
    return {
      ...this.#native.stats(),
      dgramDatagrams: this.#dgramDatagrams, dgramBytes: this.#dgramBytes, dgramFailures: this.#dgramFailures,
    };
  }

  /**
   * Stops using the descriptor (the dgram socket stays open and is not touched). Datagrams
   * already handed to its send still go out and their promises still settle. Idempotent.
   */
  detach(): void {
    if (!this.#attached) return;
    this.#attached = false;
    this.#native.close(); // forgets the borrowed descriptor; never closes it
    wrapped.delete(this.socket);
    this.socket.off('connect', this.#onConnect);
    // With datagrams still in dgram's hands, dgram's 'close' is still needed (#dgramClosed).
    if (this.#outstanding === 0) this.socket.off('close', this.#onClose);
  }

  /**
   * Sends as many datagrams of `batch` as the kernel takes now, on the descriptor, and never
   * queues (see UdpSocket#trySendBatch). Sends nothing while datagrams handed to the dgram
   * socket's send wait, or dgram's own queue is not empty: it never jumps either queue.
   * Throws a WskError EBADF once the dgram socket is closed.
   */
  trySendBatch(batch: BatchInput, port: number, address?: string, options?: SendOptions): SendResult {
    const destination = this.#destination(port, address);
    return this.#trySend(buildBatch(batch, destination, this.#buildOptions(options, false, false)));
  }

  /**
   * Sends every datagram of `batch` (see UdpSocket#sendBatch): what the kernel takes now goes
   * out at once, on the descriptor; the rest is handed to the dgram socket's own send (views of
   * the caller's memory, no copies), and the promise settles once dgram has reported on each.
   * Keep the buffers unchanged until then. Rejects with a WskError carrying the exact
   * `datagramsSent`/`bytesSent` when a datagram is refused (unless `continueOnError`: it is
   * listed in `failures`); the datagrams already handed to dgram behind a refused one are not
   * held back, and are counted when they went out. Rejects with ECANCELED when the dgram socket
   * closes first, and with EBADF once it is closed.
   */
  sendBatch(batch: BatchInput, port: number, address?: string, options?: SendOptions): Promise<DgramSendResult> {
    const destination = this.#destination(port, address);
    return this.#send(queueable(buildBatch(batch, destination, this.#buildOptions(options, false, true))));
  }

  /** Each message to its own destination, as many as the kernel takes now (see UdpSocket#trySendTo). */
  trySendTo(messages: readonly Message[], options?: SendOptions): SendResult {
    const { data, destinations } = this.#readMessages(messages);
    return this.#trySend(buildAddressedBatch(data, destinations, this.#buildOptions(options, true, false)));
  }

  /** Each message to its own destination; the rest through dgram's send (see sendBatch). */
  sendTo(messages: readonly Message[], options?: SendOptions): Promise<DgramSendResult> {
    const { data, destinations } = this.#readMessages(messages);
    return this.#send(queueable(buildAddressedBatch(data, destinations, this.#buildOptions(options, true, true))));
  }

  /** Every datagram of `batch` to each destination, as many as the kernel takes now (see UdpSocket#trySendToMany). */
  trySendToMany(batch: BatchInput, destinations: readonly Endpoint[] | DestinationSet, options?: SendOptions): SendResult {
    const endpoints = this.#fanOutDestinations(destinations);
    return this.#trySend(buildFanOutBatch(batch, endpoints, this.#buildOptions(options, true, false)));
  }

  /** The fan-out of trySendToMany; the rest through dgram's send (see sendBatch). */
  sendToMany(batch: BatchInput, destinations: readonly Endpoint[] | DestinationSet,
    options?: SendOptions): Promise<DgramSendResult> {
    const endpoints = this.#fanOutDestinations(destinations);
    return this.#send(queueable(buildFanOutBatch(batch, endpoints, this.#buildOptions(options, true, true))));
  }

  /** Checks and encodes `destinations` once, for the fan-out calls (see UdpSocket#prepareDestinations). */
  prepareDestinations(destinations: readonly Endpoint[]): DestinationSet {
    return new DestinationSet(this.family, readEndpoints(this.#addresses, this.family, destinations));
  }

  /**
   * True when the descriptor is still the dgram socket's: the socket is open and its handle's
   * fd is still the adopted number. dgram's close() closes the descriptor at once but emits
   * 'close' a tick later, and the number may be reused in between: so every send checks.
   */
  #check(): boolean {
    if (!this.#attached) return false;
    const handle = this.#readHandle();
    if (handle !== null && handle.fd === this.#fd) return true;
    this.#dgramClosed(); // before its 'close' event, or with that listener taken away
    return false;
  }

  /**
   * Whether the dgram socket is connected now. Asked of dgram (a getpeername) only after its
   * 'connect' event, so that an unconnected socket's sends pay nothing; disconnect() has no event.
   */
  #connected(): boolean {
    if (!this.#connectSeen) return false;
    try {
      this.socket.remoteAddress();
      return true;
    } catch {
      this.#connectSeen = false;
      return false;
    }
  }

  /** Whether a send must go behind datagrams queued in dgram (ours or the application's). */
  #mustQueue(): boolean {
    return this.#outstanding > 0 || this.socket.getSendQueueCount() > 0;
  }

  #trySend(batch: Batch): SendResult {
    if (!this.#check()) throw detachedError();
    if (this.#connected()) throw connectedError();
    if (this.#mustQueue()) return { datagrams: 0, bytes: 0, segments: 0, failures: [] };
    // Nothing runs between the check and the system call: the batch is our own object.
    const raw = this.#native.send(batch, 0, batch.count);
    if (raw.errno !== 0 && !raw.wouldBlock) {
      throw new WskError(raw.errno, raw.syscall, raw, stoppedAt(batch, raw));
    }
    return sendResult(batch, raw.datagrams, raw.bytes, raw.segments, rawFailures(raw.failures));
  }

  #send(batch: Batch): Promise<DgramSendResult> {
    return new Promise((resolve, reject) => {
      if (!this.#check()) {
        reject(detachedError());
        return;
      }
      if (this.#connected()) {
        reject(connectedError());
        return;
      }
      const request: Request = {
        batch, resolve, reject, datagrams: 0, bytes: 0, segments: 0, viaDgram: 0, failures: [],
        outstanding: 0, cancelled: false, done: false,
      };
      let next = 0;
      if (!this.#mustQueue()) {
        const raw: NativeSendResult = this.#native.send(batch, 0, batch.count);
        request.datagrams = raw.datagrams;
        request.bytes = raw.bytes;
        request.segments = raw.segments;
        request.failures = rawFailures(raw.failures);
        next = raw.datagrams + request.failures.length;
        if (raw.errno !== 0 && !raw.wouldBlock) {
          reject(new WskError(raw.errno, raw.syscall, raw, stoppedAt(batch, raw)));
          return;
        }
      }
      if (next < batch.count) {
        this.#requests.add(request);
        // Held until every datagram is handed over: a report that comes inside dgram's send (a
        // throw, or a wrapped send calling back at once) must not settle the request early.
        request.outstanding++;
        this.#outstanding++;
        for (let i = next; i < batch.count; i++) this.#handOver(request, i);
        request.outstanding--;
        this.#outstanding--;
      }
      this.#afterReport(request);
    });
  }

  /** Hands datagram `index` of the request's batch to the dgram socket's send. */
  #handOver(request: Request, index: number): void {
    const batch = request.batch;
    const target = batch.targets === null ? 0 : batch.targets[index]!;
    const endpoint = batch.endpoints[target]!;
    const views = datagramViews(batch, index);
    let bytes = 0;
    for (const view of views) bytes += byteLengthOf(view);
    const pieces = splitSegments(views, bytes, batch.controls?.segmentSize ?? 0);
    const handover: Handover = { index, bytes, pieces: pieces.length, errno: 0 };
    for (const piece of pieces) {
      let length = 0;
      for (const view of piece) length += byteLengthOf(view);
      request.outstanding++;
      this.#outstanding++;
      const onSent = (error: unknown, sent: unknown): void => this.#reported(request, handover, length, error, sent);
      try {
        this.socket.send(piece.length === 1 ? piece[0]! : piece, endpoint.port, endpoint.address, onSent);
      } catch (error) {
        // dgram refused it at once (the socket got connected, or closed inside a getter): it
        // reports as a failure of that datagram, like a callback with an error.
        onSent(error, undefined);
      }
    }
  }

  /** One report of dgram's send: a datagram (or one piece of it) sent, or failed. */
  #reported(request: Request, handover: Handover, length: number, error: unknown, sent: unknown): void {
    if (request.done) return; // given up on after dgram's close (see #dgramClosed)
    request.outstanding--;
    this.#outstanding--;
    // dgram reports the bytes it found in the views when it sent: fewer means the memory
    // changed (detached, shrunk) while the datagram waited, and the datagram did not go out whole.
    const errno = error !== null && error !== undefined ? errnoOf(error) : sent === length ? 0 : EFAULT;
    if (errno === 0) {
      request.segments++;
      this.#dgramDatagrams++;
      this.#dgramBytes += length;
    } else {
      if (errno === ECANCELED) request.cancelled = true;
      if (handover.errno === 0) handover.errno = errno;
      this.#dgramFailures++;
    }
    if (--handover.pieces === 0) {
      if (handover.errno === 0) {
        request.datagrams++;
        request.bytes += handover.bytes;
        request.viaDgram++;
      } else {
        request.failures.push({ index: handover.index, errno: handover.errno });
      }
    }
    this.#afterReport(request);
  }

  /** Settles `request` once nothing of it is outstanding; reports a drain once nothing is. */
  #afterReport(request: Request): void {
    if (request.outstanding === 0) this.#settle(request);
    if (this.#outstanding === 0) {
      if (!this.#attached) this.socket.off('close', this.#onClose);
      this.#drainedNow();
    }
  }

  #settle(request: Request): void {
    if (request.done) return;
    request.done = true;
    this.#requests.delete(request);
    const sent = { datagrams: request.datagrams, bytes: request.bytes };
    // Reports may come out of order; failures are listed in batch order.
    const failures = request.failures.sort((a, b) => a.index - b.index);
    if (request.cancelled) {
      request.reject(new WskError(ECANCELED, 'close', sent));
    } else if (failures.length > 0 && !request.batch.continueOnError) {
      request.reject(new WskError(failures[0]!.errno, 'send', sent));
    } else {
      const result = sendResult(request.batch, request.datagrams, request.bytes, request.segments, failures);
      request.resolve({ ...result, viaDgram: request.viaDgram });
    }
  }

  #drainedNow(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /**
   * dgram's 'close': detach. A datagram dgram had queued in libuv is reported (ECANCELED) in
   * libuv's closing phase; one still in its address lookup when the socket closed is dropped
   * without a report (lib/dgram.js doSend returns when the handle is gone). So once the closing
   * phase has run, whatever is still unreported was never sent: its request ends cancelled.
   */
  #dgramClosed(): void {
    if (this.#closeSeen) return;
    this.#closeSeen = true;
    this.detach();
    this.socket.off('close', this.#onClose); // once() took it off already, unless detach() came first
    if (this.#outstanding === 0) return;
    afterClosingPhase(() => {
      for (const request of [...this.#requests]) {
        request.cancelled = true;
        this.#dgramFailures += request.outstanding;
        this.#settle(request);
      }
      this.#outstanding = 0;
      this.#drainedNow();
    });
  }

  #buildOptions(options: SendOptions | undefined, manyDestinations: boolean, mayQueue: boolean): BuildOptions {
    if (options === undefined) {
      return { family: this.family, segment: this.#gso, continueOnError: manyDestinations, controls: undefined };
    }
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    // What goes through dgram's send cannot be taken back, so a wrapped send takes no signal.
    checkOptionNames(options, WRAPPED_SEND_OPTION_NAMES, 'send (wrapDgram)');
    // Each field once: a getter cannot answer one thing to the check and another to the send.
    const gso: unknown = options.gso;
    const segment = gso === undefined ? this.#gso : gso;
    if (typeof segment !== 'boolean') throw new TypeError('options.gso must be a boolean');
    const continueOnError: unknown = options.continueOnError ?? manyDestinations;
    if (typeof continueOnError !== 'boolean') throw new TypeError('options.continueOnError must be a boolean');
    const controls = nativeControls(options, this.family);
    if (mayQueue && controls !== undefined) {
      for (const name of ['sourceAddress', 'interfaceIndex', 'tos', 'ttl'] as const) {
        if (controls[name] !== undefined) {
          throw new TypeError(`${name === 'tos' ? 'tos/ecn' : name} cannot go through the dgram socket's send: ` +
            'use trySendBatch/trySendTo/trySendToMany on a wrapped dgram socket');
        }
      }
    }
    return { family: this.family, segment, continueOnError, controls };
  }

  #destination(port: number, address: string | undefined): Destination {
    return this.#addresses.destination(port, address ?? (this.family === 6 ? '::1' : '127.0.0.1'));
  }

  #readMessages(messages: unknown): { data: unknown[]; destinations: Destination[] } {
    return readMessages(this.#addresses, this.family, messages);
  }

  #fanOutDestinations(destinations: unknown): Destination[] | DestinationSet {
    return destinations instanceof DestinationSet ? destinations : readEndpoints(this.#addresses, this.family, destinations);
  }

}

/**
 * Wraps a bound, unconnected node:dgram socket for batch sends on its descriptor (Linux and
 * other POSIX systems; on Windows it throws, Node giving no descriptor there). TypeError for
 * anything but a dgram Socket, a socket that is not bound yet, closed, connected or wrapped
 * already. See DgramBatchSender for what goes where and the limits.
 */
export function wrapDgram(socket: dgram.Socket, options?: WrapDgramOptions): DgramBatchSender {
  return new DgramBatchSender(socket, options);
}

function readOptions(options: unknown): boolean {
  if (options === undefined) return true;
  if (typeof options !== 'object' || options === null) throw new TypeError('wrapDgram options must be an object');
  for (const key of Object.keys(options)) {
    if (key !== 'gso') throw new TypeError(`unknown wrapDgram option ${JSON.stringify(key)} (known: gso)`);
  }
  const gso: unknown = (options as WrapDgramOptions).gso ?? true;
  if (typeof gso !== 'boolean') throw new TypeError('gso must be a boolean');
  return gso;
}

/**
 * `batch`, checked for what may go through dgram's send: dgram names an IPv6 zone by interface
 * name, never by number (libuv's uv_ip6_addr), so a destination with a zone is refused.
 */
function queueable(batch: Batch): Batch {
  for (const destination of batch.endpoints) {
    if (destination.scopeId !== 0) {
      throw new TypeError(`${destination.address}%${destination.scopeId}: a destination with an IPv6 zone cannot go ` +
        'through the dgram socket\'s send (dgram names zones by interface name): use the try calls');
    }
  }
  return batch;
}

/** Datagram `index` of `batch` as views of the caller's memory: the caller's own view when whole. */
function datagramViews(batch: Batch, index: number): Uint8Array[] {
  const first = batch.spans[index * 2]!;
  const count = batch.spans[index * 2 + 1]!;
  const views: Uint8Array[] = new Array(count);
  for (let r = 0; r < count; r++) {
    const at = (first + r) * 3;
    const buffer = batch.buffers[batch.ranges[at]!]!;
    const offset = batch.ranges[at + 1]!;
    const length = batch.ranges[at + 2]!;
    views[r] = viewOf(buffer, offset, length);
  }
  return views;
}

/** Bytes [offset, offset + length) of `view`: `view` itself when that is all of it. */
function viewOf(view: Uint8Array, offset: number, length: number): Uint8Array {
  if (offset === 0 && length === byteLengthOf(view)) return view;
  return new Uint8Array(Reflect.apply(bufferOf, view, []) as ArrayBufferLike,
    (Reflect.apply(byteOffsetOf, view, []) as number) + offset, length);
}

/**
 * The datagrams `views` (of `bytes` in all) stands for on the wire: itself, or with an explicit
 * segment size shorter than it, pieces of that size (the last shorter), as UDP_SEGMENT cuts it.
 */
function splitSegments(views: Uint8Array[], bytes: number, segmentSize: number): Uint8Array[][] {
  if (segmentSize === 0 || bytes <= segmentSize) return [views];
  const pieces: Uint8Array[][] = [];
  let piece: Uint8Array[] = [];
  let room = segmentSize;
  for (const view of views) {
    const length = byteLengthOf(view);
    let offset = 0;
    while (offset < length) {
      const take = Math.min(room, length - offset);
      piece.push(viewOf(view, offset, take));
      offset += take;
      room -= take;
      if (room === 0) {
        pieces.push(piece);
        piece = [];
        room = segmentSize;
      }
    }
  }
  if (piece.length > 0) pieces.push(piece);
  return pieces;
}
