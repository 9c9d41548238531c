/**
 * The native batch reader and the back-ends' batch send (native/batch_reader.cc, send_*.cc), on
 * the raw binding: `send(batch, first, count)` with NativeBatch literals (raw-batch.ts). A
 * malformed batch is a TypeError/RangeError and nothing goes out; a good one sends exactly the
 * bytes its ranges describe, to the destination each datagram targets, and its result counts
 * exactly that. Run on both Linux back-ends (`WSK_DGRAM_BACKEND=sendmsg` for the portable loop):
 * every expectation below is the same for both.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeDestination, type NativeBatch, type NativeSendResult } from '../../lib/batch';
import { binding, type NativeUdpSocket } from '../../lib/binding';
import { createSlowLink, FIXTURES, JsonChild, type SlowLink } from './netns';
import { patterned, type Receiver } from './receiver';
import { useNativeResources } from './native-resources';
import {
  datagramBytes, destinationRecord, destinationTable, expectNativeThrow, expectSameDatagrams, packedBatch,
  piecesBatch, rawBatch, RECORD_BYTES, v4, wholeBatch,
} from './raw-batch';

const { EACCES, EAGAIN, EBADF, EDESTADDRREQ } = os.constants.errno;
const MAX_V4 = 65507;
const BROADCAST = '127.255.255.255'; // EACCES without SO_BROADCAST (Linux loopback)

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const { openNative, receiverOf } = useNativeResources();

const MARKER = Uint8Array.from([0x4d, 0x41, 0x52, 0x4b]); // "MARK"

/**
 * Nothing went out before: a marker from the same socket arrives first. (Loopback keeps one
 * socket's datagrams in order, so anything an earlier call sent would arrive before it.)
 */
async function expectNothingBeforeMarker(native: NativeUdpSocket, receiver: Receiver): Promise<void> {
  expect(native.send(wholeBatch([MARKER], { destinations: [v4(receiver.port)] }), 0, 1))
    .toMatchObject({ datagrams: 1, errno: 0 });
  await receiver.waitFor(1, 2000);
  await sleep(5);
  expectSameDatagrams(receiver.received, [MARKER]);
}

/** The result of a send that went through: every field. */
function sentAll(datagrams: number, bytes: number, segments = datagrams): NativeSendResult {
  return { datagrams, bytes, segments, errno: 0, syscall: '', wouldBlock: false, failures: null };
}

const sum = (list: readonly Uint8Array[]): number => list.reduce((total, d) => total + d.byteLength, 0);

// ---------------------------------------------------------------------------------------------

