/**
 * The idiomatic Node API: a UDP socket that sends a whole batch of datagrams per system call.
 *
 * ```ts
 * const socket = createSocket('udp4');
 * const { datagrams, bytes } = await socket.sendBatch([a, b, c], 4433, '127.0.0.1');
 * ```
 */
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import * as os from 'node:os';
import { types } from 'node:util';
import { binding, type NativeControls, type NativeUdpSocket, type SocketStats } from './binding';
import { WskError } from './errors';
import {
  DatagramReader, toAddressInfo, type AddressInfo, type ReceivedDatagram, type ReceiveOptions,
} from './receive';
import { isWouldBlock, SendQueue } from './send-queue';
import {
  MAX_BATCH_DATAGRAMS,
  MAX_DATAGRAM_PIECES,
  MAX_UDP_PAYLOAD,
  type BatchLayout,
  type BatchSender,
  type Destination,
  type PendingSend,
  type RawSendResult,
  type SendCompletion,
  type SendControls,
} from './transport';
import { describeValue } from './describe';

/** A datagram: one Uint8Array, or several sent back to back as one datagram (no copy). */
export type Datagram = Uint8Array | readonly Uint8Array[];

/** What a send put on the wire: whole datagrams and their payload bytes, nothing more. */
export interface SendResult {
  datagrams: number;
  bytes: number;
}

export type SocketType = 'udp4' | 'udp6';

export interface SocketOptions {
  type: SocketType;
  /** SO_SNDBUF in bytes (the kernel may double or clamp it). */
  sendBufferSize?: number;
  /**
   * Segmentation offload (default true): runs of equal-size datagrams to one destination go to
   * the kernel as one super-packet that it splits back into those datagrams (Linux UDP_SEGMENT,
   * kernel 4.18+). The receiver sees the same datagrams either way. Where the kernel lacks or
   * refuses it, the socket sends plain datagrams and remembers.
   */
  gso?: boolean;
}

/**
 * Per-call options of sendBatch / trySendBatch. The control fields apply to every datagram of
 * the call (Linux: as cmsgs on each message; see docs/api.md for other platforms).
 */
export interface SendOptions extends SendControls {
  /** Segmentation offload for this call; defaults to the socket's `gso`. */
  gso?: boolean;
}

