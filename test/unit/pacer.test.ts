/**
 * The pacer (lib/pacer.ts) over a fake socket, under jest's fake timers and clock: the rate it
 * keeps, the burst bound after a late timer, one timer at a time (never one per datagram), and
 * the exact counts in both modes, for arrays and packed batches.
 */
import { Pacer, type PacedSocket, type PacerBudget, type PacerStats } from '../../lib/pacer';
import type { BatchInput } from '../../lib/batch';
import type { SendOptions, SendResult } from '../../lib/socket';

/** A socket that takes `accept(n)` of each batch of n datagrams and records every call. */
class FakeSocket implements PacedSocket {
  readonly calls: { datagrams: number; bytes: number; at: number; kind: 'try' | 'queue' }[] = [];
  pendingDatagrams = 0;
  accept: (count: number) => number = (count) => count;
  /** Queue mode: resolves the next sendBatch only when the test says so. */
  holdSends = false;
  readonly held: Array<() => void> = [];
  fail: Error | null = null;

  trySendBatch(batch: BatchInput, _port?: number, _address?: string, _options?: SendOptions): SendResult {
    const { datagrams, each } = measure(batch);
    this.calls.push({ datagrams, bytes: datagrams * each, at: jest.now(), kind: 'try' });
    if (this.fail !== null) throw this.fail;
    const taken = this.accept(datagrams);
    return { datagrams: taken, bytes: taken * each, segments: taken, failures: [] };
  }

  sendBatch(batch: BatchInput, _port?: number, _address?: string, _options?: SendOptions): Promise<SendResult> {
    const { datagrams, each } = measure(batch);
    this.calls.push({ datagrams, bytes: datagrams * each, at: jest.now(), kind: 'queue' });
    const result = { datagrams, bytes: datagrams * each, segments: datagrams, failures: [] };
    if (this.fail !== null) {
      const error = Object.assign(this.fail, { datagramsSent: 2, bytesSent: 2 * each });
      return Promise.reject(error);
    }
    if (!this.holdSends) return Promise.resolve(result);
    this.pendingDatagrams += datagrams;
    return new Promise((resolve) => this.held.push(() => {
      this.pendingDatagrams -= datagrams;
      resolve(result);
    }));
  }

  sent(): number {
    return this.calls.reduce((sum, call) => sum + call.datagrams, 0);
  }
}

function measure(batch: BatchInput): { datagrams: number; each: number } {
  if (Array.isArray(batch)) return { datagrams: batch.length, each: batch.length > 0 ? (batch[0] as Uint8Array).length : 0 };
  const packed = batch as { buffer: Uint8Array; segmentSize: number };
  return { datagrams: Math.ceil(packed.buffer.length / packed.segmentSize), each: packed.segmentSize };
}

const datagram = new Uint8Array(100);
/** A source of equal 100-byte datagrams, `limit` in all; records each budget it was given. */
function source(limit = Infinity): { next: (budget: PacerBudget) => BatchInput | null; budgets: PacerBudget[] } {
  let left = limit;
  const budgets: PacerBudget[] = [];
  return {
    budgets,
    next: (budget) => {
      budgets.push(budget);
      if (left <= 0) return null;
      const count = Math.min(left, budget.datagrams, Number.isFinite(budget.bytes) ? Math.max(1, Math.floor(budget.bytes / 100)) : Infinity);
      left -= count;
      return new Array<Uint8Array>(count).fill(datagram);
    },
  };
}

/** A source of `total` datagrams in all, each batch as many as its budget allows, made by `make(count)`. */
function batchesOf(total: number, make: (count: number) => BatchInput): (budget: PacerBudget) => BatchInput | null {
  let left = total;
  return ({ datagrams }) => {
    if (left === 0) return null;
    const count = Math.min(left, datagrams);
    left -= count;
    return make(count);
  };
}

const clock = (): number => jest.now();

