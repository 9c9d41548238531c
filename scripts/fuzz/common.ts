/**
 * Small helpers shared by the fuzz targets: outcome names, byte comparison, synchronous sleep,
 * and the per-case budget that turns an endless loop through our own getters into a failure.
 */
import * as os from 'node:os';
import fc from 'fast-check';

export const TARGETS = ['native', 'wsk', 'socket', 'options'] as const;
export type TargetName = (typeof TARGETS)[number];

const ERRNO_NAMES = new Map<number, string>(
  Object.entries(os.constants.errno).map(([name, value]): [number, string] => [value, name]),
);

/** "EBADF" for 9; "errno 1234" for a number without a name. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

export const { EBADF, EAGAIN, EFAULT } = os.constants.errno;

/** Thrown by a property when what it saw breaks the contract. */
export class PropertyFailure extends Error {
  override readonly name = 'PropertyFailure';
  /** False for a failure that shrinking cannot reduce (a check made once per process). */
  shrink = true;
}

export function fail(message: string, options: { shrink?: boolean } = {}): never {
  const failure = new PropertyFailure(message);
  failure.shrink = options.shrink ?? true;
  throw failure;
}

/** A thrown value's `name`, without running anything that could throw again. */
export function errorName(error: unknown): string {
  try {
    if (typeof error === 'object' && error !== null) {
      const name = (error as { name?: unknown }).name;
      return typeof name === 'string' ? name : 'object';
    }
    return typeof error;
  } catch {
    return 'unreadable';
  }
}

export function errorText(error: unknown): string {
  try {
    if (error instanceof Error) return `${error.name}: ${error.message}`;
    if (typeof error === 'object' && error !== null) {
      const { name, message } = error as { name?: unknown; message?: unknown };
      if (typeof message === 'string') return `${String(name)}: ${message}`;
    }
    return String(error);
  } catch {
    return 'unprintable value';
  }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Blocks the thread for `ms` (the synchronous targets wait for a late datagram this way). */
export function sleepSync(ms: number): void {
  Atomics.wait(sleeper, 0, 0, ms);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const part of parts) total += part.byteLength;
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function hexHead(bytes: Uint8Array, max = 12): string {
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, max)).toString('hex');
  return `${bytes.byteLength} B ${head}${bytes.byteLength > max ? '...' : ''}`;
}

/**
 * Compares what a receiver got with what it should have got, datagram by datagram; returns a
 * description of the first difference, or null.
 */
export function compareDatagrams(got: readonly Uint8Array[], want: readonly Uint8Array[], where: string): string | null {
  const n = Math.min(got.length, want.length);
  for (let i = 0; i < n; i++) {
    const g = got[i] as Uint8Array;
    const w = want[i] as Uint8Array;
    if (!sameBytes(g, w)) return `${where}: datagram ${i} is ${hexHead(g)}, expected ${hexHead(w)}`;
  }
  if (got.length > want.length) {
    return `${where}: ${got.length} datagrams arrived, expected ${want.length}; extra: ${hexHead(got[want.length] as Uint8Array)}`;
  }
  if (got.length < want.length) {
    return `${where}: ${got.length} datagrams arrived, expected ${want.length}; missing: ${hexHead(want[got.length] as Uint8Array)}`;
  }
  return null;
}

/** What arrives for `datagrams` sent with an explicit segment size: each longer one split. */
export function segmented(datagrams: readonly Uint8Array[], segmentSize: number | undefined): Uint8Array[] {
  if (segmentSize === undefined || segmentSize <= 0) return [...datagrams];
  const out: Uint8Array[] = [];
  for (const d of datagrams) {
    if (d.byteLength <= segmentSize) {
      out.push(d);
      continue;
    }
    for (let at = 0; at < d.byteLength; at += segmentSize) out.push(d.subarray(at, Math.min(d.byteLength, at + segmentSize)));
  }
  return out;
}

/** Receive-buffer space one datagram of `length` bytes takes on loopback (measured, rounded up). */
export function truesize(length: number): number {
  if (length <= 200) return 1024;
  if (length <= 1500) return 2560;
  return length + 6144;
}