describe('the reader refuses a malformed batch, and nothing is sent', () => {
  const ten = (): Uint8Array => patterned(1, 10);
  type Call = { batch: unknown; first?: unknown; count: unknown };
  const to = (port: number): Uint8Array => destinationTable([v4(port)]);
  /** One datagram of the given ranges (triples) over `buffers`, to the receiver. */
  const one = (port: number, buffers: unknown[], words: number[], spans = [0, words.length / 3]): Call => ({
    batch: rawBatch({ buffers, ranges: Uint32Array.from(words), spans: Uint32Array.from(spans), destinations: to(port) }),
    count: spans.length / 2,
  });
  const withRecord = (port: number, edit: (record: Uint8Array) => void): Call => {
    const record = destinationRecord(v4(port));
    edit(record);
    return { batch: wholeBatch([ten()], { destinations: record }), count: 1 };
  };
  const many = (n: number, length: number): number[] => Array.from({ length: n }, (_, r) => [0, r % length, 1]).flat();

  const cases: Array<[string, (port: number) => Call]> = [
    // Spans
    ['a span whose first range lies past the ranges', (p) => one(p, [ten()], [0, 0, 1], [1, 1])],
    ['a span whose ranges run one past the end', (p) => one(p, [ten()], [0, 0, 1, 0, 1, 1], [1, 2])],
    ['a span at range 0xFFFFFFFF of 2 (wraps in 32 bits)', (p) => one(p, [ten()], [0, 0, 1], [0xffffffff, 2])],
    ['a span of 1025 ranges', (p) => one(p, [ten()], many(1025, 10), [0, 1025])],
    ['a span of 0xFFFFFFFF ranges', (p) => one(p, [ten()], [0, 0, 1], [0, 0xffffffff])],
    // Buffer indices
    ['a range naming buffer buffers.length', (p) => one(p, [ten()], [1, 0, 1])],
    ['a range naming buffer 0xFFFFFFFF', (p) => one(p, [ten()], [0xffffffff, 0, 1])],
    ['a range into an empty buffers array', (p) => one(p, [], [0, 0, 0])],
    // Offsets and lengths
    ['offset + length one past the buffer', (p) => one(p, [ten()], [0, 5, 6])],
    ['offset past the buffer, length 0', (p) => one(p, [ten()], [0, 11, 0])],
    ['offset 0xFFFFFFFF, length 2 (1 in 32-bit arithmetic)', (p) => one(p, [ten()], [0, 0xffffffff, 2])],
    ['offset 8, length 0xFFFFFFF8 (0 in 32-bit arithmetic)', (p) => one(p, [ten()], [0, 8, 0xfffffff8])],
    ['a range inside the ArrayBuffer but past its view', (p) => one(p, [patterned(2, 100).subarray(10, 20)], [0, 5, 6])],
    ['a bad range after a good one in the same datagram', (p) => one(p, [ten(), ten()], [0, 0, 10, 1, 9, 2])],
    ['a bad datagram after good ones', (p) => one(p, [ten()], [0, 0, 10, 0, 1, 3, 0, 3, 8], [0, 1, 1, 1, 2, 1])],
    // Payload limits
    ['two ranges summing to 65508 bytes', (p) =>
      one(p, [patterned(3, 40000), patterned(4, 40000)], [0, 0, 40000, 1, 0, MAX_V4 + 1 - 40000])],
    ['one range of 65508 bytes', (p) => one(p, [new Uint8Array(MAX_V4 + 1)], [0, 0, MAX_V4 + 1])],
    ['1024 ranges summing to 65508 bytes', (p) =>
      one(p, [patterned(5, 2000)], Array.from({ length: 1024 }, (_, r) => [0, 0, r < 1023 ? 64 : MAX_V4 + 1 - 64 * 1023]).flat())],
    // Targets and destinations
    ['a target equal to the number of records', (p) => ({
      batch: wholeBatch([ten(), ten()], { destinations: [v4(p)], targets: [0, 1] }), count: 2 })],
    ['a target of 0xFFFFFFFF', (p) => ({ batch: wholeBatch([ten()], { destinations: [v4(p)], targets: [0xffffffff] }), count: 1 })],
    ['targets without destinations', () => ({ batch: wholeBatch([ten()], { targets: [0] }), count: 1 })],
    ['targets shorter than the window', (p) => ({
      batch: wholeBatch([ten(), ten()], { destinations: [v4(p)], targets: [0] }), count: 2 })],
    ['an IPv6 record on an IPv4 socket', (p) => withRecord(p, (r) => { r[0] = 6; })],
    ['a record of family 0', (p) => withRecord(p, (r) => { r[0] = 0; })],
    ['a record of family 5', (p) => withRecord(p, (r) => { r[0] = 5; })],
    ['a record with port 0', (p) => withRecord(p, (r) => { r[2] = 0; r[3] = 0; })],
    ['a record whose reserved byte is 1', (p) => withRecord(p, (r) => { r[1] = 1; })],
    ['an IPv4 record with a scope id', (p) => withRecord(p, (r) => { r[7] = 1; })],
    ['an empty destination table for untargeted datagrams', () => ({
      batch: wholeBatch([ten()], { destinations: new Uint8Array(0) }), count: 1 })],
    ['a destination table of 23 bytes', (p) => ({ batch: wholeBatch([ten()], { destinations: to(p).subarray(0, 23) }), count: 1 })],
    ['a destination table of 25 bytes', (p) => ({
      batch: wholeBatch([ten()], { destinations: Uint8Array.from([...to(p), 0]) }), count: 1 })],
    ['a bad record a later datagram targets', (p) => {
      const table = destinationTable([v4(p), v4(p)]);
      table[RECORD_BYTES] = 6;
      return { batch: wholeBatch([ten(), ten()], { destinations: table, targets: [0, 1] }), count: 2 };
    }],
    // Array shapes
    ['ranges.length 4 (not a multiple of 3)', (p) => ({
      batch: rawBatch({ buffers: [ten()], ranges: Uint32Array.of(0, 0, 1, 0), spans: Uint32Array.of(0, 1), destinations: to(p) }), count: 1 })],
    ['spans.length 3', (p) => ({
      batch: rawBatch({ buffers: [ten()], ranges: Uint32Array.of(0, 0, 1), spans: Uint32Array.of(0, 1, 0), destinations: to(p) }), count: 1 })],
    // The window
    ['first + count past the datagrams', (p) => ({ batch: wholeBatch([ten(), ten()], { destinations: [v4(p)] }), first: 1, count: 2 })],
    ['first past the datagrams, count 0', (p) => ({ batch: wholeBatch([ten()], { destinations: [v4(p)] }), first: 2, count: 0 })],
    ['first 0xFFFFFFFF, count 2 (wraps in 32 bits)', (p) => ({
      batch: wholeBatch([ten(), ten()], { destinations: [v4(p)] }), first: 0xffffffff, count: 2 })],
    ['first 2^32', (p) => ({ batch: wholeBatch([ten()], { destinations: [v4(p)] }), first: 2 ** 32, count: 0 })],
    ['first -1', (p) => ({ batch: wholeBatch([ten()], { destinations: [v4(p)] }), first: -1, count: 1 })],
    ['count 2^20 + 1', (p) => ({
      batch: rawBatch({ spans: new Uint32Array(2 * (2 ** 20 + 1)), destinations: to(p) }), count: 2 ** 20 + 1 })],
    ['count 1.5', (p) => ({ batch: wholeBatch([ten(), ten()], { destinations: [v4(p)] }), count: 1.5 })],
    ['count NaN', (p) => ({ batch: wholeBatch([ten()], { destinations: [v4(p)] }), count: NaN })],
    ['count as a string', (p) => ({ batch: wholeBatch([ten()], { destinations: [v4(p)] }), count: '1' })],
    // Kinds
    ['a batch that is null', () => ({ batch: null, count: 0 })],
    ['a batch that is a number', () => ({ batch: 5, count: 0 })],
    ['ranges as an Int32Array', (p) => ({ batch: { ...wholeBatch([ten()], { destinations: [v4(p)] }), ranges: Int32Array.of(0, 0, 1) }, count: 1 })],
    ['ranges as a plain array', (p) => ({ batch: { ...wholeBatch([ten()], { destinations: [v4(p)] }), ranges: [0, 0, 1] }, count: 1 })],
    ['ranges as a Uint8Array', (p) => ({ batch: { ...wholeBatch([ten()], { destinations: [v4(p)] }), ranges: Uint8Array.of(0, 0, 1) }, count: 1 })],
    ['ranges null', (p) => ({ batch: { ...wholeBatch([ten()], { destinations: [v4(p)] }), ranges: null }, count: 1 })],
    ['spans as a Uint16Array', (p) => ({ batch: { ...wholeBatch([ten()], { destinations: [v4(p)] }), spans: Uint16Array.of(0, 1) }, count: 1 })],
    ['spans as a BigUint64Array', (p) => ({ batch: { ...wholeBatch([ten()], { destinations: [v4(p)] }), spans: BigUint64Array.of(0n, 1n) }, count: 1 })],
    ['spans as a DataView', (p) => ({
      batch: { ...wholeBatch([ten()], { destinations: [v4(p)] }), spans: new DataView(Uint32Array.of(0, 1).buffer) }, count: 1 })],
    ['spans missing', (p) => ({ batch: { ...wholeBatch([ten()], { destinations: [v4(p)] }), spans: undefined }, count: 1 })],
    ['targets as an Int32Array', (p) => ({ batch: { ...wholeBatch([ten()], { destinations: [v4(p)] }), targets: Int32Array.of(0) }, count: 1 })],
    ['targets as a plain array', (p) => ({ batch: { ...wholeBatch([ten()], { destinations: [v4(p)] }), targets: [0] }, count: 1 })],
    ['destinations as a Uint32Array', (p) => ({
      batch: { ...wholeBatch([ten()]), destinations: new Uint32Array(to(p).buffer) }, count: 1 })],
    ['destinations as a Uint8ClampedArray', (p) => ({ batch: { ...wholeBatch([ten()]), destinations: new Uint8ClampedArray(to(p)) }, count: 1 })],
    ['destinations as an ArrayBuffer', (p) => ({ batch: { ...wholeBatch([ten()]), destinations: to(p).buffer }, count: 1 })],
    ['buffers as a Uint8Array', (p) => ({ batch: { ...wholeBatch([ten()], { destinations: [v4(p)] }), buffers: ten() }, count: 1 })],
    ['buffers as an array-like object', (p) => ({
      batch: { ...wholeBatch([ten()], { destinations: [v4(p)] }), buffers: { length: 1, 0: ten() } }, count: 1 })],
    ['a buffer that is a Uint16Array', (p) => one(p, [new Uint16Array(5)], [0, 0, 1])],
    ['a buffer that is a DataView', (p) => one(p, [new DataView(new ArrayBuffer(10))], [0, 0, 1])],
    ['a buffer that is an ArrayBuffer', (p) => one(p, [new ArrayBuffer(10)], [0, 0, 1])],
    ['a buffer that is null', (p) => one(p, [null], [0, 0, 0])],
    ['a hole in buffers', (p) => one(p, [ten(), , ten()], [0, 0, 1, 1, 0, 0])], // eslint-disable-line no-sparse-arrays
    ['segment 1', (p) => ({ batch: { ...wholeBatch([ten()], { destinations: [v4(p)] }), segment: 1 }, count: 1 })],
    ['continueOnError undefined', (p) => ({ batch: { ...wholeBatch([ten()], { destinations: [v4(p)] }), continueOnError: undefined }, count: 1 })],
    ['controls that are a number', (p) => ({ batch: { ...wholeBatch([ten()], { destinations: [v4(p)] }), controls: 5 }, count: 1 })],
    ['controls.tos 256', (p) => ({ batch: wholeBatch([ten()], { destinations: [v4(p)], controls: { tos: 256 } }), count: 1 })],
    ['controls.segmentSize 0', (p) => ({ batch: wholeBatch([ten()], { destinations: [v4(p)], controls: { segmentSize: 0 } }), count: 1 })],
  ];

  test.each(cases)('%s', async (_name, make) => {
    const receiver = await receiverOf('udp4');
    const native = openNative(4);
    const call = make(receiver.port);
    expectNativeThrow(() => (native.send as (...args: unknown[]) => unknown)(call.batch, call.first ?? 0, call.count));
    await expectNothingBeforeMarker(native, receiver);
  });

  test('an IPv4 record on an IPv6 socket, and 65528 bytes over IPv6, are refused; 65527 goes out', async () => {
    const receiver = await receiverOf('udp6');
    const native = openNative(6);
    const here = { family: 6 as const, address: '::1', port: receiver.port };
    expectNativeThrow(() => native.send(wholeBatch([patterned(1, 10)], { destinations: [v4(receiver.port)] }), 0, 1));
    const big = [patterned(2, 40000), patterned(3, 40000)];
    expectNativeThrow(() => native.send(piecesBatch(big, [[[0, 0, 40000], [1, 0, 65528 - 40000]]], { destinations: [here] }), 0, 1));
    const good = piecesBatch(big, [[[0, 0, 40000], [1, 0, 65527 - 40000]]], { destinations: [here] });
    expect(native.send(good, 0, 1)).toEqual(sentAll(1, 65527));
    expectSameDatagrams(await receiver.waitFor(1, 2000), [datagramBytes(good, 0)]);
  });
});

