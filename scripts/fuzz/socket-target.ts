/**
 * Target "socket": the idiomatic API (lib/socket.ts). A case makes a socket (odd options
 * included), maybe connects it, then runs a few operations: trySendBatch and sendBatch with
 * whole datagrams or pieces, per-call options, odd destinations, getters on the datagrams array
 * that close the socket, detach or shrink a buffer or throw on their first, second or later
 * read (the later ones run inside the queue's flush), mutations of a pending batch's buffers,
 * close mid-flight, calls after close. On the slow lane sends go pending. Rarely, a case starts
 * a worker that sends in a loop and terminates it.
 *
 * Property: every call returns or settles with a result, or fails with a WskError (name
 * 'WskError', with a code) or a TypeError/RangeError (or our getter's own error); every promise
 * settles; what each call says went out arrived at the receiver byte for byte as described
 * before the call, in call order, and nothing else; after close nothing is pending, `gso`
 * reads false, and later sends fail with EBADF; no exception reaches the event loop.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { createSocket, type Datagram, type SendOptions, type UdpSocket } from '../../lib/socket';
import { bufSpecArb, makeBuffer, type BufKind, type BufSpec, type MadeBuffer } from './buffers';
import {
  compareDatagrams, concatBytes, errorName, errorText, fail, GetterError, sameMultiset, segmented, sleep,
  takeUncaught, turn, within,
  rarely,
  isOwnError, ownError, withCleanup,
} from './common';
import type { TargetDefinition } from './harness';
import { FAST_V4, FAST_V6, fillerDatagrams, Receiver, SLOW_V4 } from './loopback';


type GetterAction = 'none' | 'close' | 'detach' | 'shrink' | 'throwOwn' | 'throwType';
/** `when`: the read that acts (1: the JS check, 2: the first native send, 3+: flushes). */
interface GetterSpec { when: 1 | 2 | 3 | 4 | 'every'; action: GetterAction; target: number; keep: number }
interface DgSpec { shape: 'whole' | 'pieces' | 'garbage'; parts: BufSpec[]; getter: GetterSpec | null }
type DestKind = 'rx' | 'omit' | 'portOnly' | 'badPort' | 'badAddress' | 'otherFamily' | 'unroutable';
interface OptSpec { present: boolean; fields: Partial<Record<keyof SendOptions, unknown>> }
type OpSpec =
  | { kind: 'try' | 'send'; datagrams: DgSpec[]; dest: DestKind; options: OptSpec; notArray: boolean }
  | { kind: 'close' }
  | { kind: 'mutate'; op: number; part: number; action: 'detach' | 'shrink'; keep: number }
  | { kind: 'await' }
  | { kind: 'tick' }
  | { kind: 'gso'; value: unknown };

