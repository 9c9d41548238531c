/**
 * WSK_BUF and WSK_BUF_LIST, and their translation into the flat batch description the native
 * send reads (`buffers` + `BatchLayout`, see lib/transport.ts).
 */

import { types } from 'node:util';
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



/** A translated batch: what `BatchSender.sendLayout` takes. */
export interface BuiltBatch {
  readonly ok: true;
  /** The distinct Uint8Array views the datagrams read from (deduplicated by identity). */
  readonly buffers: Uint8Array[];
  /**
   * The `BatchLayout` words: per datagram `n`, then `n` triples (bufferIndex, offset, length),
   * offsets relative to the view `buffers[bufferIndex]` (not to its ArrayBuffer).
   */
  readonly layout: Uint32Array;
  /** Number of datagrams (WSK_BUF_LIST entries). */
  readonly datagramCount: number;
  /** Sum of all datagrams' lengths. */
  readonly bytes: number;
}

/** Why a WSK_BUF_LIST cannot be sent: the NTSTATUS to complete the IRP with, and a message. */
export interface BatchBuildFailure {
  readonly ok: false;
  readonly status: NTSTATUS;
  readonly reason: string;
}

/** Result of {@link buildBatch}. */
export type BuildBatchResult = BuiltBatch | BatchBuildFailure;

/** Growable Uint32Array: avoids a number[] of 4+ words per datagram on big batches. */
class WordWriter {
  private words = new Uint32Array(256);
  private used = 0;

  get length(): number {
    return this.used;
  }

  push(word: number): void {
    if (this.used === this.words.length) {
      const bigger = new Uint32Array(this.words.length * 2);
      bigger.set(this.words);
      this.words = bigger;
    }
    this.words[this.used++] = word;
  }

  set(index: number, word: number): void {
    this.words[index] = word;
  }

  finish(): Uint32Array {
    return this.words.slice(0, this.used);
  }
}

/** Property bag view of an object of unknown shape. */
type Loose<K extends string> = { readonly [P in K]?: unknown };

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null;
}

const MAX_SAFE_INTEGER = 2 ** 53 - 1;
/** Distinct MDLs one call reads, all chains together: twice the most datagrams one call takes. */
export const MAX_MDLS_PER_BATCH = 2 * MAX_BATCH_DATAGRAMS;
const ULONG_MAX = 0xffffffff;

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

/**
 * Translates a WSK_BUF_LIST into the flat batch the native send reads. Never throws, whatever
 * `list` holds (property getters that throw excepted); failures come back as
 * `{ ok: false, status, reason }`:
 *
 * - STATUS_INVALID_PARAMETER: `list` null or not an object; a list entry, WSK_BUF or MDL of the
 *   wrong shape (MDL.Bytes not a Uint8Array); a cycle in the list or in an MDL chain (every
 *   MDL chain used is checked to its end, not only the part that is sent); Offset or Length
 *   not a non-negative safe integer, or Offset above 0xFFFFFFFF (ULONG, so every layout word
 *   fits 32 bits); Mdl null with
 *   Length > 0, or with Offset > 0; Offset past the end of the first MDL
 *   (`Offset <= Mdl.Bytes.byteLength` is required); Length running off the end of the chain;
 *   more than {@link MAX_BATCH_DATAGRAMS} datagrams, more than {@link MAX_DATAGRAM_PIECES} non-empty
 *   MDL pieces in one datagram, or more than {@link MAX_MDLS_PER_BATCH} MDLs in all; `family` not 4 or 6.
 * - STATUS_INVALID_BUFFER_SIZE: a datagram longer than `MAX_UDP_PAYLOAD[family]` (checked
 *   before the chain is walked for that datagram).
 *
 * Every list entry, WSK_BUF and MDL field is read once: getters that answer differently on a
 * second read change nothing. `undefined` is read as NULL for `Next` and `Mdl`. Each non-empty piece of an MDL that a
 * datagram touches is one range (pieces are never merged; empty ones are skipped); a
 * zero-length datagram has no ranges. Nothing is copied: ranges point into the MDLs' views.
 */