describe('JavaScript running while the batch is read', () => {
  /** A batch whose field `name` runs `action` when read (and is otherwise `batch`'s). */
  function withGetter(batch: NativeBatch, name: keyof NativeBatch, action: () => void): NativeBatch {
    const value = batch[name];
    const out = { ...batch } as Record<string, unknown>;
    Object.defineProperty(out, name, {
      get() {
        action();
        return value;
      },
      enumerable: true,
    });
    return out as unknown as NativeBatch;
  }
  const detach = (view: Uint8Array): void => {
    structuredClone(view.buffer, { transfer: [view.buffer as ArrayBuffer] });
  };

  test.each(['buffers', 'ranges', 'spans', 'targets', 'destinations', 'segment', 'continueOnError', 'controls'] as const)(
    'a getter on batch.%s that detaches the buffer: RangeError, nothing sent', async (field) => {
      const receiver = await receiverOf('udp4');
      const native = openNative(4);
      const victim = patterned(7, 300);
      const batch = packedBatch(victim, [100, 100, 100], { destinations: [v4(receiver.port)], targets: [0, 0, 0] });
      const error = expectNativeThrow(() => native.send(withGetter(batch, field, () => detach(victim)), 0, 3));
      expect(error.name).toBe('RangeError');
      expect(error.message).toMatch(/no memory/);
      await expectNothingBeforeMarker(native, receiver);
    });

  test('a buffer element getter that detaches a buffer fetched before it: RangeError, nothing sent', async () => {
    const receiver = await receiverOf('udp4');
    const native = openNative(4);
    const victim = patterned(8, 64);
    const buffers: Uint8Array[] = [victim];
    Object.defineProperty(buffers, 1, {
      get() {
        detach(victim);
        return Uint8Array.of(0x62);
      },
      enumerable: true,
    });
    const batch = piecesBatch(buffers, [[[0, 0, 64]], [[1, 0, 1]]], { destinations: [v4(receiver.port)] });
    expectNativeThrow(() => native.send(batch, 0, 2));
    await expectNothingBeforeMarker(native, receiver);
  });

  test('a getter that rewrites the ranges before they are copied: what goes out is what was checked', async () => {
    const receiver = await receiverOf('udp4');
    const native = openNative(4);
    const source = patterned(9, 100);
    const batch = packedBatch(source, [10, 10], { destinations: [v4(receiver.port)] });
    const ranges = batch.ranges;
    // Read after `ranges`: the words change between the read of the field and their copy.
    const rewritten = withGetter(batch, 'controls', () => ranges.set([0, 50, 20, 0, 90, 5]));
    expect(native.send(rewritten, 0, 2)).toEqual(sentAll(2, 25));
    expectSameDatagrams(await receiver.waitFor(2, 2000), [source.subarray(50, 70), source.subarray(90, 95)]);
    // And into an invalid range: refused, nothing sent.
    const shortBatch = packedBatch(source, [10], { destinations: [v4(receiver.port)] });
    const shortRanges = shortBatch.ranges;
    const invalid = withGetter(shortBatch, 'controls', () => shortRanges.set([0, 95, 10]));
    receiver.received.length = 0;
    expectNativeThrow(() => native.send(invalid, 0, 1));
    await expectNothingBeforeMarker(native, receiver);
  });

  test('a getter that throws: its own error comes out, nothing sent', async () => {
    const receiver = await receiverOf('udp4');
    const native = openNative(4);
    const own = new Error('the getter\'s own');
    const batch = withGetter(wholeBatch([patterned(1, 10)], { destinations: [v4(receiver.port)] }), 'destinations', () => {
      throw own;
    });
    expect(() => native.send(batch, 0, 1)).toThrow(own);
    await expectNothingBeforeMarker(native, receiver);
  });

  test('a getter that sends again (any socket) is refused there; the outer send is untouched', async () => {
    const receiver = await receiverOf('udp4');
    const other = await receiverOf('udp4');
    const native = openNative(4);
    const inner = openNative(4);
    let innerError = '';
    const payload = [patterned(1, 10), patterned(2, 20)];
    const batch = withGetter(wholeBatch(payload, { destinations: [v4(receiver.port)] }), 'spans', () => {
      try {
        inner.send(wholeBatch([MARKER], { destinations: [v4(other.port)] }), 0, 1);
      } catch (error) {
        innerError = (error as Error).name;
      }
    });
    expect(native.send(batch, 0, 2)).toEqual(sentAll(2, 30));
    expect(innerError).toBe('TypeError');
    expectSameDatagrams(await receiver.waitFor(2, 2000), payload);
    await sleep(20);
    expect(other.received).toHaveLength(0);
  });

  test('each field of the batch is read once, and one buffer once for 1000 ranges', async () => {
    const receiver = await receiverOf('udp4');
    const native = openNative(4);
    const lengths = Array.from({ length: 1000 }, (_, i) => (i % 50) + 1);
    const buffer = patterned(3, sum(lengths.map((n) => new Uint8Array(n))));
    const plain = packedBatch(buffer, lengths, { destinations: [v4(receiver.port)] });
    let elementReads = 0;
    const buffers: Uint8Array[] = [];
    Object.defineProperty(buffers, 0, {
      get() {
        elementReads++;
        return buffer;
      },
      enumerable: true,
    });
    const reads: Record<string, number> = {};
    const batch = new Proxy({ ...plain, buffers }, {
      get(target, key, receiverObject) {
        reads[String(key)] = (reads[String(key)] ?? 0) + 1;
        return Reflect.get(target, key, receiverObject) as unknown;
      },
    });
    expect(native.send(batch, 0, 1000)).toEqual(sentAll(1000, buffer.byteLength));
    expect(reads).toEqual({
      buffers: 1, ranges: 1, spans: 1, targets: 1, destinations: 1, segment: 1, continueOnError: 1, controls: 1,
    });
    expect(elementReads).toBe(1);
    const got = await receiver.waitFor(1000, 5000);
    expectSameDatagrams(got, lengths.map((_, i) => datagramBytes(plain, i)));
  });
});

