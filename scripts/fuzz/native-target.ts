/**
 * Target "native": the raw binding (lib/binding.ts NativeUdpSocket) called with arbitrary
 * arguments. send(batch, first, count) gets NativeBatch objects (lib/batch.ts) of every shape:
 * well-formed ones; ranges, spans, targets and destination records out of range; typed arrays
 * of the wrong kinds and lengths, at an offset, in a SharedArrayBuffer (one word flipped by
 * another thread while the call copies it) or detached; records of the wrong family, port 0, a
 * reserved byte set, an IPv4 scope id; buffers of every kind in sparse, huge, proxied or frozen
 * arrays; getters on the batch's fields, on buffer elements and on controls that throw, close
 * the socket, detach, shrink or grow a buffer, or send again mid-call; odd windows, flags and
 * controls. receive() gets odd arenas and numbers.
 *
 * Property: the call returns a result or throws an error named TypeError or RangeError (or the
 * very error our own getter threw). Every datagram a result counts as sent arrives, byte for
 * byte as the caller described it before the call, in order, at the receiver its destination
 * record names; a datagram the result lists as failed (continueOnError) is one whose
 * destination may refuse it, with a destination's error, and arrives nowhere; nothing else
 * arrives anywhere. A result for a call that an independent model of the documented checks
 * calls invalid is a failure too. Loopback delivers inside sendmmsg, so the receivers are
 * drained synchronously after each call.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { DESTINATION_RECORD_BYTES, encodeDestination } from '../../lib/batch';
import { binding, type NativeUdpSocket } from '../../lib/binding';
import { BIG_LENGTHS, bufSpecArb, detachBuffer, makeBuffer, VALID_KINDS, type BufSpec, type MadeBuffer } from './buffers';
import {
  compareDatagrams, EAGAIN, EBADF, errnoName, errorName, errorText, fail, GetterError, ReadBudget,
  RECEIVE_BUDGET, segmented, sleepSync, truesize,
  rarely,
} from './common';
import type { TargetDefinition } from './harness';
import { FAST_V4, FAST_V6, openNative, plainBatch, Receiver } from './loopback';

const MAX_PAYLOAD = { 4: 65507, 6: 65527 } as const;
const MAX_DATAGRAMS = 1 << 20;
const MAX_RANGES = 1024;
/** Receive-buffer cost of the well-formed datagrams of one case (keeps a case inside the receive buffer). */
const PAYLOAD_CAP = 100 * 1024;
const INVALID_INDEX = 0xfffffff0;
const { ENOBUFS, EDESTADDRREQ } = os.constants.errno;
/** What the back-ends record for a destination with continueOnError (native/messages_posix.h). */
const DESTINATION_ERRORS = new Set(['EACCES', 'EPERM', 'ENETUNREACH', 'EHOSTUNREACH', 'EHOSTDOWN', 'ENETDOWN',
  'ECONNREFUSED', 'EMSGSIZE', 'EADDRNOTAVAIL', 'EAFNOSUPPORT'].map((name) => os.constants.errno[name as keyof typeof os.constants.errno]));

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

const BATCH_FIELDS = ['buffers', 'ranges', 'spans', 'targets', 'destinations', 'segment', 'continueOnError', 'controls'] as const;
type BatchField = (typeof BATCH_FIELDS)[number];
type Storage = 'plain' | 'offset' | 'sab' | 'racy' | 'detached';
/** How a typed array of the batch is made: built from its words (tampered), of a wrong kind, or absent. */
interface WordsSpec {
  kind: 'built' | 'wrong' | 'null' | 'undefined';
  tamper: { kind: 'none' | 'truncate' | 'append' | 'poke'; n: number; at: number };
  storage: Storage;
  wrong: number;
}
/** A span: its first range as a share of the ranges, its range count; or raw words (a lie). */
interface SpanSpec { at: number; count: number; lie: [number, number] | null }
/** A target: a record of the table (modulo its size), or a raw word. */
interface TargetSpec { pick: number; raw: number | null }
type RecordKind = 'rx' | 'rx2' | 'any' | 'scoped' | 'noListener' | 'unroutable' | 'broadcast' | 'mapped' | 'otherFamily'
  | 'port0' | 'reserved' | 'family0';