beforeEach(() => {
  jest.useFakeTimers();
});
afterEach(() => {
  jest.useRealTimers();
});

/** Advances the fake clock in 1 ms steps (timers fire on time), checking that at most one timer is armed. */
function runFor(ms: number): number {
  let mostTimers = 0;
  for (let t = 0; t < ms; t++) {
    jest.advanceTimersByTime(1);
    mostTimers = Math.max(mostTimers, jest.getTimerCount());
  }
  return mostTimers;
}

test('keeps a datagram rate with one send call per tick and one timer at a time', () => {
  const socket = new FakeSocket();
  const setTimeoutSpy = jest.spyOn(global, 'setTimeout');
  const pacer = new Pacer(socket, { rate: 20_000, next: source().next, port: 9, now: clock, mode: 'try' });
  const mostTimers = runFor(1000);
  pacer.stop();
  const stats = pacer.stats();
  // 20 per 1 ms tick for 1 s, plus the first datagram sent at once.
  expect(socket.sent()).toBeGreaterThanOrEqual(20_000);
  expect(socket.sent()).toBeLessThanOrEqual(20_001);
  expect(stats).toMatchObject({ datagrams: socket.sent(), unsent: 0, forfeited: 0 });
  // Timers per tick, not per datagram: about 1000 ticks for 20,000 datagrams, never two armed.
  expect(mostTimers).toBe(1);
  expect(stats.ticks).toBeGreaterThanOrEqual(999);
  expect(stats.ticks).toBeLessThanOrEqual(1001);
  expect(setTimeoutSpy.mock.calls.length).toBeLessThanOrEqual(stats.ticks + 1);
  expect(socket.calls.length).toBe(stats.calls);
  expect(stats.calls).toBeLessThanOrEqual(stats.ticks);
  expect(Math.max(...socket.calls.map((c) => c.datagrams))).toBeLessThanOrEqual(21);
});

test('a bitrate is kept in payload bytes', () => {
  const socket = new FakeSocket();
  // 8 Mbit/s of 100-byte datagrams: 10,000 per second.
  const pacer = new Pacer(socket, { bitrate: 8_000_000, next: source().next, port: 9, now: clock, mode: 'try' });
  runFor(500);
  pacer.stop();
  const bytes = socket.calls.reduce((sum, c) => sum + c.bytes, 0);
  expect(bytes).toBeGreaterThanOrEqual(500_000 - 100);
  // The first tick starts with one interval of credit (1000 bytes), so that the first datagram goes at once.
  expect(bytes).toBeLessThanOrEqual(500_000 + 1000 + 100);
  expect(pacer.stats().bytes).toBe(bytes);
});

test('with a bitrate, the default burst grows to the largest datagram: a late timer finds a whole one', () => {
  let now = 0;
  const socket = new FakeSocket();
  // 2 Mbit/s = 250 bytes per 1 ms interval: four intervals (1000 bytes) are less than one
  // 1200-byte datagram. Capped there, a tick after a stall could never find a whole datagram's
  // credit, and every late timer would forfeit the rest of one.
  const big = new Uint8Array(1200);
  const budgets: number[] = [];
  const pacer = new Pacer(socket, {
    bitrate: 2_000_000, port: 9, now: () => now, mode: 'try',
    next: ({ bytes }) => {
      budgets.push(bytes);
      return new Array<Uint8Array>(Math.ceil(bytes / 1200)).fill(big);
    },
  });
  jest.runOnlyPendingTimers(); // the first tick sends one datagram, into debt
  now += 100; // the next timer fires 100 ms late
  jest.runOnlyPendingTimers();
  pacer.stop();
  expect(budgets.length).toBe(2);
  expect(budgets[1]).toBe(1200); // capped at one datagram, not at 1000 bytes
  // What the stall gave beyond the cap is forfeited and counted: 100 ms of 250 B/ms, less the
  // debt of the first datagram and the cap.
  expect(pacer.stats().forfeited).toBeCloseTo(25_000 - (1200 - 250) - 1200, 0);
});