// ---------------------------------------------------------------------------------------------

describe('good batches send exactly what they describe', () => {
  test.each([false, true])('a packed batch of 1000 datagrams in one buffer arrives byte-exact (segment %s)', async (segment) => {
    const receiver = await receiverOf('udp4');
    const native = openNative(4);
    // Runs of equal sizes (GSO coalesces them when segment is on), and odd ones between.
    const lengths = Array.from({ length: 1000 }, (_, i) => (i % 100 < 60 ? 200 : 1 + ((i * 37) % 500)));
    const total = lengths.reduce((a, b) => a + b, 0);
    const buffer = patterned(4, total);
    const batch = packedBatch(buffer, lengths, { destinations: [v4(receiver.port)], segment });
    expect(native.send(batch, 0, 1000)).toEqual(sentAll(1000, total));
    const stats = native.stats();
    expect(stats).toMatchObject({ datagrams: 1000, bytes: total, segments: 1000 });
    if (segment) expect(stats.messages).toBeLessThan(1000);
    else expect(stats.messages).toBe(1000);
    expectSameDatagrams(await receiver.waitFor(1000, 5000), lengths.map((_, i) => datagramBytes(batch, i)));
  });

  test('per-datagram targets reach each of 3 receivers; a GSO run never crosses a change of target', async () => {
    const rx = [await receiverOf('udp4'), await receiverOf('udp4'), await receiverOf('udp4')];
    const native = openNative(4);
    const destinations = rx.map((r) => v4(r.port));
    const payload = Array.from({ length: 15 }, (_, i) => patterned(i, 300));
    // In runs: 5 equal datagrams per receiver, 3 super-packets with GSO.
    const runs = wholeBatch(payload, { destinations, targets: [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2], segment: true });
    expect(native.send(runs, 0, 15)).toEqual(sentAll(15, 4500));
    expect(native.stats().messages).toBe(native.segmentLimit > 0 ? 3 : 15);
    // Interleaved: every datagram a message of its own, even with GSO on.
    const before = native.stats().messages;
    const interleaved = wholeBatch(payload, { destinations, targets: payload.map((_, i) => i % 3), segment: true });
    expect(native.send(interleaved, 0, 15)).toEqual(sentAll(15, 4500));
    expect(native.stats().messages - before).toBe(15);
    for (let k = 0; k < 3; k++) {
      const got = await rx[k]!.waitFor(10, 2000);
      expectSameDatagrams(got, [...payload.slice(5 * k, 5 * k + 5), ...payload.filter((_, i) => i % 3 === k)]);
    }
  });

  test('a fan-out whose spans share ranges sends every copy; the ranges are read once', async () => {
    const rx = [await receiverOf('udp4'), await receiverOf('udp4'), await receiverOf('udp4')];
    const native = openNative(4);
    const source = patterned(5, 600);
    const ranges = Uint32Array.of(0, 0, 100, 0, 100, 200, 0, 300, 300);
    const spans = Uint32Array.of(0, 1, 1, 2, 0, 1, 1, 2, 0, 1, 1, 2); // [r0], [r1 r2] to each
    const batch = rawBatch({
      buffers: [source], ranges, spans, targets: Uint32Array.of(0, 0, 1, 1, 2, 2),
      destinations: destinationTable(rx.map((r) => v4(r.port))), segment: true,
    });
    expect(native.send(batch, 0, 6)).toEqual(sentAll(6, 3 * 600));
    for (const r of rx) expectSameDatagrams(await r.waitFor(2, 2000), [source.subarray(0, 100), source.subarray(100, 600)]);
  });

  test('a window reads only what its spans name: ranges and spans outside it may be anything', async () => {
    const receiver = await receiverOf('udp4');
    const native = openNative(4);
    const source = patterned(6, 100);
    // Datagrams 0 and 4 name garbage (a range of a buffer that does not exist, a span past the
    // ranges); range 2 between the window's ranges is garbage too. The window [1, 4) is fine.
    const ranges = Uint32Array.of(9, 0, 1, 0, 10, 5, 7, 0xffffffff, 9, 0, 20, 5, 0, 30, 0);
    const spans = Uint32Array.of(0, 1, 1, 1, 3, 2, 1, 1, 0xffffffff, 9);
    const batch = rawBatch({ buffers: [source], ranges, spans, destinations: destinationTable([v4(receiver.port)]) });
    expect(native.send(batch, 1, 3)).toEqual(sentAll(3, 15));
    expectNativeThrow(() => native.send(batch, 0, 2));
    expectNativeThrow(() => native.send(batch, 3, 2));
    expectSameDatagrams(await receiver.waitFor(3, 2000),
      [source.subarray(10, 15), source.subarray(20, 25), source.subarray(10, 15)]);
  });

  test('spans far apart in a long ranges array (copied span by span) send the right bytes', async () => {
    const receiver = await receiverOf('udp4');
    const native = openNative(4);
    const far = 300000;
    const ranges = new Uint32Array((far + 1) * 3).fill(0xffffffff); // garbage nobody names
    ranges.set([0, 1, 4], 0);
    ranges.set([1, 2, 6], far * 3);
    const buffers = [patterned(7, 10), patterned(8, 10)];
    const batch = rawBatch({ buffers, ranges, spans: Uint32Array.of(far, 1, 0, 1), destinations: destinationTable([v4(receiver.port)]) });
    expect(native.send(batch, 0, 2)).toEqual(sentAll(2, 10));
    expectSameDatagrams(await receiver.waitFor(2, 2000), [buffers[1]!.subarray(2, 8), buffers[0]!.subarray(1, 5)]);
  });

  test('0 and 1024 ranges in a datagram, 65507 bytes from pieces, and a view honours its byteOffset', async () => {
    const receiver = await receiverOf('udp4');
    const native = openNative(4);
    const source = patterned(9, 1024);
    const reversed = Array.from({ length: 1024 }, (_, r) => [0, 1023 - r, 1] as const);
    const a = patterned(10, 40000);
    const backing = patterned(11, 1000);
    const view = backing.subarray(100, 200);
    const batch = piecesBatch([source, a, view], [[], reversed, [[1, 5, 39995], [1, 0, MAX_V4 - 39995]], [[2, 90, 10]]],
      { destinations: [v4(receiver.port)] });
    expect(native.send(batch, 0, 4)).toEqual(sentAll(4, 0 + 1024 + MAX_V4 + 10));
    expectSameDatagrams(await receiver.waitFor(4, 2000), [
      new Uint8Array(0), Uint8Array.from(source).reverse(), Buffer.concat([a.subarray(5), a.subarray(0, MAX_V4 - 39995)]),
      backing.subarray(190, 200),
    ]);
  });

  test('connected: no destinations goes to the remote; unconnected it is EDESTADDRREQ, which stops even continueOnError', async () => {
    const receiver = await receiverOf('udp4');
    const unconnected = openNative(4);
    for (const continueOnError of [false, true]) {
      expect(unconnected.send(wholeBatch([patterned(1, 10), patterned(2, 10)], { continueOnError }), 0, 2)).toEqual({
        datagrams: 0, bytes: 0, segments: 0, errno: EDESTADDRREQ, syscall: binding().backend, wouldBlock: false,
        failures: continueOnError ? [] : null,
      });
    }
    const connected = openNative(4);
    expect(connected.connect('127.0.0.1', receiver.port, 0)).toBe(0);
    const payload = [patterned(3, 10), patterned(4, 20)];
    expect(connected.send(wholeBatch(payload), 0, 2)).toEqual(sentAll(2, 30));
    expectSameDatagrams(await receiver.waitFor(2, 2000), payload);
  });

  test('IPv6 records reach ::1', async () => {
    const receiver = await receiverOf('udp6');
    const native = openNative(6);
    const payload = [patterned(5, 30), patterned(6, 40)];
    const batch = wholeBatch(payload, { destinations: [{ family: 6, address: '::1', port: receiver.port }] });
    expect(native.send(batch, 0, 2)).toEqual(sentAll(2, 70));
    expectSameDatagrams(await receiver.waitFor(2, 2000), payload);
  });

  test('the records the reader takes are the ones lib/batch.ts encodeDestination writes', () => {
    for (const d of [v4(1), v4(65535, '198.18.0.1'), { family: 6 as const, address: 'fe80::1:2', port: 4433, scopeId: 0x01020304 }]) {
      const theirs = new Uint8Array(RECORD_BYTES + 3);
      encodeDestination({ ...d, scopeId: d.scopeId ?? 0 }, theirs, 3);
      expect(theirs.subarray(3)).toEqual(destinationRecord(d));
    }
  });

  test('a closed socket reports EBADF and sends nothing; stats and getSendBufferSize', async () => {
    const receiver = await receiverOf('udp4');
    const native = openNative(4);
    expect(native.getSendBufferSize()).toEqual({ bytes: expect.any(Number) as number });
    expect((native.getSendBufferSize() as { bytes: number }).bytes).toBeGreaterThan(0);
    expect(native.stats()).toEqual({
      syscalls: 0, messages: 0, datagrams: 0, bytes: 0, segments: 0,
      icmp: {
        received: 0, portUnreachable: 0, hostUnreachable: 0, netUnreachable: 0, fragmentationNeeded: 0,
        prohibited: 0, other: 0, local: 0, dropped: 0,
      },
    });
    expect(native.close()).toBe(0);
    expect(native.getSendBufferSize()).toBe(EBADF);
    for (const continueOnError of [false, true]) {
      expect(native.send(wholeBatch([patterned(1, 10)], { destinations: [v4(receiver.port)], continueOnError }), 0, 1)).toEqual({
        datagrams: 0, bytes: 0, segments: 0, errno: EBADF, syscall: binding().backend, wouldBlock: false,
        failures: continueOnError ? [] : null,
      });
    }
    // A malformed batch is still refused on a closed socket.
    expectNativeThrow(() => native.send(wholeBatch([patterned(1, 10)], { destinations: [v4(0)] }), 0, 1));
    await sleep(20);
    expect(receiver.received).toHaveLength(0);
  });
});