interface TableSpec {
  kind: 'built' | 'null' | 'wrong';
  records: RecordKind[];
  /** Bytes past the last whole record (not a multiple of 24 when > 0). */
  tail: number;
  storage: 'plain' | 'offset' | 'sab' | 'detached';
  wrong: number;
}
type WinArg = { mode: 'valid'; pick: number; delta: number } | { mode: 'special'; value: unknown };
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
  ranges: RangeSpec[];
  rangeWords: WordsSpec;
  spans: SpanSpec[];
  spanWords: WordsSpec;
  targets: TargetSpec[];
  targetWords: WordsSpec;
  table: TableSpec;
  shape: 'object' | 'proxy' | 'frozen' | 'notObject';
  notObject: number;
  fieldGetter: { field: BatchField; spec: GetterSpec } | null;
  first: WinArg;
  count: WinArg;
  segment: unknown;
  continueOnError: unknown;
  controls: ControlsSpec;
  arity: number;
  /** Sends per case while the racy word flips. */
  repeat: number;
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
const wordsArb = (nullWeight: number): fc.Arbitrary<WordsSpec> => fc.record({
  kind: fc.oneof(
    { weight: 40, arbitrary: fc.constant('built' as const) },
    { weight: 1, arbitrary: fc.constant('wrong' as const) },
    { weight: nullWeight, arbitrary: fc.constantFrom('null' as const, 'undefined' as const) },
  ),
  tamper: fc.oneof(
    { weight: 24, arbitrary: fc.record({ kind: fc.constant('none' as const), n: fc.constant(0), at: fc.constant(0) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), n: fc.integer({ min: 1, max: 4 }), at: fc.constant(0) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('append' as const), n: fc.integer({ min: 0, max: 0xffffffff }), at: fc.constant(0) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('poke' as const), n: fc.constantFrom(...U32_SPECIAL), at: fc.nat(40) }) },
  ),
  storage: fc.oneof(
    { weight: 40, arbitrary: fc.constant('plain' as const) },
    { weight: 4, arbitrary: fc.constantFrom('offset' as const, 'sab' as const) },
    { weight: 2, arbitrary: fc.constant('racy' as const) },
    { weight: 1, arbitrary: fc.constant('detached' as const) },
  ),
  wrong: fc.integer({ min: 0, max: 8 }),
});
const spanArb: fc.Arbitrary<SpanSpec> = fc.record({
  at: fc.integer({ min: 0, max: 100 }),
  count: fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1, max: 2 }) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 3 }) }),
  lie: rarely(fc.tuple(
    fc.oneof(fc.integer({ min: 0, max: 8 }), fc.constantFrom(...U32_SPECIAL)),
    fc.oneof(fc.integer({ min: 0, max: 4 }), fc.constantFrom(1024, 1025, 0xffffffff)),
  ), 15),
});
const targetArb: fc.Arbitrary<TargetSpec> = fc.record({
  pick: fc.integer({ min: 0, max: 5 }),
  raw: rarely(fc.constantFrom(...U32_SPECIAL, 3, 4), 25),
});
const recordKindArb: fc.Arbitrary<RecordKind> = fc.oneof(
  { weight: 30, arbitrary: fc.constantFrom<RecordKind>('rx', 'rx2') },
  { weight: 4, arbitrary: fc.constantFrom<RecordKind>('any', 'scoped', 'noListener', 'unroutable', 'broadcast', 'mapped') },
  { weight: 2, arbitrary: fc.constantFrom<RecordKind>('otherFamily', 'port0', 'reserved', 'family0') },
);
const tableArb: fc.Arbitrary<TableSpec> = fc.record({
  kind: fc.oneof(
    { weight: 30, arbitrary: fc.constant('built' as const) },
    { weight: 3, arbitrary: fc.constant('null' as const) },
    { weight: 1, arbitrary: fc.constant('wrong' as const) },
  ),
  records: fc.array(recordKindArb, { minLength: 1, maxLength: 4 }),
  tail: fc.oneof({ weight: 30, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 30 }) }),
  storage: fc.oneof(
    { weight: 30, arbitrary: fc.constant('plain' as const) },
    { weight: 3, arbitrary: fc.constantFrom('offset' as const, 'sab' as const) },
    { weight: 1, arbitrary: fc.constant('detached' as const) },
  ),
  wrong: fc.integer({ min: 0, max: 6 }),
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
  ranges: fc.array(rangeArb, { maxLength: 6 }),
  rangeWords: wordsArb(1),
  spans: fc.array(spanArb, { maxLength: 5 }),
  spanWords: wordsArb(1),
  targets: fc.array(targetArb, { maxLength: 6 }),
  targetWords: wordsArb(20),
  table: tableArb,
  shape: fc.oneof(
    { weight: 30, arbitrary: fc.constant('object' as const) },
    { weight: 2, arbitrary: fc.constantFrom('proxy' as const, 'frozen' as const) },
    { weight: 1, arbitrary: fc.constant('notObject' as const) },
  ),
  notObject: fc.nat(5),
  fieldGetter: rarely(fc.record({ field: fc.constantFrom(...BATCH_FIELDS), spec: getterArb }), 6),
  first: winArb(6),
  count: winArb(6),
  segment: fc.oneof({ weight: 30, arbitrary: fc.boolean() }, { weight: 1, arbitrary: fc.constantFrom<unknown>(1, 'yes', undefined, null) }),
  continueOnError: fc.oneof({ weight: 30, arbitrary: fc.boolean() }, { weight: 1, arbitrary: fc.constantFrom<unknown>(0, 'no', undefined) }),
  controls: controlsArb,
  arity: fc.oneof({ weight: 40, arbitrary: fc.constant(3) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 }) }),
  repeat: fc.integer({ min: 1, max: 512 }),
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
// The model of the documented checks (lib/binding.ts send, lib/batch.ts NativeBatch)

/** A datagram of the window: its bytes and the record it targets (-1: the connected remote). */
interface Planned { bytes: Uint8Array; record: number }

/**
 * `datagrams` are those of the window up to the first the checks refuse (all of them when
 * valid). 'unknown': the model cannot tell whether the binding sees an array (a Proxy).
 */
interface Model {
  valid: boolean | 'unknown';
  why: string;
  datagrams: Planned[];
}

