/**
 * The one shape of a batch send, from the public calls down to the system call.
 *
 * Every public entry (trySendBatch/sendBatch, trySendTo/sendTo, trySendToMany/sendToMany, and
 * the WSK layer) builds one `Batch`; the queue stores it as it is; the native send reads it in
 * the shape of `SendBatch` (native/send.h) for a window `[first, first + count)`:
 *
 * - `ranges`: one flat list of byte ranges, 3 words each: buffer index, offset, length;
 * - `spans`: 2 words per datagram: its first range and its range count (datagrams may share
 *   ranges: a fan-out points every destination's copy at the same memory);
 * - `targets`: per datagram, an index into `destinations` (null: every datagram goes to
 *   destination 0, or to the connected remote when `destinations` is null);
 * - `destinations`: DESTINATION_RECORD_BYTES per destination (see encodeDestination), parsed
 *   from text once per batch.
 *
 * The batch holds its own arrays: the caller may reuse theirs as soon as the call returns,
 * and every range carries its length, so memory that is gone by the time a waiting request is
 * sent (detached, shrunk) is refused by the native reader instead of going out short.
 */
import { types } from 'node:util';
import { describeValue } from './describe';
import { checkPort, parseIpLiteral } from './address';
import { parseIPv4, parseIPv6 } from './ip';
import {
  MAX_BATCH_DATAGRAMS, MAX_DATAGRAM_PIECES, MAX_UDP_PAYLOAD, type Destination, type RawSendResult,
} from './transport';
import type { NativeControls } from './binding';

/** A datagram: one Uint8Array, or several sent back to back as one datagram (no copy). */
export type Datagram = Uint8Array | readonly Uint8Array[];

/**
 * Datagrams written back to back into one buffer, as QUIC stacks hold them: datagram i is the
 * next `lengths[i]` bytes; or, with `segmentSize`, every `segmentSize` bytes (the last may be
 * shorter).
 */
export type PackedBatch =
  | { readonly buffer: Uint8Array; readonly lengths: Uint32Array | readonly number[] }
  | { readonly buffer: Uint8Array; readonly segmentSize: number };

/** What the batch calls accept: an array of datagrams, or a packed batch. */
export type BatchInput = readonly Datagram[] | PackedBatch;

/**
 * Most byte ranges (pieces) in one batch, all datagrams together: MAX_BATCH_DATAGRAMS datagrams
 * of MAX_DATAGRAM_PIECES pieces would be 2^30 ranges, built from an input that can be small
 * (one pieces array given for every datagram). Above WSK's MAX_MDLS_PER_BATCH, so every WSK
 * batch fits.
 */
export const MAX_BATCH_RANGES = 4 * MAX_BATCH_DATAGRAMS;

/** Bytes of one destination record: family, 0, port (big-endian), scope id (LE), 16 address bytes. */
export const DESTINATION_RECORD_BYTES = 24;

/** The batch as the native send reads it (native/batch_reader.cc). */
export interface NativeBatch {
  readonly buffers: readonly Uint8Array[];
  readonly ranges: Uint32Array;
  readonly spans: Uint32Array;
  readonly targets: Uint32Array | null;
  readonly destinations: Uint8Array | null;
  /** Coalesce runs of equal-size datagrams to one destination (UDP_SEGMENT / USO). */
  readonly segment: boolean;
  /**
   * A datagram refused for its destination (EACCES, ENETUNREACH, EMSGSIZE, ...) is reported in
   * `failures` and the send goes on with the next one; otherwise the send stops there.
   */
  readonly continueOnError: boolean;
  readonly controls: NativeControls | undefined;
}

/** A batch as the public entries build it and the queue holds it. */
export interface Batch extends NativeBatch {
  /** Datagrams in the batch. */
  readonly count: number;
  /** Payload bytes of all datagrams. */
  readonly totalBytes: number;
  /** The destinations of the table, for results and errors (empty when connected). */
  readonly endpoints: readonly Destination[];
}

/**
 * What the native send did with a window (native/socket_methods.cc): a RawSendResult whose
 * failures come flat, `[index, errno, index, errno, ...]` (batch indices, in order), or null
 * without continueOnError. The send stopped (errno, or wouldBlock) at datagram
 * `first + datagrams + failures.length / 2`.
 */
