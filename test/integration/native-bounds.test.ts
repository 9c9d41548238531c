/**
 * The native layer checks every length, offset, index and count itself: the raw binding is
 * called with values the TypeScript layer would never pass. A bad call must throw a
 * TypeError/RangeError (made by the addon in another realm, so matched by `name`, never by
 * `instanceof`) and send nothing; a good one must send exactly the bytes its layout describes.
 *
 * The native send is `send(buffers, layout, first, firstWord, count, address, port, scopeId,
 * segment, controls?)`: it sends datagrams [first, first + count) of the batch, a layout's
 * datagram `first` starting at word `firstWord`. `sendAll` below is the whole-batch form.
 */
import { execFile } from 'node:child_process';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { binding, type NativeControls, type NativeUdpSocket } from '../../lib/binding';
import { openUdpSocketCount, openReceiver, patterned, type Receiver } from './receiver';

const { EBADF } = os.constants.errno;
const MAX_V4 = 65507;
const MAX_V6 = 65527;
const MAX_DATAGRAMS = 2 ** 20;
const MAX_RANGES = 1024;
const ERROR_NAMES = ['RangeError', 'TypeError'];

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

type SendArgs = Parameters<NativeUdpSocket['send']>;
type SendReturn = ReturnType<NativeUdpSocket['send']>;

/** The arguments of a whole-batch send: datagrams [0, count) from layout word 0, no GSO. */
function all(
  buffers: readonly unknown[] | unknown,
  layout: unknown,
  count: unknown,
  address: unknown,
  port: unknown,
  scopeId: unknown = 0,
  controls?: unknown,
): SendArgs {
  return [buffers, layout, 0, 0, count, address, port, scopeId, false, controls] as unknown as SendArgs;
}

function sendAll(native: NativeUdpSocket, ...args: Parameters<typeof all>): SendReturn {
  return native.send(...all(...args));
}

// ---------------------------------------------------------------------------------------------
// Per-test resources, closed in afterEach even when the test fails.

let socketsBefore: number;
let opened: NativeUdpSocket[];
let receivers: Receiver[];

beforeEach(() => {
  socketsBefore = openUdpSocketCount();
  opened = [];
  receivers = [];
});

afterEach(async () => {
  for (const native of opened) native.close();
  for (const receiver of receivers) await receiver.close();
  expect(openUdpSocketCount()).toBe(socketsBefore);
});

function openNative(family: 4 | 6 = 4): NativeUdpSocket {
  const native = new (binding().UdpSocket)();
  opened.push(native);
  const error = native.open(family);
  if (error !== 0) throw new Error(`open(${family}) failed with errno ${error}`);
  return native;
}