interface SocketCase {
  type: 'udp4' | 'udp6';
  lane: 'fast' | 'slow';
  /** On the slow lane: a batch sent first, so that the fuzzed sends queue behind it. */
  filler: boolean;
  sendBufferSize: unknown;
  gso: unknown;
  connect: 'none' | 'rx' | 'bad';
  ops: OpSpec[];
  worker: { delayMs: number } | null;
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

const kinds: fc.Arbitrary<BufKind> = fc.oneof(
  { weight: 30, arbitrary: fc.constantFrom<BufKind>('u8', 'buffer', 'view') },
  { weight: 8, arbitrary: fc.constantFrom<BufKind>('rab', 'rabTrack', 'sab', 'pooled', 'subclass') },
  { weight: 1, arbitrary: fc.constantFrom<BufKind>('detached', 'rabOob', 'u16', 'arraybuffer', 'plainArray', 'string') },
);
const partArb = bufSpecArb({ maxLength: 1200, kinds, bigWeight: 2 });
const getterArb: fc.Arbitrary<GetterSpec> = fc.record({
  when: fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom<GetterSpec['when']>(1, 2) },
    { weight: 1, arbitrary: fc.constantFrom<GetterSpec['when']>(3, 4, 'every') },
  ),
  action: fc.oneof(
    { weight: 2, arbitrary: fc.constantFrom<GetterAction>('close', 'detach', 'shrink') },
    { weight: 1, arbitrary: fc.constantFrom<GetterAction>('none', 'throwOwn', 'throwType') },
  ),
  target: fc.nat(7),
  keep: fc.nat(30),
});
const dgArb: fc.Arbitrary<DgSpec> = fc.record({
  shape: fc.oneof(
    { weight: 14, arbitrary: fc.constant('whole' as const) },
    { weight: 5, arbitrary: fc.constant('pieces' as const) },
    { weight: 1, arbitrary: fc.constant('garbage' as const) },
  ),
  parts: fc.array(partArb, { minLength: 1, maxLength: 3 }),
  getter: rarely(getterArb, 5),
});
const optionValue: Record<keyof SendOptions, fc.Arbitrary<unknown>> = {
  gso: fc.oneof({ weight: 8, arbitrary: fc.boolean() }, { weight: 1, arbitrary: fc.constantFrom<unknown>(1, 'yes', null) }),
  tos: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: 255 }) }, { weight: 1, arbitrary: fc.constantFrom<unknown>(256, -1, 1.5, '1') }),
  ecn: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 0, max: 3 }) }, { weight: 1, arbitrary: fc.constantFrom<unknown>(4, -1) }),
  ttl: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: 255 }) }, { weight: 1, arbitrary: fc.constantFrom<unknown>(0, 256) }),
  segmentSize: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 16, max: 1400 }) }, { weight: 1, arbitrary: fc.constantFrom<unknown>(0, 65528, 1.5) }),
  sourceAddress: fc.oneof({ weight: 8, arbitrary: fc.constant('source') }, { weight: 1, arbitrary: fc.constantFrom<unknown>('1.2.3', '198.18.0.9', 7) }),
  interfaceIndex: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(0, 1) }, { weight: 1, arbitrary: fc.constantFrom<unknown>(2, -1, 2 ** 32) }),
  continueOnError: fc.oneof({ weight: 8, arbitrary: fc.boolean() }, { weight: 1, arbitrary: fc.constantFrom<unknown>(1, 'no', null) }),
};
const optArb: fc.Arbitrary<OptSpec> = fc.record({
  present: fc.boolean(),
  fields: fc.record(optionValue, { requiredKeys: [] }),
});
const opArb: fc.Arbitrary<OpSpec> = fc.oneof(
  { weight: 20, arbitrary: fc.record({
    kind: fc.constantFrom('try' as const, 'send' as const, 'send' as const),
    datagrams: fc.array(dgArb, { maxLength: 10 }),
    dest: fc.oneof(
      { weight: 20, arbitrary: fc.constant<DestKind>('rx') },
      { weight: 2, arbitrary: fc.constantFrom<DestKind>('omit', 'portOnly') },
      { weight: 1, arbitrary: fc.constantFrom<DestKind>('badPort', 'badAddress', 'otherFamily', 'unroutable') },
    ),
    options: optArb,
    notArray: fc.oneof({ weight: 40, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('close' as const) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('mutate' as const), op: fc.nat(4), part: fc.nat(8),
    action: fc.constantFrom('detach' as const, 'shrink' as const), keep: fc.nat(30) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constantFrom('await' as const, 'tick' as const) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('gso' as const), value: fc.constantFrom<unknown>(true, false, 1) }) },
);
const caseArb: fc.Arbitrary<SocketCase> = fc.record({
  type: fc.oneof({ weight: 4, arbitrary: fc.constant('udp4' as const) }, { weight: 1, arbitrary: fc.constant('udp6' as const) }),
  lane: fc.oneof({ weight: 1, arbitrary: fc.constant('fast' as const) }, { weight: 1, arbitrary: fc.constant('slow' as const) }),
  filler: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  sendBufferSize: fc.oneof(
    { weight: 10, arbitrary: fc.constant(undefined) },
    { weight: 6, arbitrary: fc.constantFrom<unknown>(1, 2048, 8192) },
    { weight: 1, arbitrary: fc.constantFrom<unknown>(0, -1, 1.5, 2 ** 31, '1') },
  ),
  gso: fc.oneof({ weight: 10, arbitrary: fc.constantFrom<unknown>(undefined, true, false) }, { weight: 1, arbitrary: fc.constantFrom<unknown>(1, 'no') }),
  connect: fc.oneof({ weight: 8, arbitrary: fc.constant('none' as const) }, { weight: 2, arbitrary: fc.constant('rx' as const) }, { weight: 1, arbitrary: fc.constant('bad' as const) }),
  ops: fc.array(opArb, { minLength: 1, maxLength: 5 }),
  worker: rarely(fc.record({ delayMs: fc.integer({ min: 0, max: 5 }) }), 400),
});

// ---------------------------------------------------------------------------------------------

export interface SocketTargetOptions {
  isolated: boolean;
  ipv6: boolean;
  exclude: ReadonlySet<string>;
}

export function socketTarget(options: SocketTargetOptions): TargetDefinition<SocketCase> {
  const figures: Record<string, number> = {
    'send calls': 0, pending: 0, 'datagrams verified': 0, 'bytes verified': 0, 'worker terminations': 0,
  };
  const bump = (key: string, by = 1): void => {
    figures[key] = (figures[key] ?? 0) + by;
  };
  const arbitrary = caseArb.map((c): SocketCase => {
    let out = c;
    if (!options.ipv6 || (out.type === 'udp6' && out.lane === 'slow')) out = { ...out, type: 'udp4' };
    if (!options.isolated) {
      out = { ...out, lane: 'fast', ops: out.ops.map((op) => ('dest' in op && op.dest === 'unroutable' ? { ...op, dest: 'badAddress' } : op)) };
    }
    if (options.exclude.has('terminate')) out = { ...out, worker: null };
    // A worker case runs nothing else: keep its counterexample short.
    if (out.worker !== null) out = { ...out, lane: 'fast', filler: false, ops: [] };
    return out;
  });
  return {
    name: 'socket',
    arbitrary,
    async: true,
    kindOf: (c) => (c.worker !== null ? 'socket-terminate' : `socket-${c.lane}`),
    run: (c) => (c.worker !== null ? runWorker(c.worker.delayMs, bump) : runCase(c, bump)),
    figures: () => ({ ...figures }),
  };
}

async function runWorker(delayMs: number, bump: (key: string, by?: number) => void): Promise<string> {
  bump('worker terminations');
  const worker = new Worker(path.join(__dirname, 'send-worker.js'), {
    workerData: { address: '127.0.0.3', port: 9, lifetimeMs: 3000 },
  });
  try {
    const running = await within(Promise.race([
      new Promise<boolean>((resolve) => worker.once('message', () => resolve(true))),
      new Promise<boolean>((resolve) => worker.once('exit', () => resolve(false))),
    ]), 5000, false);
    if (!running) fail('the sending worker did not start');
    await sleep(delayMs);
    const ended = await within(worker.terminate().then(() => true), 5000, false);
    if (!ended) fail('worker.terminate() did not finish within 5 s');
  } finally {
    await worker.terminate();
  }
  return 'worker terminated';
}

interface Op {
  spec: Extract<OpSpec, { kind: 'try' | 'send' }>;
  parts: MadeBuffer[][];
  /** The datagrams as described before the call. */
  expected: Uint8Array[];
  reaches: boolean;
  segmentSize: number | undefined;
  afterClose: boolean;
  /** Datagrams the call says went out; null until known. */
  sent: number | null;
  /** Indices the call says were refused for their destination (continueOnError). */
  refused: ReadonlySet<number>;
  outcome: string;
  settled: Promise<void> | null;
}

async function runCase(c: SocketCase, bump: (key: string, by?: number) => void): Promise<string> {
  takeUncaught();
  const family = c.type === 'udp6' ? 6 : 4;
  const receiver = new Receiver(c.lane === 'slow' ? SLOW_V4 : family === 6 ? FAST_V6 : FAST_V4, family);
  let socket: UdpSocket | null = null;
  return withCleanup(async () => {
    const options: Record<string, unknown> = { type: c.type };
    const size = c.lane === 'slow' && c.sendBufferSize === undefined ? 1 : c.sendBufferSize;
    if (size !== undefined) options.sendBufferSize = size;
    if (c.gso !== undefined) options.gso = c.gso;
    try {
      socket = createSocket(options as never);
    } catch (error) {
      const name = errorName(error);
      if (name !== 'TypeError' && name !== 'RangeError') fail(`createSocket threw ${errorText(error)}`);
      return `createSocket ${name}`;
    }
    return runOps(c, socket, receiver, bump);
  }, () => {
    socket?.close();
    receiver.close();
  });
}

async function runOps(c: SocketCase, socket: UdpSocket, receiver: Receiver,
  bump: (key: string, by?: number) => void): Promise<string> {
  const family = c.type === 'udp6' ? 6 : 4;
  const ownErrors = new Set<unknown>();
  let connected = false;
  if (c.connect !== 'none') {
    try {
      if (c.connect === 'rx') socket.connect(receiver.port, receiver.address);
      else socket.connect(0, receiver.address);
      connected = c.connect === 'rx';
    } catch (error) {
      const name = errorName(error);
      if (c.connect === 'rx' || (name !== 'TypeError' && name !== 'RangeError')) fail(`connect threw ${errorText(error)}`);
    }
  }
  const ops: Op[] = [];
  let closed = false;
  const outcomes: string[] = [];
  if (c.lane === 'slow' && c.filler) {
    const filler = fillerDatagrams();
    const spec: Extract<OpSpec, { kind: 'try' | 'send' }> = {
      kind: 'send', datagrams: [], dest: connected ? 'omit' : 'rx', options: { present: false, fields: {} }, notArray: false,
    };
    const op: Op = { spec, parts: [], expected: filler, reaches: true, segmentSize: undefined, afterClose: false, sent: null,
      refused: new Set(), outcome: '', settled: null };
    const promise = connected ? socket.sendBatch(filler) : socket.sendBatch(filler, receiver.port, receiver.address);
    op.settled = promise.then(
      (r) => {
        if (r.datagrams !== filler.length) fail(`the filler batch resolved with ${r.datagrams} datagrams`);
        op.sent = r.datagrams;
      },
      (error: unknown) => {
        const e = error as { name?: unknown; datagramsSent?: unknown };
        if (e.name !== 'WskError' || typeof e.datagramsSent !== 'number') fail(`the filler batch failed: ${errorText(error)}`);
        op.sent = e.datagramsSent;
      },
    );
    op.settled.catch(() => undefined);
    ops.push(op);
  }

  for (const spec of c.ops) {
    switch (spec.kind) {
      case 'close':
        socket.close();
        closed = true;
        if (socket.pendingRequests !== 0 || socket.pendingDatagrams !== 0 || socket.pendingBytes !== 0) {
          fail(`after close: ${socket.pendingRequests} requests, ${socket.pendingDatagrams} datagrams still pending`);
        }
        continue;
      case 'mutate': {
        const op = ops[spec.op % Math.max(ops.length, 1)];
        const flat = op?.parts.flat() ?? [];
        const target = flat[spec.part % Math.max(flat.length, 1)];
        if (spec.action === 'detach') target?.detach();
        else target?.shrink(spec.keep);
        continue;
      }
      case 'await':
        await settleAll(ops, receiver);
        continue;
      case 'tick':
        await sleep(1);
        continue;
      case 'gso':
        try {
          (socket as { gso: unknown }).gso = spec.value;
        } catch (error) {
          if (errorName(error) !== 'TypeError') fail(`setting gso threw ${errorText(error)}`);
        }
        continue;
      default:
        ops.push(startSend(spec, socket, receiver, family, connected, closed, c.lane, ownErrors, bump));
        receiver.poll();
    }
  }
  await settleAll(ops, receiver);
  for (const op of ops) if (op.spec.datagrams.length > 0 || op.parts.length > 0) outcomes.push(op.outcome);

  // What arrived, against what the calls said went out.
  const want: Uint8Array[] = [];
  for (const op of ops) {
    if (op.sent === null) fail(`a ${op.spec.kind} call never settled`);
    if (op.reaches) {
      const processed = op.expected.slice(0, op.sent + op.refused.size).filter((_, i) => !op.refused.has(i));
      want.push(...segmented(processed, op.segmentSize));
    }
  }
  await receiver.wait(want.length, 3000);
  if (c.lane === 'slow') await sleep(3);
  const got = receiver.take();
  const drops = receiver.drops();
  if (drops > 0) fail(`the receiver dropped ${drops} datagrams: the case overflowed its receive buffer`);
  const problem = compareDatagrams(got, want, 'receiver');
  if (problem !== null && c.lane === 'slow' && sameMultiset(got, want)) {
    bump('slow-lane reorderings');
  } else if (problem !== null) {
    fail(problem);
  }
  for (const d of got) {
    bump('datagrams verified');
    bump('bytes verified', d.byteLength);
  }

  for (const error of takeUncaught()) {
    if (!isOwnError(error)) fail(`an exception reached the event loop: ${errorText(error)}`);
  }
  socket.close();
  if (socket.pendingRequests !== 0) fail('requests pending after close');
  const drained = await within(socket.drained().then(() => true), 2000, false);
  if (!drained) fail('drained() did not resolve after close');
  // Checked last, and until it fails once in this process: a known defect that would otherwise
  // fail every case.
  if (!gsoFailedOnce && socket.gso) {
    gsoFailedOnce = true;
    fail('socket.gso reads true on a closed socket', { shrink: false });
  }
  return outcomes[0] ?? 'no send';
}

/** Waits (at most 5 s) for every send to settle, reading the receiver meanwhile so that it never overflows. */
let gsoFailedOnce = false;

async function settleAll(ops: Op[], receiver: Receiver): Promise<void> {
  let settled = false;
  let failure: unknown = null;
  void Promise.all(ops.map((op) => op.settled ?? Promise.resolve())).then(
    () => { settled = true; },
    (error: unknown) => { failure = error; settled = true; },
  );
  const deadline = Date.now() + 5000;
  for (let i = 0; i < 100000 && !settled && Date.now() < deadline; i++) {
    receiver.poll();
    // Settled at once on the fast lane: a turn of the loop is enough then.
    await (i < 3 ? turn() : sleep(1));
  }
  if (failure !== null) throw failure;
  if (!settled) fail('a sendBatch promise did not settle within 5 s');
}

/** Whether `value` is a Uint8Array whose memory is gone now (at() throws only then). */
function memoryGoneNow(value: unknown): boolean {
  if (!(value instanceof Uint8Array)) return false;
  try {
    value.at(0);
    return false;
  } catch {
    return true;
  }
}

function startSend(spec: Extract<OpSpec, { kind: 'try' | 'send' }>, socket: UdpSocket, receiver: Receiver,
  family: 4 | 6, connected: boolean, closed: boolean, lane: 'fast' | 'slow', ownErrors: Set<unknown>,
  bump: (key: string, by?: number) => void): Op {
  bump('send calls');
  // The datagrams, their bytes as described now, and getters on the array.
  const parts = spec.datagrams.map((d) => d.parts.slice(0, d.shape === 'whole' ? 1 : 3).map((p) => makeBuffer(p)));
  const array: unknown[] = [];
  const expected: Uint8Array[] = [];
  // A getter that detaches or shrinks a buffer while the call reads its arguments changes the
  // datagram the caller gives: then what must arrive is what the views hold once the call has
  // read them (a view left without memory must be refused, see below).
  let mutatedInCall = false;
  spec.datagrams.forEach((d, i) => {
    const made = parts[i] as MadeBuffer[];
    const value: unknown = d.shape === 'whole' ? made[0]?.value : d.shape === 'pieces' ? made.map((m) => m.value) : 42;
    expected.push(concatBytes(made.map((m) => m.content)));
    if (d.getter === null) {
      array[i] = value;
      return;
    }
    const g = d.getter;
    let reads = 0;
    Object.defineProperty(array, i, {
      get() {
        reads++;
        if (g.when === 'every' || g.when === reads) {
          const flat = parts.flat();
          const target = flat[g.target % Math.max(flat.length, 1)];
          switch (g.action) {
            case 'none': break;
            case 'close': socket.close(); break;
            case 'detach': mutatedInCall = target?.detach() === true || mutatedInCall; break;
            case 'shrink': mutatedInCall = target?.shrink(g.keep) === true || mutatedInCall; break;
            case 'throwOwn': {
              const error = new GetterError('thrown by a fuzz getter');
              ownErrors.add(ownError(error));
              throw error;
            }
            case 'throwType': {
              const error = new TypeError('thrown by a fuzz getter');
              ownErrors.add(ownError(error));
              throw error;
            }
          }
        }
        return value;
      },
      enumerable: true,
      configurable: true,
    });
  });
  const datagrams: unknown = spec.notArray ? { length: array.length } : array;

  // Destination.
  let port: unknown;
  let address: unknown;
  let reaches = false;
  switch (spec.dest) {
    case 'rx': port = receiver.port; address = receiver.address; reaches = !connected; break;
    case 'omit': reaches = connected; break;
    case 'portOnly': port = receiver.port; reaches = !connected && lane === 'fast'; break;
    case 'badPort': port = 70000; address = receiver.address; break;
    case 'badAddress': port = receiver.port; address = '1.2.3'; break;
    case 'otherFamily': port = receiver.port; address = family === 4 ? FAST_V6 : FAST_V4; break;
    case 'unroutable': port = receiver.port; address = family === 4 ? '198.18.0.1' : 'fd00::1'; break;
  }

  // Options; a segment size never so small that the receiver could overflow.
  let options: SendOptions | undefined;
  let segmentSize: number | undefined;
  if (spec.options.present) {
    const fields: Record<string, unknown> = { ...spec.options.fields };
    if (fields.sourceAddress === 'source') fields.sourceAddress = family === 4 ? FAST_V4 : FAST_V6;
    if (typeof fields.segmentSize === 'number' && Number.isInteger(fields.segmentSize) && fields.segmentSize > 0) {
      const total = expected.reduce((sum, d) => sum + d.byteLength, 0);
      fields.segmentSize = Math.min(Math.max(fields.segmentSize, Math.ceil(total / 40)), 65507);
      segmentSize = fields.segmentSize as number;
    }
    options = fields;
  }

  const op: Op = { spec, parts, expected, reaches, segmentSize, afterClose: closed, sent: null,
    refused: new Set(), outcome: '', settled: null };
  const failure = (error: unknown, how: string): void => {
    const name = errorName(error);
    if (ownErrors.has(error)) {
      op.sent = 0;
      op.outcome = `${how} getter error`;
      return;
    }
    if (name === 'WskError') {
      const e = error as { code?: unknown; errno?: unknown; datagramsSent?: unknown; bytesSent?: unknown };
      if (typeof e.code !== 'string' || e.code === '' || typeof e.errno !== 'number') {
        fail(`${how}: a WskError without a code: ${errorText(error)}`);
      }
      const k = e.datagramsSent;
      if (typeof k !== 'number' || !Number.isInteger(k) || k < 0 || k > expected.length) {
        fail(`${how}: WskError ${e.code} says ${String(k)} of ${expected.length} datagrams went out`);
      }
      const bytes = expected.slice(0, k).reduce((sum, d) => sum + d.byteLength, 0);
      if (e.bytesSent !== bytes) fail(`${how}: WskError ${e.code} says ${String(e.bytesSent)} bytes for ${k} datagrams of ${bytes}`);
      if (op.afterClose && e.code !== 'EBADF') fail(`${how} after close failed with ${e.code}, not EBADF`);
      op.sent = k;
      op.outcome = `${how} WskError ${e.code}`;
      return;
    }
    if (name !== 'TypeError' && name !== 'RangeError') fail(`${how} failed with ${errorText(error)}`);
    op.sent = 0;
    op.outcome = `${how} ${name}`;
  };
  const success = (result: unknown, how: string, whole: boolean): void => {
    const r = result as { datagrams?: unknown; bytes?: unknown; failures?: unknown };
    if (typeof r !== 'object' || r === null || typeof r.datagrams !== 'number' || typeof r.bytes !== 'number' ||
      !Array.isArray(r.failures)) {
      fail(`${how} returned ${String(result)}`);
    }
    const k = r.datagrams;
    // Datagrams refused for their destination (continueOnError) are listed, in order, within
    // the processed prefix; the sent ones are the others of that prefix.
    const failed = (r.failures as Array<{ index?: unknown }>).map((f) => f.index);
    const processed = k + failed.length;
    if (!Number.isInteger(k) || k < 0 || processed > expected.length || (whole && processed !== expected.length)) {
      fail(`${how} says ${k} sent and ${failed.length} refused of ${expected.length} datagrams`);
    }
    if (failed.length > 0 && options?.continueOnError !== true) fail(`${how} listed failures without continueOnError`);
    failed.forEach((index, i) => {
      if (typeof index !== 'number' || index < 0 || index >= processed || (i > 0 && index <= (failed[i - 1] as number))) {
        fail(`${how} lists failure indices out of order or range: ${JSON.stringify(failed)}`);
      }
    });
    const refused = new Set(failed as number[]);
    const bytes = expected.slice(0, processed).reduce((sum, d, i) => sum + (refused.has(i) ? 0 : d.byteLength), 0);
    if (r.bytes !== bytes) fail(`${how} says ${r.bytes} bytes for ${k} datagrams that hold ${bytes}`);
    if (op.afterClose && k > 0) fail(`${how} after close sent ${k} datagrams`);
    op.sent = k;
    op.refused = refused;
    op.outcome = failed.length > 0 ? `${how} some refused` : `${how} ok`;
  };

  const call = spec.kind === 'try'
    ? (): unknown => socket.trySendBatch(datagrams as Datagram[], port as number, address as string, options)
    : (): unknown => socket.sendBatch(datagrams as Datagram[], port as number, address as string, options);
  let returned: unknown;
  const reread = (): void => {
    if (!mutatedInCall) return;
    parts.forEach((made, i) => {
      // A view left without memory (detached, out of bounds) keeps what it described: sending
      // it in any form would fail the check below; only a refusal passes.
      if (made.some((m) => m.gone || memoryGoneNow(m.value))) return;
      expected[i] = concatBytes(made.map((m) => m.now()));
    });
  };
  try {
    returned = call();
    reread();
  } catch (error) {
    reread();
    // Bad arguments throw at once from both (node:dgram's rule); OS errors never do from sendBatch.
    if (spec.kind === 'send' && errorName(error) === 'WskError') {
      fail(`sendBatch threw an OS error synchronously: ${errorText(error)}`);
    }
    failure(error, spec.kind === 'try' ? 'trySendBatch' : 'sendBatch');
    return op;
  }
  if (spec.kind === 'try') {
    success(returned, 'trySendBatch', false);
    return op;
  }
  if (!(returned instanceof Promise)) fail(`sendBatch returned ${String(returned)}, not a promise`);
  if (socket.pendingRequests > 0) bump('pending');
  op.settled = returned.then(
    (result: unknown) => success(result, 'sendBatch', true),
    (error: unknown) => failure(error, 'sendBatch'),
  );
  // Marked handled now; settleAll still sees the failure.
  op.settled.catch(() => undefined);
  return op;
}
