/**
 * The idiomatic Node API: a UDP socket that sends a whole batch of datagrams per system call.
 *
 * ```ts
 * const socket = createSocket('udp4');
 * const { datagrams, bytes } = await socket.sendBatch([a, b, c], 4433, '127.0.0.1');
 * ```
 */
import { EventEmitter } from 'node:events';
import * as os from 'node:os';
import {
  buildAddressedBatch, buildBatch, buildFanOutBatch, DestinationCache, DestinationSet, type Batch,
  type BatchInput,
  type Datagram,
} from './batch';
import { binding, type NativeControls, type NativeUdpSocket, type SocketStats } from './binding';
import { checkPort, parseIpLiteral } from './address';
import { nativeControls } from './controls';
import { describeValue } from './describe';
import { WskError } from './errors';
import {
  DatagramReader, toAddressInfo, type AddressInfo, type ReceivedDatagram, type ReceiveOptions,
} from './receive';
import { SendQueue } from './send-queue';
import { IcmpWatch, MTU_DISCOVERY, SOCKET_OPTION, type IcmpError, type MtuDiscovery } from './icmp';
import {
  type BatchSender,
  type Destination,
  type PendingSend,
  type RawSendResult,
  type SendCompletion,
  type SendControls,
} from './transport';
import { ntStatusFromOsError, osErrorName } from './wsk/wsa';
import type { NTSTATUS } from './wsk/ntstatus';

export type { BatchInput, Datagram, PackedBatch } from './batch';

/** A datagram the kernel refused for its destination while the rest of the batch went on. */
export interface SendFailure {
  /** Its index in the batch (for sendToMany: destination index * batch length + datagram index). */
  readonly index: number;
  /** The errno code name, e.g. "EACCES". */
  readonly code: string;
  /** The OS error number (a WSA code on Windows). */
  readonly errno: number;
  /** The NTSTATUS it maps to, e.g. STATUS_ACCESS_DENIED. */
  readonly status: NTSTATUS;
  /** The destination it was for (absent on a connected socket). */
  readonly address?: string;
  readonly port?: number;
}

/**
 * What a send put on the wire: the caller's datagrams and their payload bytes, nothing more;
 * `segments` counts the datagrams on the wire (one cut by `segmentSize` counts each segment);
 * `failures` lists the datagrams refused for their destination (with `continueOnError`).
 */
export interface SendResult {
  datagrams: number;
  bytes: number;
  segments: number;
  failures: SendFailure[];
}

/** A destination of a multi-destination send: a port and an IP literal (default loopback). */
export interface Endpoint {
  readonly port: number;
  readonly address?: string;
}

/** A datagram with its own destination (trySendTo / sendTo). */
export interface Message extends Endpoint {
  readonly data: Datagram;
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
  /**
   * Go on past a datagram the kernel refuses for its destination (EACCES, EPERM, ENETUNREACH,
   * EHOSTUNREACH, ECONNREFUSED, EMSGSIZE, ...), listing it in `failures`, instead of stopping
   * there with a WskError. Default false for one destination, true for sendTo/sendToMany.
   * "Would block" is never a failure: the rest waits (sendBatch) or is returned unsent.
   */
  continueOnError?: boolean;
}

/**
 * A UDP socket that sends batches of datagrams with one system call (Linux: sendmmsg).
 * What the kernel cannot take at once waits in the socket's queue and goes out, in call order,
 * when the socket is writable. Events: 'drain' (the queue emptied), 'close', 'icmp' (an ICMP
 * error one of its datagrams caused; Linux).
 */
