/**
 * The batched receiver (lib/receive.ts) over a scripted fake socket: AbortSignal (an aborted
 * receive reads nothing, so no datagram is lost; listeners go when it settles) and the ref
 * state of its timeout timer.
 */
import * as os from 'node:os';
import { getEventListeners } from 'node:events';
import type { NativeReceived } from '../../lib/binding';
import { WskError } from '../../lib/errors';
import { DatagramReader } from '../../lib/receive';

const { EAGAIN, ECONNREFUSED } = os.constants.errno;

/** Answers receive() from a script of datagram batches (EAGAIN when empty); records calls. */
class FakeReceiver {
  readonly waiting: Array<NativeReceived[] | number> = [];
  receives = 0;
  reading = false;
  onReadable: ((errno: number) => void) | null = null;

  receive(arena: Uint8Array): NativeReceived[] | number {
    this.receives++;
    const next = this.waiting.shift();
    if (next === undefined) return EAGAIN;
    if (typeof next !== 'number') for (const d of next) arena.fill(d.length, d.offset, d.offset + d.length);
    return next;
  }

  startReading(onReadable: (errno: number) => void): number {
    this.reading = true;
    this.onReadable = onReadable;
    return 0;
  }

  stopReading(): void {
    this.reading = false;
    this.onReadable = null;
  }

  /** A datagram of `length` bytes arrives: it waits, and the poll reports readable. */
  arrive(length: number): void {
    this.waiting.push([{
      offset: 0, length, truncated: false, source: { family: 4, address: '198.18.0.9', port: 7, scopeId: 0 },
      interfaceIndex: 0, tos: -1, ttl: -1, segmentSize: 0,
    }]);
    this.onReadable?.(0);
  }
}

function reader(): { fake: FakeReceiver; reader: DatagramReader } {
  const fake = new FakeReceiver();
  return { fake, reader: new DatagramReader(fake) };
}

const settled = async <T>(promise: Promise<T>): Promise<{ value?: T; error?: unknown }> =>
  promise.then((value) => ({ value }), (error: unknown) => ({ error }));
const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('an abort while waiting rejects with ECANCELED and its reason, stops the poll, and reads nothing more', async () => {
  const { fake, reader: r } = reader();
  const controller = new AbortController();
  const receive = r.receiveBatch({ signal: controller.signal });
  await turn();
  expect(fake.reading).toBe(true);
  const reads = fake.receives;
  const reason = new Error('bye');
  controller.abort(reason);
  const { error } = await settled(receive);
  expect(error).toBeInstanceOf(WskError);
  expect(error).toMatchObject({ code: 'ECANCELED', syscall: 'abort', datagramsSent: 0, cause: reason });
  expect(fake.reading).toBe(false);
  await turn();
  expect(fake.receives).toBe(reads);
  expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  // The socket goes on: the next receive gets the next datagram.
  const next = r.receiveBatch();
  await turn();
  fake.arrive(3);
  expect((await next).map((d) => d.data.length)).toEqual([3]);
});

test('a receive aborted while queued never reads: the datagram goes to the receive after it', async () => {
  const { fake, reader: r } = reader();
  const controller = new AbortController();
  const first = r.receiveBatch({ timeoutMs: 10 });
  const second = r.receiveBatch({ signal: controller.signal });
  const third = r.receiveBatch();
  controller.abort();
  expect((await settled(second)).error).toMatchObject({ code: 'ECANCELED' });
  expect(await first).toEqual([]); // timed out, before anything arrived
  await turn();
  fake.arrive(5);
  expect((await third).map((d) => d.data.length)).toEqual([5]);
});

test('abort after the receive resolved does nothing; an already aborted signal rejects without reading', async () => {
  const { fake, reader: r } = reader();
  const controller = new AbortController();
  fake.arrive(2);
  const batch = await r.receiveBatch({ signal: controller.signal });
  controller.abort();
  expect(batch.map((d) => d.data.length)).toEqual([2]);
  const reads = fake.receives;
  fake.waiting.push([]);
  expect((await settled(r.receiveBatch({ signal: controller.signal }))).error).toMatchObject({ code: 'ECANCELED' });
  expect(fake.receives).toBe(reads);
  expect(fake.waiting).toHaveLength(1);
});

test('a receive error rejects as a WskError and removes the listener', async () => {
  const { fake, reader: r } = reader();
  const controller = new AbortController();
  fake.waiting.push(ECONNREFUSED);
  expect((await settled(r.receiveBatch({ signal: controller.signal }))).error).toMatchObject({ code: 'ECONNREFUSED', syscall: 'recvmmsg' });
  expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
});

test('1000 receives on one signal, settled every way, leave no listener', async () => {
  const { fake, reader: r } = reader();
  const controller = new AbortController();
  for (let i = 0; i < 1000; i++) {
    if (i % 3 === 0) fake.waiting.push(ECONNREFUSED);
    else if (i % 3 === 1) fake.arrive(1);
    await settled(r.receiveBatch({ signal: controller.signal, timeoutMs: 0 }));
  }
  expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
});

test('close() during a wait resolves [] and the abort afterwards changes nothing', async () => {
  const { reader: r } = reader();
  const controller = new AbortController();
  const receive = r.receiveBatch({ signal: controller.signal });
  await turn();
  r.close();
  expect(await receive).toEqual([]);
  controller.abort();
  expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
});

test('the timeout timer follows setRef, also when changed while waiting', async () => {
  const { reader: r } = reader();
  const created: NodeJS.Timeout[] = [];
  const original = global.setTimeout;
  const spy = jest.spyOn(global, 'setTimeout').mockImplementation(((fn: () => void, ms?: number) => {
    const timer = original(fn, ms);
    created.push(timer);
    return timer;
  }));
  try {
    r.setRef(false);
    const first = r.receiveBatch({ timeoutMs: 50 });
    await turn();
    expect(created).toHaveLength(1);
    expect(created[0]!.hasRef()).toBe(false);
    r.setRef(true);
    expect(created[0]!.hasRef()).toBe(true);
    await first;
    const second = r.receiveBatch({ timeoutMs: 50 });
    await turn();
    expect(created[1]!.hasRef()).toBe(true);
    r.setRef(false);
    expect(created[1]!.hasRef()).toBe(false);
    await second;
  } finally {
    spy.mockRestore();
  }
});

test('a signal option that is not an AbortSignal is a TypeError, before anything is read', () => {
  const { fake, reader: r } = reader();
  for (const bad of [null, 1, 'x', {}, { aborted: false }]) {
    expect(() => r.receiveBatch({ signal: bad as unknown as AbortSignal })).toThrow(TypeError);
  }
  expect(fake.receives).toBe(0);
});
