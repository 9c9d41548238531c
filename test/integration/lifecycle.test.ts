/**
 * Lifecycle and events on real loopback sockets, each next to node:dgram doing the same:
 * ref()/unref() (a child process that must exit, or must not), Symbol.asyncDispose / dispose,
 * AbortSignal on receives and createSocket, the 'message' and 'listening' events, and send
 * errors that name their destination. Pending sends (which need a slow link) are in
 * lifecycle-slow-link.test.ts.
 */
import { spawn } from 'node:child_process';
import * as dgram from 'node:dgram';
import { getEventListeners } from 'node:events';
import * as path from 'node:path';
import { createSocket, WskError, type UdpSocket } from '../../lib';
import type { RemoteInfo } from '../../lib/events';
import { JsonChild } from './netns';
import { openReceiver, openUdpSocketCount, patterned } from './receiver';

const CHILD = path.join(__dirname, 'fixtures', 'lifecycle-child.js');
const STATUS_CANCELLED = 0xc0000120;

function startChild(scenario: string, params: Record<string, unknown>): JsonChild {
  return new JsonChild(spawn(process.execPath, [CHILD, scenario, JSON.stringify(params)], { stdio: 'pipe' }),
    `lifecycle-child ${scenario} ${JSON.stringify(params)}`);
}

