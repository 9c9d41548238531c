/**
 * Unit tests of the batch builders (lib/batch.ts): every input form gives the one Batch shape
 * (buffers, ranges, spans, targets, destination table), bad input is a TypeError/RangeError
 * before anything is built, and a caller's getters run once each.
 *
 * Expected bytes come from gather() below, which follows spans to ranges to buffers on its
 * own, and from encodings written out by hand.
 */
import fc from 'fast-check';
import {
  buildAddressedBatch, buildBatch, buildFanOutBatch, DESTINATION_RECORD_BYTES, DestinationCache,
  destinationTable, encodeDestination, MAX_BATCH_RANGES, readPayload, type BuildOptions, type NativeBatch,
} from '../../lib/batch';
import {
  MAX_BATCH_DATAGRAMS, MAX_DATAGRAM_PIECES, MAX_UDP_PAYLOAD, type Destination,
} from '../../lib/transport';

const V4: BuildOptions = { family: 4, segment: false, continueOnError: false, controls: undefined };
const V6: BuildOptions = { ...V4, family: 6 };

const A: Destination = { family: 6, address: 'fd00::1', port: 1000, scopeId: 0 };
const B: Destination = { family: 6, address: 'fd00::2', port: 1000, scopeId: 0 };
const C: Destination = { family: 6, address: 'fe80::1', port: 443, scopeId: 7 };

type Spans = NativeBatch['spans'];

/** The datagrams of `batch`, each gathered into one array, following spans -> ranges -> buffers. */
function gather(batch: Pick<NativeBatch, 'buffers' | 'ranges' | 'spans'>): number[][] {
  const out: number[][] = [];
  for (let d = 0; d < batch.spans.length / 2; d++) {
    const first = batch.spans[d * 2]!;
    const count = batch.spans[d * 2 + 1]!;
    const bytes: number[] = [];
    for (let r = first; r < first + count; r++) {
      const buffer = batch.buffers[batch.ranges[r * 3]!]!;
      const offset = batch.ranges[r * 3 + 1]!;
      const length = batch.ranges[r * 3 + 2]!;
      if (offset + length > buffer.length) throw new Error(`range ${r} past its buffer`);
      bytes.push(...buffer.subarray(offset, offset + length));
    }
    out.push(bytes);
  }
  return out;
}

const words = (array: Uint32Array | Spans): number[] => Array.from(array);

function bytes(length: number, seed = 1): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (seed * 37 + i * 11) & 255);
}

/** Detaches the memory of `view` (as transferring it to a worker would). */
function detach(view: ArrayBufferView): void {
  const buffer = view.buffer as ArrayBuffer;
  structuredClone(buffer, { transfer: [buffer] });
}

function detached(length: number): Uint8Array {
  const view = new Uint8Array(length);
  detach(view);
  return view;
}

/** A fixed-length view whose resizable buffer then shrank below it. */
function pastTheEnd(length: number): Uint8Array {
  const Resizable = ArrayBuffer as unknown as
    new (n: number, options: { maxByteLength: number }) => ArrayBuffer & { resize(n: number): void };
  const buffer = new Resizable(length + 8, { maxByteLength: 4096 });
  const view = new Uint8Array(buffer, 8, length);
  buffer.resize(4);
  return view;
}

/** The record of `destination`, written out by hand. */
function recordOf(destination: Destination, address: number[]): number[] {
  const scope = destination.scopeId >>> 0;
  const record = [
    destination.family, 0, destination.port >> 8, destination.port & 255,
    scope & 255, (scope >>> 8) & 255, (scope >>> 16) & 255, scope >>> 24,
    ...address,
  ];
  while (record.length < DESTINATION_RECORD_BYTES) record.push(0);
  return record;
}

// ---------------------------------------------------------------------------------------------

