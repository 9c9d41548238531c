/**
 * The header blast writes at the start of every datagram, and the sink's per-sender account
 * of what arrived (loss, duplicates, reordering from the sequence numbers).
 *
 * Layout (28 bytes, big-endian):
 *   0  u32  magic 0x57534B44 ("WSKD")
 *   4  u8   version (1)
 *   5  u8   flags (0)
 *   6  u16  thread: the sending thread's index within its blast run
 *   8  u32  session: random per blast run
 *   12 u32  sequence number, high 32 bits  } per (session, thread), from 0
 *   16 u32  sequence number, low 32 bits   }
 *   20 u32  send time, seconds    } the sender's monotonic clock (process.hrtime), for
 *   24 u32  send time, nanoseconds } inter-arrival work on one host; not a wall clock
 */
export const HEADER_BYTES = 28;
export const HEADER_MAGIC = 0x57534b44;
export const HEADER_VERSION = 1;

/** Writes a header at `offset` of `buffer` (a DataView over the same memory). */
export function writeHeader(view: DataView, offset: number, session: number, thread: number, sequence: number,
  seconds: number, nanoseconds: number): void {
  view.setUint32(offset, HEADER_MAGIC);
  view.setUint8(offset + 4, HEADER_VERSION);
  view.setUint8(offset + 5, 0);
  view.setUint16(offset + 6, thread);
  view.setUint32(offset + 8, session);
  view.setUint32(offset + 12, Math.floor(sequence / 0x1_0000_0000));
  view.setUint32(offset + 16, sequence >>> 0);
  view.setUint32(offset + 20, seconds >>> 0);
  view.setUint32(offset + 24, nanoseconds >>> 0);
}

/** A header read back: null for a datagram that does not carry one. */
export interface Header {
  session: number;
  thread: number;
  sequence: number;
}

export function readHeader(bytes: Uint8Array, offset = 0, length = bytes.length - offset): Header | null {
  if (length < HEADER_BYTES) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, HEADER_BYTES);
  if (view.getUint32(0) !== HEADER_MAGIC || view.getUint8(4) !== HEADER_VERSION) return null;
  return {
    thread: view.getUint16(6),
    session: view.getUint32(8),
    sequence: view.getUint32(12) * 0x1_0000_0000 + view.getUint32(16),
  };
}

/** How far back (in sequence numbers) a late datagram is still told apart from a duplicate. */
export const REORDER_WINDOW = 1 << 16;

/**
 * One sender's sequence numbers as they arrive. `lost` counts numbers below the highest seen
 * that never arrived (a loss at the very end is invisible: nothing higher came); a number that
 * arrives below the highest seen is `reordered` the first time and a `duplicate` after, within
 * REORDER_WINDOW of the highest; further back it counts as `tooLate` (neither can be told).
 */
export class SequenceTracker {
  received = 0;
  duplicates = 0;
  reordered = 0;
  tooLate = 0;
  /** The highest sequence number seen, -1 before the first. */
  highest = -1;
  readonly #seen = new Uint8Array(REORDER_WINDOW / 8);

  add(sequence: number): void {
    this.received++;
    if (sequence > this.highest) {
      // Clear the window's bits for the numbers skipped over (they may arrive later).
      const skip = Math.min(sequence - this.highest, REORDER_WINDOW);
      for (let s = sequence - skip + 1; s <= sequence; s++) this.#clear(s);
      this.highest = sequence;
      this.#set(sequence);
      return;
    }
    if (this.highest - sequence >= REORDER_WINDOW) {
      this.tooLate++;
    } else if (this.#has(sequence)) {
      this.duplicates++;
    } else {
      this.reordered++;
      this.#set(sequence);
    }
  }

  /** Numbers below the highest seen that did not arrive (never negative). */
  get lost(): number {
    const unique = this.received - this.duplicates;
    return Math.max(0, this.highest + 1 - unique);
  }

  #set(s: number): void {
    const bit = s % REORDER_WINDOW;
    this.#seen[bit >> 3]! |= 1 << (bit & 7);
  }

  #clear(s: number): void {
    const bit = s % REORDER_WINDOW;
    this.#seen[bit >> 3]! &= ~(1 << (bit & 7));
  }

  #has(s: number): boolean {
    const bit = s % REORDER_WINDOW;
    return (this.#seen[bit >> 3]! & (1 << (bit & 7))) !== 0;
  }
}
