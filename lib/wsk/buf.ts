/**
 * WSK_BUF and WSK_BUF_LIST, and their translation into the datagrams of one batch (the
 * `Payload` of lib/batch.ts: byte ranges and per-datagram spans).
 */

import { types } from 'node:util';
import { byteLengthOf, type Payload } from '../batch';
import { MAX_BATCH_DATAGRAMS, MAX_DATAGRAM_PIECES, MAX_UDP_PAYLOAD } from '../transport';
import type { MDL } from './mdl';
import { STATUS_INVALID_BUFFER_SIZE, STATUS_INVALID_PARAMETER, type NTSTATUS } from './ntstatus';
import { describeValue } from '../describe';

/**
 * Mirrors Windows' `WSK_BUF { PMDL Mdl; ULONG Offset; SIZE_T Length; }`: `Length` bytes
 * starting `Offset` bytes into the first MDL of the chain `Mdl`, possibly running on into
 * the following MDLs. `Mdl` may be null only when `Length` is 0.
 */
export interface WSK_BUF {
  /** First MDL of the chain holding the data (Windows: `PMDL Mdl`). */
  Mdl: MDL | null;
  /** Byte offset into the FIRST MDL where the data starts (Windows: `ULONG Offset`). */
  Offset: number;
  /** Number of bytes, possibly spanning several MDLs (Windows: `SIZE_T Length`). */
  Length: number;
}

/**
 * Mirrors Windows' `WSK_BUF_LIST { WSK_BUF_LIST *Next; WSK_BUF Buffer; }` (Windows 8+): one
 * datagram per entry, linked through `Next`.
 */
export interface WSK_BUF_LIST {
  /** Next datagram, or null at the end of the list. */
  Next: WSK_BUF_LIST | null;
  /** This datagram's bytes. */
  Buffer: WSK_BUF;
}

/**
 * Convenience: links `bufs` into a WSK_BUF_LIST in order (what a driver does by setting each
 * entry's `Next`). The entries are new objects; the WSK_BUFs are used as given. Throws a
 * RangeError for an empty array, since a WSK_BUF_LIST has at least one entry.
 */
export function wskBufList(bufs: readonly WSK_BUF[]): WSK_BUF_LIST {
  if (bufs.length === 0) throw new RangeError('wskBufList: at least one WSK_BUF is needed');
  let head: WSK_BUF_LIST | null = null;
  for (let i = bufs.length - 1; i >= 0; i--) {
    head = { Next: head, Buffer: bufs[i] as WSK_BUF };
  }
  return head as WSK_BUF_LIST;
}

/** A translated WSK_BUF_LIST: the datagrams of a Batch (see `batchOf` in lib/batch.ts). */
export interface BuiltBatch extends Payload {
  readonly ok: true;
}

/** Why a WSK_BUF_LIST cannot be sent: the NTSTATUS to complete the IRP with, and a message. */
export interface BatchBuildFailure {
  readonly ok: false;
  readonly status: NTSTATUS;
  readonly reason: string;
}

/** Result of {@link buildBatch}. */
export type BuildBatchResult = BuiltBatch | BatchBuildFailure;

/** Property bag view of an object of unknown shape. */
type Loose<K extends string> = { readonly [P in K]?: unknown };

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null;
}

const MAX_SAFE_INTEGER = 2 ** 53 - 1;
/**
 * MDLs one call reads, all walks together (a chain shared by several datagrams counts once per
 * datagram): twice the most datagrams one call takes. Bounds a getter that makes a fresh MDL
 * on every read.
 */
export const MAX_MDLS_PER_BATCH = 2 * MAX_BATCH_DATAGRAMS;
const ULONG_MAX = 0xffffffff;
/** Datagrams the first arrays have room for; they double as needed. */
const INITIAL_DATAGRAMS = 64;

/**
 * A non-negative safe integer. Operators only, no global lookups: those are slow per call
 * inside vm contexts (jest), and this runs for every datagram.
 */
function isCount(value: unknown): value is number {
  return typeof value === 'number' && value >= 0 && value <= MAX_SAFE_INTEGER && value % 1 === 0;
}

function fail(status: NTSTATUS, reason: string): BatchBuildFailure {
  return { ok: false, status, reason };
}

/** `words` with twice the room, its contents kept. */
function grown(words: Uint32Array): Uint32Array {
  const bigger = new Uint32Array(words.length * 2);
  bigger.set(words);
  return bigger;
}

// What a chain walk found wrong with a datagram that the rest of the walk may outrank: a chain
// of the wrong shape is reported first, then these, in this order.
const NO_PROBLEM = 0;
const OFFSET_PAST_FIRST_MDL = 1;
const DATAGRAM_TOO_BIG = 2;
const TOO_MANY_PIECES = 3;

