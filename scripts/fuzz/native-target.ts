/**
 * Target "native": the raw binding (lib/binding.ts NativeUdpSocket) called with arbitrary
 * arguments. send() gets buffers of every kind, sparse and huge arrays, arrays whose getters
 * throw, close the socket, detach or resize a buffer or send again mid-call, valid and
 * corrupted layouts (one kind flipped by another thread while the call reads it), odd window
 * numbers, addresses, ports and controls; receive() gets odd arenas and numbers.
 *
 * Property: the call returns a result or throws an error named TypeError or RangeError (or the
 * very error our own getter threw). Every datagram a result counts as sent arrives, byte for
 * byte as the caller described it before the call, in order, at the receiver it was sent to,
 * and nothing else arrives anywhere. A result for a call that an independent model of the
 * documented checks calls invalid is a failure too. Loopback delivers inside sendmmsg, so the
 * receivers are drained synchronously after each call.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { binding, type NativeUdpSocket } from '../../lib/binding';
import { BIG_LENGTHS, bufSpecArb, detachBuffer, makeBuffer, VALID_KINDS, type BufSpec, type MadeBuffer } from './buffers';
import {
  compareDatagrams, EAGAIN, EBADF, errnoName, errorName, errorText, fail, GetterError, ReadBudget,
  RECEIVE_BUDGET, segmented, sleepSync, truesize,
  rarely,
} from './common';
import type { TargetDefinition } from './harness';
import { FAST_V4, FAST_V6, Receiver } from './loopback';

const MAX_PAYLOAD = { 4: 65507, 6: 65527 } as const;
const MAX_DATAGRAMS = 1 << 20;
const MAX_RANGES = 1024;
/** Bytes of well-formed ranges per case (keeps a case inside the receive buffer). */
const PAYLOAD_CAP = 100 * 1024;
const INVALID_INDEX = 0xfffffff0;

// ---------------------------------------------------------------------------------------------
// Case descriptions (plain data)

const ACTIONS = ['none', 'throwType', 'throwRange', 'throwOwn', 'throwValue', 'close', 'detach', 'shrink', 'grow',
  'sendSame', 'sendInner', 'receive'] as const;
type Action = (typeof ACTIONS)[number];

interface GetterSpec { action: Action; target: number; keep: number }
interface ElemSpec { buf: BufSpec; getter: GetterSpec | null }
interface ArraySpec {
  shape: 'array' | 'sparse' | 'huge' | 'proxy' | 'frozen' | 'notArray';
  base: number;
  tail: number;
  hugeLength: number;
  notArray: number;
}
interface Pos { f: number; d: number; raw: number | null }
interface RangeSpec { elem: number; off: Pos; len: Pos }
interface DgSpec { ranges: RangeSpec[]; countLie: number | null }
interface LayoutSpec {
  kind: 'null' | 'undefined' | 'built' | 'wrong';
  prefix: number[];
  datagrams: DgSpec[];
  tamper: { kind: 'none' | 'truncate' | 'append' | 'poke'; n: number; at: number };
  storage: 'plain' | 'offset' | 'sab' | 'racy' | 'detached';
  wrong: number;
  /** Sends per case while the racy word flips. */
  repeat: number;
}
type WinArg = { mode: 'valid'; pick: number; delta: number } | { mode: 'special'; value: unknown };
type AddrKind = 'rx' | 'null' | 'mapped' | 'any' | 'noListener' | 'unroutable' | 'otherFamily' | 'zone' | 'garbage' | 'nonString';
interface AddrSpec { kind: AddrKind; garbage: number; port: 'rx' | number | string | null; scope: unknown }
interface ControlsSpec {
  kind: 'none' | 'null' | 'object' | 'odd';
  odd: unknown;
  fields: Partial<Record<ControlField, unknown>>;
  getter: { field: ControlField; spec: GetterSpec } | null;
}
type ControlField = 'interfaceIndex' | 'tos' | 'ttl' | 'segmentSize' | 'sourceAddress';

interface SendCase {
  op: 'send';
  family: 4 | 6;
  sender: 'open' | 'closed' | 'unopened' | 'connected';
  elements: ElemSpec[];
  big: { at: number; length: number } | null;
  array: ArraySpec;
  layout: LayoutSpec;
  first: WinArg;
  firstWord: WinArg;
  count: WinArg;
  address: AddrSpec;
  segment: unknown;
  controls: ControlsSpec;
  arity: number;
}

interface ReceiveCase {
  op: 'receive';
  family: 4 | 6;
  state: 'open' | 'closed' | 'unopened';
  waiting: number[];
  arena: { kind: 'u8' | 'buffer' | 'sab' | 'rab' | 'rabTrack' | 'view' | 'detached' | 'u16' | 'array' | 'null'; delta: number; raw: number | null };
  slot: unknown;
  max: unknown;
  arity: number;
}

type NativeCase = SendCase | ReceiveCase;

// ---------------------------------------------------------------------------------------------
// Arbitraries

const SPECIAL_NUMBERS: unknown[] = [NaN, -1, -0, 0.5, 2 ** 32, 2 ** 32 - 1, 2 ** 31, 1e300, Infinity, -Infinity,
  MAX_DATAGRAMS, MAX_DATAGRAMS + 1, '1', null, undefined, true, {}, [], 10n];
const U32_SPECIAL = [0xffffffff, 0xfffffffe, 0x80000000, 0x7fffffff, 0x100000000 - 8, 1024, 1025, 65507, 65508, 65527,
  65528, MAX_DATAGRAMS + 1];

const specialArb = fc.constantFrom(...SPECIAL_NUMBERS);
const pickArb = (maxPick: number): fc.Arbitrary<number> =>
  fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: maxPick }) });
const winArb = (maxPick: number): fc.Arbitrary<WinArg> => fc.oneof(
  { weight: 20, arbitrary: fc.record({ mode: fc.constant('valid' as const), pick: pickArb(maxPick), delta: fc.constant(0) }) },
  { weight: 3, arbitrary: fc.record({ mode: fc.constant('valid' as const), pick: pickArb(maxPick), delta: fc.integer({ min: -2, max: 2 }) }) },
  { weight: 1, arbitrary: fc.record({ mode: fc.constant('special' as const), value: specialArb }) },
);

const getterArb: fc.Arbitrary<GetterSpec> = fc.record({
  action: fc.constantFrom(...ACTIONS),
  target: fc.integer({ min: 0, max: 5 }),
  keep: fc.integer({ min: 0, max: 40 }),
});

const elemArb: fc.Arbitrary<ElemSpec> = fc.record({
  buf: bufSpecArb(),
  getter: rarely(getterArb, 8),
});