function checkInteger(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${name} must be an integer, got ${describeValue(value)}`);
  }
  if (value < min || value > max) throw new RangeError(`${name} must be from ${min} to ${max}, got ${value}`);
  return value;
}

/**
 * Checks controls and puts them in the native form: the ECN codepoint goes into the low two
 * bits of the TOS byte. Undefined when there are none.
 */
export function nativeControls(controls: SendControls, family: 4 | 6): NativeControls | undefined {
  const result: NativeControls = {};
  let any = false;
  if (controls.sourceAddress !== undefined) {
    result.sourceAddress = parseIpLiteral(controls.sourceAddress, family).address;
    any = true;
  }
  if (controls.interfaceIndex !== undefined) {
    result.interfaceIndex = checkInteger(controls.interfaceIndex, 'interfaceIndex', 0, 0xffffffff);
    any = true;
  }
  if (controls.tos !== undefined || controls.ecn !== undefined) {
    const tos = controls.tos === undefined ? 0 : checkInteger(controls.tos, 'tos', 0, 255);
    const ecn = controls.ecn === undefined ? tos & 3 : checkInteger(controls.ecn, 'ecn', 0, 3);
    result.tos = (tos & ~3) | ecn;
    any = true;
  }
  if (controls.ttl !== undefined) {
    result.ttl = checkInteger(controls.ttl, 'ttl', 1, 255);
    any = true;
  }
  if (controls.segmentSize !== undefined) {
    result.segmentSize = checkInteger(controls.segmentSize, 'segmentSize', 1, MAX_UDP_PAYLOAD[family]);
    any = true;
  }
  return any ? result : undefined;
}



function checkPort(port: unknown, allowZero: boolean): number {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < (allowZero ? 0 : 1) ||
    port > 65535) {
    throw new RangeError(`port must be an integer from ${allowZero ? 0 : 1} to 65535, got ${describeValue(port)}`);
  }
  return port;
}

/**
 * Parses an IP literal for a socket of `family`. An IPv6 literal may carry a numeric zone
 * ("fe80::1%2"). Names are not resolved: wsk-dgram never does DNS on the send path.
 */
export function parseIpLiteral(address: unknown, family: 4 | 6): { address: string; scopeId: number } {
  if (typeof address !== 'string') {
    throw new TypeError(`address must be a string IP literal, got ${typeof address}`);
  }
  let literal = address;
  let scopeId = 0;
  const zone = address.indexOf('%');
  if (zone >= 0) {
    const suffix = address.slice(zone + 1);
    if (!/^\d{1,10}$/.test(suffix) || Number(suffix) > 0xffffffff) {
      throw new TypeError(`address zone must be a numeric interface index: ${address}`);
    }
    literal = address.slice(0, zone);
    scopeId = Number(suffix);
  }
  const found = net.isIP(literal);
  if (found === 0 || (found === 4 && zone >= 0)) {
    throw new TypeError(`address must be an IPv4 or IPv6 literal, got ${JSON.stringify(address)}`);
  }
  if (found !== family) {
    throw new TypeError(`address ${address} is IPv${found} but the socket is udp${family}`);
  }
  return { address: literal, scopeId };
}

// Intrinsics captured at load, so that checking a datagram runs none of the caller's code (an
// own `byteLength` property, a Symbol.hasInstance) and reads what the native side will read.
// %TypedArray%.prototype.at throws for a view whose memory is gone (detached, or a fixed-length
// view past the end of a shrunk resizable ArrayBuffer), where byteLength only says 0.
const typedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as object;
const typedArrayByteLength = Object.getOwnPropertyDescriptor(typedArrayPrototype, 'byteLength')!.get!;
const typedArrayAt = Uint8Array.prototype.at;
const { isUint8Array } = types;

function byteLengthOf(view: Uint8Array): number {
  return Reflect.apply(typedArrayByteLength, view, []) as number;
}

/** The byte length of `view`; a RangeError when it is empty because its memory is gone. */
function checkedLength(view: Uint8Array, what: string): number {
  const length = byteLengthOf(view);
  if (length === 0) {
    try {
      Reflect.apply(typedArrayAt, view, [0]);
    } catch {
      throw new RangeError(`${what} has no memory (its ArrayBuffer is detached, or shrunk below it)`);
    }
  }
  return length;
}

/**
 * Checks `datagrams` and turns them into the native call's arguments. Plain Uint8Arrays take the
 * layout-free fast path; a datagram given as pieces gets a layout. Never copies payloads.
 *
 * Every element is read once, into arrays of our own, before anything is checked: a getter or
 * a Proxy of the caller's runs only in that first pass, so it cannot change what was checked,
 * and nothing of the caller's runs between the checks and the native call, which reads the
 * same views at the same lengths.
 */
function describeBatch(datagrams: unknown, family: 4 | 6): {
  buffers: Uint8Array[];
  layout: BatchLayout;
  totalBytes: number;
  /** Datagrams, as read once. */
  count: number;
} {
  if (!Array.isArray(datagrams)) {
    throw new TypeError('datagrams must be an array of Uint8Array (or of arrays of Uint8Array)');
  }
  const count = datagrams.length;
  if (count > MAX_BATCH_DATAGRAMS) {
    throw new RangeError(`a batch holds at most ${MAX_BATCH_DATAGRAMS} datagrams, got ${count}`);
  }
  // Pass 1: read (the caller's code may run).
  const read: unknown[] = new Array(count);
  let pieces = 0;
  for (let i = 0; i < count; i++) {
    const datagram: unknown = datagrams[i];
    if (isUint8Array(datagram) || !Array.isArray(datagram)) {
      read[i] = datagram;
      continue;
    }
    const partCount = datagram.length;
    if (partCount > MAX_DATAGRAM_PIECES) {
      throw new RangeError(`datagram ${i} has ${partCount} pieces; at most ${MAX_DATAGRAM_PIECES}`);
    }
    const parts: unknown[] = new Array(partCount);
    for (let p = 0; p < partCount; p++) parts[p] = datagram[p];
    read[i] = parts;
    pieces += partCount;
  }

  // Pass 2: check what was read (none of the caller's code runs from here on).
  const limit = MAX_UDP_PAYLOAD[family];
  let totalBytes = 0;
  for (let i = 0; i < count; i++) {
    const datagram = read[i];
    let length = 0;
    if (isUint8Array(datagram)) {
      length = checkedLength(datagram, `datagram ${i}`);
    } else if (Array.isArray(datagram)) {
      for (const piece of datagram as unknown[]) {
        if (!isUint8Array(piece)) throw new TypeError(`datagram ${i} has a piece that is not a Uint8Array`);
        length += checkedLength(piece, `a piece of datagram ${i}`);
      }
    } else {
      throw new TypeError(`datagram ${i} must be a Uint8Array or an array of Uint8Array`);
    }
    if (length > limit) {
      throw new RangeError(`datagram ${i} has ${length} bytes; the UDP limit over IPv${family} is ${limit}`);
    }
    totalBytes += length;
  }
  if (pieces === 0) return { buffers: read as Uint8Array[], layout: null, totalBytes, count };

  // Some datagrams are made of pieces: describe every datagram as ranges over `buffers`.
  const buffers: Uint8Array[] = [];
  const layout = new Uint32Array(count * 4 + pieces * 3);
  let word = 0;
  for (const datagram of read as Datagram[]) {
    const parts = isUint8Array(datagram) ? [datagram] : datagram;
    layout[word++] = parts.length;
    for (const part of parts) {
      layout[word++] = buffers.length;
      layout[word++] = 0;
      layout[word++] = byteLengthOf(part);
      buffers.push(part);
    }
  }
  return { buffers, layout: layout.subarray(0, word), totalBytes, count };
}

/**
 * A UDP socket that sends batches of datagrams with one system call (Linux: sendmmsg).
 * What the kernel cannot take at once waits in the socket's queue and goes out, in call order,
 * when the socket is writable. Events: 'drain' (the queue emptied), 'close'.
 */
export class UdpSocket extends EventEmitter implements BatchSender {
  /** 4 for udp4, 6 for udp6. */
  readonly family: 4 | 6;
  readonly type: SocketType;
  readonly #native: NativeUdpSocket;
  readonly #queue: SendQueue;
  readonly #reader: DatagramReader;
  #remote: Destination | null = null;
  #closed = false;
  #gso = true;

  constructor(options: SocketType | SocketOptions) {
    super();
    const type = typeof options === 'string' ? options : options?.type;
    if (type !== 'udp4' && type !== 'udp6') {
      throw new TypeError(`socket type must be 'udp4' or 'udp6', got ${describeValue(type)}`);
    }
    this.type = type;
    this.family = type === 'udp6' ? 6 : 4;
    const native = new (binding().UdpSocket)();
    const error = native.open(this.family);
    if (error !== 0) throw new WskError(error, 'socket');
    this.#native = native;
    this.#queue = new SendQueue(native, () => this.emit('drain'));
    this.#reader = new DatagramReader(native);
    if (typeof options === 'object' && options.gso !== undefined) {
      if (typeof options.gso !== 'boolean') throw new TypeError('gso must be a boolean');
      this.#gso = options.gso;
    }
    if (typeof options === 'object' && options.sendBufferSize !== undefined) {
      try {
        this.setSendBufferSize(options.sendBufferSize);
      } catch (e) {
        native.close();
        throw e;
      }
    }
  }

  /** True once close() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The fixed remote set by connect(), or null. */
  get remote(): Destination | null {
    return this.#remote;
  }

  /** The OS descriptor (-1 once closed); for diagnostics. */
  get fd(): number {
    return this.#native.fd;
  }

  /**
   * Whether sends coalesce equal-size runs into super-packets (Linux UDP_SEGMENT): true when
   * enabled for the socket and the kernel has not refused it. Set false to turn it off.
   */
  get gso(): boolean {
    return this.#gso && this.#native.segmentLimit > 0;
  }

  set gso(enabled: boolean) {
    if (typeof enabled !== 'boolean') throw new TypeError('gso must be a boolean');
    this.#gso = enabled;
  }

  /**
   * What the socket has sent over its life: system calls, messages (a super-packet is one),
   * datagrams and bytes. `datagrams / syscalls` is the batching achieved.
   */
  stats(): SocketStats {
    return this.#native.stats();
  }

  /** Sends waiting in the queue. */
  get pendingRequests(): number {
    return this.#queue.pendingRequests;
  }

  /** Datagrams waiting in the queue, not yet sent. */
  get pendingDatagrams(): number {
    return this.#queue.pendingDatagrams;
  }

  /** Payload bytes waiting in the queue, not yet sent. A fast sender waits for 'drain' above its limit. */
  get pendingBytes(): number {
    return this.#queue.pendingBytes;
  }

  /** Resolves once nothing is pending (at once if nothing is), or when the socket closes. */
  drained(): Promise<void> {
    if (this.#queue.pendingRequests === 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.off('drain', done);
        this.off('close', done);
        resolve();
      };
      this.on('drain', done);
      this.on('close', done);
    });
  }

  /**
   * Binds to `address` (default: the wildcard address) and `port` (default 0: any free port),
   * synchronously. Returns the bound address.
   */
  bind(port = 0, address?: string): AddressInfo {
    const local = parseIpLiteral(address ?? (this.family === 6 ? '::' : '0.0.0.0'), this.family);
    const error = this.#native.bind(local.address, checkPort(port, true), local.scopeId);
    if (error !== 0) throw new WskError(error, 'bind');
    return this.address();
  }

  /** Fixes the remote: later sends may omit the destination. Synchronous. */
  connect(port: number, address: string): void {
    const remote = parseIpLiteral(address, this.family);
    const destination: Destination = { family: this.family, port: checkPort(port, false), ...remote };
    const error = this.#native.connect(remote.address, destination.port, remote.scopeId);
    if (error !== 0) throw new WskError(error, 'connect');
    this.#remote = destination;
  }

  /** The local address (after bind, connect or a first send). */
  address(): AddressInfo {
    const local = this.#native.localAddress();
    if (typeof local === 'number') throw new WskError(local, 'getsockname');
    return toAddressInfo(local);
  }

  /** The connected remote's address. */
  remoteAddress(): AddressInfo {
    const remote = this.#native.remoteAddress();
    if (typeof remote === 'number') throw new WskError(remote, 'getpeername');
    return toAddressInfo(remote);
  }

  /** Sets SO_SNDBUF. */
  setSendBufferSize(bytes: number): void {
    if (!Number.isInteger(bytes) || bytes < 1 || bytes > 0x7fffffff) {
      throw new RangeError(`send buffer size must be an integer from 1 to 2^31-1, got ${bytes}`);
    }
    const error = this.#native.setSendBufferSize(bytes);
    if (error !== 0) throw new WskError(error, 'setsockopt');
  }

  /** Reads SO_SNDBUF (Linux reports twice the size that was set). */
  getSendBufferSize(): number {
    const size = this.#native.getSendBufferSize();
    if (size < 0) throw new WskError(-size, 'getsockopt');
    return size;
  }

  /**
   * Sends as many of `datagrams` as the kernel takes now, in order, with one system call per
   * up to 1024 datagrams, and never queues. Returns what went out: fewer than
   * `datagrams.length` when the socket buffer filled up, and nothing while earlier sendBatch
   * calls are still waiting (it never jumps the queue). Throws a WskError (carrying what had
   * gone out before) for any other OS error, and TypeError/RangeError for bad arguments.
   * Omit `port` and `address` on a connected socket.
   */
  trySendBatch(datagrams: readonly Datagram[], port?: number, address?: string,
    options?: SendOptions): SendResult {
    const destination = this.#destination(port, address);
    const segment = this.#segment(options);
    const controls = options === undefined ? undefined : nativeControls(options, this.family);
    const { buffers, layout, count } = describeBatch(datagrams, this.family);
    const result = this.#queue.trySend(buffers, layout, count, destination, segment, controls);
    if (result.errno !== 0 && !isWouldBlock(result.errno)) {
      throw new WskError(result.errno, result.syscall, result);
    }
    return { datagrams: result.datagrams, bytes: result.bytes };
  }

  /**
   * Sends every datagram of the batch and resolves with what went out. What the socket cannot
   * take now waits, behind earlier calls, and goes out when the socket is writable; keep the
   * buffers unchanged until the promise settles. Rejects with a WskError carrying
   * `datagramsSent`/`bytesSent` when the kernel refuses a datagram, or with code ECANCELED
   * (STATUS_CANCELLED) when the socket is closed first.
   */
  sendBatch(datagrams: readonly Datagram[], port?: number, address?: string,
    options?: SendOptions): Promise<SendResult> {
    try {
      const destination = this.#destination(port, address);
      const segment = this.#segment(options);
      const controls = options === undefined ? undefined : nativeControls(options, this.family);
      const { buffers, layout, totalBytes, count } = describeBatch(datagrams, this.family);
      return new Promise((resolve, reject) => {
        const settle = (result: RawSendResult | SendCompletion): void => {
          if ('cancelled' in result && result.cancelled) {
            reject(new WskError(os.constants.errno.ECANCELED, result.syscall || 'close', result));
          } else if (result.errno !== 0) {
            reject(new WskError(result.errno, result.syscall, result));
          } else {
            resolve({ datagrams: result.datagrams, bytes: result.bytes });
          }
        };
        const submitted = this.#queue.submit(buffers, layout, count, totalBytes,
          destination, settle, segment, controls);
        if (!('pending' in submitted)) settle(submitted);
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The batch send of the BatchSender contract (used by the WSK layer). */
  submit(
    buffers: readonly Uint8Array[],
    layout: BatchLayout,
    datagramCount: number,
    totalBytes: number,
    destination: Destination | null,
    onComplete: (completion: SendCompletion) => void,
    controls?: SendControls,
  ): RawSendResult | PendingSend {
    const native = controls === undefined ? undefined : nativeControls(controls, this.family);
    return this.#queue.submit(buffers, layout, datagramCount, totalBytes, destination, onComplete,
      this.#gso, native);
  }

  /**
   * Asks the kernel to report, with every received datagram, the address it was sent to, its
   * TOS / traffic class and its TTL / hop limit; with `gro`, to coalesce datagrams of one flow
   * (UDP_GRO), each batch entry then carrying its `segmentSize`. Linux only.
   */
  enableReceiveInfo(options: { gro?: boolean } = {}): void {
    const gro = options.gro ?? false;
    if (typeof gro !== 'boolean') throw new TypeError('gro must be a boolean');
    const error = this.#native.enableReceiveInfo(gro);
    if (error !== 0) throw new WskError(error, 'setsockopt');
  }

  /**
   * Receives a batch with one system call (recvmmsg): waits for at least one datagram, then
   * returns every datagram waiting, up to `maxDatagrams`. Resolves [] when `timeoutMs` passes
   * or the socket closes. The datagrams' bytes are views into the arena: copy what you keep
   * past the next receive.
   */
  receiveBatch(options?: ReceiveOptions): Promise<ReceivedDatagram[]> {
    try {
      return this.#reader.receiveBatch(options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * The received datagrams one by one, batch after batch, until the socket closes (or a batch
   * times out, with `timeoutMs`). Each datagram's bytes are valid until the next batch is read.
   */
  async *datagrams(options?: ReceiveOptions): AsyncIterableIterator<ReceivedDatagram> {
    for (;;) {
      const batch = await this.receiveBatch(options);
      if (batch.length === 0) return;
      yield* batch;
    }
  }

  /**
   * Closes the socket. Pending sends complete first, as cancelled (nothing more of them is
   * sent); later sends fail with EBADF (STATUS_INVALID_HANDLE). Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue.cancelAll();
    this.#reader.close();
    this.#native.close();
    this.emit('close');
  }

  #segment(options: SendOptions | undefined): boolean {
    if (options === undefined) return this.#gso;
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    if (options.gso === undefined) return this.#gso;
    if (typeof options.gso !== 'boolean') throw new TypeError('options.gso must be a boolean');
    return options.gso;
  }

  #destination(port: number | undefined, address: string | undefined): Destination | null {
    if (port === undefined && address === undefined) {
      if (this.#remote === null && !this.#closed) {
        throw new TypeError('a destination port is required on a socket that is not connected');
      }
      return null;
    }
    if (this.#remote !== null) {
      throw new TypeError('the socket is connected: omit port and address');
    }
    const ip = parseIpLiteral(address ?? (this.family === 6 ? '::1' : '127.0.0.1'), this.family);
    return { family: this.family, port: checkPort(port, false), ...ip };
  }
}

/** Creates a UDP socket: `createSocket('udp4')` or `createSocket({ type: 'udp6', ... })`. */
export function createSocket(options: SocketType | SocketOptions): UdpSocket {
  return new UdpSocket(options);
}
