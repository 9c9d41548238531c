/** lib/icmp.ts over a fake native error queue: what is watched when, and what the events say. */
import { EventEmitter } from 'node:events';
import { ICMP_ITERATOR_LIMIT, IcmpWatch, toIcmpError, type IcmpError, type NativeIcmpEntry } from '../../lib/icmp';

function entry(fields: Partial<NativeIcmpEntry> = {}): NativeIcmpEntry {
  return {
    errno: 111, origin: 2, type: 3, code: 3, info: 0, kind: 1,
    destination: { family: 4, address: '198.18.0.2', port: 9, scopeId: 0 },
    offender: { family: 4, address: '198.18.0.2', port: 0, scopeId: 0 },
    payload: new Uint8Array([0, 0, 0, 7]),
    ...fields,
  };
}

class FakeQueue {
  watching = false;
  onErrors: (() => void) | null = null;
  ring: NativeIcmpEntry[] = [];
  calls: string[] = [];
  watchResult = 0;
  get errorsPending(): number {
    return this.ring.length;
  }
  watchErrors(onErrors: () => void): number {
    this.calls.push('watch');
    if (this.watchResult !== 0) return this.watchResult;
    this.watching = true;
    this.onErrors = onErrors;
    return 0;
  }
  unwatchErrors(): void {
    this.calls.push('unwatch');
    this.watching = false;
  }
  takeErrors(): NativeIcmpEntry[] {
    return this.ring.splice(0);
  }
}

const tick = (): Promise<void> => new Promise((resolve) => process.nextTick(resolve));

test('native entries become IcmpErrors: kinds, IPv6 packet too big, mtu only for the MTU kinds, names and NTSTATUS', () => {
  expect(toIcmpError(entry())).toEqual({
    kind: 'port-unreachable', address: '198.18.0.2', port: 9, family: 'IPv4', origin: 'icmp', icmpType: 3, icmpCode: 3,
    errno: 111, code: 'ECONNREFUSED', status: 0xc0000236, offender: '198.18.0.2', mtu: null, payload: new Uint8Array([0, 0, 0, 7]),
  });
  const v6 = { destination: { family: 6 as const, address: 'fd00::2', port: 443, scopeId: 0 }, offender: null };
  expect(toIcmpError(entry({ ...v6, origin: 3, type: 2, code: 0, kind: 4, info: 1280, errno: 90 })))
    .toMatchObject({ kind: 'packet-too-big', family: 'IPv6', origin: 'icmp6', mtu: 1280, code: 'EMSGSIZE', offender: null });
  expect(toIcmpError(entry({ kind: 4, code: 4, info: 1400, errno: 90 }))).toMatchObject({ kind: 'fragmentation-needed', mtu: 1400 });
  expect(toIcmpError(entry({ kind: 2, info: 1400 }))).toMatchObject({ kind: 'host-unreachable', mtu: null });
  expect(toIcmpError(entry({ kind: 3 }))).toMatchObject({ kind: 'net-unreachable' });
  expect(toIcmpError(entry({ kind: 5 }))).toMatchObject({ kind: 'prohibited' });
  expect(toIcmpError(entry({ kind: 0 }))).toMatchObject({ kind: 'other' });
  expect(toIcmpError(entry({ kind: 99 }))).toMatchObject({ kind: 'other' });
});

test("the queue is watched exactly while 'icmp' listeners or iterators exist", async () => {
  const native = new FakeQueue();
  const emitter = new EventEmitter();
  const watch = new IcmpWatch(native, emitter);
  emitter.on('message', () => undefined); // other events do not matter
  expect(native.calls).toEqual([]);
  const a = (): void => undefined;
  const b = (): void => undefined;
  emitter.on('icmp', a);
  emitter.once('icmp', b);
  expect(native.calls).toEqual(['watch']);
  emitter.off('icmp', a);
  expect(native.calls).toEqual(['watch']);
  const iterator = watch.iterator();
  emitter.off('icmp', b);
  expect(native.calls).toEqual(['watch']);
  await iterator.return!();
  expect(native.calls).toEqual(['watch', 'unwatch']);
  emitter.on('icmp', a);
  emitter.removeAllListeners('icmp');
  expect(native.calls).toEqual(['watch', 'unwatch', 'watch', 'unwatch']);
});