const arrayArb: fc.Arbitrary<ArraySpec> = fc.oneof(
  { weight: 160, arbitrary: fc.record({ shape: fc.constant('array' as const), base: fc.constant(0), tail: fc.constant(0), hugeLength: fc.constant(0), notArray: fc.constant(0) }) },
  { weight: 12, arbitrary: fc.record({ shape: fc.constant('sparse' as const), base: fc.integer({ min: 0, max: 8 }), tail: fc.integer({ min: 0, max: 8 }), hugeLength: fc.constant(0), notArray: fc.constant(0) }) },
  { weight: 1, arbitrary: fc.record({ shape: fc.constant('huge' as const), base: fc.constant(0), tail: fc.constant(0), hugeLength: fc.constantFrom(1e6, 2 ** 24, 1e8, 2 ** 32 - 1), notArray: fc.constant(0) }) },
  { weight: 8, arbitrary: fc.record({ shape: fc.constantFrom('proxy' as const, 'frozen' as const), base: fc.constant(0), tail: fc.constant(0), hugeLength: fc.constant(0), notArray: fc.constant(0) }) },
  { weight: 8, arbitrary: fc.record({ shape: fc.constant('notArray' as const), base: fc.constant(0), tail: fc.constant(0), hugeLength: fc.constant(0), notArray: fc.integer({ min: 0, max: 6 }) }) },
);

const posArb: fc.Arbitrary<Pos> = fc.oneof(
  { weight: 30, arbitrary: fc.record({ f: fc.integer({ min: 0, max: 100 }), d: fc.constant(0), raw: fc.constant(null) }) },
  { weight: 4, arbitrary: fc.record({ f: fc.integer({ min: 0, max: 100 }), d: fc.integer({ min: -2, max: 2 }), raw: fc.constant(null) }) },
  { weight: 2, arbitrary: fc.record({ f: fc.constant(0), d: fc.constant(0), raw: fc.constantFrom(...U32_SPECIAL) }) },
  { weight: 1, arbitrary: fc.record({ f: fc.constant(0), d: fc.constant(0), raw: fc.integer({ min: 0, max: 0xffffffff }) }) },
);
const rangeArb: fc.Arbitrary<RangeSpec> = fc.record({
  elem: fc.oneof({ weight: 20, arbitrary: fc.integer({ min: 0, max: 6 }) }, { weight: 1, arbitrary: fc.constantFrom(0xffffffff, 0x80000000, 7) }),
  off: posArb,
  len: posArb,
});
const dgArb: fc.Arbitrary<DgSpec> = fc.record({
  ranges: fc.array(rangeArb, { maxLength: 3 }),
  countLie: rarely(fc.oneof(fc.integer({ min: 0, max: 6 }), fc.constantFrom(1025, 0xffffffff)), 15),
});
const layoutArb: fc.Arbitrary<LayoutSpec> = fc.record({
  kind: fc.oneof(
    { weight: 6, arbitrary: fc.constant('null' as const) },
    { weight: 1, arbitrary: fc.constant('undefined' as const) },
    { weight: 14, arbitrary: fc.constant('built' as const) },
    { weight: 1, arbitrary: fc.constant('wrong' as const) },
  ),
  prefix: fc.oneof({ weight: 6, arbitrary: fc.constant([] as number[]) }, { weight: 1, arbitrary: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 5 }) }),
  datagrams: fc.array(dgArb, { maxLength: 5 }),
  tamper: fc.oneof(
    { weight: 12, arbitrary: fc.record({ kind: fc.constant('none' as const), n: fc.constant(0), at: fc.constant(0) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), n: fc.integer({ min: 1, max: 4 }), at: fc.constant(0) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('append' as const), n: fc.integer({ min: 0, max: 0xffffffff }), at: fc.constant(0) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('poke' as const), n: fc.constantFrom(...U32_SPECIAL), at: fc.nat(40) }) },
  ),
  storage: fc.oneof(
    { weight: 40, arbitrary: fc.constant('plain' as const) },
    { weight: 4, arbitrary: fc.constantFrom('offset' as const, 'sab' as const) },
    { weight: 1, arbitrary: fc.constant('racy' as const) },
    { weight: 2, arbitrary: fc.constant('detached' as const) },
  ),
  wrong: fc.integer({ min: 0, max: 8 }),
  repeat: fc.integer({ min: 1, max: 512 }),
});

const GARBAGE_ADDRESSES = ['', 'localhost', '1.2.3', '256.1.1.1', ' 127.0.0.1', '127.0.0.1\0', 'x'.repeat(64),
  'x'.repeat(65), '::ffff:1.2.3.4.5', 'fe80::1%lo'];
const addrArb: fc.Arbitrary<AddrSpec> = fc.record({
  kind: fc.oneof(
    { weight: 40, arbitrary: fc.constant<AddrKind>('rx') },
    { weight: 3, arbitrary: fc.constant<AddrKind>('null') },
    { weight: 4, arbitrary: fc.constantFrom<AddrKind>('mapped', 'any', 'noListener', 'unroutable', 'otherFamily', 'zone', 'garbage', 'nonString') },
  ),
  garbage: fc.nat(GARBAGE_ADDRESSES.length - 1),
  port: fc.oneof(
    { weight: 30, arbitrary: fc.constant('rx' as const) },
    { weight: 2, arbitrary: fc.constantFrom<number | string | null>(0, 65535, 65536, -1, NaN, 1.5, '80', null, 2 ** 32) },
  ),
  scope: fc.oneof({ weight: 30, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.constantFrom<unknown>(1, 2 ** 32 - 1, 2 ** 32, -1, NaN, '0', undefined) }),
});

const mostly = (good: fc.Arbitrary<unknown>, odd: unknown[]): fc.Arbitrary<unknown> =>
  fc.oneof({ weight: 8, arbitrary: good }, { weight: 1, arbitrary: fc.constantFrom(...odd) });
