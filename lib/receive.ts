/**
 * The batched receiver: recvmmsg into a caller's arena (no copy per datagram), each datagram
 * with its source, destination address, TOS/traffic class, TTL/hop limit and GRO segment size.
 * It is what the tests use to see what reached the wire. Waiting uses the socket's uv_poll.
 */
import * as os from 'node:os';
import type { NativeAddress, NativeUdpSocket } from './binding';
import { abortError, onAbort, readSignal } from './abort';
import { WskError } from './errors';
import { checkOptionNames, RECEIVE_OPTION_NAMES } from './option-names';

/** An address as Node's dgram reports it. */
export interface AddressInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

export function toAddressInfo(native: NativeAddress): AddressInfo {
  const scope = native.family === 6 && native.scopeId !== 0 ? `%${native.scopeId}` : '';
  return {
    address: native.address + scope,
    family: native.family === 6 ? 'IPv6' : 'IPv4',
    port: native.port,
  };
}

export interface ReceivedDatagram {
  /** The bytes: a view into the arena, valid until the arena is used for the next receive. */
  data: Uint8Array;
  /** The datagram was longer than its slot; `data` holds its first slotSize bytes. */
  truncated: boolean;
  source: AddressInfo;
  /** The address it was sent to (IP_PKTINFO / IPV6_PKTINFO), once enableReceiveInfo() ran. */
  destination: string | null;
  /** The interface it arrived on (0 when not reported). */
  interfaceIndex: number;
  /** TOS / traffic-class byte, ECN bits included, or null when not reported. */
  tos: number | null;
  /** ECN codepoint (low two bits of tos), or null. */
  ecn: number | null;
  /** TTL / hop limit, or null when not reported. */
  ttl: number | null;
  /** With GRO: the size of the datagrams coalesced into `data` (0: not coalesced). */
  segmentSize: number;
}

export interface ReceiveOptions {
  /** Most datagrams per call (1..1024, default 64). */
  maxDatagrams?: number;
  /** Bytes per datagram slot (default 65535: nothing is truncated, GRO chunks fit). */
  slotSize?: number;
  /** Where the bytes land: at least maxDatagrams * slotSize bytes. Default: one per socket. */
  arena?: Uint8Array;
  /** Resolve with [] if nothing arrives within this many ms (default: wait until close). */
  timeoutMs?: number;
  /**
   * Abort the wait: the receive rejects with a WskError of code ECANCELED (`cause`:
   * `signal.reason`) and reads nothing, so no datagram is lost; the socket stays usable.
   */
  signal?: AbortSignal;
}

/** One receiveBatch call until it settles. */
interface ReceiveRequest {
  /** Resolved, rejected or aborted: its read must not run (again). */
  settled: boolean;
  resolve(datagrams: ReceivedDatagram[]): void;
  reject(error: unknown): void;
}

const { EAGAIN, EWOULDBLOCK } = os.constants.errno;

/** What the reader needs of the native socket. */
export type NativeReceiver = Pick<NativeUdpSocket, 'receive' | 'startReading' | 'stopReading'>;

export class DatagramReader {
  readonly #native: NativeReceiver;
  #arena: Uint8Array | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  /** Ends the current wait for readability (close, abort). */
  #wake: (() => void) | null = null;
  /** The timeout timer of the current wait, which follows the socket's ref()/unref(). */
  #timer: NodeJS.Timeout | undefined = undefined;
  #ref = true;
  #closed = false;

  constructor(native: NativeReceiver) {
    this.#native = native;
  }

  /** Whether a waiting receive keeps the process alive (the socket's ref()/unref()). */
  setRef(ref: boolean): void {
    this.#ref = ref;
    if (ref) this.#timer?.ref();
    else this.#timer?.unref();
  }