export type NativeSendResult = Omit<RawSendResult, 'failures'> & { failures: number[] | null };

const { isUint8Array } = types;

// Intrinsics captured at load, so that checking a datagram runs none of the caller's code (an
// own `byteLength` property, a Symbol.hasInstance) and reads what the native side will read.
// %TypedArray%.prototype.at throws for a view whose memory is gone (detached, or a fixed-length
// view past the end of a shrunk resizable ArrayBuffer), where byteLength only says 0.
const typedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as object;
const typedArrayByteLength = Object.getOwnPropertyDescriptor(typedArrayPrototype, 'byteLength')!.get!;
const typedArrayLength = Object.getOwnPropertyDescriptor(typedArrayPrototype, 'length')!.get!;
const typedArrayAt = Uint8Array.prototype.at;
const isArray = Array.isArray;

/** The byte length of `view` as the engine knows it (no property of the caller's is read). */
export function byteLengthOf(view: Uint8Array | Uint32Array): number {
  return Reflect.apply(typedArrayByteLength, view, []) as number;
}

/** The byte length of `view`; a RangeError when it is empty because its memory is gone. */
export function checkedLength(view: Uint8Array | Uint32Array, what: string): number {
  const length = byteLengthOf(view);
  if (length === 0) {
    try {
      Reflect.apply(typedArrayAt, view, [0]);
    } catch {
      throw new RangeError(`${what} has no memory (its ArrayBuffer is detached, or shrunk below it)`);
    }
  }
  return length;
}

/** Options every builder takes. */
export interface BuildOptions {
  readonly family: 4 | 6;
  readonly segment: boolean;
  readonly continueOnError: boolean;
  readonly controls: NativeControls | undefined;
}

/** The datagrams of an input, before destinations: our own ranges and spans. */
export interface Payload {
  buffers: Uint8Array[];
  ranges: Uint32Array;
  spans: Uint32Array;
  count: number;
  totalBytes: number;
}

function checkCount(count: number): void {
  if (count > MAX_BATCH_DATAGRAMS) {
    throw new RangeError(`a batch holds at most ${MAX_BATCH_DATAGRAMS} datagrams, got ${count}`);
  }
}

function tooManyRanges(): RangeError {
  return new RangeError(`a batch holds at most ${MAX_BATCH_RANGES} pieces in all`);
}

/**
 * The send's piece limits for datagram `index`, of `partCount` pieces after `pieces` counted so
 * far: checked before its pieces are copied, which is what would exhaust memory (a sparse
 * array's length costs its caller nothing). The Pacer's copy checks them too.
 */
export function checkPieceCount(index: number, partCount: number, pieces: number): void {
  if (partCount > MAX_DATAGRAM_PIECES) {
    throw new RangeError(`datagram ${index} has ${partCount} pieces; at most ${MAX_DATAGRAM_PIECES}`);
  }
  if (partCount > MAX_BATCH_RANGES - pieces) throw tooManyRanges();
}

function isPackedShape(input: unknown): input is Record<string, unknown> {
  return typeof input === 'object' && input !== null && !isArray(input);
}

/**
 * Reads a batch input into our own arrays. Each element is read once, in a first pass (the
 * caller's getters or Proxies run only there); the checks that follow read only our copies,
 * with intrinsics, so nothing the caller wrote runs between the checks and the native call.
 */
export function readPayload(input: unknown, family: 4 | 6): Payload {
  if (isArray(input)) return readDatagramArray(input as unknown[], family);
  if (isPackedShape(input)) return readPacked(input, family);
  throw new TypeError('a batch must be an array of datagrams or a packed batch { buffer, lengths } / { buffer, segmentSize }');
}