const controlValue = (field: ControlField): fc.Arbitrary<unknown> => {
  switch (field) {
    case 'interfaceIndex': return mostly(fc.constantFrom(0, 1), [2, 2 ** 32 - 1, -1, NaN, 1.5, '1']);
    case 'tos': return mostly(fc.integer({ min: 0, max: 255 }), [256, -1, NaN, '3']);
    case 'ttl': return mostly(fc.integer({ min: 1, max: 255 }), [0, 256, NaN]);
    case 'segmentSize': return mostly(fc.integer({ min: 8, max: 1500 }), [1, 2, 65527, 65528, 0, -1, NaN, 1e9, '100']);
    case 'sourceAddress': return mostly(fc.constant('127.0.0.1'), ['::1', '127.0.0.2', '198.18.0.1', '', 'x', 5, null]);
  }
};
const controlsArb: fc.Arbitrary<ControlsSpec> = fc.record({
  kind: fc.oneof(
    { weight: 12, arbitrary: fc.constant('none' as const) },
    { weight: 1, arbitrary: fc.constant('null' as const) },
    { weight: 6, arbitrary: fc.constant('object' as const) },
    { weight: 1, arbitrary: fc.constant('odd' as const) },
  ),
  odd: fc.constantFrom<unknown>(0, 'tos', [], true),
  fields: fc.record({
    interfaceIndex: controlValue('interfaceIndex'),
    tos: controlValue('tos'),
    ttl: controlValue('ttl'),
    segmentSize: controlValue('segmentSize'),
    sourceAddress: controlValue('sourceAddress'),
  }, { requiredKeys: [] }),
  getter: rarely(fc.record({
    field: fc.constantFrom<ControlField>('interfaceIndex', 'tos', 'ttl', 'segmentSize', 'sourceAddress'),
    spec: getterArb,
  }), 6),
});

const sendCaseArb: fc.Arbitrary<SendCase> = fc.record({
  op: fc.constant('send' as const),
  family: fc.oneof({ weight: 4, arbitrary: fc.constant(4 as const) }, { weight: 1, arbitrary: fc.constant(6 as const) }),
  sender: fc.oneof(
    { weight: 20, arbitrary: fc.constant('open' as const) },
    { weight: 3, arbitrary: fc.constant('connected' as const) },
    { weight: 1, arbitrary: fc.constantFrom('closed' as const, 'unopened' as const) },
  ),
  elements: fc.array(elemArb, { maxLength: 6 }),
  big: rarely(fc.record({ at: fc.integer({ min: 0, max: 5 }), length: fc.constantFrom(...BIG_LENGTHS) }), 25),
  array: arrayArb,
  layout: layoutArb,
  first: winArb(6),
  firstWord: winArb(6),
  count: winArb(6),
  address: addrArb,
  segment: fc.oneof({ weight: 20, arbitrary: fc.boolean() }, { weight: 1, arbitrary: fc.constantFrom<unknown>(1, 'yes', undefined, null) }),
  controls: controlsArb,
  arity: fc.oneof({ weight: 40, arbitrary: fc.constant(10) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 9 }) }),
});

const receiveCaseArb: fc.Arbitrary<ReceiveCase> = fc.record({
  op: fc.constant('receive' as const),
  family: fc.constantFrom(4 as const, 6 as const),
  state: fc.oneof({ weight: 8, arbitrary: fc.constant('open' as const) }, { weight: 1, arbitrary: fc.constantFrom('closed' as const, 'unopened' as const) }),
  waiting: fc.array(fc.oneof(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 65, max: 3000 })), { maxLength: 4 }),
  arena: fc.record({
    kind: fc.oneof(
      { weight: 10, arbitrary: fc.constantFrom('u8' as const, 'buffer' as const) },
      { weight: 4, arbitrary: fc.constantFrom('sab' as const, 'rab' as const, 'rabTrack' as const, 'view' as const) },
      { weight: 2, arbitrary: fc.constantFrom('detached' as const, 'u16' as const, 'array' as const, 'null' as const) },
    ),
    delta: fc.oneof({ weight: 6, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: -3, max: 3 }) }),
    raw: rarely(fc.constantFrom(0, 1, 65536), 10),
  }),
  slot: fc.oneof(
    { weight: 10, arbitrary: fc.constantFrom(1, 16, 100, 1500, 2048, 65536) },
    { weight: 1, arbitrary: fc.constantFrom<unknown>(0, -1, NaN, 1.5, (1 << 20) + 1, 1 << 20, '64', null) },
  ),
  max: fc.oneof(
    { weight: 10, arbitrary: fc.integer({ min: 1, max: 8 }) },
    { weight: 1, arbitrary: fc.constantFrom<unknown>(0, -1, 1024, 1025, NaN, 2.5, '1', undefined) },
  ),
  arity: fc.oneof({ weight: 30, arbitrary: fc.constant(3) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 }) }),
});

// ---------------------------------------------------------------------------------------------
// The model of the documented checks (lib/binding.ts send, lib/transport.ts BatchLayout)

/**
 * `datagrams` are those of the window up to the first the checks refuse (all of them when
 * valid), with `words[k]` the layout word where datagram k starts. 'unknown': the model cannot
 * tell whether the binding sees an array (a Proxy).
 */
interface Model {
  valid: boolean | 'unknown';
  why: string;
  datagrams: Uint8Array[];
  words: number[];
}

interface ModelInput {
  isArray: boolean | 'unknown';
  arrayLength: number;
  element(index: number): MadeBuffer | undefined;
  layout: Uint32Array | null | 'wrong';
  first: unknown;
  firstWord: unknown;
  count: unknown;
  family: 4 | 6;
}

const isU32 = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;

function modelSend(m: ModelInput): Model {
  const datagrams: Uint8Array[] = [];
  const words: number[] = [];
  const refuse = (why: string): Model => ({ valid: false, why, datagrams, words });
  if (m.isArray === false) return refuse('buffers is not an array');
  if (!isU32(m.first)) return refuse('first is not a uint32');
  if (!isU32(m.firstWord)) return refuse('firstWord is not a uint32');
  if (!isU32(m.count) || m.count > MAX_DATAGRAMS) return refuse('count out of range');
  if (m.layout === 'wrong') return refuse('layout is not a Uint32Array');
  const count = m.count;
  const max = MAX_PAYLOAD[m.family];
  if (m.layout === null) {
    if (m.first > m.arrayLength || count > m.arrayLength - m.first) return refuse('window past buffers.length');
    for (let i = 0; i < count; i++) {
      words.push(0);
      const b = m.element(m.first + i);
      if (b === undefined || !b.isU8) return refuse(`buffer ${m.first + i} is not a Uint8Array`);
      if (b.length > max) return refuse(`buffer ${m.first + i} is over the payload limit`);
      // A view whose memory is gone must be refused: the bytes it described never go out.
      datagrams.push(b.content);
    }
    words.push(0);
  } else {
    const w = m.layout;
    if (m.firstWord > w.length) return refuse('firstWord past the layout');
    // The shape and the buffer indices of the whole window are checked before any buffer is read.
    let cursor = m.firstWord;
    for (let d = 0; d < count; d++) {
      if (cursor >= w.length) return refuse('layout ends before the last datagram');
      const n = w[cursor++] as number;
      if (n > MAX_RANGES) return refuse('more than 1024 ranges');
      if (3 * n > w.length - cursor) return refuse('layout truncated');
      for (let r = 0; r < n; r++, cursor += 3) {
        if ((w[cursor] as number) >= m.arrayLength) return refuse('buffer index past buffers.length');
      }
    }
    cursor = m.firstWord;
    for (let d = 0; d < count; d++) {
      words.push(cursor);
      const n = w[cursor++] as number;
      const parts: Uint8Array[] = [];
      let total = 0;
      for (let r = 0; r < n; r++, cursor += 3) {
        const index = w[cursor] as number;
        const offset = w[cursor + 1] as number;
        const length = w[cursor + 2] as number;
        const b = m.element(index);
        if (b === undefined || !b.isU8) return refuse(`buffer ${index} is not a Uint8Array`);
        if (offset > b.length || length > b.length - offset) return refuse(`range outside buffer ${index}`);
        total += length;
        if (total > max) return refuse('datagram over the payload limit');
        parts.push(b.content.subarray(offset, offset + length));
      }
      const out = new Uint8Array(total);
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.byteLength;
      }
      datagrams.push(out);
    }
    words.push(cursor);
  }
  return { valid: m.isArray === 'unknown' ? 'unknown' : true, why: '', datagrams, words };
}