export function buildBatch(list: WSK_BUF_LIST | null, family: 4 | 6): BuildBatchResult {
  if (family !== 4 && family !== 6) {
    return fail(STATUS_INVALID_PARAMETER, `socket family ${describeValue(family)} is not 4 or 6`);
  }
  const maxPayload: number = MAX_UDP_PAYLOAD[family];
  if (!isObject(list)) return fail(STATUS_INVALID_PARAMETER, 'BufferList is NULL or not a WSK_BUF_LIST');

  const buffers: Uint8Array[] = [];
  const bufferIndex = new Map<Uint8Array, number>();
  const words = new WordWriter();
  // Each MDL read once, on first sight, into a snapshot; the walk uses only snapshots, so a
  // getter that answers differently later cannot send it round a cycle (see checkChain).
  const snapshots = new Map<object, MdlSnapshot>();
  let datagramCount = 0;
  let bytes = 0;

  // Brent's cycle detection on the list: O(1) memory even for 2^20 entries.
  let mark: unknown = undefined;
  let steps = 0;
  let window = 1;

  for (let node: unknown = list; node !== null && node !== undefined; ) {
    const i = datagramCount;
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

    if (Mdl === null || Mdl === undefined) {
      if (Length !== 0) return fail(STATUS_INVALID_PARAMETER, `datagram ${i}: Mdl is NULL but Length is ${Length}`);
      if (Offset !== 0) return fail(STATUS_INVALID_PARAMETER, `datagram ${i}: Mdl is NULL but Offset is ${Offset}`);
      words.push(0);
    } else {
      const chain = checkChain(Mdl, i, snapshots);
      if (typeof chain === 'string') return fail(STATUS_INVALID_PARAMETER, `datagram ${i}: ${chain}`);
      const first = chain;
      if (Offset > first.bytes.byteLength) {
        return fail(
          STATUS_INVALID_PARAMETER,
          `datagram ${i}: Offset ${Offset} is past the end of the first MDL (${first.bytes.byteLength} bytes)`,
        );
      }
      if (Length > maxPayload) {
        return fail(
          STATUS_INVALID_BUFFER_SIZE,
          `datagram ${i}: ${Length} bytes is more than the IPv${family} UDP maximum of ${maxPayload}`,
        );
      }
      const countAt = words.length;
      words.push(0);
      let ranges = 0;
      let mdl: MdlSnapshot | null = first;
      let position = Offset;
      let remaining = Length;
      while (remaining > 0) {
        if (mdl === null) {
          return fail(
            STATUS_INVALID_PARAMETER,
            `datagram ${i}: Offset ${Offset} + Length ${Length} runs off the end of the MDL chain`,
          );
        }
        const view = mdl.bytes;
        const available = view.byteLength - position;
        if (available > 0) {
          if (++ranges > MAX_DATAGRAM_PIECES) {
            return fail(STATUS_INVALID_PARAMETER, `datagram ${i}: more than ${MAX_DATAGRAM_PIECES} MDL pieces`);
          }
          // position is Offset (a ULONG, checked above) or 0, so it fits its Uint32 word.
          const take = available < remaining ? available : remaining;
          let index = bufferIndex.get(view);
          if (index === undefined) {
            index = buffers.length;
            buffers.push(view);
            bufferIndex.set(view, index);
          }
          words.push(index);
          words.push(position);
          words.push(take);
          remaining -= take;
        }
        mdl = mdl.next;
        position = 0;
      }
      words.set(countAt, ranges);
      bytes += Length;
    }

    datagramCount++;
    node = entry.Next;
  }

  return { ok: true, buffers, layout: words.finish(), datagramCount, bytes };
}

/** One MDL as it was read: each field once. */
interface MdlSnapshot {
  readonly bytes: Uint8Array;
  /** The snapshot of the MDL its `Next` named when it was read, or null at the chain's end. */
  next: MdlSnapshot | null;
  /** The datagram whose chain check read it first. */
  readonly datagram: number;
}

/**
 * Reads the MDL chain from `head` to its end, each MDL's `Bytes` and `Next` once, into
 * snapshots: every node an object with a Uint8Array `Bytes`, no cycle. Returns the head's
 * snapshot or an error message. A check that meets an MDL of its own datagram again has found
 * a cycle; one that meets an MDL an earlier datagram read joins a chain already read to its
 * end. So each MDL is read once per batch, and the snapshots form no cycle whatever the
 * getters answer later.
 */
function checkChain(head: unknown, datagram: number, snapshots: Map<object, MdlSnapshot>):
  MdlSnapshot | string {
  let first: MdlSnapshot | null = null;
  let last: MdlSnapshot | null = null;
  for (let node: unknown = head; node !== null && node !== undefined; ) {
    if (!isObject(node)) return 'MDL chain holds something that is not an MDL';
    const seen = snapshots.get(node);
    if (seen !== undefined) {
      if (seen.datagram === datagram) return 'MDL chain has a cycle';
      // Joins a chain an earlier datagram read to its end.
      if (last === null) return seen;
      last.next = seen;
      return first as MdlSnapshot;
    }
    // A getter making a fresh MDL on every read would never end the chain.
    if (snapshots.size >= MAX_MDLS_PER_BATCH) return `more than ${MAX_MDLS_PER_BATCH} MDLs in one call`;
    const mdl = node as Loose<'Next' | 'Bytes'>;
    const bytes = mdl.Bytes;
    if (!types.isUint8Array(bytes)) return 'MDL.Bytes is not a Uint8Array';
    const snapshot: MdlSnapshot = { bytes, next: null, datagram };
    snapshots.set(node, snapshot);
    if (last === null) first = snapshot;
    else last.next = snapshot;
    last = snapshot;
    node = mdl.Next;
  }
  return first as MdlSnapshot;
}
