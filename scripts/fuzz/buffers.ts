/**
 * Byte buffers of every kind a caller can hand the addon, described as plain data (so that
 * fast-check can generate, shrink and print them) and made into real objects per case.
 *
 * Each made buffer remembers the bytes it describes BEFORE the call (`content`): what must
 * arrive if it is sent. A buffer whose memory is gone (detached, or a fixed-length view that a
 * shrunk resizable ArrayBuffer no longer covers) still describes the bytes it held: sending it
 * as an empty or short datagram is a failure, not a match.
 */
import fc from 'fast-check';

export const VALID_KINDS = ['u8', 'buffer', 'view', 'rab', 'rabTrack', 'sab', 'pooled', 'subclass'] as const;
export const GONE_KINDS = ['detached', 'rabOob'] as const;
export const WRONG_KINDS = ['u8clamped', 'i8', 'u16', 'f64', 'dataview', 'arraybuffer', 'plainArray', 'number',
  'string', 'null', 'undefined', 'fakeU8'] as const;
export type BufKind = (typeof VALID_KINDS)[number] | (typeof GONE_KINDS)[number] | (typeof WRONG_KINDS)[number];

export interface BufSpec {
  kind: BufKind;
  bytes: Uint8Array;
  /** Byte offset of the view in its ArrayBuffer (views), 0..15. */
  pad: number;
  /** When > 0: the content is `big` patterned bytes instead of `bytes`. */
  big: number;
}

/** Lengths around the UDP payload limits (65507 IPv4, 65527 IPv6) and one well below. */
export const BIG_LENGTHS = [65507, 65508, 65527, 65528, 20000] as const;

export const bufKindArb: fc.Arbitrary<BufKind> = fc.oneof(
  { weight: 40, arbitrary: fc.constantFrom<BufKind>('u8', 'buffer', 'view') },
  { weight: 12, arbitrary: fc.constantFrom<BufKind>('rab', 'rabTrack', 'sab', 'pooled', 'subclass') },
  { weight: 2, arbitrary: fc.constantFrom<BufKind>(...GONE_KINDS) },
  { weight: 2, arbitrary: fc.constantFrom<BufKind>(...WRONG_KINDS) },
);

/**
 * Buffers of random bytes up to 48 long (fast-check keeps generated arrays short); with a
 * larger `maxLength`, some (`bigWeight` to 2, default 1) are instead that many patterned bytes (`big`).
 */
export function bufSpecArb(options: { maxLength?: number; kinds?: fc.Arbitrary<BufKind>; bigWeight?: number } = {}):
  fc.Arbitrary<BufSpec> {
  const maxLength = options.maxLength ?? 48;
  return fc.record({
    kind: options.kinds ?? bufKindArb,
    bytes: fc.uint8Array({ maxLength: Math.min(maxLength, 48) }),
    pad: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 1, max: 15 }) }),
    big: maxLength <= 48 ? fc.constant(0)
      : fc.oneof({ weight: 2, arbitrary: fc.constant(0) },
        { weight: options.bigWeight ?? 1, arbitrary: fc.integer({ min: 49, max: maxLength }) }),
  });
}

/** A payload whose bytes depend on a seed and the position, so that mix-ups show. */
export function patterned(seed: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (seed * 131 + i * 7 + (i >> 8)) & 0xff;
  return out;
}

interface ResizableArrayBuffer extends ArrayBuffer {
  resize(length: number): void;
  readonly maxByteLength: number;
}
type ResizableArrayBufferConstructor = new (length: number, options: { maxByteLength: number }) => ResizableArrayBuffer;
const ResizableArrayBuffer = ArrayBuffer as unknown as ResizableArrayBufferConstructor;

/** A Uint8Array subclass whose JS-visible length lies; N-API must not care. */
class LyingUint8Array extends Uint8Array {
  override get length(): number {
    return 999999;
  }
}

export interface MadeBuffer {
  readonly spec: BufSpec;
  /** What the call gets. */
  readonly value: unknown;
  /** The bytes the caller describes, snapshotted before the call. */
  readonly content: Uint8Array;
  /** The byte length N-API sees when the call starts (0 when the memory is gone). */
  readonly length: number;
  /** N-API sees a Uint8Array. */
  readonly isU8: boolean;
  readonly gone: boolean;
  /** Detaches the memory if the buffer owns it; false when that is not possible. */
  detach(): boolean;
  /** Resizes a resizable backing store so that the view keeps at most `keep` bytes. */
  shrink(keep: number): boolean;
  /** Grows a resizable backing store to its maximum. */
  grow(): boolean;
  /** Its bytes now (a length-tracking view changes length). */
  now(): Uint8Array;
}