// ---------------------------------------------------------------------------------------------
// The target

interface Env {
  rx: { 4: Receiver; 6: Receiver | null };
  inner: { 4: Receiver; 6: Receiver | null };
  probe: { 4: Receiver; 6: Receiver | null };
  innerSender: NativeUdpSocket;
  feeder: { 4: NativeUdpSocket; 6: NativeUdpSocket | null };
  anyReaches: { 4: boolean; 6: boolean };
  flipper: Flipper | null;
}

class Flipper {
  readonly ctl = new Int32Array(new SharedArrayBuffer(32));
  readonly words = new SharedArrayBuffer(4 * 4096);
  readonly worker: Worker;

  constructor(lifetimeMs: number) {
    this.worker = new Worker(path.join(__dirname, 'flipper.js'), {
      workerData: { control: this.ctl.buffer, words: this.words, lifetimeMs },
    });
    this.worker.unref();
    this.worker.once('exit', () => {
      this.exited = true;
    });
  }

  /** The first `length` words of the shared region, holding `values`. */
  layout(values: readonly number[]): Uint32Array {
    const view = new Uint32Array(this.words, 0, values.length);
    for (let i = 0; i < values.length; i++) view[i] = values[i] as number;
    return view;
  }

  /** Starts flipping word `at` between `valid` and INVALID_INDEX; waits until it runs. */
  start(at: number, valid: number): void {
    Atomics.store(this.ctl, 1, at);
    Atomics.store(this.ctl, 2, valid | 0);
    Atomics.store(this.ctl, 3, INVALID_INDEX | 0);
    const rounds = Atomics.load(this.ctl, 4);
    Atomics.store(this.ctl, 0, 1);
    Atomics.notify(this.ctl, 0);
    for (let i = 0; i < 200 && Atomics.load(this.ctl, 4) === rounds; i++) sleepSync(0.2);
  }

  stop(): void {
    Atomics.store(this.ctl, 0, 0);
    for (let i = 0; i < 2000 && Atomics.load(this.ctl, 5) !== 0; i++) Atomics.wait(this.ctl, 5, 1, 1);
  }

  exited = false;

  async close(): Promise<void> {
    Atomics.store(this.ctl, 0, 2);
    Atomics.notify(this.ctl, 0);
    if (this.exited) return;
    const exited = new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
    await Promise.race([exited, new Promise<void>((resolve) => setTimeout(resolve, 2000))]);
    // It only ever runs JavaScript, so stopping it is safe.
    if (!this.exited) await this.worker.terminate();
  }
}

function openNative(family: 4 | 6): NativeUdpSocket {
  const native = new (binding().UdpSocket)();
  const error = native.open(family);
  if (error !== 0) throw new Error(`open(${family}) failed: ${errnoName(error)}`);
  return native;
}

export interface NativeTargetOptions {
  isolated: boolean;
  ipv6: boolean;
  lifetimeMs: number;
  exclude: ReadonlySet<string>;
}

export function nativeTarget(options: NativeTargetOptions): TargetDefinition<NativeCase> {
  const rx6 = options.ipv6 ? new Receiver(FAST_V6, 6) : null;
  const env: Env = {
    rx: { 4: new Receiver(FAST_V4, 4), 6: rx6 },
    inner: { 4: new Receiver(FAST_V4, 4), 6: options.ipv6 ? new Receiver(FAST_V6, 6) : null },
    probe: { 4: new Receiver(FAST_V4, 4), 6: options.ipv6 ? new Receiver(FAST_V6, 6) : null },
    innerSender: openNative(4),
    feeder: { 4: openNative(4), 6: options.ipv6 ? openNative(6) : null },
    anyReaches: { 4: false, 6: false },
    flipper: options.exclude.has('racy') ? null : new Flipper(options.lifetimeMs),
  };
  // Does a datagram to 0.0.0.0 (::) reach 127.0.0.1 (::1) here (Linux: yes)? Measured, not assumed.
  for (const family of [4, 6] as const) {
    const feeder = env.feeder[family];
    const receiver = env.rx[family];
    if (feeder === null || receiver === null) continue;
    feeder.send([Uint8Array.of(1)], null, 0, 0, 1, family === 4 ? '0.0.0.0' : '::', receiver.port, 0, false);
    env.anyReaches[family] = receiver.waitSync(1, 100);
    receiver.take();
  }

  const budget = new ReadBudget(100000);
  const figures: Record<string, number> = {
    'model valid': 0, 'model unknown': 0, 'valid but refused': 0, 'datagrams verified': 0,
    'bytes verified': 0, 'racy sends': 0, 'mid-call mutations': 0, 'late arrivals': 0, 'receive cases': 0,
  };
  const bump = (key: string, by = 1): void => {
    figures[key] = (figures[key] ?? 0) + by;
  };

  const exclude = options.exclude;
  const arbitrary = fc.oneof({ weight: 9, arbitrary: sendCaseArb }, { weight: 1, arbitrary: receiveCaseArb })
    .map((c): NativeCase => sanitize(c, options, exclude));

  return {
    name: 'native',
    arbitrary,
    async: false,
    // Coarse on purpose: crashes are grouped by it.
    kindOf: (c) => (c.op === 'receive' ? 'receive' : c.array.shape === 'huge' ? 'send-huge'
      : c.layout.kind === 'built' && c.layout.storage === 'racy' ? 'send-racy' : 'send'),
    run: (c) => {
      try {
        return c.op === 'receive' ? runReceive(c, env, bump) : runSend(c, env, budget, bump);
      } catch (error) {
        // A failed case may leave datagrams behind: they must not count against the next one.
        for (const r of [env.rx[4], env.rx[6], env.inner[4], env.inner[6], env.probe[4], env.probe[6]]) r?.take();
        throw error;
      }
    },
    figures: () => {
      // Loopback never loses a datagram unless a receive buffer overflows: this must stay 0.
      let drops = 0;
      for (const r of [env.rx[4], env.rx[6], env.inner[4], env.inner[6], env.probe[4], env.probe[6]]) {
        if (r !== null) drops += Math.max(0, r.drops());
      }
      return { ...figures, 'receiver drops': drops };
    },
    close: async () => {
      await env.flipper?.close();
      for (const r of [env.rx[4], env.rx[6], env.inner[4], env.inner[6], env.probe[4], env.probe[6]]) r?.close();
      env.innerSender.close();
      env.feeder[4].close();
      env.feeder[6]?.close();
    },
  };
}