describe('readPayload: an array of datagrams', () => {
  test('each Uint8Array is one range of its own: the caller\'s views, offset 0, their length', () => {
    const backing = bytes(40);
    const datagrams = [bytes(5), backing.subarray(10, 17), Buffer.from([1, 2, 3]), new Uint8Array(0)];
    const payload = readPayload(datagrams, 4);
    expect(payload.count).toBe(4);
    expect(payload.totalBytes).toBe(5 + 7 + 3 + 0);
    expect(payload.buffers).toHaveLength(4);
    payload.buffers.forEach((buffer, i) => expect(buffer).toBe(datagrams[i]));
    expect(words(payload.ranges)).toEqual([0, 0, 5, 1, 0, 7, 2, 0, 3, 3, 0, 0]);
    expect(words(payload.spans)).toEqual([0, 1, 1, 1, 2, 1, 3, 1]);
    expect(gather(payload)).toEqual(datagrams.map((d) => [...d]));
  });

  test('a datagram of pieces is one span over its ranges, in order; zero pieces is an empty datagram', () => {
    const [p, q, r, s] = [bytes(3, 1), bytes(4, 2), bytes(0, 3), bytes(2, 4)];
    const payload = readPayload([[p, q], s, [], [r, s, p]], 6);
    expect(payload.count).toBe(4);
    expect(payload.totalBytes).toBe(7 + 2 + 0 + 5);
    expect(words(payload.spans)).toEqual([0, 2, 2, 1, 3, 0, 3, 3]);
    expect(words(payload.ranges)).toEqual([0, 0, 3, 1, 0, 4, 2, 0, 2, 3, 0, 0, 4, 0, 2, 5, 0, 3]);
    expect(payload.buffers).toEqual([p, q, s, r, s, p]);
    expect(payload.buffers[5]).toBe(p);
    expect(gather(payload)).toEqual([[...p, ...q], [...s], [], [...r, ...s, ...p]]);
  });

  test('the payload holds its own arrays: changing the caller\'s arrays afterwards changes nothing', () => {
    const first = bytes(3);
    const pieces = [bytes(2, 5), bytes(2, 6)];
    const input: Array<Uint8Array | Uint8Array[]> = [first, pieces];
    const payload = readPayload(input, 4);
    const before = gather(payload);
    input.length = 0;
    pieces.push(bytes(9));
    expect(gather(payload)).toEqual(before);
    expect(payload.count).toBe(2);
  });
});

describe('readPayload: packed batches', () => {
  test.each([
    ['a Uint32Array', Uint32Array.of(3, 0, 5, 2)],
    ['an array of numbers', [3, 0, 5, 2]],
  ])('lengths as %s: one buffer, ranges back to back, trailing bytes left out', (_, lengths) => {
    const buffer = bytes(12);
    const payload = readPayload({ buffer, lengths }, 4);
    expect(payload.buffers).toEqual([buffer]);
    expect(payload.buffers[0]).toBe(buffer);
    expect(words(payload.ranges)).toEqual([0, 0, 3, 0, 3, 0, 0, 3, 5, 0, 8, 2]);
    expect(words(payload.spans)).toEqual([0, 1, 1, 1, 2, 1, 3, 1]);
    expect(payload.count).toBe(4);
    expect(payload.totalBytes).toBe(10);
    expect(gather(payload)).toEqual([[...buffer.subarray(0, 3)], [], [...buffer.subarray(3, 8)], [...buffer.subarray(8, 10)]]);
  });

  test('the lengths are copied: changing the caller\'s afterwards changes nothing', () => {
    const buffer = bytes(10);
    const lengths = Uint32Array.of(4, 6);
    const numbers = [4, 6];
    const a = readPayload({ buffer, lengths }, 4);
    const b = readPayload({ buffer, lengths: numbers }, 4);
    lengths.fill(1);
    numbers.fill(1);
    expect(gather(a)).toEqual([[...buffer.subarray(0, 4)], [...buffer.subarray(4)]]);
    expect(gather(b)).toEqual(gather(a));
  });

  test('empty lengths: no datagrams', () => {
    expect(readPayload({ buffer: bytes(4), lengths: [] }, 4)).toMatchObject({ count: 0, totalBytes: 0 });
  });

  test('segmentSize cuts the buffer in datagrams of that size; the last one may be shorter', () => {
    const buffer = bytes(23);
    const payload = readPayload({ buffer, segmentSize: 5 }, 4);
    expect(payload.count).toBe(5);
    expect(payload.totalBytes).toBe(23);
    expect(words(payload.ranges)).toEqual([0, 0, 5, 0, 5, 5, 0, 10, 5, 0, 15, 5, 0, 20, 3]);
    expect(words(payload.spans)).toEqual([0, 1, 1, 1, 2, 1, 3, 1, 4, 1]);
    expect(gather(payload).map((d) => d.length)).toEqual([5, 5, 5, 5, 3]);
    expect(gather(payload).flat()).toEqual([...buffer]);
  });

  test('segmentSize: an exact multiple has no short datagram; a larger size gives one; empty gives none', () => {
    expect(gather(readPayload({ buffer: bytes(20), segmentSize: 5 }, 4)).map((d) => d.length)).toEqual([5, 5, 5, 5]);
    expect(gather(readPayload({ buffer: bytes(7), segmentSize: 100 }, 4)).map((d) => d.length)).toEqual([7]);
    expect(readPayload({ buffer: new Uint8Array(0), segmentSize: 5 }, 4)).toMatchObject({ count: 0, totalBytes: 0 });
  });

  test('the largest segmentSize is the UDP limit of the family', () => {
    const buffer = new Uint8Array(MAX_UDP_PAYLOAD[6] + 1);
    expect(readPayload({ buffer, segmentSize: MAX_UDP_PAYLOAD[4] }, 4).count).toBe(2);
    expect(readPayload({ buffer, segmentSize: MAX_UDP_PAYLOAD[6] }, 6).count).toBe(2);
    expect(() => readPayload({ buffer, segmentSize: MAX_UDP_PAYLOAD[4] + 1 }, 4)).toThrow(RangeError);
    expect(() => readPayload({ buffer, segmentSize: MAX_UDP_PAYLOAD[6] + 1 }, 6)).toThrow(RangeError);
  });
});