interface ModelInput {
  batchIsObject: boolean;
  segment: unknown;
  continueOnError: unknown;
  isArray: boolean | 'unknown';
  arrayLength: number;
  element(index: number): MadeBuffer | undefined;
  ranges: Uint32Array | 'wrong';
  spans: Uint32Array | 'wrong';
  targets: Uint32Array | null | 'wrong';
  table: Uint8Array | null | 'wrong';
  first: unknown;
  count: unknown;
  family: 4 | 6;
}

const isU32 = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff;

/** Why destination record `r` of `table` is not one a socket of `family` sends to, or null. */
function recordProblem(table: Uint8Array, r: number, family: 4 | 6): string | null {
  const at = r * DESTINATION_RECORD_BYTES;
  if (table[at] !== family) return `record ${r} has family ${table[at]}`;
  if (table[at + 1] !== 0) return `record ${r} has a reserved byte set`;
  if (table[at + 2] === 0 && table[at + 3] === 0) return `record ${r} has port 0`;
  if (family === 4 && (table[at + 4]! | table[at + 5]! | table[at + 6]! | table[at + 7]!) !== 0) {
    return `record ${r} is IPv4 with a scope id`;
  }
  return null;
}

function modelSend(m: ModelInput): Model {
  const datagrams: Planned[] = [];
  const refuse = (why: string): Model => ({ valid: false, why, datagrams });
  if (!isU32(m.first)) return refuse('first is not a uint32');
  if (!isU32(m.count) || m.count > MAX_DATAGRAMS) return refuse('count out of range');
  if (!m.batchIsObject) return refuse('batch is not an object');
  if (typeof m.segment !== 'boolean') return refuse('segment is not a boolean');
  if (typeof m.continueOnError !== 'boolean') return refuse('continueOnError is not a boolean');
  if (m.isArray === false) return refuse('buffers is not an array');
  if (m.ranges === 'wrong' || m.spans === 'wrong' || m.targets === 'wrong' || m.table === 'wrong') {
    return refuse('a typed array of the wrong kind');
  }
  const { ranges, spans, targets, table, first, count } = m;
  if (ranges.length % 3 !== 0) return refuse('ranges not in triples');
  if (spans.length % 2 !== 0) return refuse('spans not in pairs');
  if (table !== null && table.length % DESTINATION_RECORD_BYTES !== 0) return refuse('table not in records');
  const rangeTotal = ranges.length / 3;
  const records = table === null ? 0 : table.length / DESTINATION_RECORD_BYTES;
  if (first + count > spans.length / 2) return refuse('window past the spans');
  if (targets !== null) {
    if (table === null) return refuse('targets without destinations');
    if (first + count > targets.length) return refuse('targets shorter than the window');
  }
  if (table !== null && targets === null && records === 0) return refuse('an empty table, no targets');
  // The shape of the window, its buffer indices and its records are checked before any buffer is read.
  for (let d = first; d < first + count; d++) {
    const firstRange = spans[2 * d]!;
    const rangeCount = spans[2 * d + 1]!;
    if (rangeCount > MAX_RANGES) return refuse('more than 1024 ranges');
    if (firstRange + rangeCount > rangeTotal) return refuse('span past the ranges');
    for (let r = firstRange; r < firstRange + rangeCount; r++) {
      if (ranges[3 * r]! >= m.arrayLength) return refuse('buffer index past buffers.length');
    }
    if (table !== null) {
      const record = targets === null ? 0 : targets[d]!;
      if (record >= records) return refuse('target outside the table');
      const problem = recordProblem(table, record, m.family);
      if (problem !== null) return refuse(problem);
    }
  }
  const max = MAX_PAYLOAD[m.family];
  for (let d = first; d < first + count; d++) {
    const firstRange = spans[2 * d]!;
    const rangeCount = spans[2 * d + 1]!;
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let r = firstRange; r < firstRange + rangeCount; r++) {
      const index = ranges[3 * r]!;
      const offset = ranges[3 * r + 1]!;
      const length = ranges[3 * r + 2]!;
      const b = m.element(index);
      if (b === undefined || !b.isU8) return refuse(`buffer ${index} is not a Uint8Array`);
      // A view whose memory is gone is refused: the bytes it described never go out.
      if (b.gone) return refuse(`buffer ${index} has no memory`);
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
    datagrams.push({ bytes: out, record: table === null ? -1 : targets === null ? 0 : targets[d]! });
  }
  return { valid: m.isArray === 'unknown' ? 'unknown' : true, why: '', datagrams };
}

// ---------------------------------------------------------------------------------------------
// The target

interface Env {
  rx: { 4: Receiver; 6: Receiver | null };
  rx2: { 4: Receiver; 6: Receiver | null };
  inner: { 4: Receiver; 6: Receiver | null };
  probe: { 4: Receiver; 6: Receiver | null };
  innerSender: NativeUdpSocket;
  feeder: { 4: NativeUdpSocket; 6: NativeUdpSocket | null };
  anyReaches: { 4: boolean; 6: boolean };
  flipper: Flipper | null;
}

