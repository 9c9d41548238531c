/**
 * NativeBatch literals for the tests that call the raw binding (`binding().UdpSocket`): built
 * by hand, so that a test can also build the malformed ones the library never would. The record
 * format is lib/batch.ts encodeDestination's; native-batch.test.ts holds the two to each other.
 */
import type { NativeBatch } from '../../lib/batch';
import type { NativeControls } from '../../lib/binding';
import { parseIPv4, parseIPv6 } from '../../lib/ip';

export const RECORD_BYTES = 24;

export interface RawDestination {
  family: 4 | 6;
  address: string;
  port: number;
  scopeId?: number;
}

/** The 24-byte destination record of `d`: family, 0, port (BE), scope id (LE), address. */
export function destinationRecord(d: RawDestination): Uint8Array {
  const record = new Uint8Array(RECORD_BYTES);
  const ip = d.family === 4 ? parseIPv4(d.address) : parseIPv6(d.address);
  if (ip === null) throw new Error(`not an IPv${d.family} literal: ${d.address}`);
  record[0] = d.family;
  record[2] = (d.port >>> 8) & 0xff;
  record[3] = d.port & 0xff;
  new DataView(record.buffer).setUint32(4, (d.scopeId ?? 0) >>> 0, true);
  record.set(ip, 8);
  return record;
}

/** A destination table of `list`, in order. */
export function destinationTable(list: readonly RawDestination[]): Uint8Array {
  const table = new Uint8Array(list.length * RECORD_BYTES);
  list.forEach((d, i) => table.set(destinationRecord(d), i * RECORD_BYTES));
  return table;
}

/** A loopback IPv4 destination. */
export function v4(port: number, address = '127.0.0.1'): RawDestination {
  return { family: 4, address, port };
}

/** A batch with the defaults filled in: no destinations (connected), no GSO, no controls. */
export function rawBatch(fields: Partial<Record<keyof NativeBatch, unknown>>): NativeBatch {
  return {
    buffers: [],
    ranges: new Uint32Array(0),
    spans: new Uint32Array(0),
    targets: null,
    destinations: null,
    segment: false,
    continueOnError: false,
    controls: undefined,
    ...fields,
  } as NativeBatch;
}

export interface BatchOptions {
  destinations?: readonly RawDestination[] | Uint8Array | null;
  targets?: readonly number[] | Uint32Array | null;
  segment?: boolean;
  continueOnError?: boolean;
  controls?: NativeControls;
}

function tableOf(destinations: BatchOptions['destinations']): Uint8Array | null {
  if (destinations === undefined || destinations === null) return null;
  return destinations instanceof Uint8Array ? destinations : destinationTable(destinations);
}

function optionFields(options: BatchOptions): Partial<Record<keyof NativeBatch, unknown>> {
  const targets = options.targets;
  return {
    destinations: tableOf(options.destinations),
    targets: targets === undefined || targets === null ? null
      : targets instanceof Uint32Array ? targets : Uint32Array.from(targets),
    segment: options.segment ?? false,
    continueOnError: options.continueOnError ?? false,
    controls: options.controls,
  };
}

/** Datagram i is buffers[i], whole. */
export function wholeBatch(buffers: readonly Uint8Array[], options: BatchOptions = {}): NativeBatch {
  const ranges = new Uint32Array(buffers.length * 3);
  const spans = new Uint32Array(buffers.length * 2);
  buffers.forEach((b, i) => {
    ranges.set([i, 0, b.byteLength], i * 3);
    spans.set([i, 1], i * 2);
  });
  return rawBatch({ buffers: [...buffers], ranges, spans, ...optionFields(options) });
}

/**
 * Datagram i is the list of [buffer, offset, length] pieces `datagrams[i]`, one range each.
 * `buffers` goes into the batch as it is (never read here: its getters run in the send only).
 */
export function piecesBatch(buffers: readonly unknown[], datagrams: ReadonlyArray<ReadonlyArray<readonly [number, number, number]>>,
  options: BatchOptions = {}): NativeBatch {
  const words: number[] = [];
  const spans: number[] = [];
  for (const pieces of datagrams) {
    spans.push(words.length / 3, pieces.length);
    for (const piece of pieces) words.push(...piece);
  }
  return rawBatch({ buffers, ranges: Uint32Array.from(words), spans: Uint32Array.from(spans), ...optionFields(options) });
}

/** One buffer, datagram i its next lengths[i] bytes. */
export function packedBatch(buffer: Uint8Array, lengths: readonly number[], options: BatchOptions = {}): NativeBatch {
  const ranges = new Uint32Array(lengths.length * 3);
  const spans = new Uint32Array(lengths.length * 2);
  let offset = 0;
  lengths.forEach((length, i) => {
    ranges.set([0, offset, length], i * 3);
    spans.set([i, 1], i * 2);
    offset += length;
  });
  return rawBatch({ buffers: [buffer], ranges, spans, ...optionFields(options) });
}

/** What a datagram of a well-formed batch holds, from its own ranges (the test's model). */
export function datagramBytes(batch: NativeBatch, index: number): Uint8Array {
  const first = batch.spans[index * 2]!;
  const count = batch.spans[index * 2 + 1]!;
  const parts: Uint8Array[] = [];
  for (let r = first; r < first + count; r++) {
    const buffer = batch.buffers[batch.ranges[r * 3]!]!;
    const offset = batch.ranges[r * 3 + 1]!;
    parts.push(buffer.subarray(offset, offset + batch.ranges[r * 3 + 2]!));
  }
  return Buffer.concat(parts);
}

export const ERROR_NAMES = ['RangeError', 'TypeError'];

/** Calls `fn`, which must throw an error named RangeError or TypeError (made in the addon's realm). */
export function expectNativeThrow(fn: () => unknown): Error {
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
  expect(error.message).toMatch(/^wsk-dgram native: ./);
  return error;
}

/** `received` holds exactly `expected`, byte for byte, in order. */
export function expectSameDatagrams(received: readonly Uint8Array[], expected: readonly Uint8Array[]): void {
  expect(received.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const want = Buffer.from(expected[i]!);
    const got = Buffer.from(received[i]!);
    if (!want.equals(got)) {
      throw new Error(`datagram ${i} differs: expected ${want.byteLength} B ${want.subarray(0, 16).toString('hex')}..., ` +
        `got ${got.byteLength} B ${got.subarray(0, 16).toString('hex')}...`);
    }
  }
}
