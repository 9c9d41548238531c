/**
 * The native layer checks every length, offset, index and count itself: the raw binding is
 * called with values the TypeScript layer would never pass. A bad call must throw a
 * TypeError/RangeError (made by the addon in another realm, so matched by `name`, never by
 * `instanceof`) and send nothing; a good one must send exactly the bytes its batch describes.
 *
 * The native send is `send(batch, first, count)` (lib/binding.ts): datagrams [first, first +
 * count) of a NativeBatch (lib/batch.ts: buffers, ranges, spans, targets, destinations, ...).
 * native-batch.test.ts walks the reader's checks one by one; this file holds the buffer kinds,
 * the controls, views, a property test against an independent model, and getters.
 */
import { execFile } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import type { NativeBatch, NativeSendResult } from '../../lib/batch';
import { binding, type NativeControls, type NativeUdpSocket } from '../../lib/binding';
import { patterned, type Receiver } from './receiver';
import { useNativeResources } from './native-resources';
import {
  destinationRecord, ERROR_NAMES, expectNativeThrow, expectSameDatagrams, piecesBatch, rawBatch, RECORD_BYTES, v4,
  wholeBatch,
} from './raw-batch';

const { EDESTADDRREQ } = os.constants.errno;
const MAX_V4 = 65507;
const MAX_DATAGRAMS = 2 ** 20;
const MAX_RANGES = 1024;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

type SendReturn = NativeSendResult;

// ---------------------------------------------------------------------------------------------
// Per-test resources, closed in afterEach even when the test fails.

const { openNative, receiverOf } = useNativeResources();

/** Whole buffers to 127.0.0.1:port, the whole window. */
function sendAll(native: NativeUdpSocket, buffers: readonly Uint8Array[], port: number, controls?: NativeControls): SendReturn {
  return native.send(wholeBatch(buffers, { destinations: [v4(port)], controls }), 0, buffers.length);
}

const MARKER = Uint8Array.from([0x4d, 0x41, 0x52, 0x4b, 0x45, 0x52]); // "MARKER"

/**
 * Proves that nothing went out before: sends a marker datagram from the same socket and waits
 * for it. Loopback keeps one socket's datagrams in order, so anything an earlier call had sent
 * would arrive first.
 */
async function expectNothingBeforeMarker(native: NativeUdpSocket, receiver: Receiver): Promise<void> {
  expect(sendAll(native, [MARKER], receiver.port)).toMatchObject({ datagrams: 1, bytes: MARKER.byteLength, errno: 0 });
  await receiver.waitFor(1, 2000);
  await sleep(5);
  expectSameDatagrams(receiver.received, [MARKER]);
}

// ---------------------------------------------------------------------------------------------

