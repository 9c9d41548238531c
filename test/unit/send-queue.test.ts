/**
 * Unit tests of the send queue (lib/send-queue.ts) over a fake native sender that models a
 * socket buffer (fake-native.ts). The test drives the event loop by hand: it refills the
 * buffer and calls the poll callback the queue registered.
 *
 * The rules under test (libuv, see STYLE.md): try to send at once; only what is left waits,
 * in call order, for POLLOUT; completions never run inside the caller's call; a partial batch
 * reports its count and the error belongs to the first unsent datagram.
 *
 * Every expected value is computed here from the batches the test built, never read back from
 * the queue.
 */
import assert from 'node:assert/strict';
import * as os from 'node:os';
import fc from 'fast-check';
import type { NativeControls } from '../../lib/binding';
import { FLUSH_WINDOW, isWouldBlock, SendQueue } from '../../lib/send-queue';
import type {
  Destination, PendingSend, RawSendResult, SendCompletion,
} from '../../lib/transport';
import { FakeNative, sameBuffers } from './fake-native';

const { EAGAIN, EWOULDBLOCK, ENOBUFS, ECONNREFUSED, EFAULT, EBADF, EHOSTUNREACH } = os.constants.errno;

const DEST: Destination = { family: 6, address: 'fe80::1', port: 4242, scopeId: 3 };

// ---------------------------------------------------------------------------------------------
// Batches: every datagram starts with its request tag and its index (2 bytes each), so the
// bytes the fake saw tell which datagram of which request went out.

interface Batch {
  tag: number;
  buffers: Uint8Array[];
  layout: Uint32Array | null;
  count: number;
  totalBytes: number;
  /** The bytes of each datagram, as built (not as read back). */
  datagrams: Uint8Array[];
  /** Layout word where each datagram starts, and the end (0 without a layout). */
  words: number[];
}

function payload(tag: number, index: number, length: number): Uint8Array {
  const d = new Uint8Array(length);
  d[0] = (tag >> 8) & 255;
  d[1] = tag & 255;
  d[2] = (index >> 8) & 255;
  d[3] = index & 255;
  for (let j = 4; j < length; j++) d[j] = (tag * 31 + index * 7 + j * 13) & 255;
  return d;
}

function lengthOf(tag: number, index: number): number {
  return 4 + ((index * 5 + tag * 3) % 17);
}

/** Layout null: datagram i is buffers[i]. */
function wholeBatch(tag: number, count: number): Batch {
  const datagrams = Array.from({ length: count }, (_, i) => payload(tag, i, lengthOf(tag, i)));
  return {
    tag,
    buffers: datagrams.map((d) => Uint8Array.from(d)),
    layout: null,
    count,
    totalBytes: datagrams.reduce((n, d) => n + d.length, 0),
    datagrams,
    // Where each datagram starts in the layout the queue gives a waiting whole-buffer batch
    // (4 words a datagram); the first, immediate call has no layout and starts at word 0.
    words: Array.from({ length: count + 1 }, (_, i) => 4 * i),
  };
}

/**
 * Each datagram cut in 1-3 pieces spread over three buffers (with a garbage byte between
 * pieces), some with a zero-length range first, so the layout has uneven strides.
 */
function piecesBatch(tag: number, count: number): Batch {
  const datagrams = Array.from({ length: count }, (_, i) => payload(tag, i, lengthOf(tag, i)));
  const size = datagrams.reduce((n, d) => n + d.length, 0) + 4 * count + 8;
  const buffers = [0, 1, 2].map(() => new Uint8Array(size).fill(0xee));
  const cursors = [1, 1, 1];
  const words: number[] = [];
  const layout: number[] = [];
  datagrams.forEach((d, i) => {
    words.push(layout.length);
    const parts = Math.min(1 + (i % 3), d.length);
    const ranges: Array<[number, number, number]> = [];
    if (i % 4 === 3) ranges.push([(i + 1) % 3, 0, 0]);
    let at = 0;
    for (let j = 0; j < parts; j++) {
      const length = j === parts - 1 ? d.length - at : Math.floor(d.length / parts);
      const b = (i + j) % 3;
      const offset = cursors[b]!;
      buffers[b]!.set(d.subarray(at, at + length), offset);
      cursors[b] = offset + length + 1;
      ranges.push([b, offset, length]);
      at += length;
    }
    layout.push(ranges.length);
    for (const r of ranges) layout.push(...r);
  });
  words.push(layout.length);
  return {
    tag,
    buffers,
    layout: Uint32Array.from(layout),
    count,
    totalBytes: datagrams.reduce((n, d) => n + d.length, 0),
    datagrams,
    words,
  };
}

/** Payload bytes of datagrams [from, to) of `batch`. */
function bytesOf(batch: Batch, from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) n += batch.datagrams[i]!.length;
  return n;
}

const hex = (list: readonly Uint8Array[]): string[] => list.map((d) => Buffer.from(d).toString('hex'));