describe('buildBatch', () => {
  test('to the connected remote: no table, no targets, no endpoints; the options as given', () => {
    const controls = { ttl: 4 };
    const batch = buildBatch([bytes(3), bytes(4)], null, { family: 4, segment: true, continueOnError: true, controls });
    expect(batch).toMatchObject({
      targets: null, destinations: null, endpoints: [], segment: true, continueOnError: true, count: 2, totalBytes: 7,
    });
    expect(batch.controls).toBe(controls);
  });

  test('to one destination: a table of its record, every datagram to it (no targets)', () => {
    const batch = buildBatch({ buffer: bytes(10), lengths: [4, 6] }, C, V6);
    expect(batch.targets).toBeNull();
    expect(batch.endpoints).toEqual([C]);
    const expected = recordOf(C, [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect([...batch.destinations!]).toEqual(expected);
    // A destination already parsed (with its bytes) gives the same record.
    const parsed = new DestinationCache(6).destination(443, 'fe80::1%7');
    expect([...buildBatch([bytes(1)], parsed, V6).destinations!]).toEqual(expected);
  });
});

describe('buildAddressedBatch', () => {
  test('datagram i to destinations[i]: equal destinations share one table entry', () => {
    const sameAsA = { ...A }; // equal by value, another object
    const otherPort = { ...A, port: 1001 };
    const otherScope = { ...C, scopeId: 8 };
    const destinations = [A, sameAsA, B, A, otherPort, C, otherScope, C];
    const input = destinations.map((_, i) => bytes(i + 1, i));
    const batch = buildAddressedBatch(input, destinations, V6);
    expect(batch.endpoints).toEqual([A, B, otherPort, C, otherScope]);
    expect(words(batch.targets!)).toEqual([0, 0, 1, 0, 2, 3, 4, 3]);
    expect(batch.destinations).toEqual(destinationTable([A, B, otherPort, C, otherScope]));
    expect(batch.count).toBe(8);
    expect(gather(batch)).toEqual(input.map((d) => [...d]));
    // Each datagram's record is its own destination's.
    for (let i = 0; i < destinations.length; i++) {
      const t = batch.targets![i]!;
      const record = batch.destinations!.subarray(t * DESTINATION_RECORD_BYTES, (t + 1) * DESTINATION_RECORD_BYTES);
      expect(record).toEqual(destinationTable([destinations[i]!]));
    }
  });

  test('a count of destinations other than the datagrams\' is a RangeError', () => {
    expect(() => buildAddressedBatch([bytes(1), bytes(2)], [A], V6)).toThrow(RangeError);
    expect(() => buildAddressedBatch([bytes(1)], [A, B], V6)).toThrow(RangeError);
    expect(() => buildAddressedBatch({ buffer: bytes(4), segmentSize: 2 }, [A], V6)).toThrow(/2 datagrams but 1 destinations/);
  });
});

describe('buildFanOutBatch', () => {
  test('every datagram to each destination, destination-major, the spans pointing at the same ranges', () => {
    const input = [[bytes(2, 1), bytes(3, 2)], bytes(4, 3), [bytes(1, 4)]];
    const payload = readPayload(input, 6);
    const batch = buildFanOutBatch(input, [A, B, C], V6);
    expect(batch.count).toBe(9);
    expect(batch.totalBytes).toBe(3 * payload.totalBytes);
    expect(batch.endpoints).toEqual([A, B, C]);
    expect(words(batch.ranges)).toEqual(words(payload.ranges)); // not copied per destination
    expect(batch.buffers).toHaveLength(payload.buffers.length);
    const copy = words(payload.spans);
    expect(words(batch.spans)).toEqual([...copy, ...copy, ...copy]);
    expect(words(batch.targets!)).toEqual([0, 0, 0, 1, 1, 1, 2, 2, 2]);
    expect(batch.destinations).toEqual(destinationTable([A, B, C]));
    const once = gather(payload);
    expect(gather(batch)).toEqual([...once, ...once, ...once]);
  });

  test('no destinations: no datagrams', () => {
    expect(buildFanOutBatch([bytes(3)], [], V6)).toMatchObject({ count: 0, totalBytes: 0 });
  });

  test('more than MAX_BATCH_DATAGRAMS copies in all is a RangeError', () => {
    const input = new Array<Uint8Array>(1025).fill(new Uint8Array(1));
    const destinations = Array.from({ length: 1024 }, (_, i): Destination =>
      ({ family: 6, address: `fd00::${(i + 1).toString(16)}`, port: 9, scopeId: 0 }));
    expect(1025 * 1024).toBeGreaterThan(MAX_BATCH_DATAGRAMS);
    expect(() => buildFanOutBatch(input, destinations, V6)).toThrow(RangeError);
    expect(buildFanOutBatch(input.slice(0, 1024), destinations, V6).count).toBe(MAX_BATCH_DATAGRAMS);
  });
});

describe('encodeDestination', () => {
  test('IPv4: family, 0, port big-endian, scope 0, the 4 address bytes, zeros', () => {
    const into = new Uint8Array(DESTINATION_RECORD_BYTES);
    encodeDestination({ family: 4, address: '198.18.0.254', port: 0x1234, scopeId: 0 }, into, 0);
    expect([...into]).toEqual(recordOf({ family: 4, address: '', port: 0x1234, scopeId: 0 }, [198, 18, 0, 254]));
    expect([...into.subarray(0, 12)]).toEqual([4, 0, 0x12, 0x34, 0, 0, 0, 0, 198, 18, 0, 254]);
  });

  test('IPv6: the scope id little-endian, the 16 address bytes', () => {
    const into = new Uint8Array(DESTINATION_RECORD_BYTES);
    encodeDestination({ family: 6, address: 'fe80::1:2', port: 443, scopeId: 0x01020304 }, into, 0);
    expect([...into]).toEqual([
      6, 0, 0x01, 0xbb, 0x04, 0x03, 0x02, 0x01,
      0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2,
    ]);
  });

  test('IPv6: the largest scope id, a dotted-quad tail, port 65535', () => {
    const into = new Uint8Array(DESTINATION_RECORD_BYTES);
    encodeDestination({ family: 6, address: '::ffff:198.18.0.1', port: 65535, scopeId: 0xffffffff }, into, 0);
    expect([...into]).toEqual([
      6, 0, 255, 255, 255, 255, 255, 255,
      0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 18, 0, 1,
    ]);
  });

  test('writes its 24 bytes at `at` and nothing else', () => {
    const into = new Uint8Array(3 * DESTINATION_RECORD_BYTES).fill(0xaa);
    encodeDestination(A, into, DESTINATION_RECORD_BYTES);
    expect([...into.subarray(0, 24)]).toEqual(Array(24).fill(0xaa));
    expect([...into.subarray(48)]).toEqual(Array(24).fill(0xaa));
    expect([...into.subarray(24, 48)]).toEqual(recordOf(A, [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]));
  });

  test.each<[string, Destination]>([
    ['an IPv6 literal as IPv4', { family: 4, address: 'fd00::1', port: 1, scopeId: 0 }],
    ['an IPv4 literal as IPv6', { family: 6, address: '198.18.0.1', port: 1, scopeId: 0 }],
    ['a zone suffix', { family: 6, address: 'fe80::1%eth0', port: 1, scopeId: 0 }],
    ['a host name', { family: 4, address: 'localhost', port: 1, scopeId: 0 }],
  ])('%s is a TypeError', (_, destination) => {
    expect(() => encodeDestination(destination, new Uint8Array(24), 0)).toThrow(TypeError);
  });
});

describe('DestinationCache and destinationTable', () => {
  test('an address text is parsed once: the same text gives the same parsed entry', () => {
    const cache = new DestinationCache(6);
    const first = cache.address('fe80::1%7');
    expect(first).toEqual({ address: 'fe80::1', scopeId: 7, bytes: Uint8Array.from([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]) });
    expect(cache.address('fe80::1%7')).toBe(first);
    expect(cache.address('fe80::1%8')).not.toBe(first);
    expect(cache.destination(443, 'fe80::1%7')).toEqual({ family: 6, port: 443, ...first });
  });

  test('its errors are parseIpLiteral\'s and checkPort\'s, and a bad text is never cached', () => {
    const cache = new DestinationCache(4);
    expect(() => cache.address('::1')).toThrow(/IPv6 but the socket is udp4/);
    expect(() => cache.address('localhost')).toThrow(TypeError);
    expect(() => cache.address(7)).toThrow(TypeError);
    expect(() => cache.destination(0, '127.0.0.1')).toThrow(RangeError);
    expect(() => cache.address('::1')).toThrow(TypeError);
  });

  test('beyond its limit the oldest entry goes; entries stay right', () => {
    const cache = new DestinationCache(4, 2);
    const a = cache.address('10.0.0.1');
    const b = cache.address('10.0.0.2');
    const c = cache.address('10.0.0.3'); // a goes
    expect(cache.address('10.0.0.3')).toBe(c);
    expect(cache.address('10.0.0.2')).toBe(b);
    const again = cache.address('10.0.0.1'); // a new entry; b goes
    expect(again).not.toBe(a);
    expect(again).toEqual(a);
    expect(cache.address('10.0.0.2')).not.toBe(b);
  });

  test('a table of parsed destinations is byte for byte the table of plain ones', () => {
    const cache = new DestinationCache(6);
    const parsed = cache.destination(443, 'fe80::1%7');
    expect(destinationTable([C, parsed, C])).toEqual(destinationTable([C, C, C]));
    expect(destinationTable([])).toEqual(new Uint8Array(0));
  });
});

// ---------------------------------------------------------------------------------------------

describe('errors: wrong types are TypeErrors', () => {
  test.each([42, 'abc', null, undefined, true, Symbol('x')])('a batch of %p', (input) => {
    expect(() => readPayload(input, 4)).toThrow(TypeError);
  });

  test.each([
    ['a number', 42], ['a string', 'abc'], ['null', null], ['an object', {}], ['an ArrayBuffer', new ArrayBuffer(4)],
    ['a DataView', new DataView(new ArrayBuffer(4))], ['a Uint16Array', new Uint16Array(2)],
    ['a Uint8ClampedArray', new Uint8ClampedArray(2)],
  ])('a datagram that is %s', (_, datagram) => {
    expect(() => readPayload([bytes(1), datagram], 4)).toThrow(TypeError);
    expect(() => readPayload([bytes(1), [bytes(1), datagram]], 4)).toThrow(TypeError);
  });

  test.each([
    ['no buffer', { lengths: [1] }],
    ['a buffer that is an ArrayBuffer', { buffer: new ArrayBuffer(4), lengths: [1] }],
    ['a buffer that is a Uint16Array', { buffer: new Uint16Array(4), segmentSize: 1 }],
    ['lengths that are an Int32Array', { buffer: bytes(4), lengths: Int32Array.of(1) }],
    ['lengths that are a Float64Array', { buffer: bytes(4), lengths: Float64Array.of(1) }],
    ['lengths that are array-like', { buffer: bytes(4), lengths: { length: 1, 0: 1 } }],
    ['lengths that are a string', { buffer: bytes(4), lengths: '12' }],
    ['lengths present but undefined', { buffer: bytes(4), lengths: undefined, segmentSize: 2 }],
  ])('a packed batch with %s', (_, input) => {
    expect(() => readPayload(input, 4)).toThrow(TypeError);
  });
});

describe('errors: values out of range are RangeErrors', () => {
  test('a datagram over the UDP limit of its family, whole or in pieces', () => {
    expect(readPayload([new Uint8Array(MAX_UDP_PAYLOAD[4])], 4).totalBytes).toBe(65507);
    expect(() => readPayload([new Uint8Array(MAX_UDP_PAYLOAD[4] + 1)], 4)).toThrow(RangeError);
    expect(readPayload([new Uint8Array(MAX_UDP_PAYLOAD[6])], 6).totalBytes).toBe(65527);
    expect(() => readPayload([new Uint8Array(MAX_UDP_PAYLOAD[6] + 1)], 6)).toThrow(RangeError);
    expect(() => readPayload([[new Uint8Array(40000), new Uint8Array(25508)]], 4)).toThrow(/65508 bytes/);
    expect(() => readPayload({ buffer: new Uint8Array(70000), lengths: [65508] }, 4)).toThrow(RangeError);
  });

  test('more than MAX_DATAGRAM_PIECES pieces in a datagram', () => {
    const piece = new Uint8Array(0);
    expect(readPayload([new Array<Uint8Array>(MAX_DATAGRAM_PIECES).fill(piece)], 4).count).toBe(1);
    expect(() => readPayload([new Array<Uint8Array>(MAX_DATAGRAM_PIECES + 1).fill(piece)], 4)).toThrow(RangeError);
  });

  test('more than MAX_BATCH_DATAGRAMS datagrams, in every form, refused before they are read', () => {
    const over = MAX_BATCH_DATAGRAMS + 1;
    let reads = 0;
    const counted = new Proxy(new Array<Uint8Array>(over), {
      get: (target, key, receiver) => {
        if (key !== 'length') reads++;
        return Reflect.get(target, key, receiver) as unknown;
      },
    });
    expect(() => readPayload(counted, 4)).toThrow(RangeError);
    expect(reads).toBe(0);
    expect(() => readPayload({ buffer: bytes(4), lengths: new Uint32Array(over) }, 4)).toThrow(RangeError);
    expect(() => readPayload({ buffer: new Uint8Array(over), segmentSize: 1 }, 4)).toThrow(RangeError);
    expect(readPayload({ buffer: new Uint8Array(over - 1), segmentSize: 1 }, 4).count).toBe(MAX_BATCH_DATAGRAMS);
  });

  test('more than MAX_BATCH_RANGES pieces in all, refused before they are copied', () => {
    // One small pieces array given for every datagram: a tiny input for 2^30 ranges.
    const piece = new Uint8Array(1);
    const parts = new Array<Uint8Array>(MAX_DATAGRAM_PIECES).fill(piece);
    const started = Date.now();
    expect(() => readPayload(new Array<Uint8Array[]>(MAX_BATCH_DATAGRAMS).fill(parts), 4)).toThrow(/pieces in all/);
    expect(Date.now() - started).toBeLessThan(5000);
    const fits = MAX_BATCH_RANGES / MAX_DATAGRAM_PIECES;
    const exactly: Array<Uint8Array | Uint8Array[]> = new Array<Uint8Array[]>(fits).fill(parts);
    expect(readPayload(exactly, 4).ranges.length).toBe(3 * MAX_BATCH_RANGES);
    exactly.push(piece);
    expect(() => readPayload(exactly, 4)).toThrow(RangeError);
  });

  test('packed lengths past MAX_BATCH_DATAGRAMS as an array are refused before they are copied', () => {
    // A sparse array's length costs its caller nothing; copying it element by element would.
    const huge: number[] = [];
    huge.length = 2 ** 32 - 1;
    const started = Date.now();
    expect(() => readPayload({ buffer: bytes(4), lengths: huge }, 4)).toThrow(RangeError);
    expect(Date.now() - started).toBeLessThan(2000);
    const over: number[] = [];
    over.length = MAX_BATCH_DATAGRAMS + 1;
    expect(() => readPayload({ buffer: bytes(4), lengths: over }, 4)).toThrow(/at most/);
  });

  test.each([
    ['-1', -1], ['1.5', 1.5], ['NaN', NaN], ['Infinity', Infinity], ['"3"', '3'], ['null', null],
    ['a hole', undefined], ['2^32', 2 ** 32], ['65508 over IPv4', 65508],
  ])('a packed length of %s', (_, length) => {
    const lengths: unknown[] = [1];
    if (length === undefined) lengths.length = 2;
    else lengths.push(length);
    expect(() => readPayload({ buffer: new Uint8Array(70000), lengths }, 4)).toThrow(RangeError);
  });

  test('packed lengths that run past the end of the buffer, whichever form', () => {
    expect(() => readPayload({ buffer: bytes(10), lengths: [4, 7] }, 4)).toThrow(/past the end of the buffer.*datagram 1/);
    expect(() => readPayload({ buffer: bytes(10), lengths: Uint32Array.of(11) }, 4)).toThrow(RangeError);
    expect(() => readPayload({ buffer: bytes(10), lengths: Uint32Array.of(0xffffffff, 0xffffffff) }, 6)).toThrow(RangeError);
    expect(readPayload({ buffer: bytes(10), lengths: [4, 6] }, 4).totalBytes).toBe(10);
  });

  test.each([
    ['0', 0], ['-1', -1], ['1.5', 1.5], ['NaN', NaN], ['"5"', '5'], ['missing', undefined], ['65508 over IPv4', 65508],
  ])('a segmentSize of %s', (_, segmentSize) => {
    const input = segmentSize === undefined ? { buffer: bytes(10) } : { buffer: bytes(10), segmentSize };
    expect(() => readPayload(input, 4)).toThrow(RangeError);
  });
});

describe('errors: memory that is gone is a RangeError "has no memory"', () => {
  test.each<[string, () => unknown]>([
    ['a detached datagram', () => [bytes(2), detached(4)]],
    ['a detached piece', () => [[bytes(2), detached(4)]]],
    ['a datagram past the end of its shrunk buffer', () => [pastTheEnd(6)]],
    ['a piece past the end of its shrunk buffer', () => [[pastTheEnd(6)]]],
    ['a detached packed buffer', () => ({ buffer: detached(8), lengths: [1] })],
    ['a detached packed buffer cut by segmentSize', () => ({ buffer: detached(8), segmentSize: 2 })],
    ['detached packed lengths', () => ({ buffer: bytes(8), lengths: detachedLengths() })],
  ])('%s', (_, input) => {
    expect(() => readPayload(input(), 4)).toThrow(RangeError);
    expect(() => readPayload(input(), 4)).toThrow(/has no memory/);
  });

  test('an empty Uint8Array is an empty datagram, not memory gone', () => {
    expect(readPayload([new Uint8Array(0), [new Uint8Array(0)]], 4)).toMatchObject({ count: 2, totalBytes: 0 });
    expect(readPayload({ buffer: new Uint8Array(0), lengths: [0, 0] }, 4).count).toBe(2);
  });
});

function detachedLengths(): Uint32Array {
  const lengths = Uint32Array.of(1, 2);
  detach(lengths);
  return lengths;
}

describe('hostile input: the caller\'s code runs once, in the reading pass only', () => {
  test('a getter on a datagram runs once', () => {
    let runs = 0;
    const datagram = bytes(5);
    const input: Uint8Array[] = [bytes(1), bytes(2)];
    Object.defineProperty(input, 1, { get: () => { runs++; return datagram; } });
    const batch = buildBatch(input, A, V6);
    expect(runs).toBe(1);
    expect(gather(batch)[1]).toEqual([...datagram]);
  });

  test('a getter on a piece runs once', () => {
    let runs = 0;
    const pieces: Uint8Array[] = [bytes(1), bytes(2)];
    Object.defineProperty(pieces, 0, { get: () => { runs++; return bytes(3); } });
    expect(readPayload([pieces], 4).totalBytes).toBe(5);
    expect(runs).toBe(1);
  });

  test('a Proxy over the batch: its length and each element are read once', () => {
    const reads = new Map<PropertyKey, number>();
    const input = new Proxy([bytes(1), [bytes(2), bytes(3)], bytes(4)], {
      get: (target, key, receiver) => {
        reads.set(key, (reads.get(key) ?? 0) + 1);
        return Reflect.get(target, key, receiver) as unknown;
      },
    });
    expect(readPayload(input, 4).count).toBe(3);
    expect(Object.fromEntries(reads)).toEqual({ length: 1, 0: 1, 1: 1, 2: 1 });
  });

  test('a packed batch\'s fields and each length are read once', () => {
    const reads: string[] = [];
    const lengths: number[] = [2, 3];
    Object.defineProperty(lengths, 1, { get: () => { reads.push('lengths[1]'); return 3; } });
    const input = {
      get buffer() { reads.push('buffer'); return bytes(5); },
      get lengths() { reads.push('lengths'); return lengths; },
    };
    expect(readPayload(input, 4).count).toBe(2);
    expect(reads).toEqual(['buffer', 'lengths', 'lengths[1]']);
    const sized: string[] = [];
    readPayload({
      get buffer() { sized.push('buffer'); return bytes(5); },
      get segmentSize() { sized.push('segmentSize'); return 2; },
    }, 4);
    expect(sized).toEqual(['buffer', 'segmentSize']);
  });

  test('a getter that detaches an earlier datagram is caught: the checks come after every read', () => {
    const first = bytes(8);
    const input: Uint8Array[] = [first, bytes(1)];
    Object.defineProperty(input, 1, {
      get: () => {
        detach(first);
        return bytes(1);
      },
    });
    expect(() => readPayload(input, 4)).toThrow(/datagram 0 has no memory/);
  });

  test('a getter that empties the array while it is read: a TypeError, nothing out of bounds', () => {
    const input: unknown[] = [bytes(1), bytes(2), bytes(3)];
    Object.defineProperty(input, 0, { get: () => { input.length = 1; return bytes(1); } });
    expect(() => readPayload(input, 4)).toThrow(TypeError);
  });

  test('a Uint8Array\'s own length properties are never read: the engine\'s length is used', () => {
    const datagram = bytes(6);
    let runs = 0;
    for (const key of ['byteLength', 'length', 'byteOffset', 'buffer']) {
      Object.defineProperty(datagram, key, { get: () => { runs++; return 1; } });
    }
    const payload = readPayload([datagram], 4);
    expect(words(payload.ranges)).toEqual([0, 0, 6]);
    expect(runs).toBe(0);
  });

  test('error messages never call the caller\'s value', () => {
    let calls = 0;
    const hostile = {
      toString: () => { calls++; throw new Error('toString ran'); },
      [Symbol.toPrimitive]: () => { calls++; throw new Error('toPrimitive ran'); },
    };
    expect(() => readPayload({ buffer: bytes(4), lengths: [1, hostile] }, 4)).toThrow(RangeError);
    expect(() => readPayload({ buffer: bytes(4), segmentSize: hostile }, 4)).toThrow(RangeError);
    expect(calls).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------------

describe('properties', () => {
  const lengthsArb = fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 40 });

  test('packed lengths (either form) and the equivalent array of subarrays give the same datagrams', () => {
    fc.assert(fc.property(lengthsArb, fc.integer({ min: 0, max: 9 }), fc.integer(), (lengths, trailing, seed) => {
      const total = lengths.reduce((n, l) => n + l, 0);
      const buffer = bytes(total + trailing, seed);
      const views: Uint8Array[] = [];
      let at = 0;
      for (const length of lengths) {
        views.push(buffer.subarray(at, at + length));
        at += length;
      }
      const fromViews = readPayload(views, 6);
      const fromNumbers = readPayload({ buffer, lengths }, 6);
      const fromTyped = readPayload({ buffer, lengths: Uint32Array.from(lengths) }, 6);
      const expected = views.map((v) => [...v]);
      for (const payload of [fromViews, fromNumbers, fromTyped]) {
        expect(gather(payload)).toEqual(expected);
        expect(payload.count).toBe(lengths.length);
        expect(payload.totalBytes).toBe(total);
      }
      expect(words(fromTyped.ranges)).toEqual(words(fromNumbers.ranges));
    }), { numRuns: 200 });
  });

  test('segmentSize gives the ranges of the equivalent lengths', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 1, max: 700 }), (size, segmentSize) => {
      const buffer = bytes(size);
      const lengths: number[] = [];
      for (let left = size; left > 0; left -= segmentSize) lengths.push(Math.min(segmentSize, left));
      const cut = readPayload({ buffer, segmentSize }, 4);
      const listed = readPayload({ buffer, lengths }, 4);
      expect(words(cut.ranges)).toEqual(words(listed.ranges));
      expect(words(cut.spans)).toEqual(words(listed.spans));
      expect(cut.totalBytes).toBe(size);
    }), { numRuns: 200 });
  });

  test('datagrams of pieces gather to the pieces back to back, one range per piece', () => {
    const datagramArb = fc.array(fc.uint8Array({ maxLength: 20 }), { maxLength: 5 });
    fc.assert(fc.property(fc.array(datagramArb, { maxLength: 12 }), (datagrams) => {
      const payload = readPayload(datagrams, 4);
      expect(gather(payload)).toEqual(datagrams.map((pieces) => pieces.flatMap((p) => [...p])));
      expect(payload.ranges.length).toBe(3 * datagrams.reduce((n, d) => n + d.length, 0));
    }), { numRuns: 200 });
  });

  const destinationArb = fc.constantFrom(A, B, C, { ...A }, { ...C, scopeId: 9 },
    { family: 6 as const, address: '::ffff:198.18.0.9', port: 53, scopeId: 0 });

  test('addressed batches: one table entry per distinct destination; each datagram to its own', () => {
    fc.assert(fc.property(fc.array(destinationArb, { minLength: 1, maxLength: 16 }), (destinations) => {
      const input = destinations.map((_, i) => bytes(i % 5, i));
      const batch = buildAddressedBatch(input, destinations, V6);
      const keys = destinations.map((d) => `${d.address}|${d.port}|${d.scopeId}`);
      expect(batch.endpoints).toHaveLength(new Set(keys).size);
      expect(batch.destinations).toHaveLength(batch.endpoints.length * DESTINATION_RECORD_BYTES);
      destinations.forEach((d, i) => {
        const t = batch.targets![i]!;
        expect(batch.destinations!.subarray(t * 24, t * 24 + 24)).toEqual(destinationTable([d]));
      });
      expect(gather(batch)).toEqual(input.map((d) => [...d]));
    }), { numRuns: 150 });
  });

  test('fan-out: datagram d * n + i is datagram i, to destination d', () => {
    fc.assert(fc.property(
      fc.array(fc.uint8Array({ maxLength: 16 }), { maxLength: 8 }),
      fc.array(destinationArb, { maxLength: 5 }),
      (datagrams, destinations) => {
        const batch = buildFanOutBatch(datagrams, destinations, V6);
        const n = datagrams.length;
        expect(batch.count).toBe(n * destinations.length);
        const all = gather(batch);
        for (let d = 0; d < destinations.length; d++) {
          for (let i = 0; i < n; i++) {
            expect(all[d * n + i]).toEqual([...datagrams[i]!]);
            expect(batch.targets![d * n + i]).toBe(d);
          }
        }
      }), { numRuns: 150 });
  });
});