test('a late timer is caught up within the burst, and credit past the burst is forfeited and counted', () => {
  let now = 0;
  const socket = new FakeSocket();
  // 10 datagrams per ms, burst 40 (four 1 ms intervals, the default).
  const pacer = new Pacer(socket, { rate: 10_000, next: source().next, port: 9, now: () => now, mode: 'try' });
  jest.runOnlyPendingTimers(); // the first tick: 1 datagram of initial credit
  expect(socket.sent()).toBe(1);
  now = 3; // 3 ms late: caught up in one call
  jest.runOnlyPendingTimers();
  expect(socket.calls.at(-1)!.datagrams).toBe(30);
  expect(pacer.stats().forfeited).toBe(0);
  now = 53; // 50 ms late: one tick sends no more than the burst
  jest.runOnlyPendingTimers();
  expect(socket.calls.at(-1)!.datagrams).toBe(40);
  expect(pacer.stats().forfeited).toBe(460);
  now = 54; // then back to the rate
  jest.runOnlyPendingTimers();
  expect(socket.calls.at(-1)!.datagrams).toBe(10);
  pacer.stop();
});

test('a low rate waits for a whole datagram of credit instead of ticking every millisecond', () => {
  const socket = new FakeSocket();
  const pacer = new Pacer(socket, { rate: 10, next: source().next, port: 9, now: clock, mode: 'try' });
  runFor(1000);
  pacer.stop();
  expect(socket.sent()).toBeGreaterThanOrEqual(10);
  expect(socket.sent()).toBeLessThanOrEqual(11);
  expect(pacer.stats().ticks).toBeLessThanOrEqual(12);
});

test('maxBatch splits a tick into several calls of at most that many datagrams', () => {
  const socket = new FakeSocket();
  const pacer = new Pacer(socket, { rate: 100_000, next: source().next, port: 9, now: clock, mode: 'try', maxBatch: 30 });
  runFor(100);
  pacer.stop();
  expect(Math.max(...socket.calls.map((c) => c.datagrams))).toBe(30);
  expect(socket.sent()).toBeGreaterThanOrEqual(10_000);
  expect(socket.sent()).toBeLessThanOrEqual(10_001);
});

test('try mode: what the kernel does not take is counted as unsent, never as sent', () => {
  const socket = new FakeSocket();
  socket.accept = (count) => Math.floor(count / 2);
  const pacer = new Pacer(socket, { rate: 10_000, next: source().next, port: 9, now: clock, mode: 'try' });
  runFor(100);
  pacer.stop();
  const offered = socket.sent();
  const stats = pacer.stats();
  expect(stats.datagrams + stats.unsent).toBe(offered);
  expect(stats.datagrams).toBe(socket.calls.reduce((sum, c) => sum + Math.floor(c.datagrams / 2), 0));
  expect(stats.unsent).toBeGreaterThan(0);
});

test('queue mode: nothing more is sent while the socket queue is not empty; the ticks waited are counted', async () => {
  const socket = new FakeSocket();
  socket.holdSends = true;
  const pacer = new Pacer(socket, { rate: 10_000, next: source().next, port: 9, now: clock });
  runFor(20);
  expect(socket.calls).toHaveLength(1); // the first send is still pending
  const waiting = pacer.stats();
  expect(waiting.waitingTicks).toBeGreaterThanOrEqual(19);
  expect(waiting).toMatchObject({ datagrams: 0, queued: 1 });
  expect(waiting.forfeited).toBeGreaterThan(0);
  socket.holdSends = false;
  socket.held.shift()!();
  await Promise.resolve();
  runFor(1);
  // The next tick sends at most a burst (40), not the 200 datagrams of the time it waited.
  expect(socket.calls[1]!.datagrams).toBeLessThanOrEqual(40);
  pacer.stop();
  const stats = await pacer.done;
  expect(stats.datagrams).toBe(socket.sent());
  expect(stats.queued).toBe(0);
});