describe('errors that belong to a destination (continueOnError)', () => {
  async function threeWay(): Promise<{ rx: Receiver[]; native: NativeUdpSocket; destinations: ReturnType<typeof v4>[] }> {
    const rx = [await receiverOf('udp4'), await receiverOf('udp4')];
    const native = openNative(4);
    // Table: receiver 0, a broadcast address (EACCES without SO_BROADCAST), receiver 1.
    return { rx, native, destinations: [v4(rx[0]!.port), v4(rx[0]!.port, BROADCAST), v4(rx[1]!.port)] };
  }

  test('a broadcast destination is EACCES: recorded with its batch index, the others arrive', async () => {
    const { rx, native, destinations } = await threeWay();
    const payload = Array.from({ length: 6 }, (_, i) => patterned(i, 50 + i));
    const targets = [0, 1, 2, 1, 0, 2];
    const batch = wholeBatch(payload, { destinations, targets, continueOnError: true });
    expect(native.send(batch, 0, 6)).toEqual({
      datagrams: 4, bytes: 50 + 52 + 54 + 55, segments: 4, errno: 0, syscall: '', wouldBlock: false,
      failures: [1, EACCES, 3, EACCES],
    });
    // A window: the indices are the batch's.
    expect(native.send(batch, 1, 3)).toEqual({
      datagrams: 1, bytes: 52, segments: 1, errno: 0, syscall: '', wouldBlock: false, failures: [1, EACCES, 3, EACCES],
    });
    expect(native.stats()).toMatchObject({ datagrams: 5, segments: 5 });
    expectSameDatagrams(await rx[0]!.waitFor(2, 2000), [payload[0]!, payload[4]!]);
    expectSameDatagrams(await rx[1]!.waitFor(3, 2000), [payload[2]!, payload[5]!, payload[2]!]);
  });

  test('without continueOnError the send stops at the refused datagram', async () => {
    const { rx, native, destinations } = await threeWay();
    const payload = Array.from({ length: 4 }, (_, i) => patterned(i, 20));
    const batch = wholeBatch(payload, { destinations, targets: [0, 1, 2, 0] });
    expect(native.send(batch, 0, 4)).toEqual({
      datagrams: 1, bytes: 20, segments: 1, errno: EACCES, syscall: binding().backend, wouldBlock: false, failures: null,
    });
    expectSameDatagrams(await rx[0]!.waitFor(1, 2000), [payload[0]!]);
    await sleep(20);
    expect(rx[1]!.received).toHaveLength(0);
  });

  test('a refused GSO super-packet records each of its datagrams', async () => {
    const { rx, native, destinations } = await threeWay();
    const payload = Array.from({ length: 6 }, (_, i) => patterned(i, 100));
    const batch = wholeBatch(payload, { destinations, targets: [1, 1, 1, 0, 0, 2], segment: true, continueOnError: true });
    expect(native.send(batch, 0, 6)).toEqual({
      datagrams: 3, bytes: 300, segments: 3, errno: 0, syscall: '', wouldBlock: false,
      failures: [0, EACCES, 1, EACCES, 2, EACCES],
    });
    expectSameDatagrams(await rx[0]!.waitFor(2, 2000), [payload[3]!, payload[4]!]);
    expectSameDatagrams(await rx[1]!.waitFor(1, 2000), [payload[5]!]);
  });

  test('every datagram refused: all recorded, none counted as sent', async () => {
    const { native, destinations } = await threeWay();
    const n = 300;
    const batch = packedBatch(patterned(1, n), new Array<number>(n).fill(1), { destinations: [destinations[1]!], continueOnError: true });
    const result = native.send(batch, 0, n);
    expect(result).toMatchObject({ datagrams: 0, bytes: 0, segments: 0, errno: 0, wouldBlock: false });
    expect(result.failures).toEqual(Array.from({ length: n }, (_, i) => [i, EACCES]).flat());
  });
});

