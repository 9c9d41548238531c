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
import { binding, NativeOption, type NativeControls, type NativeOptionNumber, type NativeUdpSocket, type SocketStats } from './binding';
import { checkPort, parseIpLiteral } from './address';
import { nativeControls } from './controls';
import { describeValue } from './describe';
import { abortError, onAbort, readSignal } from './abort';
import { destinationAt, WskError } from './errors';
import type { UdpSocketEvents } from './events';
import { MessageEvents } from './message-events';
import {
  DatagramReader, toAddressInfo, type AddressInfo, type ReceivedDatagram, type ReceiveOptions,
} from './receive';
import { readEndpoints, readMessages } from './endpoints';
import { sendResult } from './results';
import { SendQueue } from './send-queue';
import { checkOptionNames, ICMP_ERRORS_OPTION_NAMES, RECEIVE_INFO_OPTION_NAMES, SEND_OPTION_NAMES } from './option-names';
import * as sockopts from './socket-options';
import { IcmpWatch, MTU_DISCOVERY, type IcmpError, type IcmpErrorsOptions, type MtuDiscovery } from './icmp';
import {
  type BatchSender,
  type Destination,
  type PendingSend,
  type RawSendResult,
  type SendCompletion,
  type SendControls,
} from './transport';
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
  /** SO_SNDBUF in bytes, as setSendBufferSize sets it. */
  sendBufferSize?: number;
  /** SO_RCVBUF in bytes, as setRecvBufferSize sets it. */
  recvBufferSize?: number;
  /**
   * SO_REUSEADDR, set before any bind (node:dgram's `reuseAddr`): sockets that all set it may
   * bind the same address and port; each gets the multicast and broadcast datagrams, unicast
   * goes to one. Windows: SO_REUSEADDR lets a socket bind a port another socket holds even when
   * that one did not ask for it (unless it set SO_EXCLUSIVEADDRUSE), and which one receives
   * unicast is undefined.
   */
  reuseAddr?: boolean;
  /**
   * SO_REUSEPORT, set before any bind: sockets of one user that all set it may bind the same
   * address and port, and Linux (3.9+) spreads incoming datagrams over them by a hash of the
   * source and destination address and port, each flow staying on one socket. macOS and the
   * BSDs have the option without the spreading. Windows has none: createSocket throws a
   * WskError ENOPROTOOPT (WSAENOPROTOOPT) there. (node:dgram has `reusePort` from Node 22.12.)
   */
  reusePort?: boolean;
  /**
   * Segmentation offload (default true): runs of equal-size datagrams to one destination go to
   * the kernel as one super-packet that it splits back into those datagrams (Linux UDP_SEGMENT,
   * kernel 4.18+). The receiver sees the same datagrams either way. Where the kernel lacks or
   * refuses it, the socket sends plain datagrams and remembers.
   */
  gso?: boolean;
  /**
   * udp6 only (a TypeError on udp4): `false` makes a dual-stack socket (IPV6_V6ONLY 0) that also
   * reaches IPv4 peers, as IPv4-mapped addresses (`::ffff:a.b.c.d`; a plain IPv4 literal is taken
   * as one). Default `true`: an IPv6-only socket, on every OS. node:dgram's default is the
   * other one (dual-stack). Linux, Windows, macOS and the BSDs (OpenBSD has no dual stack: the
   * socket fails to open there).
   */
  ipv6Only?: boolean;
  /** Closes the socket when it aborts (at the next tick if already aborted), as node:dgram does. */
  signal?: AbortSignal;
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
  /**
   * Cancels the send (sendBatch, sendTo, sendToMany): what still waits in the queue is taken
   * out and nothing more of it goes out; the promise rejects with a WskError of code ECANCELED
   * (`cause`: `signal.reason`) counting what had gone out. Already aborted: nothing is sent (the
   * try calls throw it). After the send settled: no effect.
   */
  signal?: AbortSignal;
}