test('errors reach every listener and iterator, in order; after a send only when some are pending', async () => {
  const native = new FakeQueue();
  const emitter = new EventEmitter();
  const watch = new IcmpWatch(native, emitter);
  const heard: IcmpError[] = [];
  emitter.on('icmp', (e: IcmpError) => heard.push(e));
  const iterator = watch.iterator();
  native.ring.push(entry({ errno: 111 }), entry({ errno: 113, kind: 2 }));
  native.onErrors!(); // the poll saw POLLERR
  expect(heard.map((e) => e.code)).toEqual(['ECONNREFUSED', 'EHOSTUNREACH']);
  expect((await iterator.next()).value.code).toBe('ECONNREFUSED');
  expect((await iterator.next()).value.code).toBe('EHOSTUNREACH');
  // A send that read nothing schedules nothing; one that read an error delivers it from a tick.
  watch.afterCall();
  await tick();
  expect(heard).toHaveLength(2);
  native.ring.push(entry({ errno: 101, kind: 3 }));
  watch.afterCall();
  watch.afterCall();
  expect(heard).toHaveLength(2);
  await tick();
  expect(heard.map((e) => e.kind)).toEqual(['port-unreachable', 'host-unreachable', 'net-unreachable']);
  watch.close();
  // Closing ends the iterator after what it already holds.
  expect((await iterator.next()).value.kind).toBe('net-unreachable');
  expect(await iterator.next()).toEqual({ value: undefined, done: true });
  await expect(watch.iterator().next()).resolves.toEqual({ value: undefined, done: true });
});

test('an iterator holds at most ICMP_ITERATOR_LIMIT errors and drops the oldest; next() twice at once is refused', async () => {
  const native = new FakeQueue();
  const watch = new IcmpWatch(native, new EventEmitter());
  const iterator = watch.iterator();
  for (let i = 0; i < ICMP_ITERATOR_LIMIT + 3; i++) native.ring.push(entry({ payload: new Uint8Array([i & 0xff]) }));
  native.onErrors!();
  expect((await iterator.next()).value.payload[0]).toBe(3);
  await iterator.return!();
  const waiting = watch.iterator();
  const first = waiting.next();
  await expect(waiting.next()).rejects.toThrow(TypeError);
  native.ring.push(entry());
  native.onErrors!();
  expect((await first).done).toBe(false);
});

test('without an error queue (watchErrors refuses) nothing is delivered and nothing throws', async () => {
  const native = new FakeQueue();
  native.watchResult = 95; // EOPNOTSUPP
  const emitter = new EventEmitter();
  const watch = new IcmpWatch(native, emitter);
  const heard: unknown[] = [];
  emitter.on('icmp', (e) => heard.push(e));
  native.ring.push(entry());
  watch.afterCall();
  await tick();
  expect(heard).toEqual([]);
});

describe('an AbortSignal ends an iterator the way it ends a receive', () => {
  test('a waiting next() rejects with WskError ECANCELED (cause: the reason), then done; the queue is unwatched', async () => {
    const native = new FakeQueue();
    const watch = new IcmpWatch(native, new EventEmitter());
    const controller = new AbortController();
    const iterator = watch.iterator(controller.signal);
    expect(native.calls).toEqual(['watch']);
    const waiting = iterator.next();
    const reason = new Error('stop watching');
    controller.abort(reason);
    await expect(waiting).rejects.toMatchObject({ name: 'WskError', code: 'ECANCELED', status: 0xc0000120, cause: reason });
    expect(native.calls).toEqual(['watch', 'unwatch']);
    expect(await iterator.next()).toEqual({ value: undefined, done: true });
    // Errors after the abort reach it no more.
    native.ring.push(entry());
    native.onErrors?.();
    expect(await iterator.next()).toEqual({ value: undefined, done: true });
  });

  test('an abort with errors queued drops them: the next next() rejects once, then done', async () => {
    const native = new FakeQueue();
    const watch = new IcmpWatch(native, new EventEmitter());
    const controller = new AbortController();
    const iterator = watch.iterator(controller.signal);
    native.ring.push(entry(), entry());
    native.onErrors!();
    controller.abort();
    await expect(iterator.next()).rejects.toMatchObject({ code: 'ECANCELED' });
    expect(await iterator.next()).toEqual({ value: undefined, done: true });
  });

  test('a signal aborted before the call: the first next() rejects and the queue is never watched', async () => {
    const native = new FakeQueue();
    const watch = new IcmpWatch(native, new EventEmitter());
    const iterator = watch.iterator(AbortSignal.abort('early'));
    await expect(iterator.next()).rejects.toMatchObject({ code: 'ECANCELED', cause: 'early' });
    expect(native.calls).toEqual([]);
  });

  test('return() before the abort removes the listener: a later abort changes nothing', async () => {
    const native = new FakeQueue();
    const watch = new IcmpWatch(native, new EventEmitter());
    const controller = new AbortController();
    const iterator = watch.iterator(controller.signal);
    await iterator.return!();
    controller.abort();
    expect(await iterator.next()).toEqual({ value: undefined, done: true });
  });
});