describe('segments', () => {
  test('an explicit segmentSize cuts longer datagrams: each cut is a segment, on the wire and in the count', async () => {
    const receiver = await receiverOf('udp4');
    const native = openNative(4);
    const payload = [patterned(1, 250), patterned(2, 100), patterned(3, 50), patterned(4, 201)];
    const batch = wholeBatch(payload, { destinations: [v4(receiver.port)], controls: { segmentSize: 100 } });
    expect(native.send(batch, 0, 4)).toEqual(sentAll(4, 601, 3 + 1 + 1 + 3));
    expect(native.stats()).toMatchObject({ datagrams: 4, bytes: 601, segments: 8 });
    const cut = (d: Uint8Array): Uint8Array[] => Array.from({ length: Math.ceil(d.byteLength / 100) }, (_, k) => d.subarray(k * 100, k * 100 + 100));
    expectSameDatagrams(await receiver.waitFor(8, 2000), payload.flatMap(cut));
  });
});

// ---------------------------------------------------------------------------------------------
// A full socket buffer needs a queue that holds the datagrams: the slow link's tbf (loopback
// hands every datagram on at once and never fills one).

describe('would block', () => {
  let link: SlowLink | undefined;
  afterEach(async () => {
    await link?.destroy();
    link = undefined;
  });

  test('a tiny SO_SNDBUF fills: wouldBlock, EAGAIN, and the counts hold only what the kernel took', async () => {
    link = await createSlowLink({ rate: '1mbit' });
    const child = new JsonChild(link.spawnNode('a', path.join(FIXTURES, 'native-would-block.js'),
      [JSON.stringify({ address: link.address('b', 4), port: 9, count: 2000, size: 1000 })]), 'native-would-block');
    const exit = await child.waitForExit(15000);
    const line = child.lines.find((l) => l.event === 'result');
    if (line === undefined) throw new Error(`no result line (exit ${JSON.stringify(exit)})\n${child.describe()}`);
    expect(line.backend).toBe(binding().backend);
    const variants = line.variants as Array<{ name: string; result: NativeSendResult; stats: { datagrams: number; bytes: number } }>;
    expect(variants.map((v) => v.name)).toEqual(['plain', 'gso', 'continueOnError']);
    for (const v of variants) {
      const r = v.result;
      expect({ name: v.name, errno: r.errno, wouldBlock: r.wouldBlock, failures: r.failures }).toEqual({
        name: v.name, errno: EAGAIN, wouldBlock: true, failures: v.name === 'continueOnError' ? [] : null,
      });
      expect(r.datagrams).toBeGreaterThan(0);
      expect(r.datagrams).toBeLessThan(2000);
      expect(r.bytes).toBe(r.datagrams * 1000);
      expect(r.segments).toBe(r.datagrams);
      expect(v.stats).toMatchObject({ datagrams: r.datagrams, bytes: r.bytes });
    }
  }, 30000);
});