async function receiverOf(type: 'udp4' | 'udp6' = 'udp4'): Promise<Receiver> {
  const receiver = await openReceiver(type);
  receivers.push(receiver);
  return receiver;
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** Calls `fn`, which must throw an error named RangeError or TypeError. */
function expectNativeThrow(fn: () => unknown): Error {
  let thrown: unknown;
  let returned: unknown;
  try {
    returned = fn();
  } catch (error) {
    thrown = error;
  }
  if (thrown === undefined) {
    throw new Error(`expected a RangeError or TypeError, but the call returned ${JSON.stringify(returned)}`);
  }
  const error = thrown as Error;
  expect(ERROR_NAMES).toContain(error.name);
  expect(typeof error.message).toBe('string');
  expect(error.message.length).toBeGreaterThan(0);
  return error;
}

function expectSameDatagrams(received: readonly Buffer[], expected: readonly Uint8Array[]): void {
  expect(received.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const want = Buffer.from(expected[i] as Uint8Array);
    const got = received[i] as Buffer;
    if (!want.equals(got)) {
      throw new Error(`datagram ${i} differs: expected ${want.byteLength} B ${want.subarray(0, 16).toString('hex')}..., ` +
        `got ${got.byteLength} B ${got.subarray(0, 16).toString('hex')}...`);
    }
  }
}

function words(...values: number[]): Uint32Array {
  return Uint32Array.from(values);
}

const MARKER = Uint8Array.from([0x4d, 0x41, 0x52, 0x4b, 0x45, 0x52]); // "MARKER"

/**
 * Proves that nothing went out before: sends a marker datagram from the same socket and waits
 * for it. Loopback keeps one socket's datagrams in order, so anything an earlier call had sent
 * would arrive first.
 */
async function expectNothingBeforeMarker(native: NativeUdpSocket, receiver: Receiver): Promise<void> {
  const address = receiver.address;
  expect(sendAll(native, [MARKER], null, 1, address, receiver.port)).toMatchObject({
    datagrams: 1, bytes: MARKER.byteLength, errno: 0,
  });
  await receiver.waitFor(1, 2000);
  await sleep(5);
  expectSameDatagrams(receiver.received, [MARKER]);
}

// ---------------------------------------------------------------------------------------------

describe('native send refuses out-of-bounds arguments and sends nothing', () => {
  const ten = (): Uint8Array => patterned(1, 10);
  const L = '127.0.0.1';
  // Each case: the send() arguments, given the receiver's port.
  const cases: Array<[string, (port: number) => SendArgs]> = [
    // Buffer indices
    ['a layout naming a buffer index that does not exist', (p) => all([ten()], words(1, 1, 0, 1), 1, L, p)],
    ['a buffer index of 0xFFFFFFFF', (p) => all([ten()], words(1, 0xffffffff, 0, 1), 1, L, p)],
    ['an index into an empty buffers array', (p) => all([], words(1, 0, 0, 0), 1, L, p)],
    // Offsets and lengths
    ['offset > buffer length', (p) => all([ten()], words(1, 0, 11, 0), 1, L, p)],
    ['offset + length one past the end', (p) => all([ten()], words(1, 0, 5, 6), 1, L, p)],
    ['offset == length, length 1', (p) => all([ten()], words(1, 0, 10, 1), 1, L, p)],
    ['offset 0xFFFFFFFF, length 2 (1 in 32-bit arithmetic)', (p) => all([ten()], words(1, 0, 0xffffffff, 2), 1, L, p)],
    ['offset 8, length 0xFFFFFFF8 (0 in 32-bit arithmetic)', (p) => all([ten()], words(1, 0, 8, 0xfffffff8), 1, L, p)],
    ['offset 2, length 0xFFFFFFFF', (p) => all([ten()], words(1, 0, 2, 0xffffffff), 1, L, p)],
    ['a bad range after a good one in the same datagram', (p) =>
      all([ten(), ten()], words(2, 0, 0, 10, 1, 9, 2), 1, L, p)],
    ['a bad datagram after good ones', (p) => all([ten()], words(1, 0, 0, 10, 0, 1, 0, 3, 8), 3, L, p)],
    // Layout shape
    ['a layout truncated mid-triple', (p) => all([ten()], words(1, 0, 0), 1, L, p)],
    ['a layout truncated in the second triple', (p) => all([ten()], words(2, 0, 0, 1, 0, 0), 1, L, p)],
    ['a layout that ends before the last datagram', (p) => all([ten()], words(1, 0, 0, 1), 2, L, p)],
    ['an empty layout for one datagram', (p) => all([ten()], new Uint32Array(0), 1, L, p)],
    ['a range count of 0xFFFFFFFF', (p) => all([ten()], words(0xffffffff, 0, 0, 1), 1, L, p)],
    ['1025 byte ranges in one datagram', (p) => {
      const layout = new Uint32Array(1 + 3 * 1025);
      layout[0] = 1025;
      for (let r = 0; r < 1025; r++) layout.set([0, r, 1], 1 + 3 * r);
      return all([patterned(2, 1025)], layout, 1, L, p);
    }],
    // Counts
    ['count 2^20 + 1 (zero-length datagrams, the layout complete)', (p) =>
      all([], new Uint32Array(MAX_DATAGRAMS + 1), MAX_DATAGRAMS + 1, L, p)],
    ['count 0xFFFFFFFF', (p) => all([], new Uint32Array(4), 0xffffffff, L, p)],
    ['count -1', (p) => all([ten()], null, -1, L, p)],
    ['count 1.5', (p) => all([ten(), ten()], null, 1.5, L, p)],
    ['count NaN', (p) => all([ten()], null, NaN, L, p)],
    ['count as a string', (p) => all([ten()], null, '1', L, p)],
    ['no layout, count > buffers.length', (p) => all([ten(), ten()], null, 3, L, p)],
    ['no layout (undefined), count > buffers.length', (p) => all([ten()], undefined, 2, L, p)],
    // The window: first, firstWord
    ['no layout, first + count > buffers.length', (p) =>
      [[ten(), ten()], null, 1, 0, 2, L, p, 0, false, undefined] as unknown as SendArgs],
    ['no layout, first > buffers.length, count 0', (p) =>
      [[ten(), ten()], null, 3, 0, 0, L, p, 0, false, undefined] as unknown as SendArgs],
    ['no layout, first 0xFFFFFFFF, count 2 (first + count wraps in 32 bits)', (p) =>
      [[ten(), ten()], null, 0xffffffff, 0, 2, L, p, 0, false, undefined] as unknown as SendArgs],
    ['first -1', (p) => [[ten()], null, -1, 0, 1, L, p, 0, false, undefined] as unknown as SendArgs],
    ['first 2^32', (p) => [[ten()], null, 2 ** 32, 0, 0, L, p, 0, false, undefined] as unknown as SendArgs],
    ['firstWord past the end of the layout', (p) =>
      [[ten()], words(1, 0, 0, 1), 0, 5, 0, L, p, 0, false, undefined] as unknown as SendArgs],
    ['firstWord 0xFFFFFFFF', (p) =>
      [[ten()], words(1, 0, 0, 1), 0, 0xffffffff, 1, L, p, 0, false, undefined] as unknown as SendArgs],
    ['firstWord -1', (p) => [[ten()], words(1, 0, 0, 1), 0, -1, 1, L, p, 0, false, undefined] as unknown as SendArgs],
    ['firstWord at the end of the layout, count 1', (p) =>
      [[ten()], words(1, 0, 0, 1), 0, 4, 1, L, p, 0, false, undefined] as unknown as SendArgs],
    ['firstWord in the middle of a triple that then reads out of bounds', (p) =>
      // From word 2 the range count reads 5, but only 2 words follow.
      [[ten()], words(1, 0, 5, 0, 0), 0, 2, 1, L, p, 0, false, undefined] as unknown as SendArgs],
    // Argument types
    ['buffers not an array (a Uint8Array)', (p) => all(ten(), null, 1, L, p)],
    ['buffers null', (p) => all(null, null, 0, L, p)],
    ['layout as an Int32Array', (p) => all([ten()], Int32Array.from([1, 0, 0, 4]), 1, L, p)],
    ['layout as a Float64Array', (p) => all([ten()], Float64Array.from([1, 0, 0, 4]), 1, L, p)],
    ['layout as a plain array', (p) => all([ten()], [1, 0, 0, 4], 1, L, p)],
    ['layout as a Uint8Array', (p) => all([ten()], Uint8Array.from([1, 0, 0, 4]), 1, L, p)],
    // Payload limits
    ['a datagram of 65508 bytes assembled from two ranges', (p) =>
      all([patterned(3, 40000), patterned(4, 40000)], words(2, 0, 0, 40000, 1, 0, MAX_V4 + 1 - 40000), 1, L, p)],
    ['a datagram of 65508 bytes assembled from 1024 ranges over one buffer', (p) => {
      const layout = new Uint32Array(1 + 3 * 1024);
      layout[0] = 1024;
      for (let r = 0; r < 1024; r++) layout.set([0, 0, r < 1023 ? 64 : MAX_V4 + 1 - 64 * 1023], 1 + 3 * r);
      return all([patterned(5, 2000)], layout, 1, L, p);
    }],
    ['a 65508-byte buffer without a layout', (p) => all([new Uint8Array(MAX_V4 + 1)], null, 1, L, p)],
    // Destination
    ['an IPv6 address on an IPv4 socket', (p) => all([ten()], null, 1, '::1', p)],
    ['a host name', (p) => all([ten()], null, 1, 'localhost', p)],
    ['an empty address', (p) => all([ten()], null, 1, '', p)],
    ['a short-hand IPv4 address', (p) => all([ten()], null, 1, '127.1', p)],
    ['an address with a space', (p) => all([ten()], null, 1, ' 127.0.0.1', p)],
    ['an address of 200 characters', (p) => all([ten()], null, 1, '1'.repeat(200), p)],
    ['an address that is a number', (p) => all([ten()], null, 1, 0x7f000001, p)],
    // C strings stop at a NUL: "127.0.0.1\0junk" is not an IP literal and must not become one.
    ['an address with an embedded NUL ("127.0.0.1\\0junk")', (p) => all([ten()], null, 1, '127.0.0.1\0junk', p)],
    ['an address with a trailing NUL', (p) => all([ten()], null, 1, '127.0.0.1\0', p)],
    ['port 70000', () => all([ten()], null, 1, L, 70000)],
    ['port 65536', () => all([ten()], null, 1, L, 65536)],
    ['port -1', () => all([ten()], null, 1, L, -1)],
    ['port 1.5', () => all([ten()], null, 1, L, 1.5)],
    ['port NaN', () => all([ten()], null, 1, L, NaN)],
    ['port as a string', (p) => all([ten()], null, 1, L, String(p))],
    ['scopeId -1', (p) => all([ten()], null, 1, L, p, -1)],
    ['scopeId 2^32', (p) => all([ten()], null, 1, L, p, 2 ** 32)],
    // Controls
    ['controls that are a number', (p) => all([ten()], null, 1, L, p, 0, 5)],
    ['controls.tos 256', (p) => all([ten()], null, 1, L, p, 0, { tos: 256 })],
    ['controls.tos -1', (p) => all([ten()], null, 1, L, p, 0, { tos: -1 })],
    ['controls.tos as a string', (p) => all([ten()], null, 1, L, p, 0, { tos: '1' })],
    ['controls.ttl 0', (p) => all([ten()], null, 1, L, p, 0, { ttl: 0 })],
    ['controls.ttl 256', (p) => all([ten()], null, 1, L, p, 0, { ttl: 256 })],
    ['controls.ttl 1.5', (p) => all([ten()], null, 1, L, p, 0, { ttl: 1.5 })],
    ['controls.interfaceIndex -1', (p) => all([ten()], null, 1, L, p, 0, { interfaceIndex: -1 })],
    ['controls.interfaceIndex 2^32', (p) => all([ten()], null, 1, L, p, 0, { interfaceIndex: 2 ** 32 })],
    ['controls.segmentSize 0', (p) => all([ten()], null, 1, L, p, 0, { segmentSize: 0 })],
    ['controls.segmentSize 65528', (p) => all([ten()], null, 1, L, p, 0, { segmentSize: MAX_V6 + 1 })],
    ['controls.sourceAddress of the other family', (p) => all([ten()], null, 1, L, p, 0, { sourceAddress: '::1' })],
    ['controls.sourceAddress that is not an IP literal', (p) =>
      all([ten()], null, 1, L, p, 0, { sourceAddress: 'localhost' })],
    ['controls.sourceAddress that is a number', (p) => all([ten()], null, 1, L, p, 0, { sourceAddress: 1 })],
    ['controls.sourceAddress with an embedded NUL', (p) =>
      all([ten()], null, 1, L, p, 0, { sourceAddress: '127.0.0.1\0junk' })],
  ];

  test.each(cases)('%s', async (_name, makeArgs) => {
    const receiver = await receiverOf('udp4');
    const native = openNative(4);
    expectNativeThrow(() => native.send(...makeArgs(receiver.port)));
    await expectNothingBeforeMarker(native, receiver);
  });

  const notUint8: Array<[string, unknown]> = [
    ['a Uint16Array', new Uint16Array(5)],
    ['a Uint8ClampedArray', new Uint8ClampedArray(10)],
    ['a DataView', new DataView(new ArrayBuffer(10))],
    ['an ArrayBuffer', new ArrayBuffer(10)],
    ['a string', 'abcdefghij'],
    ['a number', 10],
    ['null', null],
    ['an array of bytes', [1, 2, 3]],
  ];

  test.each(notUint8)('a buffer that is %s is refused, with and without a layout', async (_name, value) => {
    const receiver = await receiverOf('udp4');
    const native = openNative(4);
    const good = patterned(1, 10);
    expectNativeThrow(() => sendAll(native, [good, value], null, 2, '127.0.0.1', receiver.port));
    expectNativeThrow(() => sendAll(native, [good, value], words(1, 0, 0, 10, 1, 1, 0, 2), 2, '127.0.0.1',
      receiver.port));
    await expectNothingBeforeMarker(native, receiver);
  });

  test('an IPv4 address on an IPv6 socket, and 65528 bytes over IPv6, are refused; 65527 goes out', async () => {
    const receiver = await receiverOf('udp6');
    const native = openNative(6);
    const a = patterned(2, 40000);
    const b = patterned(3, 40000);
    expectNativeThrow(() => sendAll(native, [patterned(1, 10)], null, 1, '127.0.0.1', receiver.port));
    expectNativeThrow(() => sendAll(native, [a, b], words(2, 0, 0, 40000, 1, 0, MAX_V6 + 1 - 40000), 1, '::1',
      receiver.port));
    expectNativeThrow(() => sendAll(native, [a], null, 1, '::1', receiver.port, 0, { sourceAddress: '127.0.0.1' }));
    const result = sendAll(native, [a, b], words(2, 0, 0, 40000, 1, 0, MAX_V6 - 40000), 1, '::1', receiver.port);
    expect(result).toMatchObject({ datagrams: 1, bytes: MAX_V6, errno: 0 });
    expectSameDatagrams(await receiver.waitFor(1, 2000), [Buffer.concat([a, b.subarray(0, MAX_V6 - 40000)])]);
  });
});

describe('native send at the limits sends exactly the described bytes', () => {
  test('1024 ranges in one datagram, and 65507 bytes from two ranges', async () => {
    const receiver = await receiverOf('udp4');
    const native = openNative(4);
    const source = patterned(6, 1024);
    const layout = new Uint32Array(1 + 3 * 1024);
    layout[0] = 1024;
    // Range r is byte 1023 - r: the datagram is the source reversed.
    for (let r = 0; r < 1024; r++) layout.set([0, 1023 - r, 1], 1 + 3 * r);
    expect(sendAll(native, [source], layout, 1, '127.0.0.1', receiver.port))
      .toMatchObject({ datagrams: 1, bytes: 1024, errno: 0 });

    const a = patterned(7, 40000);
    const b = patterned(8, 40000);
    expect(sendAll(native, [a, b], words(2, 1, 5, 40000 - 5, 0, 0, MAX_V4 - 39995), 1, '127.0.0.1', receiver.port))
      .toMatchObject({ datagrams: 1, bytes: MAX_V4, errno: 0 });

    const reversed = Uint8Array.from(source).reverse();
    expectSameDatagrams(await receiver.waitFor(2, 2000),
      [reversed, Buffer.concat([b.subarray(5), a.subarray(0, MAX_V4 - 39995)])]);
  });

  test('a window reads only its datagrams: words after it and buffers outside it are not sent', async () => {
    const receiver = await receiverOf('udp4');
    const native = openNative(4);
    const bufs = [patterned(10, 5), patterned(11, 6), patterned(12, 7), patterned(13, 8)];
    // No layout: datagrams [1, 3) are bufs[1] and bufs[2].
    expect(native.send(bufs, null, 1, 0, 2, '127.0.0.1', receiver.port, 0, false))
      .toMatchObject({ datagrams: 2, bytes: 13, errno: 0 });
    // A layout of three datagrams; send datagram 1 only, which starts at word 4.
    const layout = words(1, 0, 0, 5, 2, 1, 1, 5, 3, 0, 8, 1, 2, 0, 7);
    const result = native.send(bufs, layout, 1, 4, 1, '127.0.0.1', receiver.port, 0, false);
    expect(result).toMatchObject({ datagrams: 1, bytes: 13, errno: 0 });
    expect(result.word).toBe(11); // where datagram 2 starts
    // Words after the last datagram of a whole-batch send are not read either.
    const extra = sendAll(native, [bufs[0]], words(1, 0, 1, 3, 0xffffffff, 7), 1, '127.0.0.1', receiver.port);
    expect(extra).toMatchObject({ datagrams: 1, bytes: 3, errno: 0 });
    expect(extra.word).toBe(4);
    // No layout and count < buffers.length: the first `count` buffers.
    expect(sendAll(native, bufs, null, 1, '127.0.0.1', receiver.port)).toMatchObject({ datagrams: 1, bytes: 5 });
    const [b0, b1, b2, b3] = bufs as [Uint8Array, Uint8Array, Uint8Array, Uint8Array];
    expectSameDatagrams(await receiver.waitFor(5, 2000), [
      b1, b2,
      Buffer.concat([b1.subarray(1, 6), b3]),
      b0.subarray(1, 4),
      b0,
    ]);
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
    expectNativeThrow(() => sendAll(native, [part], words(1, 0, offset, length), 1, '127.0.0.1', receiver.port));
    await expectNothingBeforeMarker(native, receiver);
  });

  test('a pooled Buffer (byteOffset into the shared pool) cannot be read past its end', async () => {
    const receiver = await receiverOf('udp4');
    const native = openNative(4);
    const small = Buffer.from('abc');
    expectNativeThrow(() => sendAll(native, [small], words(1, 0, 0, 4), 1, '127.0.0.1', receiver.port));
    expectNativeThrow(() => sendAll(native, [small], words(1, 0, 3, 200), 1, '127.0.0.1', receiver.port));
    await expectNothingBeforeMarker(native, receiver);
  });

  test('a valid layout sends the bytes of the view (byteOffset honoured)', async () => {
    const receiver = await receiverOf('udp4');
    const native = openNative(4);
    const { backing, part } = view();
    const result = sendAll(native, [part, part], words(1, 0, 10, 20, 2, 1, 95, 5, 0, 0, 3), 2, '127.0.0.1',
      receiver.port);
    expect(result).toMatchObject({ datagrams: 2, bytes: 28, errno: 0 });
    expect(sendAll(native, [part], null, 1, '127.0.0.1', receiver.port))
      .toMatchObject({ datagrams: 1, bytes: 100, errno: 0 });
    // Expected bytes from the backing buffer, the view's offset added by hand.
    expectSameDatagrams(await receiver.waitFor(3, 2000), [
      backing.slice(110, 130),
      Buffer.concat([backing.slice(195, 200), backing.slice(100, 103)]),
      backing.slice(100, 200),
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// Property: random buffers, layout words and window arguments. An independent model of the
// documented layout (lib/transport.ts BatchLayout, lib/binding.ts send) says which calls are
// valid and what they send; the native call must agree.

type Model = { ok: true; datagrams: Uint8Array[]; bytes: number; word: number } | { ok: false };

function model(buffers: readonly Uint8Array[], layout: Uint32Array | null, first: number, firstWord: number,
  count: number): Model {
  const isU32 = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
  if (!isU32(first) || !isU32(firstWord) || !Number.isInteger(count) || count < 0 || count > MAX_DATAGRAMS) {
    return { ok: false };
  }
  if (layout === null) {
    if (first + count > buffers.length) return { ok: false };
    const window = buffers.slice(first, first + count);
    if (window.some((b) => b.byteLength > MAX_V4)) return { ok: false };
    return {
      ok: true,
      datagrams: window.map((b) => Uint8Array.from(b)),
      bytes: window.reduce((sum, b) => sum + b.byteLength, 0),
      word: 0,
    };
  }
  const w = Array.from(layout);
  if (firstWord > w.length) return { ok: false };
  let cursor = firstWord;
  let bytes = 0;
  const datagrams: Uint8Array[] = [];
  for (let d = 0; d < count; d++) {
    if (cursor >= w.length) return { ok: false };
    const n = w[cursor++] as number;
    if (n > MAX_RANGES || cursor + 3 * n > w.length) return { ok: false };
    const pieces: number[] = [];
    for (let r = 0; r < n; r++) {
      const index = w[cursor] as number;
      const offset = w[cursor + 1] as number;
      const length = w[cursor + 2] as number;
      cursor += 3;
      const buffer = buffers[index];
      if (buffer === undefined) return { ok: false };
      if (offset + length > buffer.byteLength) return { ok: false }; // exact: doubles, not uint32
      for (let i = offset; i < offset + length; i++) pieces.push(buffer[i] as number);
      if (pieces.length > MAX_V4) return { ok: false };
    }
    bytes += pieces.length;
    datagrams.push(Uint8Array.from(pieces));
  }
  return { ok: true, datagrams, bytes, word: cursor };
}

describe('model self-check', () => {
  test('the model reads layouts as documented', () => {
    const a = Uint8Array.from([1, 2, 3, 4]);
    const b = Uint8Array.from([9, 8]);
    expect(model([a, b], words(2, 1, 1, 1, 0, 0, 2, 0), 0, 0, 2))
      .toEqual({ ok: true, bytes: 3, word: 8, datagrams: [Uint8Array.from([8, 1, 2]), new Uint8Array(0)] });
    expect(model([a, b], words(2, 1, 1, 1, 0, 0, 2, 1, 1, 0, 2), 0, 7, 1))
      .toEqual({ ok: true, bytes: 2, word: 11, datagrams: [Uint8Array.from([9, 8])] });
    expect(model([a], words(1, 0, 3, 2), 0, 0, 1)).toEqual({ ok: false });
    expect(model([a], words(1, 0, 0, 1), 0, 5, 0)).toEqual({ ok: false });
    expect(model([a, b], null, 1, 0, 1)).toEqual({ ok: true, bytes: 2, word: 0, datagrams: [b] });
    expect(model([a, b], null, 1, 0, 2)).toEqual({ ok: false });
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
const datagramArb = fc.record({
  ranges: fc.array(rangeArb, { maxLength: 4 }),
  // Usually the true range count, sometimes a lie.
  countLie: fc.option(smallWord(6), { freq: 15 }),
});
const offsetArb = fc.oneof(
  { weight: 10, arbitrary: fc.constant(0) },
  { weight: 3, arbitrary: fc.integer({ min: 0, max: 6 }) },
  { weight: 1, arbitrary: fc.constantFrom(0xffffffff, 2 ** 32, -1, 0.5) },
);
const caseArb = fc.record({
  buffers: fc.array(fc.oneof(
    { weight: 10, arbitrary: fc.uint8Array({ maxLength: 48 }) },
    { weight: 1, arbitrary: fc.constant(BIG) },
  ), { minLength: 1, maxLength: 4 }),
  nullLayout: fc.integer({ min: 0, max: 5 }).map((n) => n === 0),
  datagrams: fc.array(datagramArb, { maxLength: 5 }),
  // Layout words before the window: the window starts at firstWord.
  prefix: fc.oneof(
    { weight: 8, arbitrary: fc.constant([] as number[]) },
    { weight: 2, arbitrary: fc.array(smallWord(4), { minLength: 1, maxLength: 5 }) },
  ),
  tamper: fc.oneof(
    { weight: 12, arbitrary: fc.constant({ kind: 'none' as const, n: 0 }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), n: fc.integer({ min: 1, max: 4 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('append' as const), n: fc.integer({ min: 0, max: 0xffffffff }) }) },
  ),
  countDelta: fc.oneof(
    { weight: 12, arbitrary: fc.constant(0) },
    { weight: 2, arbitrary: fc.integer({ min: -2, max: 2 }) },
    { weight: 1, arbitrary: fc.constantFrom(MAX_DATAGRAMS + 1, 0xffffffff, -1, 0.5) },
  ),
  first: offsetArb,
  firstWordDelta: offsetArb,
  segment: fc.boolean(),
});

interface CaseInput {
  buffers: Uint8Array[];
  nullLayout: boolean;
  datagrams: Array<{ ranges: Array<[number, number, number]>; countLie: number | null }>;
  prefix: number[];
  tamper: { kind: 'none' | 'truncate' | 'append'; n: number };
  countDelta: number;
  first: number;
  firstWordDelta: number;
  segment: boolean;
}

interface BuiltCase {
  buffers: Uint8Array[];
  layout: Uint32Array | null;
  first: number;
  firstWord: number;
  count: number;
}

function buildCase(c: CaseInput): BuiltCase {
  // A small integer delta shifts the true value; anything else replaces it.
  const shift = (base: number, delta: number): number =>
    Number.isInteger(delta) && delta >= 0 && delta <= 6 ? base + delta : delta;
  const countSpecial = !Number.isInteger(c.countDelta) || Math.abs(c.countDelta) > 2;
  if (c.nullLayout) {
    const first = c.first;
    const base = Math.max(0, c.buffers.length - (Number.isInteger(first) && first >= 0 ? first : 0));
    return { buffers: c.buffers, layout: null, first, firstWord: 0, count: countSpecial ? c.countDelta : base + c.countDelta };
  }
  const out: number[] = [...c.prefix];
  for (const d of c.datagrams) {
    out.push(d.countLie ?? d.ranges.length);
    for (const range of d.ranges) out.push(...range);
  }
  if (c.tamper.kind === 'truncate') out.splice(Math.max(0, out.length - c.tamper.n));
  if (c.tamper.kind === 'append') out.push(c.tamper.n);
  // firstWord: the prefix length, or off by a little, or a special value.
  const firstWord = c.firstWordDelta === 0 ? c.prefix.length : shift(c.prefix.length, c.firstWordDelta);
  const count = countSpecial ? c.countDelta : c.datagrams.length + c.countDelta;
  return { buffers: c.buffers, layout: Uint32Array.from(out), first: c.first, firstWord, count };
}

describe('property: random layouts into native.send', () => {
  test('throws by name exactly when the model says invalid; otherwise sends exactly the model\'s datagrams', async () => {
    const receiver = await receiverOf('udp4');
    const native = openNative(4);
    const expected: Uint8Array[] = [];
    let valid = 0;
    let invalid = 0;

    await fc.assert(
      fc.asyncProperty(caseArb, async (raw) => {
        const { buffers, layout, first, firstWord, count } = buildCase(raw);
        const want = model(buffers, layout, first, firstWord, count);
        let thrown: unknown;
        let result: SendReturn | undefined;
        try {
          result = native.send(buffers, layout, first, firstWord, count, '127.0.0.1', receiver.port, 0, raw.segment);
        } catch (error) {
          thrown = error;
        }
        if (thrown !== undefined) {
          expect(ERROR_NAMES).toContain((thrown as Error).name);
          if (want.ok) throw new Error(`a valid call threw: ${(thrown as Error).message}`);
          invalid++;
          return;
        }
        if (!want.ok) throw new Error(`an invalid call returned ${JSON.stringify(result)}`);
        expect(result).toMatchObject({ datagrams: count, bytes: want.bytes, errno: 0, word: want.word });
        valid++;
        const before = expected.length;
        expected.push(...want.datagrams);
        if (expected.length > before) {
          const got = await receiver.waitFor(expected.length, 2000);
          expectSameDatagrams(got.slice(before), expected.slice(before));
        }
      }),
      { numRuns: 300 },
    );
    // Both sides of the property were exercised.
    expect(valid).toBeGreaterThan(20);
    expect(invalid).toBeGreaterThan(20);
    await sleep(10);
    expectSameDatagrams(receiver.received, expected);
  });
});

// ---------------------------------------------------------------------------------------------

describe('a closed native socket', () => {
  test('send reports EBADF from the batching call and sends nothing; close twice is harmless; bind/connect give EBADF', async () => {
    const receiver = await receiverOf('udp4');
    const native = openNative(4);
    expect(native.fd).toBeGreaterThanOrEqual(0);
    expect(native.close()).toBe(0);
    expect(native.fd).toBe(-1);
    const closedResult = { datagrams: 0, bytes: 0, errno: EBADF, syscall: binding().backend };
    expect(sendAll(native, [patterned(1, 10), patterned(2, 0)], null, 2, '127.0.0.1', receiver.port))
      .toMatchObject(closedResult);
    expect(sendAll(native, [patterned(3, 10)], words(1, 0, 2, 3), 1, '127.0.0.1', receiver.port))
      .toMatchObject(closedResult);
    expect(sendAll(native, [patterned(3, 10)], null, 1, null, 0)).toMatchObject(closedResult);
    expect(native.close()).toBe(0);
    expect(native.close()).toBe(0);
    expect(native.bind('127.0.0.1', 0, 0)).toBe(EBADF);
    expect(native.connect('127.0.0.1', receiver.port, 0)).toBe(EBADF);
    expect(native.localAddress()).toBe(EBADF);
    expect(native.remoteAddress()).toBe(EBADF);
    // Bad arguments are still refused on a closed socket.
    expectNativeThrow(() => sendAll(native, [patterned(1, 10)], words(1, 0, 5, 6), 1, '127.0.0.1', receiver.port));
    await sleep(50);
    expect(receiver.received).toHaveLength(0);
  });
});

// ---------------------------------------------------------------------------------------------
// JavaScript can run in the middle of a native send: reading an array element with an accessor
// (buffers.Get(i) in native/socket.cc) or a property of `controls` (object.Get) calls a getter.
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
          sendAll(innerSocket, [inner], null, 1, '127.0.0.1', other.port);
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
    await expectOuterIntact(setup, () => sendAll(setup.native, buffers, null, 3, '127.0.0.1', setup.receiver.port),
      [a, b, c]);
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
    await expectOuterIntact(setup, () => sendAll(setup.native, [a, b], null, 2, '127.0.0.1', setup.receiver.port,
      0, controls as NativeControls), [a, b]);
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
      let out;
      try {
        let result;
        if (${JSON.stringify(scenario)} === 'array') {
          const buffers = [victim, null];
          Object.defineProperty(buffers, 1, { get() { detach(); return Uint8Array.of(0x62); } });
          result = socket.send(buffers, Uint32Array.of(1, 0, 0, 4096, 1, 1, 0, 1), 0, 0, 2,
            '127.0.0.1', ${port}, 0, false);
        } else {
          result = socket.send([victim, Uint8Array.of(0x62)], null, 0, 0, 2, '127.0.0.1', ${port}, 0, false,
            { get ttl() { detach(); return 64; } });
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
