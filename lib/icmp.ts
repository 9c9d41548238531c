/**
 * What the network says back: the ICMP errors a socket's datagrams cause (Linux IP_RECVERR /
 * IPV6_RECVERR and the socket's error queue, native/error_queue.h), as `'icmp'` events and an
 * async iterator, and the path MTU options. The native side reads the kernel's queue (so that
 * it never starves receives) and keeps what it read in a bounded ring; this module turns the
 * ring into events while someone watches.
 *
 * Platforms: Linux only for the errors. Elsewhere no 'icmp' event ever fires and the counters
 * stay 0 (Windows turns the ICMP resets of later receives off instead: docs/api.md).
 */
import type { EventEmitter } from 'node:events';
import { abortError, onAbort } from './abort';
import type { NativeAddress, NativeUdpSocket } from './binding';
import { toAddressInfo } from './receive';
import { ntStatusFromOsError, osErrorName } from './wsk/wsa';
import type { NTSTATUS } from './wsk/ntstatus';

/**
 * What kind of ICMP error it was. IPv4 "fragmentation needed" and ICMPv6 "packet too big" both
 * carry the path's MTU (`mtu`). 'prohibited': administratively prohibited (a firewall, a
 * `prohibit` route). 'other': time exceeded, parameter problem and the rest (see icmpType/icmpCode).
 */
export type IcmpErrorKind =
  | 'port-unreachable'
  | 'host-unreachable'
  | 'net-unreachable'
  | 'fragmentation-needed'
  | 'packet-too-big'
  | 'prohibited'
  | 'other';

/** One ICMP error a datagram of this socket caused (Linux). */
export interface IcmpError {
  readonly kind: IcmpErrorKind;
  /** Where the datagram that caused it was sent: its destination address and port. */
  readonly address: string;
  readonly port: number;
  readonly family: 'IPv4' | 'IPv6';
  /** 'icmp' (IPv4) or 'icmp6'. */
  readonly origin: 'icmp' | 'icmp6';
  /** The ICMP type and code as received (e.g. 3/3: IPv4 port unreachable; 1/4: ICMPv6). */
  readonly icmpType: number;
  readonly icmpCode: number;
  /** The errno the kernel gives it (e.g. 111), its name ("ECONNREFUSED") and NTSTATUS. */
  readonly errno: number;
  readonly code: string;
  readonly status: NTSTATUS;
  /** The address of whoever sent the ICMP (the peer, or a router on the way); null if unknown. */
  readonly offender: string | null;
  /** The next-hop MTU for 'fragmentation-needed' / 'packet-too-big'; null for other kinds. */
  readonly mtu: number | null;
  /** The first bytes (up to 64) of the offending datagram's payload, as the ICMP quoted it. */
  readonly payload: Uint8Array;
}

/** The socket's 'icmp' event and its arguments (for a typed event map). */
export interface IcmpEventMap {
  icmp: [error: IcmpError];
}

/** The socket's ICMP counters (`stats().icmp`), counted natively when read (Linux). */
export interface IcmpStats {
  /** ICMP errors read from the error queue: the sum of the six kinds below. */
  received: number;
  portUnreachable: number;
  hostUnreachable: number;
  netUnreachable: number;
  /** IPv4 "fragmentation needed" and ICMPv6 "packet too big". */
  fragmentationNeeded: number;
  prohibited: number;
  other: number;
  /** Local errors read (a send refused with EMSGSIZE under DF): counted, not events. */
  local: number;
  /** ICMP errors read while 256 already waited to be delivered: counted, not delivered. */
  dropped: number;
}

/** Path MTU discovery modes (Linux IP_MTU_DISCOVER / IPV6_MTU_DISCOVER; see docs/api.md). */
export type MtuDiscovery = 'dont' | 'want' | 'do' | 'probe';

/** MtuDiscovery in the native numbering (Linux's IP_PMTUDISC_*). */
export const MTU_DISCOVERY: Readonly<Record<MtuDiscovery, number>> = { dont: 0, want: 1, do: 2, probe: 3 };