/**
 * Translates a WSK_BUF_LIST into the datagrams of a batch (`Payload`, lib/batch.ts): per
 * datagram a span (first range, range count) into one flat list of ranges (buffer index,
 * offset, length), offsets relative to the view `buffers[index]`, not to its ArrayBuffer.
 * Never throws, whatever `list` holds (property getters that throw excepted); failures come
 * back as `{ ok: false, status, reason }`:
 *
 * - STATUS_INVALID_PARAMETER: `list` null or not an object; a list entry, WSK_BUF or MDL of the
 *   wrong shape (MDL.Bytes not a Uint8Array); a cycle in the list or in an MDL chain (every
 *   MDL chain used is checked to its end, not only the part that is sent); Offset or Length
 *   not a non-negative safe integer, or Offset above 0xFFFFFFFF (ULONG, so every range word
 *   fits 32 bits); Mdl null with Length > 0, or with Offset > 0; Offset past the end of the
 *   first MDL (`Offset <= Mdl.Bytes.byteLength` is required); Length running off the end of
 *   the chain; more than {@link MAX_BATCH_DATAGRAMS} datagrams, more than
 *   {@link MAX_DATAGRAM_PIECES} non-empty MDL pieces in one datagram, or more than
 *   {@link MAX_MDLS_PER_BATCH} MDLs read in all; `family` not 4 or 6.
 * - STATUS_INVALID_BUFFER_SIZE: a datagram longer than `MAX_UDP_PAYLOAD[family]`.
 *
 * Within a datagram, a chain of the wrong shape outranks the other faults, then Offset, then
 * size, then the pieces and the end of the chain.
 *
 * Every list entry and WSK_BUF field is read once, and every MDL's `Bytes` and `Next` once per
 * datagram whose chain holds it: each datagram's walk reads its chain to the end once and uses
 * only what it read, so a getter that answers differently on a second read changes nothing in
 * that datagram, and a chain shared by two datagrams is read (and checked) once for each.
 * `undefined` is read as NULL for `Next` and `Mdl`. Each non-empty piece of an MDL that a
 * datagram touches is one range (pieces are never merged; empty ones are skipped); a
 * zero-length datagram has no ranges. `buffers` holds a view per range, except that ranges in
 * a row from one view share its entry; nothing is copied: ranges point into the MDLs' views.
 */