function readDatagramArray(datagrams: unknown[], family: 4 | 6): Payload {
  const count = datagrams.length;
  checkCount(count);
  // Pass 1: read (the caller's code may run).
  const read: unknown[] = new Array(count);
  let pieces = 0;
  for (let i = 0; i < count; i++) {
    const datagram: unknown = datagrams[i];
    if (isUint8Array(datagram) || !isArray(datagram)) {
      read[i] = datagram;
      if (++pieces > MAX_BATCH_RANGES) throw tooManyRanges();
      continue;
    }
    const partCount = datagram.length;
    checkPieceCount(i, partCount, pieces);
    const parts: unknown[] = new Array(partCount);
    for (let p = 0; p < partCount; p++) parts[p] = datagram[p];
    read[i] = parts;
    pieces += partCount;
  }

  // Pass 2: check and describe what was read (none of the caller's code runs from here on).
  const limit = MAX_UDP_PAYLOAD[family];
  const buffers: Uint8Array[] = new Array(pieces);
  const ranges = new Uint32Array(pieces * 3);
  const spans = new Uint32Array(count * 2);
  let range = 0;
  let totalBytes = 0;
  for (let i = 0; i < count; i++) {
    const datagram = read[i];
    spans[i * 2] = range;
    let length = 0;
    if (isUint8Array(datagram)) {
      length = checkedLength(datagram, `datagram ${i}`);
      buffers[range] = datagram;
      ranges[range * 3] = range;
      ranges[range * 3 + 2] = length;
      range++;
      spans[i * 2 + 1] = 1;
    } else if (isArray(datagram)) {
      for (const piece of datagram as unknown[]) {
        if (!isUint8Array(piece)) throw new TypeError(`datagram ${i} has a piece that is not a Uint8Array`);
        const pieceLength = checkedLength(piece, `a piece of datagram ${i}`);
        length += pieceLength;
        buffers[range] = piece;
        ranges[range * 3] = range;
        ranges[range * 3 + 2] = pieceLength;
        range++;
      }
      spans[i * 2 + 1] = (datagram as unknown[]).length;
    } else {
      throw new TypeError(`datagram ${i} must be a Uint8Array or an array of Uint8Array`);
    }
    if (length > limit) {
      throw new RangeError(`datagram ${i} has ${length} bytes; the UDP limit over IPv${family} is ${limit}`);
    }
    totalBytes += length;
  }
  return { buffers, ranges, spans, count, totalBytes };
}

function readPacked(input: Record<string, unknown>, family: 4 | 6): Payload {
  // Read each field once.
  const buffer = input.buffer;
  const hasLengths = 'lengths' in input;
  if (hasLengths && 'segmentSize' in input) {
    throw new TypeError('a packed batch takes lengths or segmentSize, not both');
  }
  const lengthsInput = hasLengths ? input.lengths : undefined;
  const segmentSizeInput = hasLengths ? undefined : input.segmentSize;
  if (!isUint8Array(buffer)) throw new TypeError('a packed batch needs buffer: a Uint8Array');
  const limit = MAX_UDP_PAYLOAD[family];

  let lengths: ArrayLike<unknown> = [];
  if (hasLengths) {
    if (types.isUint32Array(lengthsInput)) {
      // Memory gone is a RangeError, as for the buffer (copying it would be a TypeError).
      checkedLength(lengthsInput, 'the packed lengths array');
      // Our own copy: a Uint32Array may be shared with another thread, or change later.
      lengths = new Uint32Array(lengthsInput);
    } else if (isArray(lengthsInput)) {
      // The count first: a sparse array's length costs its caller nothing, copying it would.
      const source = lengthsInput as unknown[];
      const count = source.length;
      checkCount(count);
      const own: unknown[] = new Array(count);
      for (let i = 0; i < count; i++) own[i] = source[i];
      lengths = own;
    } else {
      throw new TypeError('packed lengths must be a Uint32Array or an array of numbers');
    }
  }
  // Measured once every input is read: a getter on an element of `lengths` may have detached
  // or shrunk the buffer (the caller's code runs no more from here on).
  const size = checkedLength(buffer, 'the packed buffer');
  if (!hasLengths) {
    const segmentSize = segmentSizeInput;
    if (typeof segmentSize !== 'number' || !Number.isInteger(segmentSize) || segmentSize < 1 ||
      segmentSize > limit) {
      throw new RangeError(`segmentSize must be an integer from 1 to ${limit}, got ${describeValue(segmentSize)}`);
    }
    const count = Math.ceil(size / segmentSize);
    checkCount(count);
    const ranges = new Uint32Array(count * 3);
    const spans = new Uint32Array(count * 2);
    for (let i = 0, offset = 0; i < count; i++, offset += segmentSize) {
      ranges[i * 3 + 1] = offset;
      ranges[i * 3 + 2] = Math.min(segmentSize, size - offset);
      spans[i * 2] = i;
      spans[i * 2 + 1] = 1;
    }
    return { buffers: [buffer], ranges, spans, count, totalBytes: size };
  }

  const count = isArray(lengths) ? lengths.length : (Reflect.apply(typedArrayLength, lengths, []) as number);
  checkCount(count);
  const ranges = new Uint32Array(count * 3);
  const spans = new Uint32Array(count * 2);
  let offset = 0;
  for (let i = 0; i < count; i++) {
    const length = lengths[i];
    if (typeof length !== 'number' || !Number.isInteger(length) || length < 0 || length > limit) {
      throw new RangeError(`packed length ${i} must be an integer from 0 to ${limit}, got ${describeValue(length)}`);
    }
    if (length > size - offset) {
      throw new RangeError(`packed lengths run past the end of the buffer (${size} bytes) at datagram ${i}`);
    }
    ranges[i * 3 + 1] = offset;
    ranges[i * 3 + 2] = length;
    spans[i * 2] = i;
    spans[i * 2 + 1] = 1;
    offset += length;
  }
  return { buffers: [buffer], ranges, spans, count, totalBytes: offset };
}