/** One entry of the native ring (native/socket_methods.cc takeErrors). */
export interface NativeIcmpEntry {
  errno: number;
  /** SO_EE_ORIGIN_*: 2 ICMP, 3 ICMPv6. */
  origin: number;
  type: number;
  code: number;
  /** ee_info: the MTU for fragmentation needed / packet too big. */
  info: number;
  /** native/error_queue.h IcmpKind. */
  kind: number;
  destination: NativeAddress | null;
  offender: NativeAddress | null;
  payload: Uint8Array;
}

const KINDS: readonly IcmpErrorKind[] = [
  'other', 'port-unreachable', 'host-unreachable', 'net-unreachable', 'fragmentation-needed', 'prohibited',
];

/** The public form of a native entry. */
export function toIcmpError(entry: NativeIcmpEntry): IcmpError {
  const v6 = entry.origin === 3;
  let kind = KINDS[entry.kind] ?? 'other';
  if (kind === 'fragmentation-needed' && v6) kind = 'packet-too-big';
  const destination = entry.destination === null ? null : toAddressInfo(entry.destination);
  return {
    kind,
    address: destination?.address ?? '',
    port: destination?.port ?? 0,
    family: destination?.family ?? (v6 ? 'IPv6' : 'IPv4'),
    origin: v6 ? 'icmp6' : 'icmp',
    icmpType: entry.type,
    icmpCode: entry.code,
    errno: entry.errno,
    code: osErrorName(entry.errno) ?? `E${entry.errno}`,
    status: ntStatusFromOsError(entry.errno),
    offender: entry.offender === null ? null : toAddressInfo(entry.offender).address,
    mtu: kind === 'fragmentation-needed' || kind === 'packet-too-big' ? entry.info : null,
    payload: entry.payload,
  };
}

/** socket.icmpErrors(options). */
export interface IcmpErrorsOptions {
  /** Ends the iteration: the loop throws a WskError ECANCELED whose `cause` is the reason. */
  signal?: AbortSignal;
}

/** Most errors an iterator holds for a slow consumer; older ones are dropped first. */
export const ICMP_ITERATOR_LIMIT = 1024;

/** `socket.icmpErrors()`: the ICMP errors from now on, until the socket closes or the loop ends. */
class IcmpIterator implements AsyncIterableIterator<IcmpError> {
  readonly #queue: IcmpError[] = [];
  #waiting: { resolve: (result: IteratorResult<IcmpError>) => void; reject: (error: Error) => void } | null = null;
  #done = false;
  /** An abort's error, for the next() that comes after it (given once). */
  #abortError: Error | null = null;
  readonly #onEnd: (iterator: IcmpIterator) => void;
  /** Errors dropped because the consumer was ICMP_ITERATOR_LIMIT behind. */
  dropped = 0;

  constructor(onEnd: (iterator: IcmpIterator) => void) {
    this.#onEnd = onEnd;
  }