  /** Reads a batch: at least one datagram, unless the timeout passes or the socket closes. */
  receiveBatch(options: ReceiveOptions = {}): Promise<ReceivedDatagram[]> {
    checkOptionNames(options, RECEIVE_OPTION_NAMES, 'receive');
    // Each field once: a getter cannot answer the check one thing and the receive another.
    const { maxDatagrams: max, slotSize: slot, timeoutMs: timeout, arena: given, signal: givenSignal } = options;
    const maxDatagrams = integer(max ?? 64, 'maxDatagrams', 1, 1024);
    const slotSize = integer(slot ?? 65535, 'slotSize', 1, 1 << 20);
    const timeoutMs = timeout === undefined ? undefined : integer(timeout, 'timeoutMs', 0, 2 ** 31 - 1);
    const signal = readSignal(givenSignal, 'options.signal');
    let arena = given as unknown;
    if (arena !== undefined && !(arena instanceof Uint8Array)) throw new TypeError('arena must be a Uint8Array');
    if (arena !== undefined && arena.byteLength < maxDatagrams * slotSize) {
      throw new RangeError(`arena has ${arena.byteLength} bytes; maxDatagrams * slotSize needs ${maxDatagrams * slotSize}`);
    }
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (arena === undefined) {
      if (this.#arena === null || this.#arena.byteLength < maxDatagrams * slotSize) {
        this.#arena = new Uint8Array(maxDatagrams * slotSize);
      }
      arena = this.#arena;
    }
    const target = arena as Uint8Array;
    return new Promise((resolve, reject) => {
      // Settled synchronously by whichever comes first: the read that took datagrams, an
      // error, or the abort. An aborted request never reads, so no datagram is taken and lost.
      let running = false;
      let removeListener = (): void => undefined;
      const request: ReceiveRequest = {
        settled: false,
        resolve: (datagrams) => settle() && resolve(datagrams),
        reject: (error) => settle() && reject(error),
      };
      const settle = (): boolean => {
        if (request.settled) return false;
        request.settled = true;
        removeListener();
        return true;
      };
      removeListener = onAbort(signal, () => {
        if (!settle()) return;
        reject(abortError(signal!));
        if (running) this.#wake?.();
      });
      // One receive at a time, in call order.
      this.#queue = this.#queue.then(async () => {
        running = true;
        try {
          await this.#receive(request, target, slotSize, maxDatagrams, timeoutMs);
        } catch (error) {
          request.reject(error);
        } finally {
          running = false;
        }
      });
    });
  }

  /** Ends a waiting receive (with []) and every later one. */
  close(): void {
    this.#closed = true;
    this.#wake?.();
  }

  async #receive(request: ReceiveRequest, arena: Uint8Array, slotSize: number, maxDatagrams: number,
    timeoutMs: number | undefined): Promise<void> {
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    for (;;) {
      if (request.settled) return;
      if (this.#closed) return request.resolve([]);
      const result = this.#native.receive(arena, slotSize, maxDatagrams);
      if (typeof result !== 'number') return request.resolve(result.map((d) => toDatagram(arena, d)));
      if (result !== EAGAIN && result !== EWOULDBLOCK) return request.reject(new WskError(result, 'recvmmsg'));
      const remaining = deadline - Date.now();
      if (remaining <= 0) return request.resolve([]);
      const woke = await this.#waitReadable(remaining);
      if (!woke && !request.settled) return request.resolve([]);
    }
  }

  /** Resolves true when the socket becomes readable, false on timeout, close or abort. */
  #waitReadable(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (readable: boolean): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (this.#timer === timer) this.#timer = undefined;
        this.#wake = null;
        this.#native.stopReading();
        resolve(readable);
      };
      const timer = Number.isFinite(timeoutMs) ? setTimeout(() => finish(false), timeoutMs) : undefined;
      if (timer !== undefined && !this.#ref) timer.unref();
      this.#timer = timer;
      this.#wake = () => finish(false);
      const error = this.#native.startReading(() => finish(true));
      if (error !== 0) finish(true); // the next receive reports the error
    });
  }
}

function integer(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new TypeError(`${name} must be an integer`);
  if (value < min || value > max) throw new RangeError(`${name} must be from ${min} to ${max}, got ${value}`);
  return value;
}

function toDatagram(arena: Uint8Array, native: {
  offset: number; length: number; truncated: boolean; source: NativeAddress | number;
  destination?: string; interfaceIndex: number; tos: number; ttl: number; segmentSize: number;
}): ReceivedDatagram {
  const source = typeof native.source === 'number'
    ? { address: '', family: 'IPv4' as const, port: 0 }
    : toAddressInfo(native.source);
  return {
    data: arena.subarray(native.offset, native.offset + native.length),
    truncated: native.truncated,
    source,
    destination: native.destination ?? null,
    interfaceIndex: native.interfaceIndex,
    tos: native.tos < 0 ? null : native.tos,
    ecn: native.tos < 0 ? null : native.tos & 3,
    ttl: native.ttl < 0 ? null : native.ttl,
    segmentSize: native.segmentSize,
  };
}