const delay = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends one datagram from a dgram socket and closes it. */
async function poke(port: number, address = '127.0.0.1'): Promise<void> {
  const socket = dgram.createSocket(address.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((resolve, reject) => socket.send(Buffer.from('poke'), port, address, (e) => (e ? reject(e) : resolve())));
  await new Promise<void>((resolve) => socket.close(() => resolve()));
}

/** Collects ('message', msg, rinfo) of `socket` until `count` arrived (bounded). */
function collectMessages(socket: { on(name: 'message', l: (m: Buffer, r: RemoteInfo) => void): unknown },
  count: number, timeoutMs = 5000): Promise<Array<[Buffer, RemoteInfo]>> {
  const got: Array<[Buffer, RemoteInfo]> = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${got.length} of ${count} messages in ${timeoutMs} ms`)), timeoutMs);
    socket.on('message', (msg, rinfo) => {
      got.push([msg, rinfo]);
      if (got.length === count) {
        clearTimeout(timer);
        resolve(got);
      }
    });
  });
}

describe('ref() / unref(): a child process with a receive waiting', () => {
  // Each wait of wsk-dgram, and node:dgram's 'message', under each ref state. unref: before
  // the poll handle exists (it is made lazily); unref-later: once it exists; unref-ref: unref,
  // then ref again while waiting.
  const cases: Array<[string, string, string]> = [];
  for (const ref of ['unref', 'unref-later', 'ref', 'unref-ref']) {
    cases.push(['dgram', 'message', ref]);
    for (const wait of ['receiveBatch', 'timeout', 'datagrams', 'message']) cases.push(['wsk', wait, ref]);
  }

  test.each(cases)('%s %s, %s', async (api, wait, ref) => {
    const child = startChild('receive', { api, wait, ref });
    const ready = await child.nextLine((l) => l.event === 'ready', 5000, 'the socket to bind');
    if (ref.startsWith('unref') && ref !== 'unref-ref') {
      // Nothing else holds the child: it must end on its own, soon, with nothing received.
      const exit = await child.waitForExit(5000);
      expect({ exit, output: child.describe() }).toMatchObject({ exit: { timedOut: false, code: 0 } });
      expect(child.lines.find((l) => l.event === 'exit')).toMatchObject({ received: 0 });
      if (ref === 'unref') expect(child.lines.find((l) => l.event === 'unref')).toEqual({ event: 'unref', same: true });
    } else {
      // A ref'd wait holds the child: still running well past the unref'd children's exit...
      await delay(1000);
      expect({ exit: child.exit, output: child.describe() }).toMatchObject({ exit: null });
      // ...until the datagram it waits for arrives; then it closes and ends.
      await poke(ready.port as number);
      const exit = await child.waitForExit(5000);
      expect({ exit, output: child.describe() }).toMatchObject({ exit: { timedOut: false, code: 0 } });
      expect(child.lines.find((l) => l.event === 'received')).toEqual({ event: 'received', bytes: 4 });
      if (ref === 'unref-ref') expect(child.lines.find((l) => l.event === 'ref')).toEqual({ event: 'ref', same: true });
    }
  });
});

describe('Symbol.asyncDispose / Symbol.dispose', () => {
  test('await using closes the socket at the end of the block; a waiting receive resolves []', async () => {
    const before = openUdpSocketCount();
    let socket: UdpSocket | undefined;
    let receive: Promise<unknown> | undefined;
    let closeEvents = 0;
    {
      await using s = createSocket('udp4');
      socket = s;
      s.on('close', () => closeEvents++);
      s.bind(0, '127.0.0.1');
      receive = s.receiveBatch();
      expect(openUdpSocketCount()).toBe(before + 1);
    }
    expect(socket.closed).toBe(true);
    expect(socket.fd).toBe(-1);
    expect(closeEvents).toBe(1);
    expect(openUdpSocketCount()).toBe(before);
    await expect(receive).resolves.toEqual([]);
    // Disposing again, or closing, does nothing more.
    await socket[Symbol.asyncDispose]();
    socket.close();
    expect(closeEvents).toBe(1);
  });

  test('using closes synchronously, as node:dgram has no sync form to compare with', () => {
    let socket: UdpSocket | undefined;
    {
      using s = createSocket('udp6');
      socket = s;
      expect(s.closed).toBe(false);
    }
    expect(socket.closed).toBe(true);
  });

  test('node:dgram closes on asyncDispose too, and a send after it fails the same way for both', async () => {
    const ours = createSocket('udp4');
    const theirs = dgram.createSocket('udp4');
    await ours[Symbol.asyncDispose]();
    await theirs[Symbol.asyncDispose]();
    expect(ours.closed).toBe(true);
    expect(() => theirs.send(Buffer.from('x'), 9, '127.0.0.1')).toThrow(/Not running/);
    await expect(ours.sendBatch([Buffer.from('x')], 9, '127.0.0.1')).rejects.toMatchObject({ code: 'EBADF' });
  });
});

describe('AbortSignal on receives', () => {
  let socket: UdpSocket;
  beforeEach(() => {
    socket = createSocket('udp4');
    socket.bind(0, '127.0.0.1');
  });
  afterEach(() => socket.close());

  test('an abort ends a waiting receiveBatch with ECANCELED, and the socket still receives', async () => {
    const controller = new AbortController();
    const reason = new Error('no longer needed');
    const waiting = socket.receiveBatch({ signal: controller.signal });
    await delay(50);
    controller.abort(reason);
    const error = await waiting.then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(WskError);
    expect(error).toMatchObject({ code: 'ECANCELED', status: STATUS_CANCELLED, syscall: 'abort', cause: reason });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    await poke(socket.address().port);
    const [datagram] = await socket.receiveBatch({ timeoutMs: 5000 });
    expect(Buffer.from(datagram!.data).toString()).toBe('poke');
  });

  test('an already aborted signal rejects at once and reads nothing: the datagram stays for the next receive', async () => {
    await poke(socket.address().port);
    await delay(20);
    const error = await socket.receiveBatch({ signal: AbortSignal.abort() }).then(() => null, (e: unknown) => e);
    expect(error).toMatchObject({ name: 'WskError', code: 'ECANCELED' });
    const [datagram] = await socket.receiveBatch({ timeoutMs: 5000 });
    expect(Buffer.from(datagram!.data).toString()).toBe('poke');
  });

  test('a receive aborted while queued behind another rejects at once; the first one gets the datagram', async () => {
    const controller = new AbortController();
    const first = socket.receiveBatch({ timeoutMs: 5000 });
    const second = socket.receiveBatch({ signal: controller.signal });
    controller.abort();
    await expect(second).rejects.toMatchObject({ code: 'ECANCELED' });
    await poke(socket.address().port);
    const batch = await first;
    expect(batch.map((d) => Buffer.from(d.data).toString())).toEqual(['poke']);
  });

  test('datagrams({ signal }): the iteration throws the abort, having yielded what came before', async () => {
    const controller = new AbortController();
    const seen: string[] = [];
    const iterating = (async () => {
      for await (const d of socket.datagrams({ signal: controller.signal })) {
        seen.push(Buffer.from(d.data).toString());
        controller.abort();
      }
    })();
    await poke(socket.address().port);
    await expect(iterating).rejects.toMatchObject({ code: 'ECANCELED' });
    expect(seen).toEqual(['poke']);
  });

  test('many receives on one signal leave no listener on it', async () => {
    const controller = new AbortController();
    const port = socket.address().port;
    for (let i = 0; i < 50; i++) {
      const receive = socket.receiveBatch({ signal: controller.signal, timeoutMs: 5000 });
      await poke(port);
      await receive;
    }
    for (let i = 0; i < 50; i++) await socket.receiveBatch({ signal: controller.signal, timeoutMs: 0 });
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  test('a signal that is not an AbortSignal is a TypeError', async () => {
    await expect(socket.receiveBatch({ signal: {} as AbortSignal })).rejects.toThrow(TypeError);
    await expect(socket.receiveBatch({ signal: null as unknown as AbortSignal })).rejects.toThrow('options.signal must be an AbortSignal');
  });
});

describe('createSocket({ signal }), next to node:dgram', () => {
  test('an abort closes both sockets, once, with a close event', async () => {
    const controller = new AbortController();
    const ours = createSocket({ type: 'udp4', signal: controller.signal });
    const theirs = dgram.createSocket({ type: 'udp4', signal: controller.signal });
    const closes = { ours: 0, theirs: 0 };
    ours.on('close', () => closes.ours++);
    theirs.on('close', () => closes.theirs++);
    controller.abort();
    await delay(20);
    expect(closes).toEqual({ ours: 1, theirs: 1 });
    expect(ours.closed).toBe(true);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  test('an already aborted signal closes both at the next tick', async () => {
    const signal = AbortSignal.abort();
    const ours = createSocket({ type: 'udp4', signal });
    const theirs = dgram.createSocket({ type: 'udp4', signal });
    const closes = { ours: 0, theirs: 0 };
    ours.on('close', () => closes.ours++);
    theirs.on('close', () => closes.theirs++);
    expect(ours.closed).toBe(false);
    await delay(20);
    expect(closes).toEqual({ ours: 1, theirs: 1 });
  });

  test('closing first removes the listener from a long-lived signal', () => {
    const controller = new AbortController();
    for (let i = 0; i < 20; i++) createSocket({ type: 'udp4', signal: controller.signal }).close();
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  test('a signal that is not an AbortSignal is a TypeError, and no socket is left open', () => {
    const before = openUdpSocketCount();
    expect(() => createSocket({ type: 'udp4', signal: 'stop' as unknown as AbortSignal })).toThrow(TypeError);
    expect(openUdpSocketCount()).toBe(before);
  });
});

describe("'message' and 'listening', next to node:dgram", () => {
  let ours: UdpSocket;
  let theirs: dgram.Socket;
  beforeEach(async () => {
    ours = createSocket('udp4');
    theirs = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => theirs.bind(0, '127.0.0.1', () => resolve()));
  });
  afterEach(async () => {
    ours.close();
    await new Promise<void>((resolve) => theirs.close(() => resolve()));
  });

  test("'listening' follows bind once, after the call returns, as dgram's", async () => {
    const events: string[] = [];
    ours.on('listening', () => events.push('listening'));
    ours.bind(0, '127.0.0.1');
    events.push('bind returned');
    await delay(10);
    expect(events).toEqual(['bind returned', 'listening']);
  });

  test('the same datagrams from two senders give the same messages, rinfo and order', async () => {
    ours.bind(0, '127.0.0.1');
    const count = 200;
    const mine = collectMessages(ours, count);
    const dgrams = collectMessages(theirs, count);
    const senders = [createSocket('udp4'), createSocket('udp4')];
    senders[0]!.bind(0, '127.0.0.1');
    senders[1]!.bind(0, '127.0.0.1');
    const sent: Buffer[] = [];
    for (let i = 0; i < count; i += 20) {
      const batch = Array.from({ length: 20 }, (_, j) => Buffer.from(patterned(i + j, (i + j) % 3 === 0 ? 0 : 1 + ((i + j) * 37) % 1400)));
      const sender = senders[(i / 20) % 2]!;
      sender.trySendBatch(batch, ours.address().port, '127.0.0.1');
      sender.trySendBatch(batch, theirs.address().port, '127.0.0.1');
      sent.push(...batch);
      await delay(2); // interleave with the receivers' loops
    }
    const [a, b] = await Promise.all([mine, dgrams]);
    for (const s of senders) s.close();
    expect(a.map(([m]) => m.toString('hex'))).toEqual(sent.map((m) => m.toString('hex')));
    expect(a.map(([, r]) => r)).toEqual(b.map(([, r]) => r));
    expect(a.map(([m]) => m.toString('hex'))).toEqual(b.map(([m]) => m.toString('hex')));
    expect(Object.keys(a[0]![1]).sort()).toEqual(Object.keys(b[0]![1]).sort());
    // A copy: the loop's arena is reused for later batches, the messages stay as they were.
    expect(a[0]![0].buffer).not.toBe(a[1]![0].buffer);
  });

  test('removing the last listener stops reading: what comes after waits for receiveBatch', async () => {
    ours.bind(0, '127.0.0.1');
    const first = collectMessages(ours, 1);
    await poke(ours.address().port);
    await first;
    ours.removeAllListeners('message');
    await delay(20);
    await poke(ours.address().port);
    const batch = await ours.receiveBatch({ timeoutMs: 5000 });
    expect(batch.map((d) => Buffer.from(d.data).toString())).toEqual(['poke']);
    // A listener added again restarts the loop, after removeAllListeners() without a name too.
    ours.removeAllListeners();
    const again = collectMessages(ours, 1);
    await poke(ours.address().port);
    expect((await again)[0]![0].toString()).toBe('poke');
  });

  test('once() then on() inside it: every datagram of the batch is delivered, in order', async () => {
    ours.bind(0, '127.0.0.1');
    const got: string[] = [];
    const done = new Promise<void>((resolve) => {
      ours.once('message', (msg) => {
        got.push(msg.toString());
        ours.on('message', (m) => {
          got.push(m.toString());
          if (got.length === 3) resolve();
        });
      });
    });
    const sender = createSocket('udp4');
    sender.trySendBatch([Buffer.from('1'), Buffer.from('2'), Buffer.from('3')], ours.address().port, '127.0.0.1');
    sender.close();
    await done;
    expect(got).toEqual(['1', '2', '3']);
  });

  test("a receive error goes to 'error' (ECONNREFUSED on a connected socket), as dgram's; the loop goes on", async () => {
    const unused = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => unused.bind(0, '127.0.0.1', () => resolve()));
    const deadPort = unused.address().port;
    await new Promise<void>((resolve) => unused.close(() => resolve()));

    const errors = { ours: [] as Error[], theirs: [] as Error[] };
    ours.bind(0, '127.0.0.1');
    ours.connect(deadPort, '127.0.0.1');
    ours.on('error', (e) => errors.ours.push(e));
    ours.on('message', () => undefined);
    theirs.on('error', (e) => errors.theirs.push(e));
    theirs.on('message', () => undefined);
    await new Promise<void>((resolve) => theirs.connect(deadPort, '127.0.0.1', () => resolve()));
    // Two rounds: the second error shows that the loop went on reading after the first.
    for (let round = 1; round <= 2; round++) {
      ours.trySendBatch([Buffer.from('x')]);
      theirs.send(Buffer.from('x'));
      for (let i = 0; i < 100 && (errors.ours.length < round || errors.theirs.length < round); i++) await delay(20);
    }
    expect(errors.theirs.map((e) => (e as NodeJS.ErrnoException).code)).toEqual(['ECONNREFUSED', 'ECONNREFUSED']);
    expect(errors.ours.map((e) => (e as WskError).code)).toEqual(['ECONNREFUSED', 'ECONNREFUSED']);
    expect(errors.ours[0]).toBeInstanceOf(WskError);
    expect(errors.ours[0]!.message).toMatch(/^recvmmsg ECONNREFUSED \(STATUS_CONNECTION_REFUSED\)/);
  });
});

test.each(['dgram', 'wsk'])("%s: a receive error with no 'error' listener ends the process as an unhandled 'error' event", async (api) => {
  const child = startChild('unhandled', { api });
  const exit = await child.waitForExit(10000);
  expect({ exit, output: child.describe() }).toMatchObject({ exit: { timedOut: false, code: 1 } });
  expect(child.lines.find((l) => l.event === 'survived')).toBeUndefined();
  expect(child.stderr).toMatch(/Emitted 'error' event on (Socket|UdpSocket) instance/);
  expect(child.stderr).toMatch(/ECONNREFUSED/);
});

describe('send errors name their destination', () => {
  let socket: UdpSocket;
  afterEach(() => socket.close());

  test('a one-destination send stopped at a broadcast address: address, port and the message say it', () => {
    socket = createSocket('udp4');
    const messages = [
      { data: Buffer.from('a'), port: 9 }, { data: Buffer.from('bb'), port: 9 }, { data: Buffer.from('c'), port: 9 },
      { data: Buffer.from('d'), port: 4000, address: '127.255.255.255' },
    ];
    let error: unknown;
    try {
      socket.trySendTo(messages, { continueOnError: false });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(WskError);
    expect(error).toMatchObject({ code: 'EACCES', address: '127.255.255.255', port: 4000, datagramsSent: 3, bytesSent: 4 });
    expect((error as Error).message).toMatch(/^sendmm?sg EACCES \(STATUS_ACCESS_DENIED\) to 127\.255\.255\.255:4000 after 3 datagrams, 4 bytes$/);
  });

  test('sendBatch and sendToMany reject with the destination too', async () => {
    socket = createSocket('udp4');
    await expect(socket.sendBatch([Buffer.from('x')], 5000, '127.255.255.255')).rejects.toMatchObject({
      code: 'EACCES', address: '127.255.255.255', port: 5000, datagramsSent: 0,
      message: expect.stringMatching(/ to 127\.255\.255\.255:5000$/),
    });
    await expect(socket.sendToMany([Buffer.from('x'), Buffer.from('y')],
      [{ port: 9 }, { port: 6000, address: '127.255.255.255' }], { continueOnError: false })).rejects.toMatchObject({
      code: 'EACCES', address: '127.255.255.255', port: 6000, datagramsSent: 2,
    });
  });

  test('a connected socket names its remote, as dgram names it in its ECONNREFUSED', async () => {
    const unused = dgram.createSocket('udp6');
    await new Promise<void>((resolve) => unused.bind(0, '::1', () => resolve()));
    const deadPort = unused.address().port;
    await new Promise<void>((resolve) => unused.close(() => resolve()));
    socket = createSocket('udp6');
    socket.connect(deadPort, '::1');
    socket.trySendBatch([Buffer.from('x')]);
    let error: unknown;
    for (let i = 0; i < 100 && error === undefined; i++) {
      await delay(10);
      try {
        socket.trySendBatch([Buffer.from('y')]);
      } catch (e) {
        error = e;
      }
    }
    expect(error).toMatchObject({ code: 'ECONNREFUSED', address: '::1', port: deadPort });
    expect((error as Error).message).toContain(`to [::1]:${deadPort}`);
  });

  test('other failures carry no destination', () => {
    socket = createSocket('udp4');
    socket.bind(0, '127.0.0.1');
    const other = createSocket('udp4');
    let error: unknown;
    try {
      other.bind(socket.address().port, '127.0.0.1');
    } catch (e) {
      error = e;
    }
    other.close();
    expect(error).toMatchObject({ code: 'EADDRINUSE' });
    expect(error).not.toHaveProperty('address');
    expect(error).not.toHaveProperty('port');
  });
});

describe('AbortSignal on sends that settle at once (loopback never waits)', () => {
  test('an already aborted signal: nothing is sent, the promise rejects, the try form throws', async () => {
    const receiver = await openReceiver('udp4');
    const socket = createSocket('udp4');
    const reason = new Error('stop');
    const signal = AbortSignal.abort(reason);
    await expect(socket.sendBatch([Buffer.from('a')], receiver.port, '127.0.0.1', { signal })).rejects.toMatchObject({
      code: 'ECANCELED', datagramsSent: 0, bytesSent: 0, cause: reason, address: '127.0.0.1', port: receiver.port,
    });
    await expect(socket.sendTo([{ data: Buffer.from('b'), port: receiver.port }], { signal })).rejects.toMatchObject({ code: 'ECANCELED' });
    await expect(socket.sendToMany([Buffer.from('c')], [{ port: receiver.port }], { signal })).rejects.toMatchObject({ code: 'ECANCELED' });
    expect(() => socket.trySendBatch([Buffer.from('d')], receiver.port, '127.0.0.1', { signal })).toThrow(WskError);
    // Bad arguments are still a TypeError first, as without a signal.
    expect(() => socket.sendBatch([1 as unknown as Uint8Array], receiver.port, '127.0.0.1', { signal })).toThrow(TypeError);
    expect(() => socket.sendBatch([Buffer.from('e')], receiver.port, '127.0.0.1', { signal: 1 as unknown as AbortSignal })).toThrow(TypeError);
    // A datagram sent after them is the first to arrive.
    socket.trySendBatch([Buffer.from('after')], receiver.port, '127.0.0.1');
    const [first] = await receiver.waitFor(1);
    expect(first!.toString()).toBe('after');
    await delay(50);
    expect(receiver.received).toHaveLength(1);
    socket.close();
    await receiver.close();
  });

  test('abort after completion changes nothing, and sends that completed at once add no listener', async () => {
    const receiver = await openReceiver('udp4');
    const socket = createSocket('udp4');
    const controller = new AbortController();
    const results = [];
    for (let i = 0; i < 100; i++) {
      results.push(await socket.sendBatch([Buffer.from([i])], receiver.port, '127.0.0.1', { signal: controller.signal }));
    }
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    controller.abort();
    expect(results.every((r) => r.datagrams === 1)).toBe(true);
    expect((await receiver.waitFor(100)).length).toBe(100);
    socket.close();
    await receiver.close();
  });
});