export function buildBatch(list: WSK_BUF_LIST | null, family: 4 | 6): BuildBatchResult {
  if (family !== 4 && family !== 6) {
    return fail(STATUS_INVALID_PARAMETER, `socket family ${describeValue(family)} is not 4 or 6`);
  }
  const maxPayload: number = MAX_UDP_PAYLOAD[family];
  if (!isObject(list)) return fail(STATUS_INVALID_PARAMETER, 'BufferList is NULL or not a WSK_BUF_LIST');

  const buffers: Uint8Array[] = [];
  let lastView: Uint8Array | null = null;
  let ranges: Uint32Array = new Uint32Array(INITIAL_DATAGRAMS * 3);
  let rangeCount = 0;
  let spans: Uint32Array = new Uint32Array(INITIAL_DATAGRAMS * 2);
  let count = 0;
  let totalBytes = 0;
  let mdlsRead = 0;

  // Brent's cycle detection on the list: O(1) memory even for 2^20 entries.
  let mark: unknown = undefined;
  let steps = 0;
  let window = 1;

  for (let node: unknown = list; node !== null && node !== undefined; ) {
    const i = count;
    if (!isObject(node)) return fail(STATUS_INVALID_PARAMETER, `BufferList entry ${i} is not an object`);
    if (node === mark) return fail(STATUS_INVALID_PARAMETER, 'BufferList has a cycle');
    if (++steps === window) {
      mark = node;
      window *= 2;
      steps = 0;
    }
    if (i === MAX_BATCH_DATAGRAMS) {
      return fail(STATUS_INVALID_PARAMETER, `BufferList has more than ${MAX_BATCH_DATAGRAMS} entries`);
    }
    const entry = node as Loose<'Next' | 'Buffer'>;
    const buf = entry.Buffer;
    if (!isObject(buf)) return fail(STATUS_INVALID_PARAMETER, `BufferList entry ${i}: Buffer is not a WSK_BUF`);
    const { Mdl, Offset, Length } = buf as Loose<'Mdl' | 'Offset' | 'Length'>;
    if (!isCount(Offset) || Offset > ULONG_MAX) {
      return fail(STATUS_INVALID_PARAMETER, `datagram ${i}: Offset ${describeValue(Offset)} is not a ULONG`);
    }
    if (!isCount(Length)) {
      return fail(STATUS_INVALID_PARAMETER, `datagram ${i}: Length ${describeValue(Length)} is not a non-negative integer`);
    }
    if (i * 2 === spans.length) spans = grown(spans);
    spans[i * 2] = rangeCount;

    if (Mdl === null || Mdl === undefined) {
      if (Length !== 0) return fail(STATUS_INVALID_PARAMETER, `datagram ${i}: Mdl is NULL but Length is ${Length}`);
      if (Offset !== 0) return fail(STATUS_INVALID_PARAMETER, `datagram ${i}: Mdl is NULL but Offset is ${Offset}`);
      spans[i * 2 + 1] = 0;
    } else {
      // One walk to the chain's end: each MDL's Bytes and Next read once into locals, the
      // ranges written as it goes, the shape checked past the bytes sent too.
      let problem = NO_PROBLEM;
      let firstLength = 0;
      let pieces = 0;
      let position: number = Offset;
      let remaining: number = Length;
      let chainMark: unknown = undefined;
      let chainSteps = 0;
      let chainWindow = 1;
      let first = true;
      for (let mdl: unknown = Mdl; mdl !== null && mdl !== undefined; ) {
        if (!isObject(mdl)) return fail(STATUS_INVALID_PARAMETER, `datagram ${i}: MDL chain holds something that is not an MDL`);
        // Brent's again; this walk's own reads decide, whatever the getters answer later.
        if (mdl === chainMark) return fail(STATUS_INVALID_PARAMETER, `datagram ${i}: MDL chain has a cycle`);
        if (++chainSteps === chainWindow) {
          chainMark = mdl;
          chainWindow *= 2;
          chainSteps = 0;
        }
        // A getter making a fresh MDL on every read would never end the chain.
        if (mdlsRead === MAX_MDLS_PER_BATCH) {
          return fail(STATUS_INVALID_PARAMETER, `datagram ${i}: more than ${MAX_MDLS_PER_BATCH} MDLs in one call`);
        }
        mdlsRead++;
        const view = (mdl as Loose<'Bytes'>).Bytes;
        if (!types.isUint8Array(view)) return fail(STATUS_INVALID_PARAMETER, `datagram ${i}: MDL.Bytes is not a Uint8Array`);
        // The engine's length, not a property the caller could have put on the view.
        const length = byteLengthOf(view);
        if (first) {
          first = false;
          firstLength = length;
          if (Offset > length) problem = OFFSET_PAST_FIRST_MDL;
          else if (Length > maxPayload) problem = DATAGRAM_TOO_BIG;
        }
        if (problem === NO_PROBLEM && remaining > 0) {
          const available = length - position;
          if (available > 0) {
            if (++pieces > MAX_DATAGRAM_PIECES) {
              problem = TOO_MANY_PIECES;
            } else {
              // position is Offset (a ULONG, checked above) or 0, so it fits its Uint32 word.
              const take = available < remaining ? available : remaining;
              if (view !== lastView) {
                buffers.push(view);
                lastView = view;
              }
              if (rangeCount * 3 === ranges.length) ranges = grown(ranges);
              const at = rangeCount * 3;
              ranges[at] = buffers.length - 1;
              ranges[at + 1] = position;
              ranges[at + 2] = take;
              rangeCount++;
              remaining -= take;
            }
          }
          position = 0;
        }
        mdl = (mdl as Loose<'Next'>).Next;
      }
      if (problem === OFFSET_PAST_FIRST_MDL) {
        return fail(
          STATUS_INVALID_PARAMETER,
          `datagram ${i}: Offset ${Offset} is past the end of the first MDL (${firstLength} bytes)`,
        );
      }
      if (problem === DATAGRAM_TOO_BIG) {
        return fail(
          STATUS_INVALID_BUFFER_SIZE,
          `datagram ${i}: ${Length} bytes is more than the IPv${family} UDP maximum of ${maxPayload}`,
        );
      }
      if (problem === TOO_MANY_PIECES) {
        return fail(STATUS_INVALID_PARAMETER, `datagram ${i}: more than ${MAX_DATAGRAM_PIECES} MDL pieces`);
      }
      if (remaining > 0) {
        return fail(
          STATUS_INVALID_PARAMETER,
          `datagram ${i}: Offset ${Offset} + Length ${Length} runs off the end of the MDL chain`,
        );
      }
      spans[i * 2 + 1] = pieces;
      totalBytes += Length;
    }

    count++;
    node = entry.Next;
  }

  return {
    ok: true,
    buffers,
    ranges: ranges.slice(0, rangeCount * 3),
    spans: spans.slice(0, count * 2),
    count,
    totalBytes,
  };
}