describe('native send refuses bad buffers and controls, and sends nothing', () => {
  const ten = (): Uint8Array => patterned(1, 10);
  // Each case: the batch (one datagram to the receiver), given the receiver's port.
  const withControls = (port: number, controls: unknown): NativeBatch =>
    rawBatch({ ...wholeBatch([ten()], { destinations: [v4(port)] }), controls });
  const cases: Array<[string, (port: number) => NativeBatch]> = [
    ['controls that are a number', (p) => withControls(p, 5)],
    ['controls that are a string', (p) => withControls(p, 'tos')],
    ['controls.tos 256', (p) => withControls(p, { tos: 256 })],
    ['controls.tos -1', (p) => withControls(p, { tos: -1 })],
    ['controls.tos as a string', (p) => withControls(p, { tos: '1' })],
    ['controls.ttl 0', (p) => withControls(p, { ttl: 0 })],
    ['controls.ttl 256', (p) => withControls(p, { ttl: 256 })],
    ['controls.ttl 1.5', (p) => withControls(p, { ttl: 1.5 })],
    ['controls.interfaceIndex -1', (p) => withControls(p, { interfaceIndex: -1 })],
    ['controls.interfaceIndex 2^32', (p) => withControls(p, { interfaceIndex: 2 ** 32 })],
    ['controls.segmentSize 0', (p) => withControls(p, { segmentSize: 0 })],
    ['controls.segmentSize 65528', (p) => withControls(p, { segmentSize: 65528 })],
    ['controls.segmentSize NaN', (p) => withControls(p, { segmentSize: NaN })],
    ['controls.sourceAddress of the other family', (p) => withControls(p, { sourceAddress: '::1' })],
    ['controls.sourceAddress that is not an IP literal', (p) => withControls(p, { sourceAddress: 'localhost' })],
    ['controls.sourceAddress that is a number', (p) => withControls(p, { sourceAddress: 1 })],
    ['controls.sourceAddress with an embedded NUL', (p) => withControls(p, { sourceAddress: '127.0.0.1\0junk' })],
    ['controls.sourceAddress of 200 characters', (p) => withControls(p, { sourceAddress: '1'.repeat(200) })],
  ];

  test.each(cases)('%s', async (_name, makeBatch) => {
    const receiver = await receiverOf('udp4');
    const native = openNative(4);
    expectNativeThrow(() => native.send(makeBatch(receiver.port), 0, 1));
    await expectNothingBeforeMarker(native, receiver);
  });

  const notUint8: Array<[string, unknown]> = [
    ['a Uint16Array', new Uint16Array(5)],
    ['a Uint8ClampedArray', new Uint8ClampedArray(10)],
    ['an Int8Array', new Int8Array(10)],
    ['a DataView', new DataView(new ArrayBuffer(10))],
    ['an ArrayBuffer', new ArrayBuffer(10)],
    ['a string', 'abcdefghij'],
    ['a number', 10],
    ['null', null],
    ['an array of bytes', [1, 2, 3]],
    ['an object with a Uint8Array prototype', Object.create(Uint8Array.prototype) as unknown],
  ];

  test.each(notUint8)('a buffer that is %s is refused, alone and after a good datagram', async (_name, value) => {
    const receiver = await receiverOf('udp4');
    const native = openNative(4);
    const good = patterned(1, 10);
    const to = { destinations: [v4(receiver.port)] };
    expectNativeThrow(() => native.send(piecesBatch([good, value], [[[0, 0, 10]], [[1, 0, 1]]], to), 0, 2));
    expectNativeThrow(() => native.send(piecesBatch([good, value], [[[0, 0, 10], [1, 0, 0]]], to), 0, 1));
    await expectNothingBeforeMarker(native, receiver);
  });
});