function isPending(r: RawSendResult | PendingSend): r is PendingSend {
  return 'pending' in r && r.pending === true;
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

// ---------------------------------------------------------------------------------------------

interface Done {
  tag: number;
  completion: SendCompletion;
}

/** A queue over a fake, recording completions, drains, and completions run inside submit. */
class Harness {
  readonly fake = new FakeNative();
  drains = 0;
  readonly done: Done[] = [];
  /** Tags whose completion ran inside their own submit call. */
  readonly synchronous: number[] = [];
  readonly queue = new SendQueue(this.fake, () => {
    this.drains++;
  });

  submit(batch: Batch, destination: Destination | null = null,
    after?: (completion: SendCompletion) => void, segment?: boolean,
    controls?: NativeControls): RawSendResult | PendingSend {
    let inside = true;
    const result = this.queue.submit(batch.buffers, batch.layout, batch.count, batch.totalBytes,
      destination, (completion) => {
        if (inside) this.synchronous.push(batch.tag);
        this.done.push({ tag: batch.tag, completion });
        after?.(completion);
      }, segment, controls);
    inside = false;
    return result;
  }

  pending(batch: Batch, destination: Destination | null = null,
    after?: (completion: SendCompletion) => void, segment?: boolean,
    controls?: NativeControls): PendingSend {
    const result = this.submit(batch, destination, after, segment, controls);
    if (!isPending(result)) throw new Error(`batch ${batch.tag} did not wait: ${JSON.stringify(result)}`);
    return result;
  }

  of(tag: number): SendCompletion[] {
    return this.done.filter((d) => d.tag === tag).map((d) => d.completion);
  }

  order(): number[] {
    return this.done.map((d) => d.tag);
  }

  counters(): [number, number, number] {
    return [this.queue.pendingRequests, this.queue.pendingDatagrams, this.queue.pendingBytes];
  }

  /** Nothing ran inside its caller and the fake saw no poll misuse. */
  checkClean(): void {
    expect(this.synchronous).toEqual([]);
    expect(this.fake.violations).toEqual([]);
  }
}

function success(batch: Batch): SendCompletion {
  return { datagrams: batch.count, bytes: batch.totalBytes, errno: 0, syscall: '', cancelled: false };
}

function cancelledAt(batch: Batch, sent: number): SendCompletion {
  return { datagrams: sent, bytes: bytesOf(batch, 0, sent), errno: 0, syscall: '', cancelled: true };
}

// ---------------------------------------------------------------------------------------------

describe('isWouldBlock and FLUSH_WINDOW', () => {
  test('EAGAIN, EWOULDBLOCK and ENOBUFS would block; other errors and 0 do not', () => {
    expect([EAGAIN, EWOULDBLOCK, ENOBUFS].map(isWouldBlock)).toEqual([true, true, true]);
    expect([0, ECONNREFUSED, EFAULT, EBADF, EHOSTUNREACH].map(isWouldBlock))
      .toEqual([false, false, false, false, false]);
  });

  test('FLUSH_WINDOW is a positive integer no larger than the native per-call limit', () => {
    expect(Number.isInteger(FLUSH_WINDOW)).toBe(true);
    expect(FLUSH_WINDOW).toBeGreaterThan(0);
    expect(FLUSH_WINDOW).toBeLessThanOrEqual(1024);
  });
});

describe('immediate sends', () => {
  test.each([
    ['whole buffers', wholeBatch],
    ['a layout of pieces', piecesBatch],
  ])('a batch the kernel takes whole (%s) returns its result and never completes', async (_, make) => {
    const h = new Harness();
    const b = make(1, 5);
    h.fake.capacity = 10;
    const result = h.submit(b, DEST);
    expect(isPending(result)).toBe(false);
    expect(result).toMatchObject({ datagrams: 5, bytes: b.totalBytes, errno: 0 });
    expect(hex(h.fake.sent)).toEqual(hex(b.datagrams));
    expect(h.fake.calls).toHaveLength(1);
    expect(h.fake.calls[0]).toMatchObject({
      first: 0, firstWord: 0, count: 5, address: 'fe80::1', port: 4242, scopeId: 3,
    });
    expect(h.fake.pollStarts).toBe(0);
    expect(h.fake.polling).toBe(false);
    expect(h.counters()).toEqual([0, 0, 0]);
    await tick();
    expect(h.done).toEqual([]);
    expect(h.drains).toBe(0);
    h.checkClean();
  });

  test('a connected send passes a null address, port 0 and scope 0', () => {
    const h = new Harness();
    h.fake.capacity = 10;
    h.submit(wholeBatch(1, 2), null);
    expect(h.fake.calls[0]).toMatchObject({ address: null, port: 0, scopeId: 0 });
  });

  test('a hard error at datagram 3 of 5 returns the partial count and the error; nothing waits', async () => {
    const h = new Harness();
    const b = wholeBatch(1, 5);
    h.fake.capacity = 10;
    h.fake.failAt(b.buffers, 3, ECONNREFUSED);
    const result = h.submit(b, DEST);
    expect(isPending(result)).toBe(false);
    expect(result).toMatchObject({ datagrams: 3, bytes: bytesOf(b, 0, 3), errno: ECONNREFUSED });
    expect(hex(h.fake.sent)).toEqual(hex(b.datagrams.slice(0, 3)));
    expect(h.fake.calls).toHaveLength(1);
    expect(h.fake.pollStarts).toBe(0);
    expect(h.counters()).toEqual([0, 0, 0]);
    await tick();
    expect(h.done).toEqual([]);
    h.checkClean();
  });

  test('a hard error on the first datagram returns 0 datagrams and the error', () => {
    const h = new Harness();
    const b = piecesBatch(1, 4);
    h.fake.capacity = 10;
    h.fake.failAt(b.buffers, 0, EHOSTUNREACH);
    expect(h.submit(b)).toMatchObject({ datagrams: 0, bytes: 0, errno: EHOSTUNREACH });
    expect(h.counters()).toEqual([0, 0, 0]);
    expect(h.fake.polling).toBe(false);
  });

  test('trySend on an empty queue sends what fits and never queues the rest', async () => {
    const h = new Harness();
    const b = wholeBatch(1, 5);
    h.fake.capacity = 2;
    const result = h.queue.trySend(b.buffers, b.layout, b.count, DEST);
    expect(result).toMatchObject({ datagrams: 2, bytes: bytesOf(b, 0, 2), errno: EAGAIN });
    expect(hex(h.fake.sent)).toEqual(hex(b.datagrams.slice(0, 2)));
    expect(h.fake.calls[0]).toMatchObject({ address: 'fe80::1', port: 4242, scopeId: 3 });
    expect(h.counters()).toEqual([0, 0, 0]);
    expect(h.fake.polling).toBe(false);
    await tick();
    expect(h.fake.calls).toHaveLength(1);
  });
});

describe('would block: the rest waits for the socket to be writable', () => {
  test.each([
    ['whole buffers', wholeBatch],
    ['a layout of pieces', piecesBatch],
  ])('blocked at datagram 2 of 7 (%s): waits, then completes with the totals', async (_, make) => {
    const h = new Harness();
    const b = make(1, 7);
    h.fake.capacity = 2;
    const handle = h.submit(b, DEST);
    expect(isPending(handle)).toBe(true);
    expect(h.done).toEqual([]);
    expect(h.fake.polling).toBe(true);
    expect(h.fake.pollStarts).toBe(1);
    expect(h.counters()).toEqual([1, 5, bytesOf(b, 2, 7)]);

    await tick(); // nothing happens by itself
    expect(h.done).toEqual([]);
    expect(h.fake.calls).toHaveLength(1);

    h.fake.writable(3);
    expect(h.done).toEqual([]);
    expect(h.fake.polling).toBe(true);
    expect(h.counters()).toEqual([1, 2, bytesOf(b, 5, 7)]);

    h.fake.writable(10);
    expect(h.done).toEqual([{ tag: 1, completion: success(b) }]);
    expect(h.fake.polling).toBe(false);
    expect(h.fake.pollStops).toBe(1);
    expect(h.drains).toBe(1);
    expect(h.counters()).toEqual([0, 0, 0]);
    expect(hex(h.fake.sent)).toEqual(hex(b.datagrams));

    // Each call resumed where the last one stopped, at the right layout word.
    expect(h.fake.calls.map((c) => [c.first, c.firstWord, c.count]))
      .toEqual([[0, 0, 7], [2, b.words[2], 5], [5, b.words[5], 2]]);
    for (const call of h.fake.calls) {
      expect(call).toMatchObject({ address: 'fe80::1', port: 4242, scopeId: 3 });
      expect(sameBuffers(call.buffers, b.buffers)).toBe(true);
      // The first try sends the caller's batch; what waits is sent from the queue's copy, a
      // layout holding every datagram's length.
      if (call.first === 0 || b.layout !== null) expect(call.layout).toBe(b.layout);
      else expect(Array.from(call.layout!.subarray(0, 4))).toEqual([1, 0, 0, 0]);
    }
    expect((handle as PendingSend).cancel()).toBe(false);
    expect(h.of(1)).toHaveLength(1);
    h.checkClean();
  });

  test('blocked at datagram 0: the completion counts everything from the flushes', () => {
    const h = new Harness();
    const b = piecesBatch(1, 4);
    h.pending(b);
    expect(h.counters()).toEqual([1, 4, b.totalBytes]);
    h.fake.writable(100);
    expect(h.of(1)).toEqual([success(b)]);
    expect(hex(h.fake.sent)).toEqual(hex(b.datagrams));
    h.checkClean();
  });

  test('ENOBUFS also means "would block": the rest waits', () => {
    const h = new Harness();
    const b = wholeBatch(1, 4);
    h.fake.capacity = 1;
    h.fake.wouldBlockErrno = ENOBUFS;
    h.pending(b);
    expect(h.counters()).toEqual([1, 3, bytesOf(b, 1, 4)]);
    h.fake.writable(10);
    expect(h.of(1)).toEqual([success(b)]);
    expect(hex(h.fake.sent)).toEqual(hex(b.datagrams));
  });

  test('a batch larger than FLUSH_WINDOW goes out in windows, each resumed at the right word', () => {
    const h = new Harness();
    const count = 2 * FLUSH_WINDOW + 452;
    const b = piecesBatch(7, count);
    h.fake.capacity = 100;
    h.pending(b, DEST);
    expect(h.counters()).toEqual([1, count - 100, bytesOf(b, 100, count)]);
    h.fake.writable(count * 2);
    expect(h.of(7)).toEqual([success(b)]);
    expect(hex(h.fake.sent)).toEqual(hex(b.datagrams));
    const flushes = h.fake.calls.slice(1);
    expect(flushes.length).toBeGreaterThanOrEqual(Math.ceil((count - 100) / FLUSH_WINDOW));
    let next = 100;
    for (const call of flushes) {
      expect(call.count).toBeGreaterThan(0);
      expect(call.count).toBeLessThanOrEqual(FLUSH_WINDOW);
      expect(call.first).toBe(next);
      expect(call.firstWord).toBe(b.words[next]);
      expect(call.first + call.count).toBeLessThanOrEqual(count);
      next += call.result!.datagrams;
    }
    expect(next).toBe(count);
    expect(h.drains).toBe(1);
    expect(h.fake.polling).toBe(false);
    h.checkClean();
  });

  test('a large batch over many small refills: windows cross refills, no datagram twice', () => {
    const h = new Harness();
    const count = FLUSH_WINDOW * 3 + 17;
    const b = piecesBatch(9, count);
    h.fake.capacity = 3;
    h.pending(b);
    let steps = 0;
    while (h.done.length === 0 && steps++ < 100) {
      h.fake.writable(700);
      const sent = h.fake.sent.length;
      if (h.done.length === 0) expect(h.counters()).toEqual([1, count - sent, bytesOf(b, sent, count)]);
    }
    expect(h.of(9)).toEqual([success(b)]);
    expect(hex(h.fake.sent)).toEqual(hex(b.datagrams));
    for (const call of h.fake.calls.slice(1)) expect(call.count).toBeLessThanOrEqual(FLUSH_WINDOW);
    for (const call of h.fake.calls) expect(call.firstWord).toBe(call.expectedFirstWord);
    h.checkClean();
  });
});

describe('segment (UDP_SEGMENT) flag and controls', () => {
  test('is false by default, on the first try and on every flush', () => {
    const h = new Harness();
    h.fake.capacity = 1;
    h.pending(wholeBatch(1, 3));
    h.fake.writable(1);
    h.fake.writable(5);
    expect(h.fake.calls.map((c) => c.segment)).toEqual([false, false, false]);
  });

  test('each request keeps its own flag on every native call, the first try and each flush', () => {
    const h = new Harness();
    const [b1, b2, b3] = [wholeBatch(1, 3), piecesBatch(2, 3), wholeBatch(3, 2)];
    h.fake.capacity = 1;
    h.pending(b1!, null, undefined, true);
    h.pending(b2!, null, undefined, false);
    h.pending(b3!, null, undefined, true);
    for (let step = 0; h.fake.polling && step < 20; step++) h.fake.writable(1);
    expect(h.order()).toEqual([1, 2, 3]);
    const flag = (buffers: readonly Uint8Array[]): boolean | undefined =>
      [[b1!, true] as const, [b2!, false] as const, [b3!, true] as const]
        .find(([b]) => sameBuffers(b.buffers, buffers))?.[1];
    expect(h.fake.calls.length).toBeGreaterThan(3);
    for (const call of h.fake.calls) expect(call.segment).toBe(flag(call.buffers));
  });

  test('each request keeps its own controls on the first try and on every flush', () => {
    const h = new Harness();
    const [b1, b2] = [wholeBatch(1, 4), piecesBatch(2, 3)];
    const c1: NativeControls = { tos: 0xb8, ttl: 9 };
    const c2: NativeControls = { sourceAddress: '10.0.0.1', interfaceIndex: 2 };
    h.fake.capacity = 1;
    h.pending(b1!, DEST, undefined, false, c1);
    h.pending(b2!, DEST, undefined, true, c2);
    for (let step = 0; h.fake.polling && step < 20; step++) h.fake.writable(2);
    expect(h.order()).toEqual([1, 2]);
    for (const call of h.fake.calls) {
      expect(call.controls).toBe(sameBuffers(call.buffers, b1!.buffers) ? c1 : c2);
    }
    expect(h.fake.calls.filter((c) => c.controls === c2).length).toBeGreaterThan(1);
    // Without controls, none are passed.
    const h2 = new Harness();
    h2.pending(wholeBatch(3, 2));
    h2.fake.writable(5);
    expect(h2.fake.calls.map((c) => c.controls)).toEqual([undefined, undefined]);
  });

  test('trySend passes its flag and controls', () => {
    const h = new Harness();
    const b = wholeBatch(1, 2);
    h.fake.capacity = 5;
    const controls: NativeControls = { ttl: 3 };
    h.queue.trySend(b.buffers, b.layout, b.count, null, true, controls);
    h.queue.trySend(b.buffers, b.layout, b.count, null);
    expect(h.fake.calls.map((c) => [c.segment, c.controls])).toEqual([[true, controls], [false, undefined]]);
    expect(h.fake.calls[0]!.controls).toBe(controls);
  });
});

describe('order: requests go out in call order and never jump the queue', () => {
  test('a second submit while one waits sends nothing at once, even with room', () => {
    const h = new Harness();
    const b1 = wholeBatch(1, 5);
    const b2 = piecesBatch(2, 4);
    const b3 = wholeBatch(3, 2);
    h.fake.capacity = 1;
    h.pending(b1);
    const calls = h.fake.calls.length;
    h.fake.capacity = 100; // room, but b1 still waits for the poll
    h.pending(b2);
    expect(h.fake.calls).toHaveLength(calls);
    const tried = h.queue.trySend(b3.buffers, b3.layout, b3.count, null);
    expect(tried).toMatchObject({ datagrams: 0, bytes: 0, errno: EAGAIN });
    expect(h.fake.calls).toHaveLength(calls);
    expect(h.fake.pollStarts).toBe(1);
    expect(h.counters()).toEqual([2, 4 + 4, bytesOf(b1, 1, 5) + b2.totalBytes]);

    h.fake.writable(6); // the rest of b1 (4) and 2 of b2
    expect(h.order()).toEqual([1]);
    expect(h.counters()).toEqual([1, 2, bytesOf(b2, 2, 4)]);
    expect(h.fake.polling).toBe(true);
    expect(h.drains).toBe(0);

    h.fake.writable(100);
    expect(h.order()).toEqual([1, 2]);
    expect(h.of(1)).toEqual([success(b1)]);
    expect(h.of(2)).toEqual([success(b2)]);
    expect(hex(h.fake.sent)).toEqual(hex([...b1.datagrams, ...b2.datagrams]));
    expect(h.drains).toBe(1);
    expect(h.fake.polling).toBe(false);
    expect(h.counters()).toEqual([0, 0, 0]);
    h.checkClean();
  });

  test('three waiting requests complete in order within one writable event', () => {
    const h = new Harness();
    const batches = [wholeBatch(1, 3), piecesBatch(2, 5), wholeBatch(3, 1)];
    for (const b of batches) h.pending(b);
    expect(h.fake.calls).toHaveLength(1); // only the first tried at once
    h.fake.writable(100);
    expect(h.order()).toEqual([1, 2, 3]);
    expect(hex(h.fake.sent)).toEqual(hex(batches.flatMap((b) => b.datagrams)));
    expect(h.drains).toBe(1);
    h.checkClean();
  });

  test('after the queue drains, the next submit sends at once again', () => {
    const h = new Harness();
    h.pending(wholeBatch(1, 2));
    h.fake.writable(2);
    h.fake.capacity = 5;
    const b = wholeBatch(2, 3);
    expect(h.submit(b)).toMatchObject({ datagrams: 3, bytes: b.totalBytes, errno: 0 });
    expect(h.fake.polling).toBe(false);
  });
});

describe('hard errors while flushing', () => {
  test('the failing request ends with the error and its exact counts; the next still goes out', () => {
    const h = new Harness();
    const b1 = wholeBatch(1, 5);
    const b2 = piecesBatch(2, 3);
    h.fake.capacity = 1;
    h.pending(b1, DEST);
    h.pending(b2, DEST);
    h.fake.failAt(b1.buffers, 3, ECONNREFUSED);
    h.fake.writable(100);
    expect(h.of(1)).toEqual([{
      datagrams: 3, bytes: bytesOf(b1, 0, 3), errno: ECONNREFUSED, syscall: 'sendmmsg', cancelled: false,
    }]);
    expect(h.of(2)).toEqual([success(b2)]);
    expect(h.order()).toEqual([1, 2]);
    expect(hex(h.fake.sent)).toEqual(hex([...b1.datagrams.slice(0, 3), ...b2.datagrams]));
    expect(h.drains).toBe(1);
    expect(h.fake.polling).toBe(false);
    expect(h.counters()).toEqual([0, 0, 0]);
    h.checkClean();
  });

  test('an error in the second window of a large batch counts the first windows', () => {
    const h = new Harness();
    const count = FLUSH_WINDOW + 500;
    const b = piecesBatch(1, count);
    const at = FLUSH_WINDOW + 123;
    h.pending(b);
    h.fake.failAt(b.buffers, at, EHOSTUNREACH);
    h.fake.writable(count * 2);
    expect(h.of(1)).toEqual([{
      datagrams: at, bytes: bytesOf(b, 0, at), errno: EHOSTUNREACH, syscall: 'sendmmsg', cancelled: false,
    }]);
    expect(hex(h.fake.sent)).toEqual(hex(b.datagrams.slice(0, at)));
    expect(h.counters()).toEqual([0, 0, 0]);
  });

  test('the error ends only the head: a partly sent next request keeps waiting', () => {
    const h = new Harness();
    const b1 = wholeBatch(1, 3);
    const b2 = wholeBatch(2, 6);
    h.pending(b1);
    h.pending(b2);
    h.fake.failAt(b1.buffers, 1, ECONNREFUSED);
    h.fake.writable(3); // 1 of b1, error, then 3 of b2 until the buffer is full
    expect(h.of(1)).toEqual([{
      datagrams: 1, bytes: bytesOf(b1, 0, 1), errno: ECONNREFUSED, syscall: 'sendmmsg', cancelled: false,
    }]);
    expect(h.of(2)).toEqual([]);
    expect(h.counters()).toEqual([1, 4, bytesOf(b2, 2, 6)]);
    expect(h.fake.polling).toBe(true);
    h.fake.writable(10);
    expect(h.of(2)).toEqual([success(b2)]);
  });
});

describe('cancel()', () => {
  test('cancelling the only waiting request completes it now with what went out, stops the poll', async () => {
    const h = new Harness();
    const b = piecesBatch(1, 6);
    h.fake.capacity = 2;
    const handle = h.pending(b);
    expect(handle.cancel()).toBe(true);
    expect(h.done).toEqual([{ tag: 1, completion: cancelledAt(b, 2) }]);
    expect(handle.cancel()).toBe(false);
    expect(h.of(1)).toHaveLength(1);
    expect(h.fake.polling).toBe(false);
    expect(h.drains).toBe(1);
    expect(h.counters()).toEqual([0, 0, 0]);

    // Nothing more of it goes out later.
    await tick();
    const b2 = wholeBatch(2, 3);
    h.fake.capacity = 0;
    h.pending(b2);
    h.fake.writable(100);
    expect(hex(h.fake.sent)).toEqual(hex([...b.datagrams.slice(0, 2), ...b2.datagrams]));
    expect(h.of(1)).toHaveLength(1);
    h.checkClean();
  });

  test('cancelling a middle request leaves the others in order', () => {
    const h = new Harness();
    const [b1, b2, b3] = [wholeBatch(1, 4), piecesBatch(2, 3), wholeBatch(3, 2)];
    h.fake.capacity = 1;
    h.pending(b1!);
    const second = h.pending(b2!);
    h.pending(b3!);
    expect(second.cancel()).toBe(true);
    expect(h.done).toEqual([{ tag: 2, completion: cancelledAt(b2!, 0) }]);
    expect(h.fake.polling).toBe(true);
    expect(h.drains).toBe(0);
    expect(h.counters()).toEqual([2, 3 + 2, bytesOf(b1!, 1, 4) + b3!.totalBytes]);
    h.fake.writable(100);
    expect(h.order()).toEqual([2, 1, 3]);
    expect(h.of(1)).toEqual([success(b1!)]);
    expect(h.of(3)).toEqual([success(b3!)]);
    expect(hex(h.fake.sent)).toEqual(hex([...b1!.datagrams, ...b3!.datagrams]));
    expect(second.cancel()).toBe(false);
    expect(h.drains).toBe(1);
    h.checkClean();
  });

  test('cancelling the partly sent head lets the next request go out whole', () => {
    const h = new Harness();
    const b1 = wholeBatch(1, 5);
    const b2 = wholeBatch(2, 3);
    h.fake.capacity = 2;
    const first = h.pending(b1);
    h.pending(b2);
    h.fake.writable(1); // b1: 3 of 5
    expect(first.cancel()).toBe(true);
    expect(h.of(1)).toEqual([cancelledAt(b1, 3)]);
    expect(h.counters()).toEqual([1, 3, b2.totalBytes]);
    expect(h.fake.polling).toBe(true);
    h.fake.writable(10);
    expect(h.of(2)).toEqual([success(b2)]);
    expect(hex(h.fake.sent)).toEqual(hex([...b1.datagrams.slice(0, 3), ...b2.datagrams]));
  });

  test('cancel after a completion returns false and completes nothing again', () => {
    const h = new Harness();
    const handle = h.pending(wholeBatch(1, 2));
    h.fake.writable(5);
    expect(h.done).toHaveLength(1);
    expect(handle.cancel()).toBe(false);
    expect(h.done).toHaveLength(1);
    expect(h.drains).toBe(1);
  });
});

describe('cancelAll()', () => {
  test('completes every waiting request as cancelled, in order, and stops the poll', async () => {
    const h = new Harness();
    const batches = [wholeBatch(1, 5), piecesBatch(2, 4), wholeBatch(3, 3)];
    h.fake.capacity = 2;
    const handles = batches.map((b) => h.pending(b));
    h.queue.cancelAll();
    expect(h.done).toEqual([
      { tag: 1, completion: cancelledAt(batches[0]!, 2) },
      { tag: 2, completion: cancelledAt(batches[1]!, 0) },
      { tag: 3, completion: cancelledAt(batches[2]!, 0) },
    ]);
    expect(h.fake.polling).toBe(false);
    expect(h.counters()).toEqual([0, 0, 0]);
    expect(handles.map((x) => x.cancel())).toEqual([false, false, false]);
    await tick();
    expect(h.done).toHaveLength(3);
    expect(hex(h.fake.sent)).toEqual(hex(batches[0]!.datagrams.slice(0, 2)));
    h.checkClean();
  });

  test('cancelAll on an empty queue does nothing', () => {
    const h = new Harness();
    h.queue.cancelAll();
    expect(h.done).toEqual([]);
    expect(h.fake.pollStops).toBe(0);
    expect(h.counters()).toEqual([0, 0, 0]);
  });
});

describe('native.send throwing while flushing (buffers changed while waiting)', () => {
  test('a detached buffer ends that request with EFAULT and the next continues', () => {
    const h = new Harness();
    const b1 = piecesBatch(1, 6);
    const b2 = wholeBatch(2, 3);
    h.fake.capacity = 2;
    h.pending(b1);
    h.pending(b2);
    // Detach buffer 0 of b1: its views now have length 0.
    structuredClone(b1.buffers[0]!.buffer, { transfer: [b1.buffers[0]!.buffer as ArrayBuffer] });
    expect(b1.buffers[0]!.length).toBe(0);
    h.fake.writable(100);
    expect(h.of(1)).toEqual([expect.objectContaining({
      datagrams: 2, bytes: bytesOf(b1, 0, 2), errno: EFAULT, cancelled: false,
    })]);
    expect(h.of(2)).toEqual([success(b2)]);
    expect(h.order()).toEqual([1, 2]);
    expect(hex(h.fake.sent)).toEqual(hex([...b1.datagrams.slice(0, 2), ...b2.datagrams]));
    expect(h.counters()).toEqual([0, 0, 0]);
    expect(h.fake.polling).toBe(false);
    expect(h.drains).toBe(1);
    h.checkClean();
  });

  test('a buffer that shrank while waiting ends that request with EFAULT, nothing of it sent short', () => {
    const h = new Harness();
    const b1 = wholeBatch(1, 5);
    const b2 = wholeBatch(2, 2);
    // Datagram 3 of b1 lives in a resizable buffer; the caller shrinks it while it waits.
    // Resizable ArrayBuffers are in Node 20 but not in the ES2022 typings this project uses.
    const Resizable = ArrayBuffer as unknown as
      new (length: number, options: { maxByteLength: number }) => ArrayBuffer & { resize(n: number): void };
    const resizable = new Resizable(b1.datagrams[3]!.length, { maxByteLength: 4096 });
    const view = new Uint8Array(resizable);
    view.set(b1.datagrams[3]!);
    (b1.buffers as Uint8Array[])[3] = view;
    h.fake.capacity = 1;
    h.pending(b1);
    h.pending(b2);
    resizable.resize(1);
    h.fake.writable(100);
    expect(h.of(1)).toEqual([expect.objectContaining({
      datagrams: 1, bytes: bytesOf(b1, 0, 1), errno: EFAULT, cancelled: false,
    })]);
    expect(h.of(2)).toEqual([success(b2)]);
    expect(hex(h.fake.sent)).toEqual(hex([b1.datagrams[0]!, ...b2.datagrams]));
    h.checkClean();
  });

  test('the caller\'s array emptied or reused after submit: the queue sends what was submitted', () => {
    const h = new Harness();
    const b1 = wholeBatch(1, 5);
    const held = b1.buffers.slice();
    h.fake.capacity = 1;
    h.pending(b1);
    (b1.buffers as Uint8Array[]).length = 0;
    (b1.buffers as Uint8Array[]).push(Uint8Array.of(0xff));
    h.fake.writable(100);
    expect(h.of(1)).toEqual([success({ ...b1, buffers: held })]);
    expect(hex(h.fake.sent)).toEqual(hex(b1.datagrams));
  });
});

describe('startPolling failing', () => {
  test('the waiting request completes with that errno, from the event loop, not inside submit', async () => {
    const h = new Harness();
    const b = wholeBatch(1, 3);
    h.fake.capacity = 1;
    h.fake.pollScript.push(EBADF);
    let returned = false;
    const result = h.submit(b, null, () => {
      expect(returned).toBe(true);
    });
    returned = true;
    expect(isPending(result)).toBe(true);
    expect(h.done).toEqual([]);
    await tick();
    expect(h.done).toEqual([{
      tag: 1,
      completion: { datagrams: 1, bytes: bytesOf(b, 0, 1), errno: EBADF, syscall: 'poll', cancelled: false },
    }]);
    expect(h.counters()).toEqual([0, 0, 0]);
    expect(h.drains).toBe(1);
    expect(h.fake.polling).toBe(false);
    h.checkClean();
  });

  test('two submits in one tick on a socket that cannot poll: each fails once, in order, one drain', async () => {
    const h = new Harness();
    const b1 = wholeBatch(1, 3);
    const b2 = piecesBatch(2, 2);
    h.fake.pollScript.push(EBADF, EBADF);
    h.pending(b1);
    h.pending(b2);
    expect(h.done).toEqual([]);
    await tick();
    expect(h.order()).toEqual([1, 2]);
    expect(h.of(1)).toEqual([{ datagrams: 0, bytes: 0, errno: EBADF, syscall: 'poll', cancelled: false }]);
    expect(h.of(2)).toEqual([{ datagrams: 0, bytes: 0, errno: EBADF, syscall: 'poll', cancelled: false }]);
    expect(h.counters()).toEqual([0, 0, 0]);
    // 'drain' means "the queue emptied": it emptied once.
    expect(h.drains).toBe(1);
  });

  test('the poll is not left running once every request has ended', async () => {
    const h = new Harness();
    h.fake.pollScript.push(EBADF); // the next startPolling succeeds
    h.pending(wholeBatch(1, 3));
    h.pending(wholeBatch(2, 3));
    await tick();
    expect(h.done).toHaveLength(2);
    expect(h.counters()).toEqual([0, 0, 0]);
    // The poll runs only while something waits.
    expect(h.fake.polling).toBe(false);
  });

  test('a request cancelled before the tick completes once, as cancelled', async () => {
    const h = new Harness();
    const b = wholeBatch(1, 3);
    h.fake.pollScript.push(EBADF);
    const handle = h.pending(b);
    expect(handle.cancel()).toBe(true);
    await tick();
    expect(h.of(1)).toEqual([cancelledAt(b, 0)]);
    expect(h.counters()).toEqual([0, 0, 0]);
  });
});

describe('reentrancy: completions that call back into the queue', () => {
  test('a completion that submits while another request waits: queued behind it', () => {
    const h = new Harness();
    const [b1, b2, b3] = [wholeBatch(1, 3), piecesBatch(2, 3), wholeBatch(3, 4)];
    let callsInside = -1;
    h.pending(b1!, null, () => {
      const before = h.fake.calls.length;
      expect(isPending(h.submit(b3!))).toBe(true);
      callsInside = h.fake.calls.length - before;
    });
    h.pending(b2!);
    h.fake.writable(100);
    expect(callsInside).toBe(0);
    expect(h.order()).toEqual([1, 2, 3]);
    expect(h.of(1)).toEqual([success(b1!)]);
    expect(h.of(2)).toEqual([success(b2!)]);
    expect(h.of(3)).toEqual([success(b3!)]);
    expect(hex(h.fake.sent)).toEqual(hex([...b1!.datagrams, ...b2!.datagrams, ...b3!.datagrams]));
    expect(h.counters()).toEqual([0, 0, 0]);
    expect(h.drains).toBe(1);
    expect(h.fake.polling).toBe(false);
    h.checkClean();
  });

  test('a completion that submits when the queue just emptied: it may go at once, or wait', () => {
    const h = new Harness();
    const [b1, b2] = [wholeBatch(1, 3), wholeBatch(2, 5)];
    let inner: RawSendResult | PendingSend | null = null;
    h.pending(b1!, null, () => {
      inner = h.submit(b2!);
    });
    h.fake.writable(5); // 3 of b1, then b2 takes the last 2 and waits
    expect(inner).not.toBeNull();
    expect(isPending(inner!)).toBe(true);
    expect(h.order()).toEqual([1]);
    expect(h.counters()).toEqual([1, 3, bytesOf(b2!, 2, 5)]);
    expect(h.fake.polling).toBe(true);
    expect(h.drains).toBe(0);
    h.fake.writable(10);
    expect(h.order()).toEqual([1, 2]);
    expect(h.of(2)).toEqual([success(b2!)]);
    expect(hex(h.fake.sent)).toEqual(hex([...b1!.datagrams, ...b2!.datagrams]));
    expect(h.drains).toBe(1);
    expect(h.fake.polling).toBe(false);
    h.checkClean();
  });

  test('a completion that calls cancelAll during a flush cancels the rest exactly once', () => {
    const h = new Harness();
    const [b1, b2, b3] = [wholeBatch(1, 2), piecesBatch(2, 3), wholeBatch(3, 2)];
    h.pending(b1!, null, () => h.queue.cancelAll());
    h.pending(b2!);
    h.pending(b3!);
    h.fake.writable(100);
    expect(h.done).toEqual([
      { tag: 1, completion: success(b1!) },
      { tag: 2, completion: cancelledAt(b2!, 0) },
      { tag: 3, completion: cancelledAt(b3!, 0) },
    ]);
    expect(hex(h.fake.sent)).toEqual(hex(b1!.datagrams));
    expect(h.counters()).toEqual([0, 0, 0]);
    expect(h.fake.polling).toBe(false);
    h.checkClean();
  });

  test('a completion that calls cancelAll then submits: the new request is served normally', () => {
    const h = new Harness();
    const [b1, b2, b3] = [wholeBatch(1, 2), wholeBatch(2, 3), wholeBatch(3, 4)];
    h.pending(b1!, null, () => {
      h.queue.cancelAll();
      h.submit(b3!);
    });
    h.pending(b2!);
    h.fake.writable(4); // b1 (2), then b3 gets 2 and waits
    expect(h.order()).toEqual([1, 2]);
    expect(h.fake.polling).toBe(true);
    h.fake.writable(10);
    expect(h.order()).toEqual([1, 2, 3]);
    expect(h.of(3)).toEqual([success(b3!)]);
    expect(hex(h.fake.sent)).toEqual(hex([...b1!.datagrams, ...b3!.datagrams]));
    expect(h.counters()).toEqual([0, 0, 0]);
    expect(h.fake.polling).toBe(false);
    h.checkClean();
  });

  test('a completion that cancels the next request during a flush: once each, one drain', () => {
    const h = new Harness();
    const [b1, b2] = [wholeBatch(1, 2), wholeBatch(2, 3)];
    let second: PendingSend | null = null;
    let cancelReturned: boolean | null = null;
    h.pending(b1!, null, () => {
      cancelReturned = second!.cancel();
    });
    second = h.pending(b2!);
    h.fake.writable(100);
    expect(cancelReturned).toBe(true);
    expect(h.done).toEqual([
      { tag: 1, completion: success(b1!) },
      { tag: 2, completion: cancelledAt(b2!, 0) },
    ]);
    expect(hex(h.fake.sent)).toEqual(hex(b1!.datagrams));
    expect(h.counters()).toEqual([0, 0, 0]);
    expect(h.fake.polling).toBe(false);
    // The queue emptied once.
    expect(h.drains).toBe(1);
  });

  test('during cancelAll, a completion that cancels a later request: it completes once', () => {
    const h = new Harness();
    const [b1, b2, b3] = [wholeBatch(1, 2), wholeBatch(2, 3), wholeBatch(3, 2)];
    let second: PendingSend | null = null;
    h.pending(b1!, null, () => {
      second!.cancel();
    });
    second = h.pending(b2!);
    h.pending(b3!);
    h.queue.cancelAll();
    expect(h.of(2)).toHaveLength(1);
    expect(h.done.map((d) => d.tag).sort()).toEqual([1, 2, 3]);
    expect(h.counters()).toEqual([0, 0, 0]);
  });

  test('during cancelAll, a completion that submits and another that cancels: no request lost', () => {
    const h = new Harness();
    const [b1, b2, b3] = [wholeBatch(1, 2), wholeBatch(2, 3), wholeBatch(3, 2)];
    let second: PendingSend | null = null;
    h.pending(b1!, null, () => {
      h.pending(b3!); // the queue was emptied by cancelAll: b3 is tried at once, waits
      second!.cancel();
    });
    second = h.pending(b2!);
    h.queue.cancelAll();
    // b3 must still wait (nothing cancelled it), with exact counters.
    expect(h.of(3)).toEqual([]);
    expect(h.counters()).toEqual([1, 2, b3!.totalBytes]);
    expect(h.of(2)).toHaveLength(1);
  });

  test('after a poll failure, a completion that cancels a later request: it completes once', async () => {
    const h = new Harness();
    const [b1, b2] = [wholeBatch(1, 2), wholeBatch(2, 3)];
    h.fake.pollScript.push(EBADF, EBADF);
    let second: PendingSend | null = null;
    h.pending(b1!, null, () => {
      second!.cancel();
    });
    second = h.pending(b2!);
    await tick();
    expect(h.of(1)).toHaveLength(1);
    expect(h.of(2)).toHaveLength(1);
    expect(h.counters()).toEqual([0, 0, 0]);
  });

  test('a completion run by cancel() that submits: queued behind the rest, in order', () => {
    const h = new Harness();
    const [b1, b2, b3] = [wholeBatch(1, 2), wholeBatch(2, 3), wholeBatch(3, 2)];
    const first = h.pending(b1!, null, () => {
      h.pending(b3!);
    });
    h.pending(b2!);
    expect(first.cancel()).toBe(true);
    expect(h.counters()).toEqual([2, 5, b2!.totalBytes + b3!.totalBytes]);
    h.fake.writable(100);
    expect(h.order()).toEqual([1, 2, 3]);
    expect(hex(h.fake.sent)).toEqual(hex([...b2!.datagrams, ...b3!.datagrams]));
    expect(h.drains).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------
// Property: random batches, capacities, submit/cancel/trySend/cancelAll interleavings and
// hard errors. The fake's record of what went out is the truth every outcome is checked
// against.

type Command =
  | { kind: 'submit'; count: number; pieces: boolean; room: number | null; connected: boolean; segment: boolean }
  | { kind: 'trySend'; count: number; room: number | null }
  | { kind: 'writable'; room: number }
  | { kind: 'cancel'; pick: number }
  | { kind: 'fail'; offset: number }
  | { kind: 'cancelAll' };

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('submit' as const),
      count: fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 1, max: 12 }) },
        { weight: 1, arbitrary: fc.integer({ min: FLUSH_WINDOW - 2, max: FLUSH_WINDOW + 300 }) }),
      pieces: fc.boolean(),
      room: fc.option(fc.integer({ min: 0, max: 8 })),
      connected: fc.boolean(),
      segment: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('trySend' as const),
      count: fc.integer({ min: 1, max: 6 }),
      room: fc.option(fc.integer({ min: 0, max: 8 })),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('writable' as const),
      room: fc.oneof(fc.integer({ min: 0, max: 10 }), fc.integer({ min: 500, max: 2000 })),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('fail' as const), offset: fc.integer({ min: 0, max: 6 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cancelAll' as const) }) },
);

interface Tracked {
  batch: Batch;
  viaTrySend: boolean;
  segment: boolean;
  destination: Destination | null;
  immediate: RawSendResult | null;
  handle: PendingSend | null;
  completions: SendCompletion[];
}

function runScenario(commands: readonly Command[]): void {
  const fake = new FakeNative();
  let drains = 0;
  const queue = new SendQueue(fake, () => {
    drains++;
  });
  const tracked: Tracked[] = [];
  const byBuffers = new Map<readonly Uint8Array[], Tracked>();
  const seen = new Map<number, number>(); // datagrams of each tag the fake saw
  let decoded = 0;
  let insideSubmit: number | null = null;
  let drainedByFlush = false;

  const absorb = (): void => {
    for (; decoded < fake.sent.length; decoded++) {
      const d = fake.sent[decoded]!;
      const tag = (d[0]! << 8) | d[1]!;
      seen.set(tag, (seen.get(tag) ?? 0) + 1);
    }
  };
  const sentOf = (t: Tracked): number => seen.get(t.batch.tag) ?? 0;
  const waiting = (): Tracked[] => tracked.filter((t) => t.handle !== null && t.completions.length === 0);

  const check = (): void => {
    absorb();
    const w = waiting();
    assert.equal(queue.pendingRequests, w.length, 'pendingRequests');
    assert.equal(queue.pendingDatagrams, w.reduce((n, t) => n + t.batch.count - sentOf(t), 0), 'pendingDatagrams');
    assert.equal(queue.pendingBytes, w.reduce((n, t) => n + bytesOf(t.batch, sentOf(t), t.batch.count), 0), 'pendingBytes');
    assert.equal(fake.polling, w.length > 0, 'the poll runs exactly while something waits');
    for (const t of tracked) assert.ok(t.completions.length <= 1, `request ${t.batch.tag} completed twice`);
    assert.deepEqual(fake.violations, []);
  };

  let nextTag = 1;
  for (const command of commands) {
    switch (command.kind) {
      case 'submit':
      case 'trySend': {
        const tag = nextTag++;
        const batch = command.kind === 'submit' && command.pieces
          ? piecesBatch(tag, command.count) : wholeBatch(tag, command.count);
        const destination = command.kind === 'submit' && command.connected ? null : DEST;
        const segment = command.kind === 'submit' && command.segment;
        const t: Tracked = {
          batch, viaTrySend: command.kind === 'trySend', segment, destination,
          immediate: null, handle: null, completions: [],
        };
        tracked.push(t);
        byBuffers.set(batch.buffers, t);
        if (command.room !== null) fake.capacity = command.room;
        if (command.kind === 'trySend') {
          const before = fake.calls.length;
          const wasWaiting = waiting().length > 0;
          t.immediate = queue.trySend(batch.buffers, batch.layout, batch.count, destination);
          if (wasWaiting) {
            assert.equal(fake.calls.length, before, 'trySend jumped the queue');
            assert.deepEqual([t.immediate.datagrams, t.immediate.errno], [0, EAGAIN]);
          }
        } else {
          const before = fake.calls.length;
          const wasWaiting = waiting().length > 0;
          insideSubmit = tag;
          const result = queue.submit(batch.buffers, batch.layout, batch.count, batch.totalBytes,
            destination, (completion) => {
              assert.notEqual(insideSubmit, tag, 'completion ran inside submit');
              t.completions.push(completion);
            }, segment);
          insideSubmit = null;
          if (wasWaiting) assert.equal(fake.calls.length, before, 'submit jumped the queue'); // never jumps the queue
          if (isPending(result)) t.handle = result;
          else t.immediate = result;
        }
        break;
      }
      case 'writable':
        if (fake.polling) {
          fake.writable(command.room);
          if (waiting().length === 0) drainedByFlush = true;
        }
        break;
      case 'cancel': {
        const handles = tracked.filter((t) => t.handle !== null);
        if (handles.length === 0) break;
        const t = handles[command.pick % handles.length]!;
        const wasOpen = t.completions.length === 0;
        assert.equal(t.handle!.cancel(), wasOpen, 'cancel() result');
        absorb();
        if (wasOpen) {
          assert.deepEqual(t.completions, [cancelledAt(t.batch, sentOf(t))]);
        }
        break;
      }
      case 'fail':
        fake.failInNextCallAt = { offset: command.offset, errno: ECONNREFUSED };
        break;
      case 'cancelAll': {
        absorb();
        const w = waiting();
        const expected = w.map((t) => cancelledAt(t.batch, sentOf(t)));
        queue.cancelAll();
        assert.deepEqual(w.map((t) => t.completions[0]), expected);
        break;
      }
    }
    check();
  }

  // Let everything still waiting go out: bounded.
  fake.failInNextCallAt = null;
  for (let step = 0; fake.polling && step < 10_000; step++) {
    fake.writable(1 + (step % 97));
    if (waiting().length === 0) drainedByFlush = true;
  }
  check();
  assert.equal(fake.polling, false);
  assert.deepEqual([queue.pendingRequests, queue.pendingDatagrams, queue.pendingBytes], [0, 0, 0]);

  // What went out is, request by request in call order, a prefix of each request.
  const expectedWire = tracked.flatMap((t) => t.batch.datagrams.slice(0, sentOf(t)));
  assert.deepEqual(hex(fake.sent), hex(expectedWire), 'what went out');

  // Every native call carried its request's window, destination and flag.
  for (const call of fake.calls) {
    const t = [...byBuffers].find(([buffers]) => sameBuffers(buffers, call.buffers))?.[1];
    assert.ok(t !== undefined, 'a call for an unknown batch');
    assert.equal(call.firstWord, call.expectedFirstWord, 'firstWord');
    assert.equal(call.segment, t.segment, 'segment');
    assert.deepEqual([call.address, call.port, call.scopeId],
      t.destination === null ? [null, 0, 0] : [DEST.address, DEST.port, DEST.scopeId]);
    if (call.first > 0) assert.ok(call.count <= FLUSH_WINDOW, 'flush window');
    assert.ok(call.first + call.count <= t.batch.count, 'window past the batch');
  }

  for (const t of tracked) {
    const k = sentOf(t);
    const outcome: RawSendResult | SendCompletion | undefined = t.immediate ?? t.completions[0];
    if (t.immediate !== null) assert.deepEqual(t.completions, []);
    else assert.equal(t.completions.length, 1, `request ${t.batch.tag} completions`);
    assert.ok(outcome !== undefined);
    assert.equal(outcome!.datagrams, k, 'datagrams');
    assert.equal(outcome!.bytes, bytesOf(t.batch, 0, k), 'bytes');
    const cancelled = 'cancelled' in outcome! && outcome.cancelled;
    if (cancelled) {
      assert.equal(outcome!.errno, 0);
    } else if (outcome!.errno === 0) {
      assert.equal(k, t.batch.count, 'a successful request went out whole');
    } else {
      assert.ok(k < t.batch.count, 'a failed request is partial');
      // Only trySend reports "would block"; submit queues it instead.
      if (!t.viaTrySend) assert.equal(outcome!.errno, ECONNREFUSED);
    }
  }
  // A queue emptied by the flush (not by cancelAll, which is socket close) reported draining.
  if (drainedByFlush) assert.ok(drains >= 1, 'drain');
}

describe('property', () => {
  test('random batches, capacities and submit/cancel interleavings: every request ends exactly once', () => {
    fc.assert(fc.property(fc.array(commandArb, { maxLength: 40 }), (commands) => {
      runScenario(commands);
    }), { numRuns: 250 });
  });
});

describe('JavaScript run by a native send while flushing (getters): re-entrant close and cancel', () => {
  test('cancelAll (close) from inside the flush: every request completes exactly once, no throw', () => {
    const h = new Harness();
    const [b1, b2, b3] = [wholeBatch(1, 6), piecesBatch(2, 4), wholeBatch(3, 3)];
    h.fake.capacity = 2;
    h.pending(b1!);
    h.pending(b2!);
    h.pending(b3!);
    // The flush's send of b1 takes 3 more datagrams; a getter inside it closes the socket.
    h.fake.duringNextSend = () => h.queue.cancelAll();
    expect(() => h.fake.writable(3)).not.toThrow();
    // b1 completes once its native call has returned, with all it sent (2 + 3); the others at once.
    expect(h.of(1)).toEqual([cancelledAt(b1!, 5)]);
    expect(h.of(2)).toEqual([cancelledAt(b2!, 0)]);
    expect(h.of(3)).toEqual([cancelledAt(b3!, 0)]);
    expect(h.order()).toEqual([2, 3, 1]);
    expect(hex(h.fake.sent)).toEqual(hex(b1!.datagrams.slice(0, 5)));
    expect(h.counters()).toEqual([0, 0, 0]);
    expect(h.fake.polling).toBe(false);
    expect(h.drains).toBe(0); // emptied by the close, not by sending
    h.checkClean();
  });

  test('cancel of the head from inside its own send: it completes once, cancelled, with what went out', () => {
    const h = new Harness();
    const [b1, b2] = [wholeBatch(1, 6), wholeBatch(2, 3)];
    h.fake.capacity = 1;
    const head = h.pending(b1!);
    h.pending(b2!);
    let answer: boolean | undefined;
    let again: boolean | undefined;
    h.fake.duringNextSend = () => {
      answer = head.cancel();
      again = head.cancel();
    };
    h.fake.writable(2);
    expect([answer, again]).toEqual([true, false]);
    expect(h.of(1)).toEqual([cancelledAt(b1!, 3)]);
    // The flush goes on with the next request in the same writable turn.
    expect(h.of(2)).toEqual([]);
    expect(h.counters()).toEqual([1, 3, b2!.totalBytes]);
    h.fake.writable(10);
    expect(h.of(2)).toEqual([success(b2!)]);
    expect(h.of(1)).toHaveLength(1);
    expect(hex(h.fake.sent)).toEqual(hex([...b1!.datagrams.slice(0, 3), ...b2!.datagrams]));
    expect(h.counters()).toEqual([0, 0, 0]);
    expect(h.drains).toBe(1);
    h.checkClean();
  });

  test('cancel of a later request from inside the flush finishes it at once; the head goes on', () => {
    const h = new Harness();
    const [b1, b2] = [wholeBatch(1, 4), wholeBatch(2, 3)];
    h.fake.capacity = 1;
    h.pending(b1!);
    const second = h.pending(b2!);
    h.fake.duringNextSend = () => { second.cancel(); };
    h.fake.writable(10);
    expect(h.order()).toEqual([2, 1]);
    expect(h.of(2)).toEqual([cancelledAt(b2!, 0)]);
    expect(h.of(1)).toEqual([success(b1!)]);
    expect(h.counters()).toEqual([0, 0, 0]);
    expect(h.drains).toBe(1);
    h.checkClean();
  });
});