/** Keeps cases to what this run can do (no IPv6 here, nothing unroutable outside a namespace). */
function sanitize(c: NativeCase, options: NativeTargetOptions, exclude: ReadonlySet<string>): NativeCase {
  if (!options.ipv6 && c.family === 6) c = { ...c, family: 4 };
  if (c.op === 'send') {
    if (!options.isolated && c.address.kind === 'unroutable') c = { ...c, address: { ...c.address, kind: 'noListener' } };
    if (exclude.has('huge') && c.array.shape === 'huge') c = { ...c, array: { ...c.array, shape: 'sparse' } };
    if (exclude.has('racy') && c.layout.storage === 'racy') c = { ...c, layout: { ...c.layout, storage: 'sab' } };
  }
  return c;
}

interface Effects {
  closed: boolean;
  mutated: boolean;
  grown: boolean;
  /** Indices of length-tracking buffers grown mid-call: the call then describes their new bytes. */
  grownSet: Set<number>;
  inner: Array<{ receiver: Receiver; datagram: Uint8Array }>;
  ownErrors: Set<unknown>;
}

function runSend(c: SendCase, env: Env, budget: ReadBudget, bump: (key: string, by?: number) => void): string {
  budget.reset();
  const family = c.family;
  const rx = env.rx[family] as Receiver;
  const inner = env.inner[family] as Receiver;

  // The sending socket, fresh per case.
  const sender = new (binding().UdpSocket)();
  if (c.sender !== 'unopened') {
    const opened = sender.open(family);
    if (opened !== 0) throw new Error(`open failed: ${errnoName(opened)}`);
  }
  if (c.sender === 'closed') sender.close();
  if (c.sender === 'connected') {
    const connected = sender.connect(rx.address, rx.port, 0);
    if (connected !== 0) throw new Error(`connect failed: ${errnoName(connected)}`);
  }

  // Buffers; at most one big one per case.
  const made: MadeBuffer[] = c.elements.map((e, i) => {
    const useBig = c.big !== null && c.big.at === i && (VALID_KINDS as readonly string[]).includes(e.buf.kind);
    return makeBuffer(useBig && c.big !== null ? { ...e.buf, big: c.big.length } : e.buf);
  });
  const effects: Effects = { closed: false, mutated: false, grown: false, grownSet: new Set(), inner: [], ownErrors: new Set() };

  const act = (g: GetterSpec): void => {
    budget.tick();
    const target = made[g.target];
    switch (g.action) {
      case 'none': return;
      case 'throwType': throw new TypeError('thrown by a fuzz getter');
      case 'throwRange': throw new RangeError('thrown by a fuzz getter');
      case 'throwOwn': {
        const error = new GetterError('thrown by a fuzz getter');
        effects.ownErrors.add(error);
        throw error;
      }
      case 'throwValue': {
        const value = { thrownByGetter: true };
        effects.ownErrors.add(value);
        throw value;
      }
      case 'close':
        sender.close();
        effects.closed = true;
        return;
      case 'detach':
        if (target?.detach() === true) effects.mutated = true;
        return;
      case 'shrink':
        if (target?.shrink(g.keep) === true) effects.mutated = true;
        return;
      case 'grow':
        if (target?.grow() === true) {
          effects.grown = true;
          effects.grownSet.add(g.target);
        }
        return;
      case 'sendSame':
      case 'sendInner': {
        const socket = g.action === 'sendSame' ? sender : env.innerSender;
        const sameFamily = g.action === 'sendSame' ? family : 4;
        const to = (env.inner[sameFamily] ?? inner) as Receiver;
        const datagram = Uint8Array.of(0x49, 0x4e, g.target, g.keep);
        try {
          const r = socket.send([datagram], null, 0, 0, 1, to.address, to.port, 0, false);
          if (r.datagrams === 1) effects.inner.push({ receiver: to, datagram });
        } catch {
          // Refused: a send from inside a send's arguments (SendGuard). Nothing was sent.
        }
        return;
      }
      case 'receive': {
        const probe = env.probe[4];
        probe.native.receive(new Uint8Array(4096), 2048, 2);
        return;
      }
    }
  };

  // The buffers array.
  let base = 0;
  let arrayLength = made.length;
  let isArray: boolean | 'unknown' = true;
  let array: unknown;
  const withGetters = (target: unknown[]): void => {
    c.elements.forEach((e, i) => {
      const m = made[i] as MadeBuffer;
      if (e.getter === null) {
        target[base + i] = m.value;
        return;
      }
      const g = e.getter;
      Object.defineProperty(target, base + i, {
        get() {
          act(g);
          return m.value;
        },
        enumerable: true,
        configurable: true,
      });
    });
  };
  switch (c.array.shape) {
    case 'array':
    case 'frozen':
    case 'proxy': {
      const target: unknown[] = [];
      withGetters(target);
      if (c.array.shape === 'frozen') Object.freeze(target);
      array = c.array.shape === 'proxy' ? new Proxy(target, {}) : target;
      if (c.array.shape === 'proxy') isArray = 'unknown';
      break;
    }
    case 'sparse':
    case 'huge': {
      const target: unknown[] = [];
      arrayLength = c.array.shape === 'huge' ? c.array.hugeLength : c.array.base + made.length + c.array.tail;
      base = c.array.shape === 'huge' ? arrayLength - made.length : c.array.base;
      target.length = arrayLength;
      withGetters(target);
      array = target;
      break;
    }
    case 'notArray': {
      isArray = false;
      const first = made[0]?.value;
      const choices: unknown[] = [first, null, undefined, 42, 'buffers', { length: made.length, 0: first }, new Set([first])];
      array = choices[c.array.notArray % choices.length];
      break;
    }
  }
  const element = (index: number): MadeBuffer | undefined => {
    const i = index - base;
    return i >= 0 && i < made.length ? made[i] : undefined;
  };

  // The layout.
  const payloadLeft = { bytes: PAYLOAD_CAP };
  let layoutValue: unknown = null;
  let modelLayout: Uint32Array | null | 'wrong' = null;
  let racy: { at: number; valid: number } | null = null;
  // A racy layout is well-formed apart from the flipped word: the race is what it tests.
  const clean = c.layout.storage === 'racy' && c.layout.kind === 'built' && made.length > 0;
  const spec: LayoutSpec = clean ? { ...c.layout, tamper: { kind: 'none', n: 0, at: 0 } } : c.layout;
  if (spec.kind === 'undefined') layoutValue = undefined;
  if (spec.kind === 'built' || spec.kind === 'wrong') {
    const words: number[] = [...spec.prefix];
    let firstIndexWord = -1;
    for (const d of spec.datagrams) {
      words.push(clean ? d.ranges.length : d.countLie ?? d.ranges.length);
      for (const range of d.ranges) {
        const r: RangeSpec = clean ? {
          elem: range.elem % made.length,
          off: { f: range.off.f, d: 0, raw: null },
          len: { f: range.len.f, d: 0, raw: null },
        } : range;
        const index = r.elem >= 0x100 ? r.elem : base + r.elem;
        const length = (made[r.elem]?.length) ?? 0;
        const offset = r.off.raw ?? Math.floor((r.off.f * length) / 100) + r.off.d;
        const room = Math.max(0, length - Math.max(0, offset));
        let take = r.len.raw ?? Math.floor((r.len.f * room) / 100) + r.len.d;
        if (offset >= 0 && take >= 0 && offset <= length && take <= length - offset) {
          take = Math.min(take, payloadLeft.bytes);
          payloadLeft.bytes -= take;
        }
        if (firstIndexWord < 0) firstIndexWord = words.length;
        words.push(index >>> 0, offset >>> 0, take >>> 0);
      }
    }
    if (spec.tamper.kind === 'truncate') words.splice(Math.max(0, words.length - spec.tamper.n));
    if (spec.tamper.kind === 'append') words.push(spec.tamper.n);
    if (spec.tamper.kind === 'poke' && words.length > 0) words[spec.tamper.at % words.length] = spec.tamper.n;
    const u32 = Uint32Array.from(words);
    if (spec.kind === 'wrong') {
      const wrongs: unknown[] = [Int32Array.from(words), words, Uint8Array.from(words), Float64Array.from(words),
        BigUint64Array.from(words.map((w) => BigInt(w))), new DataView(u32.buffer), 42, 'layout', {}];
      layoutValue = wrongs[spec.wrong % wrongs.length];
      modelLayout = 'wrong';
    } else {
      modelLayout = u32;
      switch (spec.storage) {
        case 'plain':
          layoutValue = u32;
          break;
        case 'offset': {
          const bigger = new Uint32Array(words.length + 3);
          bigger.set(words, 3);
          layoutValue = bigger.subarray(3);
          break;
        }
        case 'sab': {
          const shared = new Uint32Array(new SharedArrayBuffer(4 * Math.max(1, words.length)), 0, words.length);
          shared.set(words);
          layoutValue = shared;
          break;
        }
        case 'racy': {
          const flipper = env.flipper;
          // The word flipped is the first buffer index the window reads.
          if (flipper !== null && firstIndexWord >= 0 && words.length <= 4096) {
            layoutValue = flipper.layout(words);
            racy = { at: firstIndexWord, valid: words[firstIndexWord] as number };
          } else {
            layoutValue = u32;
          }
          break;
        }
        case 'detached': {
          const copy = Uint32Array.from(words);
          detachBuffer(copy.buffer as ArrayBuffer);
          layoutValue = copy;
          modelLayout = new Uint32Array(0);
          break;
        }
      }
    }
  }

  // Window numbers.
  const n = made.length;
  const nullLayout = modelLayout === null;
  const valueOf = (arg: WinArg, valid: number): unknown => (arg.mode === 'special' ? arg.value : valid + arg.delta);
  const pickFirst = c.first.mode === 'valid' ? Math.min(c.first.pick, n) : 0;
  const first = valueOf(c.first, nullLayout ? base + pickFirst : pickFirst);
  const firstWord = clean ? spec.prefix.length : valueOf(c.firstWord, nullLayout ? 0 : spec.prefix.length);
  const count = clean ? spec.datagrams.length : valueOf(c.count, nullLayout ? n - pickFirst : spec.datagrams.length);

  // Address and port. With fewer than 6 arguments the address is undefined: the connected remote.
  const a = c.address;
  let address: unknown;
  let reachesWithPort = false;
  switch (a.kind) {
    case 'rx': address = rx.address; reachesWithPort = true; break;
    case 'null': address = null; break;
    case 'mapped': address = '::ffff:127.0.0.1'; break;
    case 'any': address = family === 4 ? '0.0.0.0' : '::'; reachesWithPort = env.anyReaches[family]; break;
    case 'noListener': address = family === 4 ? '127.0.0.3' : '::1'; break;
    case 'unroutable': address = family === 4 ? '198.18.0.1' : 'fd00::1'; break;
    case 'otherFamily': address = family === 4 ? FAST_V6 : FAST_V4; break;
    case 'zone': address = family === 4 ? '127.0.0.1%1' : '::1%1'; break;
    case 'garbage': address = GARBAGE_ADDRESSES[a.garbage]; break;
    case 'nonString': address = [0, {}, [], true][a.garbage % 4]; break;
  }
  const port = a.port === 'rx' ? (a.kind === 'noListener' ? 9 : rx.port) : a.port;
  const toConnected = address === null || c.arity <= 5;
  const reaches = toConnected ? c.sender === 'connected' : reachesWithPort && a.port === 'rx';

  // Controls.
  const ctl = c.controls;
  const fields = { ...ctl.fields };
  let controls: unknown;
  const model0 = modelSend({ isArray, arrayLength, element, layout: modelLayout, first, firstWord, count, family });
  // Explicit segments multiply datagrams: drop the segment size when the receiver could overflow.
  if (typeof fields.segmentSize === 'number') {
    const arriving = segmented(model0.datagrams, fields.segmentSize);
    let cost = 0;
    for (const d of arriving) cost += truesize(d.byteLength);
    if (cost > RECEIVE_BUDGET) delete fields.segmentSize;
  }
  if (ctl.kind === 'null') controls = null;
  if (ctl.kind === 'odd') controls = ctl.odd;
  if (ctl.kind === 'object') {
    const object: Record<string, unknown> = { ...fields };
    const getter = ctl.getter;
    if (getter !== null) {
      const value = fields[getter.field];
      Object.defineProperty(object, getter.field, {
        get() {
          act(getter.spec);
          return value;
        },
        enumerable: true,
        configurable: true,
      });
    }
    controls = object;
  }
  const segmentSize = c.arity === 10 && ctl.kind === 'object' && typeof fields.segmentSize === 'number'
    ? fields.segmentSize : undefined;

  const args: unknown[] = [array, layoutValue, first, firstWord, count, address, port, a.scope, c.segment, controls];
  const call = (): { result?: unknown; thrown?: unknown; threw: boolean } => {
    try {
      return { result: (sender.send as (...x: unknown[]) => unknown)(...args.slice(0, c.arity)), threw: false };
    } catch (error) {
      return { thrown: error, threw: true };
    }
  };

  const hugeBefore = c.array.shape === 'huge' ? process.memoryUsage.rss() : 0;
  const sends = racy !== null ? c.layout.repeat : 1;
  let outcome = '';
  try {
  for (let s = 0; s < sends; s++) {
    if (racy !== null) {
      bump('racy sends');
      env.flipper?.start(racy.at, racy.valid);
    }
    const attempt = call();
    if (racy !== null) {
      env.flipper?.stop();
      if (!attempt.threw) bump('racy sends accepted');
    }
    const remodel = (): Model => modelSend({
      isArray, arrayLength, layout: modelLayout, first, firstWord, count, family,
      element: (index) => {
        const m = element(index);
        if (m === undefined || !effects.grownSet.has(made.indexOf(m))) return m;
        const bytes = m.now();
        return { ...m, content: bytes, length: bytes.byteLength };
      },
    });
    outcome = checkSend(c, attempt, {
      model: effects.grown ? remodel() : model0, effects, budget, rx, reaches, segmentSize, env, arity: c.arity, bump,
    });
    effects.inner = [];
    if (effects.closed || effects.mutated || effects.grown || c.sender !== 'open') break;
  }
  } finally {
    env.flipper?.stop();
    sender.close();
  }
  if (c.array.shape === 'huge') {
    const grown = process.memoryUsage.rss() - hugeBefore;
    if (grown > 512 * 1024 * 1024) {
      fail(`one send of ${String(count)} datagram(s) from a sparse array of length ${arrayLength} grew the ` +
        `resident memory by ${Math.round(grown / 1048576)} MB (scratch sized by buffers.length)`);
    }
  }
  if (effects.mutated || effects.grown) bump('mid-call mutations');
  return outcome;
}