/**
 * A UDP socket that sends batches of datagrams with one system call (Linux: sendmmsg).
 * What the kernel cannot take at once waits in the socket's queue and goes out, in call order,
 * when the socket is writable. Events (typed by UdpSocketEvents, lib/events.ts): 'drain' (the
 * queue emptied), 'close', 'listening', node:dgram's 'message' / 'error' while a 'message'
 * listener is attached, and 'icmp' (an ICMP error one of its datagrams caused; Linux).
 */
export class UdpSocket extends EventEmitter<UdpSocketEvents> implements BatchSender, AsyncDisposable, Disposable {
  /** 4 for udp4, 6 for udp6. */
  readonly family: 4 | 6;
  readonly type: SocketType;
  readonly #native: NativeUdpSocket;
  readonly #queue: SendQueue;
  readonly #reader: DatagramReader;
  readonly #messages: MessageEvents;
  readonly #icmp: IcmpWatch;
  #remote: Destination | null = null;
  readonly #addresses: DestinationCache;
  #closed = false;
  #gso = true;
  readonly #dualStack: boolean;

  constructor(socketOptions: SocketType | SocketOptions) {
    super();
    const settings = sockopts.readSocketOptions(socketOptions);
    const ipv6Only = settings.ipv6Only;
    if (ipv6Only !== undefined && settings.type !== 'udp6') {
      throw new TypeError('ipv6Only is an option of udp6 sockets (a udp4 socket is IPv4 only)');
    }
    if (ipv6Only !== undefined && typeof ipv6Only !== 'boolean') {
      throw new TypeError(`ipv6Only must be a boolean, got ${describeValue(ipv6Only)}`);
    }
    this.type = settings.type;
    this.family = settings.type === 'udp6' ? 6 : 4;
    this.#gso = settings.gso ?? true;
    this.#dualStack = ipv6Only === false;
    this.#addresses = new DestinationCache(this.family, undefined, this.#dualStack);
    const signal = readSignal(settings.signal, 'options.signal');
    const native = new (binding().UdpSocket)();
    const error = native.open(this.family, !this.#dualStack);
    if (error !== 0) throw new WskError(error, 'socket');
    try {
      sockopts.applySocketOptions(native, settings);
    } catch (e) {
      native.close();
      throw e;
    }
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
    this.#messages = new MessageEvents(this);
    if (signal?.aborted) process.nextTick(() => this.close());
    else if (signal !== undefined) this.once('close', onAbort(signal, () => this.close()));
  }

  /**
   * Whether a udp6 socket is IPv6-only (the default) rather than dual-stack (`ipv6Only: false`,
   * reaching IPv4 peers as `::ffff:a.b.c.d`). False on udp4 sockets, which are IPv4 only.
   */
  get ipv6Only(): boolean {
    return this.family === 6 && !this.#dualStack;
  }

  /**
   * Lets the process exit while this socket has a send or receive waiting (node:dgram's unref:
   * uv_unref on its poll handle; the receive timers follow). All platforms. Returns this.
   */
  unref(): this {
    this.#native.setRef(false);
    this.#reader.setRef(false);
    return this;
  }

  /** Undoes unref(): a waiting send or receive keeps the process alive again. Returns this. */
  ref(): this {
    this.#native.setRef(true);
    this.#reader.setRef(true);
    return this;
  }

  /** `await using socket = createSocket(...)`: closes the socket (see close()); resolves once closed. */
  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  /** `using socket = createSocket(...)`: closes the socket (close() is synchronous). */
  [Symbol.dispose](): void {
    this.close();
  }

  /** EventEmitter's, keeping the socket's own watch on 'message' listeners. */
  override removeAllListeners(...args: Parameters<EventEmitter<UdpSocketEvents>['removeAllListeners']>): this {
    super.removeAllListeners(...args);
    this.#messages.install();
    this.#icmp.install();
    return this;
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
   * synchronously. Returns the bound address. On a dual-stack socket '::' (the default) takes
   * IPv6 and IPv4; an IPv4 address binds its IPv4-mapped form, IPv4 only ('0.0.0.0': every
   * IPv4 address, and no IPv6 peer can be reached from it).
   */
  bind(port = 0, address?: string): AddressInfo {
    const local = parseIpLiteral(address ?? (this.family === 6 ? '::' : '0.0.0.0'), this.family, this.#dualStack);
    const error = this.#native.bind(local.address, checkPort(port, true), local.scopeId);
    if (error !== 0) throw new WskError(error, 'bind');
    process.nextTick(() => this.#closed || this.emit('listening'));
    return this.address();
  }

  /**
   * Fixes the remote: later sends may omit the destination. Synchronous. On a dual-stack socket
   * an IPv4 remote is kept (and reported) in its IPv4-mapped form.
   */
  connect(port: number, address: string): void {
    const remote = parseIpLiteral(address, this.family, this.#dualStack);
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

  /**
   * Sets SO_SNDBUF. Linux caps the request at net.core.wmem_max unless the process has
   * CAP_NET_ADMIN (then SO_SNDBUFFORCE sets it as asked), and doubles it.
   */
  setSendBufferSize(bytes: number): void {
    sockopts.setBufferSize(this.#native, 'send', bytes, 'setsockopt');
  }

  /** Reads SO_SNDBUF (Linux reports twice the size that was set). */
  getSendBufferSize(): number {
    const size = this.#native.getSendBufferSize();
    if (typeof size === 'number') throw new WskError(size, 'getsockopt');
    return size.bytes;
  }

  /**
   * Sets SO_RCVBUF (node:dgram's setRecvBufferSize). Linux caps the request at
   * net.core.rmem_max, unless the process has CAP_NET_ADMIN: then SO_RCVBUFFORCE sets it as
   * asked. Linux keeps, and getRecvBufferSize reports, twice the size set (room for its own
   * bookkeeping), as dgram's getRecvBufferSize shows too. All platforms; the forced form Linux only.
   */
  setRecvBufferSize(bytes: number): void {
    sockopts.setBufferSize(this.#native, 'receive', bytes, 'setRecvBufferSize');
  }

  /** Reads SO_RCVBUF, as the kernel reports it (Linux: twice the size set). */
  getRecvBufferSize(): number {
    return sockopts.getOption(this.#native, NativeOption.receiveBufferSize, 'getRecvBufferSize');
  }

  /** SO_BROADCAST: allows sends to a broadcast address (without it they fail EACCES). All platforms. */
  setBroadcast(flag: boolean): void {
    sockopts.setFlag(this.#native, NativeOption.broadcast, flag, 'setBroadcast');
  }

  /**
   * The unicast TTL / hop limit, 1..255 (IP_TTL; IPV6_UNICAST_HOPS on udp6, and on Linux IP_TTL
   * too, for a dual-stack socket's IPv4 traffic). Returns `ttl`, as dgram does. A send's `ttl`
   * option overrides it for that send. All platforms.
   */
  setTTL(ttl: number): number {
    return sockopts.setInteger(this.#native, NativeOption.ttl, ttl, 'ttl', 1, 255, 'setTTL');
  }

  /**
   * The TOS / traffic-class byte, 0..255, ECN bits included (IP_TOS; IPV6_TCLASS on udp6, and on
   * Linux IP_TOS too). node:dgram has no such method. Returns `tos`. A send's `tos`/`ecn` option
   * overrides it for that send. Windows accepts IP_TOS but does not apply it (use QoS policies).
   */
  setTOS(tos: number): number {
    return sockopts.setInteger(this.#native, NativeOption.tos, tos, 'tos', 0, 255, 'setTOS');
  }

  /** The TTL / hop limit of outgoing multicast, 0..255 (default 1). Returns `ttl`. All platforms. */
  setMulticastTTL(ttl: number): number {
    return sockopts.setInteger(this.#native, NativeOption.multicastTtl, ttl, 'ttl', 0, 255, 'setMulticastTTL');
  }

  /** Whether this host's own members of a group get the multicast it sends (default true). Returns `flag`. */
  setMulticastLoopback(flag: boolean): boolean {
    return sockopts.setFlag(this.#native, NativeOption.multicastLoopback, flag, 'setMulticastLoopback');
  }

  /**
   * The interface outgoing multicast leaves by: udp4, an IPv4 address of it ('0.0.0.0': the
   * OS picks); udp6, '::%<name or index>' ('::': the OS picks). Unlike dgram, an unknown
   * interface name is an error (ENODEV) instead of the default interface. Windows: index only.
   */
  setMulticastInterface(interfaceAddress: string): void {
    sockopts.setMulticastInterface(this.#native, this.family, interfaceAddress);
  }

  /**
   * Joins `multicastAddress` (IP_ADD_MEMBERSHIP / IPV6_JOIN_GROUP) on `multicastInterface`
   * (setMulticastInterface's form; default: the OS picks). Works before bind too (dgram binds
   * the socket to the wildcard first; this socket stays as it is). All platforms.
   */
  addMembership(multicastAddress: string, multicastInterface?: string): void {
    sockopts.setMembership(this.#native, this.family, true, multicastAddress, null, multicastInterface, 'addMembership');
  }

  /** Leaves a group joined with addMembership. */
  dropMembership(multicastAddress: string, multicastInterface?: string): void {
    sockopts.setMembership(this.#native, this.family, false, multicastAddress, null, multicastInterface, 'dropMembership');
  }

  /**
   * Joins `groupAddress` for datagrams from `sourceAddress` only (IP_ADD_SOURCE_MEMBERSHIP;
   * MCAST_JOIN_SOURCE_GROUP on udp6). All platforms with IGMPv3 / MLDv2 (Linux, Windows, macOS).
   */
  addSourceSpecificMembership(sourceAddress: string, groupAddress: string, multicastInterface?: string): void {
    sockopts.setMembership(this.#native, this.family, true, groupAddress, { address: sourceAddress }, multicastInterface,
      'addSourceSpecificMembership');
  }

  /** Leaves a source-specific membership. */
  dropSourceSpecificMembership(sourceAddress: string, groupAddress: string, multicastInterface?: string): void {
    sockopts.setMembership(this.#native, this.family, false, groupAddress, { address: sourceAddress }, multicastInterface,
      'dropSourceSpecificMembership');
  }

  /**
   * Undoes connect() (connect with AF_UNSPEC): later sends need a destination again and
   * remoteAddress() fails ENOTCONN. A socket that is not connected throws a TypeError with code
   * ERR_SOCKET_DGRAM_NOT_CONNECTED (dgram throws a plain Error with that code). Linux gives back
   * a port the kernel picked (bind to port 0, or none): the next send or bind picks a new one.
   * Call it when nothing waits (`await socket.drained()`): a send still queued for the old remote
   * has no destination afterwards.
   */
  disconnect(): void {
    sockopts.disconnect(this.#native, this.#remote !== null);
    this.#remote = null;
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
    return this.#trySend(buildBatch(batch, destination, this.#buildOptions(options, false)), options);
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
    return this.#send(buildBatch(batch, destination, this.#buildOptions(options, false)), options);
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
    return this.#trySend(buildAddressedBatch(data, destinations, this.#buildOptions(options, true)), options);
  }

  /** Sends each message to its own destination; what cannot go now waits (see sendBatch). */
  sendTo(messages: readonly Message[], options?: SendOptions): Promise<SendResult> {
    const { data, destinations } = this.#readMessages(messages);
    return this.#send(buildAddressedBatch(data, destinations, this.#buildOptions(options, true)), options);
  }

  /**
   * Sends every datagram of `batch` to each of `destinations` (fan-out), destination by
   * destination: datagram `d * batchLength + i` of the result is datagram i to destination d.
   * Every copy points at the same memory: nothing is copied. As many as the kernel takes now.
   */
  trySendToMany(batch: BatchInput, destinations: readonly Endpoint[] | DestinationSet,
    options?: SendOptions): SendResult {
    const endpoints = this.#fanOutDestinations(destinations);
    return this.#trySend(buildFanOutBatch(batch, endpoints, this.#buildOptions(options, true)), options);
  }

  /** The fan-out of trySendToMany; what cannot go now waits (see sendBatch). */
  sendToMany(batch: BatchInput, destinations: readonly Endpoint[] | DestinationSet,
    options?: SendOptions): Promise<SendResult> {
    const endpoints = this.#fanOutDestinations(destinations);
    return this.#send(buildFanOutBatch(batch, endpoints, this.#buildOptions(options, true)), options);
  }

  /** The batch send of the BatchSender contract (used by the WSK layer). */
  submit(batch: Batch, onComplete: (completion: SendCompletion) => void): RawSendResult | PendingSend {
    return this.#queue.submit(batch, onComplete);
  }

  #trySend(batch: Batch, options: SendOptions | undefined): SendResult {
    const signal = readSignal(options?.signal, 'options.signal');
    if (signal?.aborted) throw abortError(signal, undefined, this.#stoppedAt(batch, 0));
    const result = this.#queue.trySend(batch);
    if (result.errno !== 0 && !result.wouldBlock) {
      throw new WskError(result.errno, result.syscall, result, this.#stoppedAt(batch, result));
    }
    return this.#result(batch, result);
  }

  #send(batch: Batch, options: SendOptions | undefined): Promise<SendResult> {
    const signal = readSignal(options?.signal, 'options.signal');
    if (signal?.aborted) return Promise.reject(abortError(signal, undefined, this.#stoppedAt(batch, 0)));
    return new Promise((resolve, reject) => {
      let aborted = false;
      let removeListener = (): void => undefined;
      const settle = (result: RawSendResult | SendCompletion): void => {
        removeListener();
        const where = this.#stoppedAt(batch, result);
        if ('cancelled' in result && result.cancelled) {
          reject(aborted ? abortError(signal!, result, where)
            : new WskError(os.constants.errno.ECANCELED, result.syscall || 'close', result, where));
        } else if (result.errno !== 0) {
          reject(new WskError(result.errno, result.syscall, result, where));
        } else {
          resolve(this.#result(batch, result));
        }
      };
      const submitted = this.#queue.submit(batch, settle);
      if (!('pending' in submitted)) settle(submitted);
      else {
        removeListener = onAbort(signal, () => {
          aborted = true;
          submitted.cancel();
        });
      }
    });
  }

  /** The destination of the datagram a send stopped at (the first not processed). */
  #stoppedAt(batch: Batch, result: RawSendResult | 0): { address?: string; port?: number } {
    const index = result === 0 ? 0 : result.datagrams + result.failures.length;
    return destinationAt(batch, index, this.#remote);
  }

  #result(batch: Batch, result: RawSendResult): SendResult {
    return sendResult(batch, result.datagrams, result.bytes, result.segments, result.failures);
  }

  #buildOptions(options: SendOptions | undefined, manyDestinations: boolean): {
    family: 4 | 6; segment: boolean; continueOnError: boolean; controls: NativeControls | undefined;
  } {
    if (options === undefined) {
      return { family: this.family, segment: this.#gso, continueOnError: manyDestinations, controls: undefined };
    }
    checkOptionNames(options, SEND_OPTION_NAMES, 'send');
    // Each field once: a getter cannot answer one thing to the check and another to the send.
    const gso: unknown = options.gso;
    const segment = gso === undefined ? this.#gso : gso;
    if (typeof segment !== 'boolean') throw new TypeError('options.gso must be a boolean');
    const continueOnError: unknown = options.continueOnError ?? manyDestinations;
    if (typeof continueOnError !== 'boolean') throw new TypeError('options.continueOnError must be a boolean');
    return { family: this.family, segment, continueOnError, controls: nativeControls(options, this.family, this.#dualStack) };
  }

  /** Reads each message once into datagrams and checked destinations. */
  #readMessages(messages: unknown): { data: Datagram[]; destinations: Destination[] } {
    if (!Array.isArray(messages)) throw new TypeError('messages must be an array of { data, port, address }');
    this.#requireUnconnected();
    return readMessages(this.#addresses, this.family, messages) as { data: Datagram[]; destinations: Destination[] };
  }


  /**
   * Checks and encodes `destinations` once, for the fan-out calls to take in place of the array
   * on every call after: sending to the same peers again parses nothing. TypeError/RangeError
   * name the bad entry.
   */
  prepareDestinations(destinations: readonly Endpoint[]): DestinationSet {
    return new DestinationSet(this.family, readEndpoints(this.#addresses, this.family, destinations));
  }

  /** The fan-out destinations of a call: a prepared set as it is, an array read and checked. */
  #fanOutDestinations(destinations: unknown): Destination[] | DestinationSet {
    this.#requireUnconnected();
    return destinations instanceof DestinationSet ? destinations : readEndpoints(this.#addresses, this.family, destinations);
  }

  #requireUnconnected(): void {
    if (this.#remote !== null) throw new TypeError('the socket is connected: send to its remote with sendBatch');
  }

  /**
   * Asks the kernel to report, with every received datagram, the address it was sent to, its
   * TOS / traffic class and its TTL / hop limit; with `gro`, to coalesce datagrams of one flow
   * (UDP_GRO), each batch entry then carrying its `segmentSize`. Linux only.
   */
  enableReceiveInfo(infoOptions: { gro?: boolean } = {}): void {
    checkOptionNames(infoOptions, RECEIVE_INFO_OPTION_NAMES, 'enableReceiveInfo');
    const gro: unknown = infoOptions.gro ?? false;
    if (typeof gro !== 'boolean') throw new TypeError('gro must be a boolean');
    const error = this.#native.enableReceiveInfo(gro);
    if (error !== 0) throw new WskError(error, 'setsockopt');
  }

  /**
   * The ICMP errors this socket's datagrams cause from now on (Linux; elsewhere it never yields),
   * as the 'icmp' event gives them, until the socket closes or the loop breaks. A consumer more
   * than 1024 errors behind loses the oldest. Watching never keeps the process alive by itself.
   * `signal`'s abort ends it: the loop throws the WskError ECANCELED a receive's abort gives
   * (`cause`: the signal's reason), and what was queued is dropped.
   */
  icmpErrors(options: IcmpErrorsOptions = {}): AsyncIterableIterator<IcmpError> {
    checkOptionNames(options, ICMP_ERRORS_OPTION_NAMES, 'icmpErrors');
    const signal = readSignal(options.signal, 'options.signal');
    return this.#icmp.iterator(signal);
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
    this.#setOption(NativeOption.mtuDiscovery, value);
  }

  /** The path MTU discovery mode (see setMtuDiscovery). */
  getMtuDiscovery(): MtuDiscovery {
    const value = this.#getOption(NativeOption.mtuDiscovery);
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
    this.#setOption(NativeOption.dontFragment, on ? 1 : 0);
  }

  /** Whether datagrams leave with "don't fragment" (see setDontFragment). */
  getDontFragment(): boolean {
    return this.#getOption(NativeOption.dontFragment) !== 0;
  }

  /**
   * The path MTU the kernel knows for the connected remote (Linux IP_MTU / IPV6_MTU; Windows
   * the same options): lowered by an ICMP "fragmentation needed" / "packet too big". Throws a
   * WskError ENOTCONN on a socket that is not connected.
   */
  getMtu(): number {
    return this.#getOption(NativeOption.mtu);
  }

  #setOption(option: NativeOptionNumber, value: number): void {
    const error = this.#native.setOption(option, value);
    if (error !== 0) throw new WskError(error, 'setsockopt');
  }

  #getOption(option: NativeOptionNumber): number {
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
    this.#messages.stop();
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