test('one packed buffer per tick', async () => {
  const socket = new FakeSocket();
  const pacer = new Pacer(socket, {
    rate: 50_000, port: 9, now: clock, mode: 'try',
    next: batchesOf(1000, (count) => ({ buffer: new Uint8Array(count * 100), segmentSize: 100 })),
  });
  runFor(40);
  const stats = await pacer.done;
  expect(stats).toMatchObject({ datagrams: 1000, bytes: 100_000, unsent: 0 });
  expect(stats.calls).toBe(socket.calls.length);
  expect(stats.calls).toBeLessThanOrEqual(stats.ticks);
  expect(stats.calls).toBeGreaterThanOrEqual(20); // 50 per tick at most: 1000 took 20 ticks
});

test('done resolves with the counts once the source ends and the last send completed', async () => {
  const socket = new FakeSocket();
  const pacer = new Pacer(socket, { rate: 10_000, next: source(95).next, port: 9, now: clock });
  runFor(20);
  const stats: PacerStats = await pacer.done;
  expect(stats).toMatchObject({ datagrams: 95, bytes: 9500, queued: 0, unsent: 0 });
  expect(jest.getTimerCount()).toBe(0);
});

test('a failed send rejects done with its error; what it sent before counts', async () => {
  const socket = new FakeSocket();
  socket.fail = new Error('boom');
  const pacer = new Pacer(socket, { rate: 10_000, next: source().next, port: 9, now: clock });
  jest.advanceTimersByTime(1);
  await expect(pacer.done).rejects.toThrow('boom');
  // Each failed call reports 2 datagrams sent before its error; they count, and sends stopped.
  const stats = pacer.stats();
  expect(stats.calls).toBeGreaterThanOrEqual(1);
  expect(stats.datagrams).toBe(2 * stats.calls);
  expect(socket.calls).toHaveLength(stats.calls);
  expect(jest.getTimerCount()).toBe(0);

  const trying = new FakeSocket();
  trying.fail = new Error('try boom');
  const tryPacer = new Pacer(trying, { rate: 10_000, next: source().next, port: 9, now: clock, mode: 'try' });
  jest.advanceTimersByTime(1);
  await expect(tryPacer.done).rejects.toThrow('try boom');
  expect(jest.getTimerCount()).toBe(0);
});

test('a source that gives more than its budget is an error, not a burst', async () => {
  const socket = new FakeSocket();
  const pacer = new Pacer(socket, {
    rate: 1000, port: 9, now: clock, mode: 'try', next: ({ datagrams }) => new Array<Uint8Array>(datagrams + 5).fill(datagram),
  });
  jest.advanceTimersByTime(1);
  await expect(pacer.done).rejects.toThrow(RangeError);
  expect(socket.calls).toHaveLength(0);
});

test('bad options are refused', () => {
  const socket = new FakeSocket();
  const next = (): null => null;
  expect(() => new Pacer(socket, { next })).toThrow(TypeError);
  expect(() => new Pacer(socket, { rate: 1, bitrate: 1, next })).toThrow(TypeError);
  expect(() => new Pacer(socket, { rate: 0, next })).toThrow(RangeError);
  expect(() => new Pacer(socket, { rate: Number.NaN, next })).toThrow(RangeError);
  expect(() => new Pacer(socket, { bitrate: -5, next })).toThrow(RangeError);
  expect(() => new Pacer(socket, { rate: 5, next, burst: 0.5 })).toThrow(RangeError);
  expect(() => new Pacer(socket, { rate: 5, next, maxBatch: 0 })).toThrow(RangeError);
  expect(() => new Pacer(socket, { rate: 5, next, mode: 'later' as never })).toThrow(TypeError);
  expect(() => new Pacer(socket, { rate: 5, next: 3 as never })).toThrow(TypeError);
  // A misspelt option is not silently the default.
  expect(() => new Pacer(socket, { rate: 5, next, intervalMS: 5 } as never)).toThrow(/unknown.*intervalMS|intervalMS/);
  expect(jest.getTimerCount()).toBe(0);
});