interface CheckContext {
  model: Model;
  effects: Effects;
  budget: ReadBudget;
  rx: Receiver;
  reaches: boolean;
  segmentSize: number | undefined;
  env: Env;
  arity: number;
  bump: (key: string, by?: number) => void;
}

function checkSend(c: SendCase, attempt: { result?: unknown; thrown?: unknown; threw: boolean }, x: CheckContext): string {
  const { model, effects } = x;
  if (x.budget.exceeded) fail('the native send kept reading getters past the step bound (a loop)');
  let outcome: string;
  let sent: Uint8Array[] = [];
  if (attempt.threw) {
    const name = errorName(attempt.thrown);
    if (effects.ownErrors.has(attempt.thrown)) {
      outcome = 'threw the getter\'s own error';
    } else if (name === 'TypeError' || name === 'RangeError') {
      outcome = name;
    } else {
      fail(`send threw ${errorText(attempt.thrown)} (only TypeError/RangeError are allowed)`);
    }
    if (model.valid === true && !effects.mutated && !effects.closed && x.arity === 10) x.bump('valid but refused');
  } else {
    const r = attempt.result;
    if (typeof r !== 'object' || r === null) fail(`send returned ${String(r)}, not a result object`);
    const { datagrams, bytes, errno, syscall, word } = r as Record<string, unknown>;
    if (typeof datagrams !== 'number' || typeof bytes !== 'number' || typeof errno !== 'number' ||
      typeof syscall !== 'string' || typeof word !== 'number') {
      fail(`send returned a malformed result ${JSON.stringify(r)}`);
    }
    // A buffer shrunk or grown mid-call may turn a refused call into one the binding takes: then
    // only the datagrams before the first refused one may count as sent.
    const changed = effects.mutated || effects.grown;
    if (model.valid === false && !changed) {
      fail(`send accepted a call the documented checks refuse (${model.why}): ${JSON.stringify(r)}`);
    }
    x.bump(model.valid === true ? 'model valid' : model.valid === false ? 'model refused, changed mid-call' : 'model unknown');
    const window = model.datagrams.length;
    if (!Number.isInteger(datagrams) || datagrams < 0 || datagrams > window) {
      fail(`send reported ${datagrams} datagrams sent; ${model.valid === false ? 'at most' : 'the window holds'} ${window}`);
    }
    if (errno === 0 && datagrams !== window) fail(`send reported errno 0 after ${datagrams} of ${window} datagrams`);
    sent = model.datagrams.slice(0, datagrams);
    const expectedBytes = sent.reduce((sum, d) => sum + d.byteLength, 0);
    if (bytes !== expectedBytes) {
      fail(`send reported ${bytes} bytes for ${datagrams} datagrams that hold ${expectedBytes}`);
    }
    if (model.valid !== false && word !== model.words[datagrams]) {
      fail(`send reported word ${word} after ${datagrams} datagrams; the layout says ${String(model.words[datagrams])}`);
    }
    if (effects.closed && datagrams > 0) fail(`send reported ${datagrams} datagrams sent on a socket closed mid-call`);
    outcome = errno === 0 ? (datagrams > 0 ? 'result sent' : 'result empty') : `result ${errnoName(errno)}`;
    if (errno === EBADF && (c.sender === 'open' || c.sender === 'connected') && !effects.closed) fail('send reported EBADF on an open socket');
  }

  // What arrived where.
  const expectAt = new Map<Receiver, Uint8Array[]>();
  const expect = (receiver: Receiver, datagrams: Uint8Array[]): void => {
    expectAt.set(receiver, [...(expectAt.get(receiver) ?? []), ...datagrams]);
  };
  const arriving = segmented(sent, x.segmentSize);
  if (x.reaches && arriving.length > 0) expect(x.rx, arriving);
  for (const i of effects.inner) expect(i.receiver, [i.datagram]);
  const all = [x.env.rx[4], x.env.rx[6], x.env.inner[4], x.env.inner[6]].filter((r): r is Receiver => r !== null);
  for (const receiver of all) {
    const want = expectAt.get(receiver) ?? [];
    if (want.length > 0 && !receiver.waitSync(want.length, 0)) {
      x.bump('late arrivals');
      receiver.waitSync(want.length, 500);
    }
    const got = receiver.take();
    const problem = compareDatagrams(got, want, `receiver ${receiver.address}:${receiver.port}`);
    if (problem !== null) {
      const drops = receiver.drops();
      fail(`${problem}${drops > 0 ? ` (the receiver dropped ${drops}: the case overflowed its buffer)` : ''}`);
    }
    for (const d of got) {
      x.bump('datagrams verified');
      x.bump('bytes verified', d.byteLength);
    }
  }
  return outcome;
}