/** A batch of whole datagrams to one address, as the library builds it. */
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

  /** The first `values.length` words of the shared region, holding `values`. */
  shared(values: readonly number[]): Uint32Array {
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

export interface NativeTargetOptions {
  isolated: boolean;
  ipv6: boolean;
  lifetimeMs: number;
  exclude: ReadonlySet<string>;
}

export function nativeTarget(options: NativeTargetOptions): TargetDefinition<NativeCase> {
  const v6 = (): Receiver | null => (options.ipv6 ? new Receiver(FAST_V6, 6) : null);
  const env: Env = {
    rx: { 4: new Receiver(FAST_V4, 4), 6: v6() },
    rx2: { 4: new Receiver(FAST_V4, 4), 6: v6() },
    inner: { 4: new Receiver(FAST_V4, 4), 6: v6() },
    probe: { 4: new Receiver(FAST_V4, 4), 6: v6() },
    innerSender: openNative(4),
    feeder: { 4: openNative(4), 6: options.ipv6 ? openNative(6) : null },
    anyReaches: { 4: false, 6: false },
    flipper: options.exclude.has('racy') ? null : new Flipper(options.lifetimeMs),
  };
  const receivers = (): Receiver[] => [env.rx[4], env.rx[6], env.rx2[4], env.rx2[6], env.inner[4], env.inner[6],
    env.probe[4], env.probe[6]].filter((r): r is Receiver => r !== null);
  // Does a datagram to 0.0.0.0 (::) reach 127.0.0.1 (::1) here (Linux: yes)? Measured, not assumed.
  for (const family of [4, 6] as const) {
    const feeder = env.feeder[family];
    const receiver = env.rx[family];
    if (feeder === null || receiver === null) continue;
    feeder.send(plainBatch([Uint8Array.of(1)], family, family === 4 ? '0.0.0.0' : '::', receiver.port), 0, 1);
    env.anyReaches[family] = receiver.waitSync(1, 100);
    receiver.take();
  }

  const budget = new ReadBudget(100000);
  const figures: Record<string, number> = {
    'model valid': 0, 'model unknown': 0, 'valid but refused': 0, 'datagrams verified': 0,
    'bytes verified': 0, 'failures verified': 0, 'racy sends': 0, 'mid-call mutations': 0, 'late arrivals': 0,
    'receive cases': 0,
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
      : racyArray(c) !== null ? 'send-racy' : 'send'),
    run: (c) => {
      try {
        return c.op === 'receive' ? runReceive(c, env, bump) : runSend(c, env, budget, bump);
      } catch (error) {
        // A failed case may leave datagrams behind: they must not count against the next one.
        for (const r of receivers()) r.take();
        throw error;
      }
    },
    figures: () => {
      // Loopback never loses a datagram unless a receive buffer overflows: this must stay 0.
      let drops = 0;
      for (const r of receivers()) drops += Math.max(0, r.drops());
      return { ...figures, 'receiver drops': drops };
    },
    close: async () => {
      await env.flipper?.close();
      for (const r of receivers()) r.close();
      env.innerSender.close();
      env.feeder[4].close();
      env.feeder[6]?.close();
    },
  };
}

/** The one typed array of a send case whose word another thread flips, if any. */
function racyArray(c: SendCase): 'ranges' | 'spans' | 'targets' | null {
  if (c.rangeWords.kind === 'built' && c.rangeWords.storage === 'racy') return 'ranges';
  if (c.spanWords.kind === 'built' && c.spanWords.storage === 'racy') return 'spans';
  if (c.targetWords.kind === 'built' && c.targetWords.storage === 'racy') return 'targets';
  return null;
}