  push(error: IcmpError): void {
    if (this.#done) return;
    if (this.#waiting !== null) {
      const { resolve } = this.#waiting;
      this.#waiting = null;
      resolve({ value: error, done: false });
      return;
    }
    if (this.#queue.length >= ICMP_ITERATOR_LIMIT) {
      this.#queue.shift();
      this.dropped++;
    }
    this.#queue.push(error);
  }

  /** Ends the iteration: what is queued is still delivered, then done. */
  end(): void {
    if (this.#done) return;
    this.#done = true;
    this.#onEnd(this);
    if (this.#waiting !== null && this.#queue.length === 0) {
      const { resolve } = this.#waiting;
      this.#waiting = null;
      resolve({ value: undefined, done: true });
    }
  }

  /**
   * Ends the iteration at once, as the abort of a receive does: what is queued is dropped and
   * the waiting next() (or else the next one) rejects with `error`; after that, done.
   */
  abort(error: Error): void {
    if (this.#done) return;
    this.#queue.length = 0;
    const waiting = this.#waiting;
    this.#waiting = null;
    this.end();
    if (waiting !== null) waiting.reject(error);
    else this.#abortError = error;
  }

  next(): Promise<IteratorResult<IcmpError>> {
    const value = this.#queue.shift();
    if (value !== undefined) return Promise.resolve({ value, done: false });
    if (this.#abortError !== null) {
      const error = this.#abortError;
      this.#abortError = null;
      return Promise.reject(error);
    }
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    if (this.#waiting !== null) return Promise.reject(new TypeError('next() called again before the last one settled'));
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
    });
  }

  return(): Promise<IteratorResult<IcmpError>> {
    this.#queue.length = 0;
    this.#abortError = null;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<IcmpError> {
    return this;
  }
}

/** What IcmpWatch needs of the native socket. */
export type NativeErrorQueue = Pick<NativeUdpSocket, 'watchErrors' | 'unwatchErrors' | 'takeErrors' | 'errorsPending'>;

/**
 * Delivers a socket's ICMP errors while someone watches ('icmp' listeners, icmpErrors()
 * iterators): the native poll watches for POLLERR only then, and errors the native send or
 * receive read on their way are delivered right after that call (afterCall), from a tick.
 */
export class IcmpWatch {
  readonly #native: NativeErrorQueue;
  readonly #emitter: EventEmitter;
  readonly #iterators = new Set<IcmpIterator>();
  #watching = false;
  #scheduled = false;
  #closed = false;
  readonly #deliver = (): void => {
    this.#scheduled = false;
    this.#take();
  };

  readonly #onNewListener = (event: string | symbol): void => {
    if (event === 'icmp') this.#update(1);
  };
  readonly #onRemoveListener = (event: string | symbol): void => {
    if (event === 'icmp') this.#update(0);
  };

  constructor(native: NativeErrorQueue, emitter: EventEmitter) {
    this.#native = native;
    this.#emitter = emitter;
    this.install();
  }

  /** Watches the emitter's 'icmp' listeners (again, after removeAllListeners()). */
  install(): void {
    const emitter = this.#emitter;
    if (!emitter.listeners('newListener').includes(this.#onNewListener)) emitter.on('newListener', this.#onNewListener);
    if (!emitter.listeners('removeListener').includes(this.#onRemoveListener)) {
      emitter.on('removeListener', this.#onRemoveListener);
    }
    this.#update(0);
  }

  /**
   * A new iterator over the errors from now on; `signal`'s abort ends it, rejecting its waiting
   * (or next) next() with the receive calls' abort error.
   */
  iterator(signal?: AbortSignal): AsyncIterableIterator<IcmpError> {
    let removeAbortListener = (): void => undefined;
    const iterator = new IcmpIterator((it) => {
      removeAbortListener();
      this.#iterators.delete(it);
      this.#update(0);
    });
    if (signal?.aborted) {
      iterator.abort(abortError(signal));
      return iterator;
    }
    if (this.#closed) {
      iterator.end();
      return iterator;
    }
    this.#iterators.add(iterator);
    removeAbortListener = onAbort(signal, () => iterator.abort(abortError(signal!)));
    this.#update(0);
    return iterator;
  }

  /** After a native send or receive: errors it read are delivered from a tick. */
  afterCall(): void {
    if (!this.#watching || this.#scheduled || this.#native.errorsPending === 0) return;
    this.#scheduled = true;
    process.nextTick(this.#deliver);
  }

  /** The socket closed: iterators end, nothing more is delivered. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watching = false;
    for (const iterator of [...this.#iterators]) iterator.end();
  }

  /** Watches while listeners or iterators exist (`adding`: a listener about to be added). */
  #update(adding: number): void {
    if (this.#closed) return;
    const want = this.#emitter.listenerCount('icmp') + adding + this.#iterators.size > 0;
    if (want === this.#watching) return;
    if (want) {
      // EOPNOTSUPP where there is no error queue: then no error ever comes, as documented.
      this.#watching = this.#native.watchErrors(this.#deliver) === 0;
    } else {
      this.#watching = false;
      this.#native.unwatchErrors();
    }
  }

  #take(): void {
    if (!this.#watching) return;
    const entries = this.#native.takeErrors();
    for (const entry of entries) {
      const error = toIcmpError(entry);
      for (const iterator of this.#iterators) iterator.push(error);
      this.#emitter.emit('icmp', error);
    }
  }
}