function runReceive(c: ReceiveCase, env: Env, bump: (key: string, by?: number) => void): string {
  bump('receive cases');
  const family = c.family;
  const probe = env.probe[family] as Receiver;
  const feeder = env.feeder[family] as NativeUdpSocket;
  // The socket under test: the probe (open), or a closed / never-opened one.
  let socket = probe.native;
  if (c.state !== 'open') {
    socket = new (binding().UdpSocket)();
    if (c.state === 'closed') {
      socket.open(family);
      socket.close();
    }
  }
  const waiting = c.state === 'open' ? c.waiting.map((size, i) => {
    const d = new Uint8Array(size);
    for (let j = 0; j < size; j++) d[j] = (i * 37 + j) & 0xff;
    return d;
  }) : [];
  if (waiting.length > 0) {
    const r = feeder.send(waiting, null, 0, 0, waiting.length, probe.address, probe.port, 0, false);
    if (r.errno !== 0 || r.datagrams !== waiting.length) throw new Error(`feeding the probe failed: ${JSON.stringify(r)}`);
  }

  const slot = c.slot;
  const max = c.max;
  const wanted = typeof slot === 'number' && typeof max === 'number' && Number.isFinite(slot * max) ? slot * max : 64;
  const size = c.arena.raw ?? Math.max(0, Math.min(1 << 24, Math.floor(wanted) + c.arena.delta));
  let arena: unknown;
  let arenaView: Uint8Array | null = null;
  switch (c.arena.kind) {
    case 'u8': arenaView = new Uint8Array(size); break;
    case 'buffer': arenaView = Buffer.alloc(size); break;
    case 'sab': arenaView = new Uint8Array(new SharedArrayBuffer(size)); break;
    case 'rab': arenaView = new Uint8Array(new (ArrayBuffer as unknown as new (n: number, o: object) => ArrayBuffer)(size + 8, { maxByteLength: size * 2 + 16 }), 8, size); break;
    case 'rabTrack': arenaView = new Uint8Array(new (ArrayBuffer as unknown as new (n: number, o: object) => ArrayBuffer)(size, { maxByteLength: size * 2 + 16 })); break;
    case 'view': arenaView = new Uint8Array(new ArrayBuffer(size + 13), 13, size); break;
    case 'detached': {
      const d = new Uint8Array(size);
      detachBuffer(d.buffer as ArrayBuffer);
      arena = d;
      break;
    }
    case 'u16': arena = new Uint16Array(Math.ceil(size / 2)); break;
    case 'array': arena = Array.from({ length: Math.min(size, 64) }, () => 0); break;
    case 'null': arena = null; break;
  }
  if (arenaView !== null) arena = arenaView;

  const args: unknown[] = [arena, slot, max];
  let result: unknown;
  let threw = false;
  let thrown: unknown;
  try {
    result = (socket.receive as (...x: unknown[]) => unknown)(...args.slice(0, c.arity));
  } catch (error) {
    threw = true;
    thrown = error;
  }
  // The documented checks: a Uint8Array arena of at least slotSize * maxDatagrams bytes,
  // slotSize 1..2^20, maxDatagrams 1..1024.
  const isInt = (v: unknown, lo: number, hi: number): v is number =>
    typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;
  const argsValid = c.arity >= 3 && arenaView !== null && isInt(slot, 1, 1 << 20) && isInt(max, 1, 1024) &&
    slot * max <= arenaView.byteLength;
  if (!threw && !argsValid) {
    fail(`receive accepted arena ${c.arena.kind} of ${size} B, slotSize ${String(slot)}, maxDatagrams ${String(max)}, ` +
      `${c.arity} arguments: returned ${JSON.stringify(result)}`);
  }
  let outcome: string;
  let consumed = 0;
  if (threw) {
    const name = errorName(thrown);
    if (name !== 'TypeError' && name !== 'RangeError') fail(`receive threw ${errorText(thrown)}`);
    outcome = `receive ${name}`;
  } else if (typeof result === 'number') {
    if (c.state !== 'open' && result !== EBADF) fail(`receive on a closed socket returned ${errnoName(result)}, not EBADF`);
    if (c.state === 'open' && result === EAGAIN && waiting.length > 0) {
      fail(`receive returned EAGAIN with ${waiting.length} datagrams waiting`);
    }
    if (c.state === 'open' && result !== EAGAIN) fail(`receive on an open socket returned ${errnoName(result)}`);
    outcome = `receive ${errnoName(result)}`;
  } else if (Array.isArray(result)) {
    if (typeof slot !== 'number' || typeof max !== 'number' || arenaView === null) {
      fail(`receive accepted arena ${c.arena.kind}, slot ${String(slot)}, max ${String(max)}`);
    }
    if (result.length === 0 || result.length > max || result.length > waiting.length) {
      fail(`receive returned ${result.length} datagrams (max ${max}, ${waiting.length} waiting)`);
    }
    result.forEach((entry: unknown, i: number) => {
      const d = entry as { offset: number; length: number; truncated: boolean };
      const want = waiting[i] as Uint8Array;
      if (d.offset !== i * slot) fail(`receive: datagram ${i} at offset ${d.offset}, slot size ${slot}`);
      if (d.length !== Math.min(want.byteLength, slot) || d.truncated !== want.byteLength > slot) {
        fail(`receive: datagram ${i} of ${want.byteLength} B reported length ${d.length}, truncated ${String(d.truncated)}`);
      }
      const got = arenaView.subarray(d.offset, d.offset + d.length);
      const problem = compareDatagrams([got], [want.subarray(0, d.length)], 'receive arena');
      if (problem !== null) fail(problem);
    });
    consumed = result.length;
    outcome = 'receive datagrams';
  } else {
    fail(`receive returned ${String(result)}`);
  }
  // Whatever was not read stays queued, in order; read it to leave the probe empty. (Loopback
  // normally delivers inside the send, but the kernel may defer that work to ksoftirqd.)
  const left = waiting.length - consumed;
  if (left > 0 && !probe.waitSync(left, 0)) {
    bump('late arrivals');
    probe.waitSync(left, 500);
  }
  const rest = probe.take();
  const problem = compareDatagrams(rest, waiting.slice(consumed), 'probe after receive');
  if (problem !== null) fail(problem);
  if (c.state !== 'open') socket.close();
  return outcome;
}