/** Keeps cases to what this run can do (no IPv6 here, nothing unroutable outside a namespace). */
function sanitize(c: NativeCase, options: NativeTargetOptions, exclude: ReadonlySet<string>): NativeCase {
  if (!options.ipv6 && c.family === 6) c = { ...c, family: 4 };
  if (c.op === 'send') {
    if (!options.isolated && c.table.records.includes('unroutable')) {
      c = { ...c, table: { ...c.table, records: c.table.records.map((k) => (k === 'unroutable' ? 'noListener' : k)) } };
    }
    if (exclude.has('huge') && c.array.shape === 'huge') c = { ...c, array: { ...c.array, shape: 'sparse' } };
    // One racy array per case (the flipper flips one word), none when racing is off.
    const racy = exclude.has('racy') ? null : racyArray(c);
    const calm = (w: WordsSpec, name: string): WordsSpec => (w.storage === 'racy' && name !== racy ? { ...w, storage: 'sab' } : w);
    c = { ...c, rangeWords: calm(c.rangeWords, 'ranges'), spanWords: calm(c.spanWords, 'spans'), targetWords: calm(c.targetWords, 'targets') };
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

const WRONG_WORDS = (words: number[]): unknown[] => [Int32Array.from(words), words, Uint8Array.from(words),
  Float64Array.from(words), BigUint64Array.from(words.map((w) => BigInt(w))), new DataView(Uint32Array.from(words).buffer), 42,
  'words', {}];

function runSend(c: SendCase, env: Env, budget: ReadBudget, bump: (key: string, by?: number) => void): string {
  budget.reset();
  const family = c.family;
  const rx = env.rx[family] as Receiver;
  const rx2 = env.rx2[family] as Receiver;
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
        const to = (env.inner[sameFamily] ?? inner);
        const datagram = Uint8Array.of(0x49, 0x4e, g.target, g.keep);
        try {
          const r = socket.send(plainBatch([datagram], sameFamily, to.address, to.port), 0, 1);
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

  // A racy batch is well-formed apart from the flipped word: the race is what it tests.
  const racyName = racyArray(c);
  const clean = racyName !== null && env.flipper !== null && made.length > 0;
  const tamper = (words: number[], spec: WordsSpec): number[] => {
    const out = [...words];
    if (clean) return out;
    if (spec.tamper.kind === 'truncate') out.splice(Math.max(0, out.length - spec.tamper.n));
    if (spec.tamper.kind === 'append') out.push(spec.tamper.n);
    if (spec.tamper.kind === 'poke' && out.length > 0) out[spec.tamper.at % out.length] = spec.tamper.n;
    return out;
  };

  // Ranges, over the made buffers; each one's bytes when it lies inside its buffer.
  const rangeWords: number[] = [];
  const rangeBytes: number[] = [];
  for (const spec of c.ranges) {
    const r: RangeSpec = clean ? {
      elem: spec.elem % made.length,
      off: { f: spec.off.f, d: 0, raw: null },
      len: { f: spec.len.f, d: 0, raw: null },
    } : spec;
    const index = r.elem >= 0x100 ? r.elem : base + r.elem;
    const length = made[r.elem]?.length ?? 0;
    const offset = r.off.raw ?? Math.floor((r.off.f * length) / 100) + r.off.d;
    const room = Math.max(0, length - Math.max(0, offset));
    const take = r.len.raw ?? Math.floor((r.len.f * room) / 100) + r.len.d;
    rangeWords.push(index >>> 0, offset >>> 0, take >>> 0);
    rangeBytes.push(offset >= 0 && take >= 0 && offset <= length && take <= length - offset ? take : 0);
  }
  // Spans: mostly over the ranges there are; a lie now and then. Spans may share ranges, so the
  // bytes of a case are bounded span by span (the receive buffers must hold them).
  const rangeTotal = c.ranges.length;
  const spanWords: number[] = [];
  let cost = 0;
  for (const s of c.spans) {
    const [firstRange, lyingCount] = s.lie !== null && !clean ? s.lie
      : [s.at % (rangeTotal + 1), 0];
    let rangeCount = lyingCount;
    if (s.lie === null || clean) rangeCount = Math.min(s.count, rangeTotal - firstRange);
    let bytes = 0;
    for (let r = firstRange; r < Math.min(rangeTotal, firstRange + rangeCount); r++) bytes += rangeBytes[r] ?? 0;
    if (cost + truesize(bytes) > PAYLOAD_CAP) {
      rangeCount = 0;
      bytes = 0;
    }
    cost += truesize(bytes);
    spanWords.push(firstRange >>> 0, rangeCount >>> 0);
  }
  const n = c.spans.length;

  // The destination table.
  const t = c.table;
  const kinds = t.records.map((k): RecordKind => (clean && ['otherFamily', 'port0', 'reserved', 'family0'].includes(k) ? 'rx' : k));
  const tableBytes = new Uint8Array(kinds.length * DESTINATION_RECORD_BYTES + (clean ? 0 : t.tail));
  kinds.forEach((kind, i) => tableBytes.set(recordOf(kind, family, rx, rx2), i * DESTINATION_RECORD_BYTES));
  const records = kinds.length;
  const anySourceIs = (address: string): boolean => {
    const source = c.controls.kind === 'object' ? c.controls.fields.sourceAddress : undefined;
    return typeof source !== 'string' || source === '' || source === address;
  };
  const reachOf = (record: number): Receiver | null => {
    if (record < 0) return c.sender === 'connected' ? rx : null;
    switch (kinds[record]) {
      case 'rx': return rx;
      case 'rx2': return rx2;
      // Linux sends to 0.0.0.0 (or ::) at the source address: with another source address given
      // (127.0.0.2), the datagram goes there, where nothing listens.
      case 'any': return env.anyReaches[family] && anySourceIs(rx.address) ? rx : null;
      case 'scoped': return family === 6 ? rx : null; // a scope id is ignored for ::1 (not link-local)
      default: return null;
    }
  };
  const mayFail = (record: number): boolean =>
    ['broadcast', 'mapped', 'unroutable'].includes(kinds[record] ?? '');

  // The window.
  const valueOf = (arg: WinArg, valid: number): unknown => (arg.mode === 'special' ? arg.value : valid + arg.delta);
  const pickFirst = c.first.mode === 'valid' ? Math.min(c.first.pick, n) : 0;
  const first = clean ? pickFirst : valueOf(c.first, pickFirst);
  const count = clean ? n - pickFirst : valueOf(c.count, n - pickFirst);

  // Targets: per datagram, a record of the table (or a raw word now and then).
  const targetWords = Array.from({ length: n }, (_, i) => {
    const spec = c.targets[i] ?? { pick: i, raw: null };
    return spec.raw !== null && !clean ? spec.raw : records === 0 ? spec.pick : spec.pick % records;
  });

  // The typed arrays, each of its storage.
  let racy: { at: number; valid: number } | null = null;
  const makeWords = (name: 'ranges' | 'spans' | 'targets', words: number[], spec: WordsSpec): { value: unknown; model: Uint32Array | null | 'wrong' } => {
    const kind = clean && name !== 'targets' ? 'built' : spec.kind;
    if (kind === 'null' || kind === 'undefined') {
      return { value: kind === 'null' ? null : undefined, model: name === 'targets' ? null : 'wrong' };
    }
    const tampered = tamper(words, spec);
    if (kind === 'wrong') {
      const wrongs = WRONG_WORDS(tampered);
      return { value: wrongs[spec.wrong % wrongs.length], model: 'wrong' };
    }
    const u32 = Uint32Array.from(tampered);
    switch (spec.storage) {
      case 'plain':
        return { value: u32, model: u32 };
      case 'offset': {
        const bigger = new Uint32Array(tampered.length + 3);
        bigger.set(tampered, 3);
        return { value: bigger.subarray(3), model: u32 };
      }
      case 'sab': {
        const shared = new Uint32Array(new SharedArrayBuffer(4 * Math.max(1, tampered.length)), 0, tampered.length);
        shared.set(tampered);
        return { value: shared, model: u32 };
      }
      case 'racy': {
        const flipper = env.flipper;
        // The word flipped is one the window's first datagram needs: a buffer index, a first
        // range, a target. Its invalid value is refused wherever the copy catches it.
        const start = isU32(first) ? first : 0;
        const at = name === 'targets' ? start
          : name === 'spans' ? 2 * start
            : 3 * (spanWords[2 * start] ?? 0);
        const usable = flipper !== null && racy === null && tampered.length <= 4096 && at < tampered.length &&
          (name !== 'ranges' || (spanWords[2 * start + 1] ?? 0) > 0);
        if (!usable || flipper === null) return { value: u32, model: u32 };
        racy = { at, valid: tampered[at]! };
        return { value: flipper.shared(tampered), model: u32 };
      }
      case 'detached': {
        const copy = Uint32Array.from(tampered);
        detachBuffer(copy.buffer);
        return { value: copy, model: new Uint32Array(0) };
      }
    }
  };
  const rangesArg = makeWords('ranges', rangeWords, c.rangeWords);
  const spansArg = makeWords('spans', spanWords, c.spanWords);
  const targetsArg = makeWords('targets', targetWords, c.targetWords);
  let tableValue: unknown = null;
  let tableModel: Uint8Array | null | 'wrong' = null;
  if (t.kind === 'built' || clean) {
    tableModel = tableBytes;
    switch (t.storage) {
      case 'plain': tableValue = tableBytes; break;
      case 'offset': {
        const bigger = new Uint8Array(tableBytes.length + 5);
        bigger.set(tableBytes, 5);
        tableValue = bigger.subarray(5);
        break;
      }
      case 'sab': {
        const shared = new Uint8Array(new SharedArrayBuffer(Math.max(1, tableBytes.length)), 0, tableBytes.length);
        shared.set(tableBytes);
        tableValue = shared;
        break;
      }
      case 'detached': {
        const copy = Uint8Array.from(tableBytes);
        detachBuffer(copy.buffer);
        tableValue = copy;
        tableModel = new Uint8Array(0);
        break;
      }
    }
  } else if (t.kind === 'wrong') {
    const wrongs: unknown[] = [new Uint32Array(tableBytes.buffer, 0, tableBytes.length >> 2), new Uint8ClampedArray(tableBytes),
      tableBytes.buffer, Array.from(tableBytes), 'destinations', {}, 42];
    tableValue = wrongs[t.wrong % wrongs.length];
    tableModel = 'wrong';
  }

  const modelOf = (elementAt: (index: number) => MadeBuffer | undefined): Model => modelSend({
    batchIsObject: c.shape !== 'notObject', segment: c.segment, continueOnError: c.continueOnError,
    isArray, arrayLength, element: elementAt, ranges: rangesArg.model as Uint32Array | 'wrong',
    spans: spansArg.model as Uint32Array | 'wrong', targets: targetsArg.model, table: tableModel, first, count,
    // A socket never opened has no family of its own: the addon checks its batches as IPv4.
    family: c.sender === 'unopened' ? 4 : family,
  });
  const model0 = modelOf(element);

  // Controls.
  const ctl = c.controls;
  const fields = { ...ctl.fields };
  let controls: unknown;
  // Explicit segments multiply datagrams: drop the segment size when the receiver could overflow.
  if (typeof fields.segmentSize === 'number') {
    const arriving = segmented(model0.datagrams.map((d) => d.bytes), fields.segmentSize);
    let bytes = 0;
    for (const d of arriving) bytes += truesize(d.byteLength);
    if (bytes > RECEIVE_BUDGET) delete fields.segmentSize;
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
  const segmentSize = ctl.kind === 'object' && typeof fields.segmentSize === 'number' ? fields.segmentSize : undefined;
  // A source address or an interface may make any destination refuse (EADDRNOTAVAIL, ...).
  const anyMayFail = ctl.kind === 'object' && (fields.sourceAddress !== undefined || fields.interfaceIndex !== undefined);

  // The batch object.
  const batchFields: Record<BatchField, unknown> = {
    buffers: array, ranges: rangesArg.value, spans: spansArg.value, targets: targetsArg.value, destinations: tableValue,
    segment: c.segment, continueOnError: c.continueOnError, controls,
  };
  const object: Record<string, unknown> = { ...batchFields };
  const fieldGetter = c.fieldGetter;
  if (fieldGetter !== null) {
    const value = batchFields[fieldGetter.field];
    Object.defineProperty(object, fieldGetter.field, {
      get() {
        act(fieldGetter.spec);
        return value;
      },
      enumerable: true,
      configurable: true,
    });
  }
  let batch: unknown = object;
  if (c.shape === 'proxy') batch = new Proxy(object, {});
  if (c.shape === 'frozen') batch = Object.freeze(object);
  if (c.shape === 'notObject') batch = [null, undefined, 42, 'batch', true, 10n][c.notObject % 6];

  const args: unknown[] = [batch, first, count];
  const call = (): { result?: unknown; thrown?: unknown; threw: boolean } => {
    try {
      return { result: (sender.send as (...x: unknown[]) => unknown)(...args.slice(0, c.arity)), threw: false };
    } catch (error) {
      return { thrown: error, threw: true };
    }
  };

  const hugeBefore = c.array.shape === 'huge' ? process.memoryUsage.rss() : 0;
  const race = racy as { at: number; valid: number } | null;
  const sends = race !== null ? c.repeat : 1;
  let outcome = '';
  try {
    for (let s = 0; s < sends; s++) {
      if (race !== null) {
        bump('racy sends');
        env.flipper?.start(race.at, race.valid);
      }
      const attempt = call();
      if (race !== null) {
        env.flipper?.stop();
        if (!attempt.threw) bump('racy sends accepted');
      }
      const remodel = (): Model => modelOf((index) => {
        const m = element(index);
        if (m === undefined || !effects.grownSet.has(made.indexOf(m))) return m;
        const bytes = m.now();
        return { ...m, content: bytes, length: bytes.byteLength };
      });
      outcome = checkSend(c, attempt, {
        model: effects.grown ? remodel() : model0, effects, budget, reachOf, mayFail, anyMayFail, segmentSize, env,
        first: isU32(first) ? first : 0, bump,
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

/** The 24-byte record of a destination of `kind` for a socket of `family`. */
function recordOf(kind: RecordKind, family: 4 | 6, rx: Receiver, rx2: Receiver): Uint8Array {
  const record = new Uint8Array(DESTINATION_RECORD_BYTES);
  const put = (address: string, port: number, scopeId = 0): void =>
    encodeDestination({ family, address, port, scopeId }, record, 0);
  const v4 = family === 4;
  switch (kind) {
    case 'rx': put(rx.address, rx.port); break;
    case 'rx2': put(rx2.address, rx2.port); break;
    case 'any': put(v4 ? '0.0.0.0' : '::', rx.port); break;
    case 'scoped': put(rx.address, rx.port); record[4] = 1; break;
    case 'noListener': put(v4 ? '127.0.0.3' : '::1', 9); break;
    case 'unroutable': put(v4 ? '198.18.0.1' : 'fd00::1', 9); break;
    // Without SO_BROADCAST: EACCES. IPv6 has no broadcast: a v4-mapped address on an IPv6-only
    // socket (ENETUNREACH) instead, both ways round.
    case 'broadcast':
    case 'mapped':
      if (v4) put('127.255.255.255', rx.port);
      else put('::ffff:127.0.0.1', rx.port);
      break;
    case 'otherFamily': put(rx.address, rx.port); record[0] = v4 ? 6 : 4; break;
    case 'port0': put(rx.address, rx.port); record[2] = 0; record[3] = 0; break;
    case 'reserved': put(rx.address, rx.port); record[1] = 1; break;
    case 'family0': put(rx.address, rx.port); record[0] = 0; break;
  }
  return record;
}

interface CheckContext {
  model: Model;
  effects: Effects;
  budget: ReadBudget;
  reachOf(record: number): Receiver | null;
  mayFail(record: number): boolean;
  anyMayFail: boolean;
  segmentSize: number | undefined;
  env: Env;
  first: number;
  bump: (key: string, by?: number) => void;
}

/** Datagrams on the wire for one of `length` bytes (native/segmentation.cc RecordSent). */
function wireSegments(length: number, segmentSize: number | undefined): number {
  return segmentSize !== undefined && length > segmentSize ? Math.ceil(length / segmentSize) : 1;
}

function checkSend(c: SendCase, attempt: { result?: unknown; thrown?: unknown; threw: boolean }, x: CheckContext): string {
  const { model, effects } = x;
  if (x.budget.exceeded) fail('the native send kept reading getters past the step bound (a loop)');
  let outcome: string;
  let sent: Planned[] = [];
  if (attempt.threw) {
    const name = errorName(attempt.thrown);
    if (effects.ownErrors.has(attempt.thrown)) {
      outcome = 'threw the getter\'s own error';
    } else if (name === 'TypeError' || name === 'RangeError') {
      outcome = name;
    } else {
      fail(`send threw ${errorText(attempt.thrown)} (only TypeError/RangeError are allowed)`);
    }
    if (model.valid === true && !effects.mutated && !effects.closed && c.arity === 3) x.bump('valid but refused');
  } else {
    const r = attempt.result;
    if (typeof r !== 'object' || r === null) fail(`send returned ${String(r)}, not a result object`);
    const { datagrams, bytes, segments, errno, syscall, wouldBlock, failures } = r as Record<string, unknown>;
    if (typeof datagrams !== 'number' || typeof bytes !== 'number' || typeof segments !== 'number' ||
      typeof errno !== 'number' || typeof syscall !== 'string' || typeof wouldBlock !== 'boolean' ||
      !(failures === null || Array.isArray(failures))) {
      fail(`send returned a malformed result ${JSON.stringify(r)}`);
    }
    // A buffer shrunk or grown mid-call may turn a refused call into one the binding takes: then
    // only the datagrams before the first refused one may count as sent.
    const changed = effects.mutated || effects.grown;
    if (model.valid === false && !changed) {
      fail(`send accepted a call the documented checks refuse (${model.why}): ${JSON.stringify(r)}`);
    }
    x.bump(model.valid === true ? 'model valid' : model.valid === false ? 'model refused, changed mid-call' : 'model unknown');
    if ((failures !== null) !== (c.continueOnError === true)) {
      fail(`send returned failures ${JSON.stringify(failures)} with continueOnError ${String(c.continueOnError)}`);
    }
    const window = model.datagrams.length;
    const list = (failures ?? []) as unknown[];
    if (list.length % 2 !== 0) fail(`failures ${JSON.stringify(list)} are not [index, errno] pairs`);
    const failed = new Set<number>();
    let previous = -1;
    for (let i = 0; i < list.length; i += 2) {
      const index = list[i];
      const error = list[i + 1];
      if (typeof index !== 'number' || typeof error !== 'number' || !Number.isInteger(index) || index <= previous ||
        index < x.first || index >= x.first + window) {
        fail(`failures ${JSON.stringify(list)}: entry ${i / 2} is not an increasing batch index of the window`);
      }
      if (!DESTINATION_ERRORS.has(error)) fail(`failure of datagram ${index} is ${errnoName(error)}, not a destination's error`);
      const record = model.datagrams[index - x.first]!.record;
      if (!x.anyMayFail && !x.mayFail(record)) {
        fail(`datagram ${index} failed with ${errnoName(error)}, but its destination (record ${record}) cannot refuse it`);
      }
      failed.add(index - x.first);
      previous = index;
    }
    const processed = datagrams + failed.size;
    if (!Number.isInteger(datagrams) || datagrams < 0 || processed > window) {
      fail(`send reported ${datagrams} datagrams sent and ${failed.size} failed; ${model.valid === false ? 'at most' : 'the window holds'} ${window}`);
    }
    if (previous >= x.first + processed) fail(`a failure (${previous}) lies past the datagrams the send went through (${processed})`);
    if (errno === 0 && processed !== window) fail(`send reported errno 0 after ${processed} of ${window} datagrams`);
    // (An empty window on a closed socket still says EBADF.)
    if (errno !== 0 && processed >= window && window > 0) fail(`send reported ${errnoName(errno)} after going through the whole window`);
    if ((errno === 0) !== (syscall === '')) fail(`send reported errno ${errnoName(errno)} with syscall ${JSON.stringify(syscall)}`);
    if (wouldBlock !== (errno === EAGAIN || errno === ENOBUFS)) fail(`send reported wouldBlock ${String(wouldBlock)} with ${errnoName(errno)}`);
    if (errno !== 0 && DESTINATION_ERRORS.has(errno) && !x.anyMayFail && !x.mayFail(model.datagrams[processed]!.record)) {
      fail(`send stopped with ${errnoName(errno)} at a datagram whose destination cannot refuse it`);
    }
    if (errno === EDESTADDRREQ && model.datagrams[processed]!.record >= 0) fail('EDESTADDRREQ for a datagram with a destination');
    sent = model.datagrams.slice(0, processed).filter((_, i) => !failed.has(i));
    const expectedBytes = sent.reduce((sum, d) => sum + d.bytes.byteLength, 0);
    if (bytes !== expectedBytes) fail(`send reported ${bytes} bytes for ${datagrams} datagrams that hold ${expectedBytes}`);
    const expectedSegments = sent.reduce((sum, d) => sum + wireSegments(d.bytes.byteLength, x.segmentSize), 0);
    if (segments !== expectedSegments) fail(`send reported ${segments} segments; the datagrams sent make ${expectedSegments}`);
    if (effects.closed && datagrams > 0) fail(`send reported ${datagrams} datagrams sent on a socket closed mid-call`);
    if (failed.size > 0) x.bump('failures verified', failed.size);
    outcome = errno === 0 ? (datagrams > 0 ? 'result sent' : failed.size > 0 ? 'result all failed' : 'result empty')
      : `result ${errnoName(errno)}`;
    if (errno === EBADF && (c.sender === 'open' || c.sender === 'connected') && !effects.closed) fail('send reported EBADF on an open socket');
  }

  // What arrived where.
  const expectAt = new Map<Receiver, Uint8Array[]>();
  const expect = (receiver: Receiver, datagrams: Uint8Array[]): void => {
    expectAt.set(receiver, [...(expectAt.get(receiver) ?? []), ...datagrams]);
  };
  for (const i of effects.inner) expect(i.receiver, [i.datagram]);
  for (const d of sent) {
    const receiver = x.reachOf(d.record);
    if (receiver !== null) expect(receiver, segmented([d.bytes], x.segmentSize));
  }
  const all = [x.env.rx[4], x.env.rx[6], x.env.rx2[4], x.env.rx2[6], x.env.inner[4], x.env.inner[6]]
    .filter((r): r is Receiver => r !== null);
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
    const r = feeder.send(plainBatch(waiting, family, probe.address, probe.port), 0, waiting.length);
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
      detachBuffer(d.buffer);
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