test("the source's batch is read once: what the pacer charges and counts is what the send gets", async () => {
  // Each batch answers its length (an array's, or a packed batch's segmentSize) once honestly,
  // then with a lie: the pacer must charge, check and send the answer it read.
  const socket = new FakeSocket();
  let given = 0;
  const pacer = new Pacer(socket, {
    rate: 50_000, port: 9, now: clock, mode: 'try',
    next: batchesOf(300, (count) => {
      given++;
      let reads = 0;
      if (given % 2 === 0) {
        const packed = { buffer: new Uint8Array(count * 100) } as { buffer: Uint8Array; segmentSize: number };
        Object.defineProperty(packed, 'segmentSize', { enumerable: true, get: () => (reads++ === 0 ? 100 : 1) });
        return packed;
      }
      return new Proxy(new Array<Uint8Array>(count).fill(datagram), {
        get: (target, key, receiver) => (key === 'length' ? (reads++ === 0 ? count : count + 1000) : Reflect.get(target, key, receiver)),
      });
    }),
  });
  runFor(20);
  const stats = await pacer.done;
  expect(given).toBeGreaterThanOrEqual(4); // both shapes, more than once
  expect(stats).toMatchObject({ datagrams: 300, bytes: 30_000, unsent: 0 });
  expect(socket.sent()).toBe(300);
  expect(socket.calls.every((call) => call.datagrams <= 50 && call.bytes === call.datagrams * 100)).toBe(true);
});

test('a batch the pacer cannot count fails the pacer with a TypeError; no call is skipped in silence', async () => {
  const unsizable: unknown[] = [
    { buffer: new Uint8Array(100) }, // no segmentSize, no lengths: it used to count as 0 datagrams and skip, tick after tick
    { buffer: new Uint8Array(100), segmentSize: 0.5 },
    { buffer: 'not bytes', segmentSize: 10 },
    { buffer: new Uint8Array(100), lengths: 'no' },
    { buffer: new Uint8Array(100), lengths: [50], segmentSize: 50 },
    42,
  ];
  for (const batch of unsizable) {
    const socket = new FakeSocket();
    let asked = 0;
    const pacer = new Pacer(socket, { rate: 10_000, port: 9, now: clock, next: () => (asked++ < 100 ? batch as BatchInput : null) });
    runFor(5);
    await expect(pacer.done).rejects.toThrow(TypeError);
    expect(asked).toBe(1);
    expect(socket.calls).toHaveLength(0);
    expect(jest.getTimerCount()).toBe(0);
  }
});

test("a batch past the send's piece limits is a RangeError before the pacer copies it", async () => {
  // A sparse pieces array costs its maker nothing; copying it (2^32 - 1 slots) would not end in a test's time.
  const huge = Object.assign([] as Uint8Array[], { length: 2 ** 32 - 1 });
  // 4097 datagrams of 1024 pieces: past the send's 4,194,304 pieces in all.
  const tooMany = new Array<Uint8Array[]>(4097).fill(new Array<Uint8Array>(1024).fill(datagram));
  for (const batch of [[huge], tooMany]) {
    const socket = new FakeSocket();
    // Skipped until the budget holds the whole batch: the limit hit must be the pieces'.
    const pacer = new Pacer(socket, {
      rate: 5_000_000, port: 9, now: clock, next: ({ datagrams }) => (datagrams >= batch.length ? batch : []),
    });
    runFor(3);
    await expect(pacer.done).rejects.toThrow(/pieces/);
    await expect(pacer.done).rejects.toThrow(RangeError);
    expect(socket.calls).toHaveLength(0);
  }
});