export function detachBuffer(buffer: ArrayBuffer): void {
  structuredClone(buffer, { transfer: [buffer] });
}

const bigContent = new Map<number, Uint8Array>();

export function contentOf(spec: BufSpec): Uint8Array {
  if (spec.big <= 0) return Uint8Array.from(spec.bytes);
  let pattern = bigContent.get(spec.big);
  if (pattern === undefined) {
    pattern = patterned(spec.big & 0xff, spec.big);
    bigContent.set(spec.big, pattern);
  }
  return pattern.slice();
}

export function makeBuffer(spec: BufSpec): MadeBuffer {
  const content = contentOf(spec);
  const n = content.byteLength;
  let value: unknown;
  let gone = false;
  let isU8 = true;
  let own: ArrayBuffer | null = null;
  let rab: ResizableArrayBuffer | null = null;
  let view: Uint8Array | null = null;

  const resizable = (): Uint8Array => {
    rab = new ResizableArrayBuffer(spec.pad + n, { maxByteLength: (spec.pad + n) * 2 + 64 });
    own = rab;
    const v = new Uint8Array(rab, spec.pad, n);
    v.set(content);
    return v;
  };

  switch (spec.kind) {
    case 'u8':
    case 'detached': {
      view = Uint8Array.from(content);
      own = view.buffer as ArrayBuffer;
      break;
    }
    case 'buffer': {
      const b = Buffer.alloc(n);
      b.set(content);
      view = b;
      // Buffer.alloc(0) may share a buffer: only detach what is ours alone.
      own = n > 0 && b.byteOffset === 0 && b.buffer.byteLength === n ? b.buffer : null;
      break;
    }
    case 'view': {
      const ab = new ArrayBuffer(spec.pad + n + 7);
      view = new Uint8Array(ab, spec.pad, n);
      view.set(content);
      own = ab;
      break;
    }
    case 'rab':
    case 'rabOob':
      view = resizable();
      break;
    case 'rabTrack': {
      resizable();
      view = new Uint8Array(rab as unknown as ResizableArrayBuffer, spec.pad);
      break;
    }
    case 'sab': {
      const sab = new SharedArrayBuffer(spec.pad + n);
      view = new Uint8Array(sab, spec.pad, n);
      view.set(content);
      break;
    }
    case 'pooled':
      // Small Buffer.from() lands in Node's shared pool: never detached.
      view = Buffer.from(content);
      break;
    case 'subclass': {
      view = new LyingUint8Array(n);
      view.set(content);
      own = view.buffer as ArrayBuffer;
      break;
    }
    default:
      isU8 = false;
      value = wrongValue(spec.kind, content);
  }
  if (view !== null) value = view;
  if (spec.kind === 'detached' && own !== null) {
    detachBuffer(own);
    own = null;
    gone = true;
  }
  if (spec.kind === 'rabOob' && rab !== null) {
    (rab as ResizableArrayBuffer).resize(spec.pad);
    // The view [pad, pad + n) of pad bytes is out of bounds unless it is empty: an empty view at
    // the new end is still a view of its buffer, with memory.
    gone = n > 0;
  }
  const currentView = view;
  return {
    spec,
    value,
    content,
    length: gone || !isU8 ? 0 : n,
    isU8,
    gone,
    detach: () => {
      if (own === null) return false;
      detachBuffer(own);
      own = null;
      rab = null;
      return true;
    },
    shrink: (keep) => {
      if (rab === null) return false;
      (rab).resize(Math.min(rab.byteLength, spec.pad + Math.max(0, keep)));
      return true;
    },
    grow: () => {
      if (rab === null) return false;
      const r = rab;
      r.resize(r.maxByteLength);
      return true;
    },
    // A detached view has no bytes (iterating it throws).
    now: () => (currentView === null || currentView.byteLength === 0 ? new Uint8Array(0) : Uint8Array.from(currentView)),
  };
}

function wrongValue(kind: BufKind, content: Uint8Array): unknown {
  switch (kind) {
    case 'u8clamped': return Uint8ClampedArray.from(content);
    case 'i8': return Int8Array.from(content);
    case 'u16': return Uint16Array.from(content);
    case 'f64': return Float64Array.from(content);
    case 'dataview': return new DataView(Uint8Array.from(content).buffer);
    case 'arraybuffer': return Uint8Array.from(content).buffer;
    case 'plainArray': return Array.from(content);
    case 'number': return content.byteLength;
    case 'string': return 'x'.repeat(content.byteLength);
    case 'null': return null;
    case 'undefined': return undefined;
    case 'fakeU8': return Object.create(Uint8Array.prototype) as unknown;
    default: return undefined;
  }
}