/**
 * The destination record the native reader takes: byte 0 the family (4 or 6), byte 1 zero,
 * bytes 2-3 the port (big-endian), bytes 4-7 the IPv6 scope id (little-endian), bytes 8-23
 * the address (IPv4 in the first 4).
 */
export function encodeDestination(destination: Destination, into: Uint8Array, at: number): void {
  const bytes = destination.bytes ?? ipBytes(destination.address, destination.family);
  into[at] = destination.family;
  into[at + 1] = 0;
  into[at + 2] = destination.port >>> 8;
  into[at + 3] = destination.port & 0xff;
  const scope = destination.scopeId >>> 0;
  into[at + 4] = scope & 0xff;
  into[at + 5] = (scope >>> 8) & 0xff;
  into[at + 6] = (scope >>> 16) & 0xff;
  into[at + 7] = scope >>> 24;
  into.fill(0, at + 8, at + DESTINATION_RECORD_BYTES);
  into.set(bytes, at + 8);
}

/** The bytes of an IP literal the entries have checked. */
function ipBytes(address: string, family: 4 | 6): Uint8Array {
  const bytes = family === 4 ? parseIPv4(address) : parseIPv6(address);
  if (bytes === null) throw new TypeError(`${JSON.stringify(address)} is not an IPv${family} literal`);
  return bytes;
}

/** An IP literal parsed once: the literal without its zone, the scope id, the address bytes. */
export interface ParsedAddress {
  readonly address: string;
  readonly scopeId: number;
  readonly bytes: Uint8Array;
}

/**
 * A socket's recently used addresses, parsed: a server sending every tick to the same peers
 * parses each address text once, not once per call.
 */
export class DestinationCache {
  readonly #family: 4 | 6;
  readonly #dualStack: boolean;
  readonly #entries = new Map<string, ParsedAddress>();
  readonly #limit: number;

  /**
   * For a socket of `family`; `dualStack` for a dual-stack IPv6 socket, where an IPv4 literal
   * becomes its IPv4-mapped address (family 6, ::ffff:a.b.c.d bytes).
   */
  constructor(family: 4 | 6, limit = 256, dualStack = false) {
    this.#family = family;
    this.#limit = limit;
    this.#dualStack = family === 6 && dualStack;
  }