describe('a subarray view is bounded by the view, not by its ArrayBuffer', () => {
  function view(): { backing: Uint8Array; part: Uint8Array } {
    const backing = patterned(9, 1000);
    const part = backing.subarray(100, 200); // byteOffset 100, 100 bytes
    return { backing, part };
  }

  test.each([
    ['offset + length inside the ArrayBuffer, past the view', 50, 60],
    ['offset == view length, length 1', 100, 1],
    ['offset past the view end, length 0', 101, 0],
    ['offset 0, length = view length + 1', 0, 101],
    ['an offset near 2^32 that wraps back onto the view', 0xffffff9c, 110], // -100 + 110 in 32 bits
  ])('%s: throws', async (_name, offset, length) => {
    const receiver = await receiverOf('udp4');
    const native = openNative(4);
    const { part } = view();
    expect(part.byteOffset).toBe(100);
    expectNativeThrow(() => native.send(piecesBatch([part], [[[0, offset, length]]], { destinations: [v4(receiver.port)] }), 0, 1));
    await expectNothingBeforeMarker(native, receiver);
  });

  test('a pooled Buffer (byteOffset into the shared pool) cannot be read past its end', async () => {
    const receiver = await receiverOf('udp4');
    const native = openNative(4);
    const small = Buffer.from('abc');
    const to = { destinations: [v4(receiver.port)] };
    expectNativeThrow(() => native.send(piecesBatch([small], [[[0, 0, 4]]], to), 0, 1));
    expectNativeThrow(() => native.send(piecesBatch([small], [[[0, 3, 200]]], to), 0, 1));
    await expectNothingBeforeMarker(native, receiver);
  });

  test('a valid batch sends the bytes of the view (byteOffset honoured)', async () => {
    const receiver = await receiverOf('udp4');
    const native = openNative(4);
    const { backing, part } = view();
    const batch = piecesBatch([part, part], [[[0, 10, 20]], [[1, 95, 5], [0, 0, 3]]], { destinations: [v4(receiver.port)] });
    expect(native.send(batch, 0, 2)).toMatchObject({ datagrams: 2, bytes: 28, errno: 0 });
    expect(sendAll(native, [part], receiver.port)).toMatchObject({ datagrams: 1, bytes: 100, errno: 0 });
    // Expected bytes from the backing buffer, the view's offset added by hand.
    expectSameDatagrams(await receiver.waitFor(3, 2000), [
      backing.slice(110, 130),
      Buffer.concat([backing.slice(195, 200), backing.slice(100, 103)]),
      backing.slice(100, 200),
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// Property: random buffers, ranges, spans, targets, destination tables and windows. An
// independent model of the documented batch (lib/batch.ts NativeBatch, lib/binding.ts send)
// says which calls are valid and what each receiver gets; the native call must agree.

const RECEIVERS = 3;
type RecordSpec = { rx: number; corrupt: 'none' | 'family' | 'port' | 'reserved' | 'scope' };

interface CaseInput {
  /** Fold every index, offset, length, span and target into range (mostly valid batches). */
  coherent: boolean;
  /** With `coherent`: ranges no span names hold garbage (the reader must not look at them). */
  garble: boolean;
  buffers: Uint8Array[];
  ranges: Array<[number, number, number]>;
  rangesExtra: number;
  spans: Array<[number, number]>;
  spansExtra: boolean;
  targets: number[] | null;
  table: RecordSpec[] | null;
  first: number;
  countDelta: number;
  segment: boolean;
  continueOnError: boolean;
}

type Model =
  | { ok: true; datagrams: number; bytes: number; errno: number; arrivals: Uint8Array[][] }
  | { ok: false; why: string };

const isU32 = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 0xffffffff;

/** The batch of a case, given the receivers' ports. */
function buildBatch(c: CaseInput, ports: readonly number[]): { batch: NativeBatch; count: number } {
  if (c.coherent) c = foldIntoRange(c);
  const ranges = c.ranges.flat();
  for (let i = 0; i < c.rangesExtra; i++) ranges.push(7);
  const spans = c.spans.flat();
  if (c.spansExtra) spans.push(0);
  let destinations: Uint8Array | null = null;
  if (c.table !== null) {
    destinations = new Uint8Array(c.table.length * RECORD_BYTES);
    c.table.forEach((spec, i) => {
      const record = destinationRecord(v4(ports[spec.rx % ports.length]!));
      if (spec.corrupt === 'family') record[0] = 6;
      if (spec.corrupt === 'port') record.fill(0, 2, 4);
      if (spec.corrupt === 'reserved') record[1] = 0x80;
      if (spec.corrupt === 'scope') record[4] = 1;
      destinations!.set(record, i * RECORD_BYTES);
    });
  }
  const windowLength = Math.max(0, c.spans.length - (isU32(c.first) ? c.first : 0));
  const count = Number.isInteger(c.countDelta) && Math.abs(c.countDelta) <= 2 ? windowLength + c.countDelta : c.countDelta;
  return {
    batch: rawBatch({
      buffers: c.buffers, ranges: Uint32Array.from(ranges), spans: Uint32Array.from(spans),
      targets: c.targets === null ? null : Uint32Array.from(c.targets), destinations,
      segment: c.segment, continueOnError: c.continueOnError,
    }),
    count,
  };
}

/** `c` with its words folded into what its buffers, ranges and table hold. */
function foldIntoRange(c: CaseInput): CaseInput {
  const ranges = c.ranges.map(([index, offset, length]): [number, number, number] => {
    const buffer = index % c.buffers.length;
    const size = c.buffers[buffer]!.byteLength;
    const start = offset % (size + 1);
    return [buffer, start, Math.min(length % (size - start + 1), 64)];
  });
  const spans = c.spans.map(([first, count]): [number, number] => {
    const start = first % (ranges.length + 1);
    return [start, count % (ranges.length - start + 1)];
  });
  if (c.garble) {
    const named = new Set(spans.flatMap(([start, count]) => Array.from({ length: count }, (_, k) => start + k)));
    ranges.forEach((range, r) => {
      if (!named.has(r)) range.splice(0, 3, 0xffffffff, 0xfffffff0, 0xffff);
    });
  }
  const records = c.table?.length ?? 0;
  const targets = c.targets === null || records === 0 ? c.targets
    : [...spans.map((_, i) => (c.targets![i] ?? i) % records)];
  return { ...c, ranges, spans, targets };
}

/** What the documented checks say about `send(batch, first, count)`, and what must arrive where. */
function model(c: CaseInput, batch: NativeBatch, count: number): Model {
  const refuse = (why: string): Model => ({ ok: false, why });
  const { first } = c;
  if (!isU32(first)) return refuse('first is not a uint32');
  if (!Number.isInteger(count) || count < 0 || count > MAX_DATAGRAMS) return refuse('count out of range');
  if (batch.ranges.length % 3 !== 0) return refuse('ranges not in triples');
  if (batch.spans.length % 2 !== 0) return refuse('spans not in pairs');
  const datagramTotal = batch.spans.length / 2;
  const rangeTotal = batch.ranges.length / 3;
  if (first + count > datagramTotal) return refuse('window past the spans');
  const table = batch.destinations;
  const records = table === null ? 0 : table.length / RECORD_BYTES;
  if (batch.targets !== null) {
    if (table === null) return refuse('targets without destinations');
    if (first + count > batch.targets.length) return refuse('targets shorter than the window');
  }
  if (table !== null && batch.targets === null && records === 0) return refuse('empty table, no targets');
  const arrivals: Uint8Array[][] = Array.from({ length: RECEIVERS }, () => []);
  const plan: Array<{ rx: number; bytes: Uint8Array }> = [];
  let bytes = 0;
  for (let d = first; d < first + count; d++) {
    const firstRange = batch.spans[2 * d]!;
    const rangeCount = batch.spans[2 * d + 1]!;
    if (rangeCount > MAX_RANGES) return refuse('more than 1024 ranges');
    if (firstRange + rangeCount > rangeTotal) return refuse('span past the ranges');
    const pieces: number[] = [];
    for (let r = firstRange; r < firstRange + rangeCount; r++) {
      const buffer = batch.buffers[batch.ranges[3 * r]!];
      if (buffer === undefined) return refuse('range names a buffer that does not exist');
      const offset = batch.ranges[3 * r + 1]!;
      const length = batch.ranges[3 * r + 2]!;
      if (offset + length > buffer.byteLength) return refuse('range outside its buffer'); // exact: doubles
      for (let i = offset; i < offset + length && pieces.length <= MAX_V4; i++) pieces.push(buffer[i]!);
    }
    if (pieces.length > MAX_V4) return refuse('datagram over the UDP payload');
    let rx = -1;
    if (table !== null) {
      const record = batch.targets === null ? 0 : batch.targets[d]!;
      if (record >= records) return refuse('target outside the table');
      const spec = c.table![record]!;
      if (spec.corrupt !== 'none') return refuse(`record ${record}: ${spec.corrupt}`);
      rx = spec.rx % RECEIVERS;
    }
    plan.push({ rx, bytes: Uint8Array.from(pieces) });
    bytes += pieces.length;
  }
  // Valid. Without a table the unconnected socket has nowhere to send: EDESTADDRREQ stops the
  // send at its first datagram.
  if (table === null && count > 0) return { ok: true, datagrams: 0, bytes: 0, errno: EDESTADDRREQ, arrivals };
  for (const p of plan) arrivals[p.rx]!.push(p.bytes);
  return { ok: true, datagrams: count, bytes, errno: 0, arrivals };
}

describe('model self-check', () => {
  test('the model reads batches as documented', () => {
    const a = Uint8Array.from([1, 2, 3, 4]);
    const b = Uint8Array.from([9, 8]);
    const base: CaseInput = {
      coherent: false, garble: false, buffers: [a, b], ranges: [[1, 1, 1], [0, 0, 2], [5, 0, 0]], rangesExtra: 0, spans: [[0, 2], [2, 0], [2, 1]],
      spansExtra: false, targets: null, table: [{ rx: 1, corrupt: 'none' }], first: 0, countDelta: -1,
      segment: false, continueOnError: false,
    };
    const ports = [1, 2, 3];
    const check = (c: CaseInput): Model => {
      const { batch, count } = buildBatch(c, ports);
      return model(c, batch, count);
    };
    expect(check(base)).toEqual({ ok: true, datagrams: 2, bytes: 3, errno: 0,
      arrivals: [[], [Uint8Array.from([8, 1, 2]), new Uint8Array(0)], []] });
    expect(check({ ...base, countDelta: 0 })).toEqual({ ok: false, why: 'range names a buffer that does not exist' });
    expect(check({ ...base, first: 1, countDelta: -1 })).toMatchObject({ ok: true, datagrams: 1, bytes: 0 });
    expect(check({ ...base, table: null })).toMatchObject({ ok: true, datagrams: 0, errno: EDESTADDRREQ });
    expect(check({ ...base, targets: [0, 1, 0] })).toEqual({ ok: false, why: 'target outside the table' });
    expect(check({ ...base, table: [{ rx: 0, corrupt: 'port' }] })).toEqual({ ok: false, why: 'record 0: port' });
    expect(check({ ...base, rangesExtra: 1 })).toEqual({ ok: false, why: 'ranges not in triples' });
  });
});

const BIG = patterned(77, MAX_V4 + 100);
// Counterexamples name it instead of printing 65,607 numbers.
Object.defineProperty(BIG, fc.toStringMethod, { value: () => 'BIG' });

const u32Special = fc.constantFrom(0xffffffff, 0xfffffffe, 0x80000000, 0x7fffffff, 0x100000000 - 8, 1025, 1024,
  MAX_V4, MAX_V4 + 1, MAX_DATAGRAMS + 1);
const smallWord = (max: number): fc.Arbitrary<number> => fc.oneof(
  { weight: 12, arbitrary: fc.integer({ min: 0, max }) },
  { weight: 1, arbitrary: u32Special },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffffff }) },
);
const lengthWord = fc.oneof(
  { weight: 16, arbitrary: fc.integer({ min: 0, max: 24 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: MAX_V4 + 10 }) },
  { weight: 1, arbitrary: u32Special },
);
const rangeArb: fc.Arbitrary<[number, number, number]> = fc.oneof(
  { weight: 12, arbitrary: fc.tuple(smallWord(4), smallWord(24), lengthWord) },
  // offset + length >= 2^32 but small modulo 2^32: only overflow-aware checks refuse these.
  { weight: 1, arbitrary: fc.tuple(smallWord(4), fc.integer({ min: 1, max: 24 }), fc.integer({ min: 0, max: 24 }))
    .map(([index, offset, wrapped]): [number, number, number] => [index, offset, 0x100000000 - offset + wrapped]) },
  { weight: 1, arbitrary: fc.tuple(smallWord(4), fc.integer({ min: 1, max: 24 }), fc.integer({ min: 0, max: 24 }))
    .map(([index, back, wrapped]): [number, number, number] => [index, 0x100000000 - back, back + wrapped]) },
);
const spanArb: fc.Arbitrary<[number, number]> = fc.tuple(
  fc.oneof({ weight: 12, arbitrary: fc.integer({ min: 0, max: 8 }) }, { weight: 1, arbitrary: u32Special }),
  fc.oneof({ weight: 12, arbitrary: fc.integer({ min: 0, max: 3 }) }, { weight: 1, arbitrary: fc.constantFrom(1024, 1025, 0xffffffff) }),
);
const recordArb: fc.Arbitrary<RecordSpec> = fc.record({
  rx: fc.integer({ min: 0, max: RECEIVERS - 1 }),
  corrupt: fc.oneof(
    { weight: 20, arbitrary: fc.constant('none' as const) },
    { weight: 1, arbitrary: fc.constantFrom('family' as const, 'port' as const, 'reserved' as const, 'scope' as const) },
  ),
});
const caseArb: fc.Arbitrary<CaseInput> = fc.record({
  coherent: fc.oneof({ weight: 2, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  garble: fc.boolean(),
  buffers: fc.array(fc.oneof(
    { weight: 10, arbitrary: fc.uint8Array({ maxLength: 48 }) },
    { weight: 1, arbitrary: fc.constant(BIG) },
  ), { minLength: 1, maxLength: 4 }),
  ranges: fc.array(rangeArb, { maxLength: 8 }),
  rangesExtra: fc.oneof({ weight: 20, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 2 }) }),
  spans: fc.array(spanArb, { maxLength: 5 }),
  spansExtra: fc.oneof({ weight: 20, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  targets: fc.oneof(
    { weight: 3, arbitrary: fc.constant(null) },
    { weight: 4, arbitrary: fc.array(fc.oneof({ weight: 16, arbitrary: fc.integer({ min: 0, max: 2 }) },
      { weight: 1, arbitrary: u32Special }), { maxLength: 6 }) },
  ),
  table: fc.oneof(
    { weight: 12, arbitrary: fc.array(recordArb, { minLength: 1, maxLength: 3 }) },
    { weight: 1, arbitrary: fc.constant([] as RecordSpec[]) },
    { weight: 1, arbitrary: fc.constant(null) },
  ),
  first: fc.oneof(
    { weight: 10, arbitrary: fc.constant(0) },
    { weight: 3, arbitrary: fc.integer({ min: 0, max: 6 }) },
    { weight: 1, arbitrary: fc.constantFrom(0xffffffff, 2 ** 32, -1, 0.5) },
  ),
  countDelta: fc.oneof(
    { weight: 12, arbitrary: fc.constant(0) },
    { weight: 2, arbitrary: fc.integer({ min: -2, max: 2 }) },
    { weight: 1, arbitrary: fc.constantFrom(MAX_DATAGRAMS + 1, 0xffffffff, -1, 0.5) },
  ),
  segment: fc.boolean(),
  continueOnError: fc.boolean(),
});

describe('property: random batches into native.send', () => {
  test('throws by name exactly when the model says invalid; otherwise each receiver gets exactly the model\'s datagrams', async () => {
    const rx = [await receiverOf('udp4'), await receiverOf('udp4'), await receiverOf('udp4')];
    const ports = rx.map((r) => r.port);
    const native = openNative(4);
    const expected: Uint8Array[][] = rx.map(() => []);
    let valid = 0;
    let invalid = 0;
    let sent = 0;

    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const { batch, count } = buildBatch(c, ports);
        const want = model(c, batch, count);
        let thrown: unknown;
        let result: SendReturn | undefined;
        try {
          result = native.send(batch, c.first, count);
        } catch (error) {
          thrown = error;
        }
        if (thrown !== undefined) {
          expect(ERROR_NAMES).toContain((thrown as Error).name);
          if (want.ok) throw new Error(`a valid call threw: ${(thrown as Error).message}`);
          invalid++;
          return;
        }
        if (!want.ok) throw new Error(`an invalid call (${want.why}) returned ${JSON.stringify(result)}`);
        expect(result).toEqual({
          datagrams: want.datagrams, bytes: want.bytes, segments: want.datagrams, errno: want.errno,
          syscall: want.errno === 0 ? '' : binding().backend, wouldBlock: false,
          failures: c.continueOnError ? [] : null,
        });
        valid++;
        if (want.datagrams > 0) sent++;
        for (let k = 0; k < RECEIVERS; k++) {
          const before = expected[k]!.length;
          expected[k]!.push(...want.arrivals[k]!);
          if (expected[k]!.length > before) {
            const got = await rx[k]!.waitFor(expected[k]!.length, 2000);
            expectSameDatagrams(got.slice(before), expected[k]!.slice(before));
          }
        }
      }),
      { numRuns: 300 },
    );
    // Both sides of the property were exercised, and datagrams went out.
    expect(valid).toBeGreaterThan(20);
    expect(invalid).toBeGreaterThan(20);
    expect(sent).toBeGreaterThan(10);
    await sleep(10);
    for (let k = 0; k < RECEIVERS; k++) expectSameDatagrams(rx[k]!.received, expected[k]!);
  });
});

// ---------------------------------------------------------------------------------------------
// JavaScript can run in the middle of a native send: reading an array element with an accessor
// (the buffer fetches of native/batch_reader.cc) or a property of `controls` calls a getter.
// Whatever that code does, the native layer must not send anything other than what the call
// describes, nor read memory the call's buffers no longer own.

describe('JavaScript running during the native send (getters)', () => {
  /** A second socket whose send runs inside a getter of the first one's call. */
  async function reentrancySetup(): Promise<{
    receiver: Receiver; other: Receiver; native: NativeUdpSocket; innerSend: () => void; outcome: () => string;
    inner: Uint8Array;
  }> {
    const receiver = await receiverOf('udp4');
    const other = await receiverOf('udp4');
    const native = openNative(4);
    const innerSocket = openNative(4);
    const inner = Uint8Array.from([0x49, 0x4e, 0x4e, 0x45, 0x52]); // "INNER"
    let outcome = 'not run';
    return {
      receiver, other, native, inner,
      innerSend: () => {
        try {
          sendAll(innerSocket, [inner], other.port);
          outcome = 'sent';
        } catch {
          outcome = 'threw';
        }
      },
      outcome: () => outcome,
    };
  }

  async function expectOuterIntact(setup: Awaited<ReturnType<typeof reentrancySetup>>, run: () => SendReturn,
    expected: Uint8Array[]): Promise<void> {
    let outer: SendReturn | undefined;
    let thrown: unknown;
    try {
      outer = run();
    } catch (error) {
      thrown = error;
    }
    if (thrown !== undefined) {
      expect(ERROR_NAMES).toContain((thrown as Error).name);
      await expectNothingBeforeMarker(setup.native, setup.receiver);
    } else {
      const bytes = expected.reduce((sum, d) => sum + d.byteLength, 0);
      expect(outer).toMatchObject({ datagrams: expected.length, bytes, errno: 0 });
      expectSameDatagrams(await setup.receiver.waitFor(expected.length, 1000), expected);
    }
    expect(setup.outcome()).not.toBe('not run');
    await sleep(20);
    expectSameDatagrams(setup.other.received, setup.outcome() === 'sent' ? [setup.inner] : []);
  }

  test('a buffers-array getter that sends on another socket does not change the outer send', async () => {
    const setup = await reentrancySetup();
    const a = Uint8Array.from([0x61]);
    const b = Uint8Array.from([0x62, 0x62]);
    const c = Uint8Array.from([0x63, 0x63, 0x63]);
    const buffers: Uint8Array[] = [a, b, c];
    Object.defineProperty(buffers, 1, {
      get() {
        setup.innerSend();
        return b;
      },
    });
    // Observed: { datagrams: 1, bytes: 5, errno: 0 }, and "INNER" went to the OUTER receiver too.
    const batch = piecesBatch(buffers, [[[0, 0, 1]], [[1, 0, 2]], [[2, 0, 3]]], { destinations: [v4(setup.receiver.port)] });
    await expectOuterIntact(setup, () => setup.native.send(batch, 0, 3), [a, b, c]);
  });

  test('a controls getter that sends on another socket does not change the outer send', async () => {
    const setup = await reentrancySetup();
    const a = Uint8Array.from([0x61, 0x61, 0x61, 0x61]);
    const b = Uint8Array.from([0x62, 0x62, 0x62, 0x62]);
    const controls = {
      get tos(): number {
        setup.innerSend();
        return 0;
      },
    };
    // Observed: { datagrams: 1, bytes: 5, errno: 0 }, and "INNER" went to the OUTER receiver too.
    await expectOuterIntact(setup, () => sendAll(setup.native, [a, b], setup.receiver.port, controls),
      [a, b]);
  });

  /**
   * Runs a send in a child process (node --expose-gc, so the detached memory is really freed,
   * and a memory fault cannot take the test runner down) whose getter detaches a buffer that
   * the native call has already read. The buffer held only 0xAB bytes.
   */
  async function detachInChild(port: number, scenario: 'array' | 'controls'): Promise<{
    threw?: string; result?: { errno: number; datagrams: number };
  }> {
    const root = path.resolve(__dirname, '..', '..');
    const script = `
      const root = ${JSON.stringify(root)};
      const addon = require(require.resolve('node-gyp-build', { paths: [root] }))(root);
      const socket = new addon.UdpSocket();
      if (socket.open(4) !== 0) throw new Error('open failed');
      const victim = new Uint8Array(4096).fill(0xab);
      const detach = () => { structuredClone(victim, { transfer: [victim.buffer] }); gc(); gc(); };
      const record = new Uint8Array(24);
      record[0] = 4; record[2] = ${port} >> 8; record[3] = ${port} & 0xff;
      record.set([127, 0, 0, 1], 8);
      let out;
      try {
        let result;
        if (${JSON.stringify(scenario)} === 'array') {
          const buffers = [victim, null];
          Object.defineProperty(buffers, 1, { get() { detach(); return Uint8Array.of(0x62); } });
          result = socket.send({ buffers, ranges: Uint32Array.of(0, 0, 4096, 1, 0, 1), spans: Uint32Array.of(0, 1, 1, 1),
            targets: null, destinations: record, segment: false, continueOnError: false, controls: undefined }, 0, 2);
        } else {
          result = socket.send({ buffers: [victim, Uint8Array.of(0x62)], ranges: Uint32Array.of(0, 0, 4096, 1, 0, 1),
            spans: Uint32Array.of(0, 1, 1, 1), targets: null, destinations: record, segment: false, continueOnError: false,
            controls: { get ttl() { detach(); return 64; } } }, 0, 2);
        }
        out = { result };
      } catch (e) {
        out = { threw: e.name, message: e.message };
      }
      socket.close();
      process.stdout.write(JSON.stringify(out));
    `;
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--expose-gc', '-e', script], { timeout: 10000 }, (error, out, err) => {
        if (error !== null) reject(new Error(`child failed: ${error.message}\n${err}`));
        else resolve(out);
      });
    });
    return JSON.parse(stdout) as { threw?: string; result?: { errno: number; datagrams: number } };
  }

  test.each(['array', 'controls'] as const)(
    'a getter (on the %s argument) that detaches an already-read buffer: nothing but the buffer\'s own bytes is sent',
    async (scenario) => {
      const receiver = await receiverOf('udp4');
      const report = await detachInChild(receiver.port, scenario);
      if (report.threw !== undefined) {
        expect(ERROR_NAMES).toContain(report.threw);
        await sleep(50);
        expect(receiver.received).toHaveLength(0);
        return;
      }
      // Observed: errno 0, and datagram 0 is 4096 bytes of freed heap (allocator pointers where
      // the 0xAB bytes were): the kernel read memory the call no longer owned.
      expect(report.result).toMatchObject({ errno: 0, datagrams: 2 });
      const got = await receiver.waitFor(2, 2000);
      const first = got[0] as Buffer;
      const foreign = first.findIndex((byte) => byte !== 0xab);
      if (foreign >= 0) {
        throw new Error(`datagram 0 (${first.byteLength} B) holds bytes the buffer never held, from byte ` +
          `${foreign}: ${first.subarray(0, 16).toString('hex')}... (use after free)`);
      }
      expect(got[1]).toEqual(Buffer.from([0x62]));
    },
  );
});