export class UdpSocket extends EventEmitter implements BatchSender {
  /** 4 for udp4, 6 for udp6. */
  readonly family: 4 | 6;
  readonly type: SocketType;
  readonly #native: NativeUdpSocket;
  readonly #queue: SendQueue;
  readonly #reader: DatagramReader;
  readonly #icmp: IcmpWatch;
  #remote: Destination | null = null;
  readonly #addresses: DestinationCache;
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
    this.#addresses = new DestinationCache(this.family);
    const native = new (binding().UdpSocket)();
    const error = native.open(this.family);
    if (error !== 0) throw new WskError(error, 'socket');
    this.#native = native;
    // ICMP errors the native send or receive read on their way are delivered after the call.
    const icmp = new IcmpWatch(native, this);
    this.#icmp = icmp;
    this.#queue = new SendQueue({
      send: (batch, first, count) => {
        const result = native.send(batch, first, count);
        icmp.afterCall();
        return result;
      },
      startPolling: (onWritable) => native.startPolling(onWritable),
      stopPolling: () => native.stopPolling(),
    }, () => this.emit('drain'));
    this.#reader = new DatagramReader({
      receive: (arena, slotSize, maxDatagrams) => {
        const result = native.receive(arena, slotSize, maxDatagrams);
        icmp.afterCall();
        return result;
      },
      startReading: (onReadable) => native.startReading(onReadable),
      stopReading: () => native.stopReading(),
    });
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

  /** Adds a listener; an 'icmp' listener gets each IcmpError (Linux: see icmpErrors()). */
  override on(event: 'icmp', listener: (error: IcmpError) => void): this;
  override on(event: string | symbol, listener: (...args: never[]) => void): this;
  override on(event: string | symbol, listener: (...args: never[]) => void): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }

  /** Adds a one-time listener (see on). */
  override once(event: 'icmp', listener: (error: IcmpError) => void): this;
  override once(event: string | symbol, listener: (...args: never[]) => void): this;
  override once(event: string | symbol, listener: (...args: never[]) => void): this {
    return super.once(event, listener as (...args: unknown[]) => void);
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
    if (typeof size === 'number') throw new WskError(size, 'getsockopt');
    return size.bytes;
  }

  /**
   * Sends as many datagrams of `batch` as the kernel takes now, in order, with one system call
   * per up to 1024 datagrams, and never queues. `batch` is an array of datagrams or a packed
   * batch (`{ buffer, lengths }` / `{ buffer, segmentSize }`). Returns what went out: when the
   * socket buffer fills up, the datagrams from index `datagrams + failures.length` on were not
   * sent; nothing goes out while earlier sendBatch calls are still waiting (it never jumps the
   * queue). Throws a WskError (carrying what had gone out before) for any other OS error,
   * unless `continueOnError`, and TypeError/RangeError for bad arguments.
   * Omit `port` and `address` on a connected socket.
   */
  trySendBatch(batch: BatchInput, port?: number, address?: string, options?: SendOptions): SendResult {
    const destination = this.#destination(port, address);
    return this.#trySend(buildBatch(batch, destination, this.#buildOptions(options, false)));
  }

  /**
   * Sends every datagram of `batch` (an array of datagrams or a packed batch) and resolves with
   * what went out. What the socket cannot take now waits, behind earlier calls, and goes out
   * when the socket is writable; keep the buffers unchanged until the promise settles. Bad
   * arguments throw a TypeError/RangeError at once, before anything is sent (as node:dgram does).
   * Rejects with a WskError carrying `datagramsSent`/`bytesSent` when the kernel refuses a
   * datagram (with `continueOnError`, it is listed in `failures` instead), or with code
   * ECANCELED (STATUS_CANCELLED) when the socket is closed first.
   */
  sendBatch(batch: BatchInput, port?: number, address?: string, options?: SendOptions): Promise<SendResult> {
    const destination = this.#destination(port, address);
    return this.#send(buildBatch(batch, destination, this.#buildOptions(options, false)));
  }

  /**
   * Sends each message to its own destination, as many as the kernel takes now (one system
   * call per up to 1024 messages, whatever the destinations), and never queues. A datagram
   * refused for its destination is listed in `failures` and the rest go on (unless
   * `continueOnError: false`). On a full socket buffer, messages from index
   * `datagrams + failures.length` on were not sent.
   */
  trySendTo(messages: readonly Message[], options?: SendOptions): SendResult {
    const { data, destinations } = this.#readMessages(messages);
    return this.#trySend(buildAddressedBatch(data, destinations, this.#buildOptions(options, true)));
  }

  /** Sends each message to its own destination; what cannot go now waits (see sendBatch). */
  sendTo(messages: readonly Message[], options?: SendOptions): Promise<SendResult> {
    const { data, destinations } = this.#readMessages(messages);
    return this.#send(buildAddressedBatch(data, destinations, this.#buildOptions(options, true)));
  }

  /**
   * Sends every datagram of `batch` to each of `destinations` (fan-out), destination by
   * destination: datagram `d * batchLength + i` of the result is datagram i to destination d.
   * Every copy points at the same memory: nothing is copied. As many as the kernel takes now.
   */
  trySendToMany(batch: BatchInput, destinations: readonly Endpoint[] | DestinationSet,
    options?: SendOptions): SendResult {
    const endpoints = this.#fanOutDestinations(destinations);
    return this.#trySend(buildFanOutBatch(batch, endpoints, this.#buildOptions(options, true)));
  }

  /** The fan-out of trySendToMany; what cannot go now waits (see sendBatch). */
  sendToMany(batch: BatchInput, destinations: readonly Endpoint[] | DestinationSet,
    options?: SendOptions): Promise<SendResult> {
    const endpoints = this.#fanOutDestinations(destinations);
    return this.#send(buildFanOutBatch(batch, endpoints, this.#buildOptions(options, true)));
  }

  /** The batch send of the BatchSender contract (used by the WSK layer). */
  submit(batch: Batch, onComplete: (completion: SendCompletion) => void): RawSendResult | PendingSend {
    return this.#queue.submit(batch, onComplete);
  }

  #trySend(batch: Batch): SendResult {
    const result = this.#queue.trySend(batch);
    if (result.errno !== 0 && !result.wouldBlock) throw new WskError(result.errno, result.syscall, result);
    return this.#result(batch, result);
  }

  #send(batch: Batch): Promise<SendResult> {
    return new Promise((resolve, reject) => {
      const settle = (result: RawSendResult | SendCompletion): void => {
        if ('cancelled' in result && result.cancelled) {
          reject(new WskError(os.constants.errno.ECANCELED, result.syscall || 'close', result));
        } else if (result.errno !== 0) {
          reject(new WskError(result.errno, result.syscall, result));
        } else {
          resolve(this.#result(batch, result));
        }
      };
      const submitted = this.#queue.submit(batch, settle);
      if (!('pending' in submitted)) settle(submitted);
    });
  }

  #result(batch: Batch, result: RawSendResult): SendResult {
    const failures = result.failures.map((failure): SendFailure => {
      const code = osErrorName(failure.errno) ?? `E${failure.errno}`;
      const status = ntStatusFromOsError(failure.errno);
      const target = batch.targets === null ? 0 : batch.targets[failure.index]!;
      const endpoint = batch.endpoints[target];
      return endpoint === undefined
        ? { index: failure.index, code, errno: failure.errno, status }
        : { index: failure.index, code, errno: failure.errno, status, address: endpoint.address, port: endpoint.port };
    });
    return { datagrams: result.datagrams, bytes: result.bytes, segments: result.segments, failures };
  }

  #buildOptions(options: SendOptions | undefined, manyDestinations: boolean): {
    family: 4 | 6; segment: boolean; continueOnError: boolean; controls: NativeControls | undefined;
  } {
    if (options === undefined) {
      return { family: this.family, segment: this.#gso, continueOnError: manyDestinations, controls: undefined };
    }
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    // Each field once: a getter cannot answer one thing to the check and another to the send.
    const gso: unknown = options.gso;
    const segment = gso === undefined ? this.#gso : gso;
    if (typeof segment !== 'boolean') throw new TypeError('options.gso must be a boolean');
    const continueOnError: unknown = options.continueOnError ?? manyDestinations;
    if (typeof continueOnError !== 'boolean') throw new TypeError('options.continueOnError must be a boolean');
    return { family: this.family, segment, continueOnError, controls: nativeControls(options, this.family) };
  }

  /** Reads each message once into datagrams and checked destinations. */
  #readMessages(messages: unknown): { data: Datagram[]; destinations: Destination[] } {
    if (!Array.isArray(messages)) throw new TypeError('messages must be an array of { data, port, address }');
    this.#requireUnconnected();
    const count = messages.length;
    const data: Datagram[] = new Array(count);
    const destinations: Destination[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const message: unknown = messages[i];
      if (typeof message !== 'object' || message === null) throw new TypeError(`message ${i} must be an object`);
      const { data: bytes, port, address } = message as Record<string, unknown>;
      data[i] = bytes as Datagram;
      destinations[i] = this.#endpoint(port, address, `message ${i}`);
    }
    return { data, destinations };
  }

  /**
   * Checks and encodes `destinations` once, for the fan-out calls to take in place of the array
   * on every call after: sending to the same peers again parses nothing. TypeError/RangeError
   * name the bad entry.
   */
  prepareDestinations(destinations: readonly Endpoint[]): DestinationSet {
    return new DestinationSet(this.family, this.#readEndpoints(destinations));
  }

  /** The fan-out destinations of a call: a prepared set as it is, an array read and checked. */
  #fanOutDestinations(destinations: unknown): Destination[] | DestinationSet {
    this.#requireUnconnected();
    return destinations instanceof DestinationSet ? destinations : this.#readEndpoints(destinations);
  }

  /** Reads each endpoint once into checked destinations. */
  #readEndpoints(endpoints: unknown): Destination[] {
    if (!Array.isArray(endpoints)) throw new TypeError('destinations must be an array of { port, address }');
    const count = endpoints.length;
    const destinations: Destination[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const endpoint: unknown = endpoints[i];
      if (typeof endpoint !== 'object' || endpoint === null) throw new TypeError(`destination ${i} must be an object`);
      const { port, address } = endpoint as Record<string, unknown>;
      destinations[i] = this.#endpoint(port, address, `destination ${i}`);
    }
    return destinations;
  }

  #endpoint(port: unknown, address: unknown, what: string): Destination {
    try {
      return this.#addresses.destination(port, address ?? (this.family === 6 ? '::1' : '127.0.0.1'));
    } catch (error) {
      if (error instanceof TypeError) throw new TypeError(`${what}: ${error.message}`);
      if (error instanceof RangeError) throw new RangeError(`${what}: ${error.message}`);
      throw error;
    }
  }

  #requireUnconnected(): void {
    if (this.#remote !== null) throw new TypeError('the socket is connected: send to its remote with sendBatch');
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
   * The ICMP errors this socket's datagrams cause from now on (Linux; elsewhere it never yields),
   * as the 'icmp' event gives them, until the socket closes or the loop breaks. A consumer more
   * than 1024 errors behind loses the oldest. Watching never keeps the process alive by itself.
   */
  icmpErrors(): AsyncIterableIterator<IcmpError> {
    return this.#icmp.iterator();
  }

  /**
   * Path MTU discovery (Linux IP_MTU_DISCOVER / IPV6_MTU_DISCOVER; Windows the same options,
   * where 'want' is the system default): 'do' sets DF and refuses (EMSGSIZE) a datagram larger
   * than the path MTU the kernel knows; 'want' (Linux's default) sets DF but fragments locally
   * above the known path MTU; 'dont' never sets DF; 'probe' sets DF and ignores the known path
   * MTU (for probing it). An IPv6 socket sets its IPv4 half too, for v4-mapped peers.
   */
  setMtuDiscovery(mode: MtuDiscovery): void {
    const value = typeof mode === 'string' && Object.hasOwn(MTU_DISCOVERY, mode) ? MTU_DISCOVERY[mode] : undefined;
    if (value === undefined) {
      throw new TypeError(`MTU discovery must be 'dont', 'want', 'do' or 'probe', got ${describeValue(mode)}`);
    }
    this.#setOption(SOCKET_OPTION.mtuDiscovery, value);
  }

  /** The path MTU discovery mode (see setMtuDiscovery). */
  getMtuDiscovery(): MtuDiscovery {
    const value = this.#getOption(SOCKET_OPTION.mtuDiscovery);
    const mode = (Object.keys(MTU_DISCOVERY) as MtuDiscovery[]).find((m) => MTU_DISCOVERY[m] === value);
    return mode ?? 'want';
  }

  /**
   * Don't fragment: a datagram larger than the path MTU is refused (EMSGSIZE) instead of
   * fragmented at the source. IPv6: IPV6_DONTFRAG. IPv4: on Linux setMtuDiscovery('do') for
   * true and 'want' for false; on Windows IP_DONTFRAGMENT.
   */
  setDontFragment(on: boolean): void {
    if (typeof on !== 'boolean') throw new TypeError(`dontFragment must be a boolean, got ${describeValue(on)}`);
    this.#setOption(SOCKET_OPTION.dontFragment, on ? 1 : 0);
  }

  /** Whether datagrams leave with "don't fragment" (see setDontFragment). */
  getDontFragment(): boolean {
    return this.#getOption(SOCKET_OPTION.dontFragment) !== 0;
  }

  /**
   * The path MTU the kernel knows for the connected remote (Linux IP_MTU / IPV6_MTU; Windows
   * the same options): lowered by an ICMP "fragmentation needed" / "packet too big". Throws a
   * WskError ENOTCONN on a socket that is not connected.
   */
  getMtu(): number {
    return this.#getOption(SOCKET_OPTION.mtu);
  }

  #setOption(option: number, value: number): void {
    const error = this.#native.setOption(option, value);
    if (error !== 0) throw new WskError(error, 'setsockopt');
  }

  #getOption(option: number): number {
    const result = this.#native.getOption(option);
    if (typeof result === 'number') throw new WskError(result, 'getsockopt');
    return result.value;
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
    this.#icmp.close();
    this.#native.close();
    this.emit('close');
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
    return this.#addresses.destination(port, address ?? (this.family === 6 ? '::1' : '127.0.0.1'));
  }
}

/** Creates a UDP socket: `createSocket('udp4')` or `createSocket({ type: 'udp6', ... })`. */
export function createSocket(options: SocketType | SocketOptions): UdpSocket {
  return new UdpSocket(options);
}