  /** `text` as parseIpLiteral checks it for the socket's family (same errors), cached. */
  address(text: unknown): ParsedAddress {
    if (typeof text === 'string') {
      const hit = this.#entries.get(text);
      if (hit !== undefined) return hit;
    }
    const { address, scopeId } = parseIpLiteral(text, this.#family, this.#dualStack);
    const parsed: ParsedAddress = { address, scopeId, bytes: ipBytes(address, this.#family) };
    if (this.#entries.size >= this.#limit) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(text as string, parsed);
    return parsed;
  }

  /** A checked destination of `port` and the address `text`. */
  destination(port: unknown, text: unknown): Destination {
    const parsed = this.address(text);
    return { family: this.#family, port: checkPort(port, false), ...parsed };
  }
}

/** The table of `endpoints` as destination records. */
export function destinationTable(endpoints: readonly Destination[]): Uint8Array {
  const table = new Uint8Array(endpoints.length * DESTINATION_RECORD_BYTES);
  for (let i = 0; i < endpoints.length; i++) encodeDestination(endpoints[i]!, table, i * DESTINATION_RECORD_BYTES);
  return table;
}

/** A batch of `payload` to one destination (null: the connected remote). */
export function batchOf(payload: Payload, destination: Destination | null, options: BuildOptions,
): Batch {
  const endpoints = destination === null ? [] : [destination];
  return {
    buffers: payload.buffers, ranges: payload.ranges, spans: payload.spans,
    targets: null,
    destinations: destination === null ? null : destinationTable(endpoints),
    segment: options.segment, continueOnError: options.continueOnError, controls: options.controls,
    count: payload.count, totalBytes: payload.totalBytes, endpoints,
  };
}

/** A batch to one destination (null: the connected remote). */
export function buildBatch(input: unknown, destination: Destination | null, options: BuildOptions,
): Batch {
  return batchOf(readPayload(input, options.family), destination, options);
}

/** Datagram i of `input` to `destinations[i]`. */
export function buildAddressedBatch(input: unknown, destinations: readonly Destination[],
  options: BuildOptions): Batch {
  const payload = readPayload(input, options.family);
  if (destinations.length !== payload.count) {
    throw new RangeError(`${payload.count} datagrams but ${destinations.length} destinations`);
  }
  // Consecutive datagrams to one peer share a table entry, so their GSO runs can form.
  const endpoints: Destination[] = [];
  const targets = new Uint32Array(payload.count);
  const seen = new Map<string, number>();
  for (let i = 0; i < payload.count; i++) {
    const d = destinations[i]!;
    const key = `${d.address}|${d.port}|${d.scopeId}`;
    let index = seen.get(key);
    if (index === undefined) {
      index = endpoints.length;
      endpoints.push(d);
      seen.set(key, index);
    }
    targets[i] = index;
  }
  return {
    buffers: payload.buffers, ranges: payload.ranges, spans: payload.spans,
    targets, destinations: destinationTable(endpoints),
    segment: options.segment, continueOnError: options.continueOnError, controls: options.controls,
    count: payload.count, totalBytes: payload.totalBytes, endpoints,
  };
}

/**
 * Destinations checked and encoded once, for a sender that sends to the same peers call after
 * call (a game server's tick, an SFU's forwarding list): the fan-out calls take it in place of
 * an array and parse nothing. Made by `UdpSocket#prepareDestinations`; immutable.
 */
export class DestinationSet {
  readonly family: 4 | 6;
  readonly endpoints: readonly Destination[];
  /** The destination records, DESTINATION_RECORD_BYTES each. */
  readonly table: Uint8Array;

  constructor(family: 4 | 6, endpoints: readonly Destination[]) {
    this.family = family;
    this.endpoints = Object.freeze(endpoints.slice());
    this.table = destinationTable(this.endpoints);
  }

  get size(): number {
    return this.endpoints.length;
  }
}

/**
 * Every datagram of `input` to each of `destinations`, destination by destination: datagram
 * `d * input.length + i` is datagram i to destination d. The spans of every copy point at the
 * same ranges: nothing is copied.
 */
export function buildFanOutBatch(input: unknown, destinations: readonly Destination[] | DestinationSet,
  options: BuildOptions): Batch {
  const payload = readPayload(input, options.family);
  const set = destinations instanceof DestinationSet ? destinations : null;
  if (set !== null && set.family !== options.family) {
    throw new TypeError(`the destination set is for udp${set.family}, the socket is udp${options.family}`);
  }
  const endpoints = set === null ? destinations as readonly Destination[] : set.endpoints;
  const peers = endpoints.length;
  const count = payload.count * peers;
  checkCount(count);
  const spans = new Uint32Array(count * 2);
  const targets = new Uint32Array(count);
  for (let d = 0; d < peers; d++) {
    spans.set(payload.spans, d * payload.count * 2);
    targets.fill(d, d * payload.count, (d + 1) * payload.count);
  }
  return {
    buffers: payload.buffers, ranges: payload.ranges, spans,
    targets, destinations: set === null ? destinationTable(endpoints) : set.table,
    segment: options.segment, continueOnError: options.continueOnError, controls: options.controls,
    count, totalBytes: payload.totalBytes * peers, endpoints,
  };
}