/**
 * The most receive-buffer space the datagrams of one case may take before the receiver drains:
 * below the default SO_RCVBUF (212992) so that loopback never drops (the kernel admits one
 * datagram past the limit, but not more).
 */
export const RECEIVE_BUDGET = 160 * 1024;

/**
 * Every getter the fuzzers install counts its reads against this budget; past it, the getter
 * throws. A call that loops through our objects forever (cycle checks fooled) is stopped there
 * and reported, instead of hanging the run.
 */
export class ReadBudget {
  reads = 0;
  exceeded = false;
  constructor(readonly limit: number) {}

  reset(): void {
    this.reads = 0;
    this.exceeded = false;
  }

  tick(): void {
    if (++this.reads > this.limit) {
      this.exceeded = true;
      throw new StepBoundError(`more than ${this.limit} property reads in one case`);
    }
  }
}

export class StepBoundError extends Error {
  override readonly name = 'StepBoundError';
}

/** The error our own getters throw on purpose, so that its propagation can be recognised. */
export class GetterError extends Error {
  override readonly name = 'GetterError';
}

/** Makes a spec print short in counterexamples (fc.stringify). */
export function printable<T extends object>(value: T, text: string): T {
  Object.defineProperty(value, Symbol.for('fast-check/toStringMethod'), { value: () => text, enumerable: false });
  return value;
}

/**
 * Exceptions that reached the event loop (a throwing callback, a completion routine rethrown on
 * nextTick). The child installs the listener; async targets take them at the end of each case:
 * one the case did not throw on purpose is a failure of that case.
 */
const uncaught: unknown[] = [];

export function collectUncaught(): void {
  process.on('uncaughtException', (error) => {
    uncaught.push(error);
  });
}

export function takeUncaught(): unknown[] {
  return uncaught.splice(0);
}

/** Lets the event loop turn once (setTimeout(0) would wait a whole millisecond). */
export function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Resolves with `promise`'s value, or with `fallback` after `ms`; the timer never outlives it. */
export async function within<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<F>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** `arbitrary` one time in `oneIn`, null otherwise (fc.option's freq is the other way round). */
export function rarely<T>(arbitrary: fc.Arbitrary<T>, oneIn: number): fc.Arbitrary<T | null> {
  return fc.oneof({ weight: oneIn - 1, arbitrary: fc.constant(null) }, { weight: 1, arbitrary });
}

/**
 * `got` without one occurrence of each of `take` (by bytes), or null when one is missing. On the
 * slow lane the kernel may deliver out of order: the shaping qdisc releases packets from
 * whichever CPU runs it, into that CPU's backlog, and two backlogs drain independently.
 */
export function withoutEach(got: readonly Uint8Array[], take: readonly Uint8Array[]): Uint8Array[] | null {
  const rest = [...got];
  for (const t of take) {
    const at = rest.findIndex((g) => sameBytes(g, t));
    if (at < 0) return null;
    rest.splice(at, 1);
  }
  return rest;
}

/** The same datagrams, in any order. */
export function sameMultiset(got: readonly Uint8Array[], want: readonly Uint8Array[]): boolean {
  return got.length === want.length && withoutEach(got, want)?.length === 0;
}

/**
 * Errors the fuzzers throw on purpose (from getters and completion routines). One may reach the
 * event loop after its case ended (a routine rethrown on nextTick by a completion in cleanup), so
 * they are recognised globally, not per case.
 */
const ownErrors = new WeakSet<object>();

export function ownError<T extends object>(error: T): T {
  ownErrors.add(error);
  return error;
}

export function isOwnError(error: unknown): boolean {
  return typeof error === 'object' && error !== null && ownErrors.has(error);
}

/**
 * Runs a case body, then its cleanup (closing the case's sockets completes what still waits),
 * then fails if that cleanup let an exception (not one of ours) reach the event loop. A failure
 * of the body wins.
 */
export async function withCleanup<T>(body: () => Promise<T>, cleanup: () => void): Promise<T> {
  let result: T;
  try {
    result = await body();
  } finally {
    cleanup();
  }
  await turn();
  for (const error of takeUncaught()) {
    if (!isOwnError(error)) fail(`an exception reached the event loop while the case closed its socket: ${errorText(error)}`);
  }
  return result;
}
