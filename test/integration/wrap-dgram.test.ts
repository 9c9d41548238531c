/**
 * wrapDgram on real sockets: a bound node:dgram socket sends batches through the wrapper.
 * Loopback: the direct part, dgram's own receive and send alongside, detaching on close (the
 * descriptor number, reused by the next socket, is never written to), bad inputs, and the
 * borrowed native socket's refusals. Slow link (two namespaces, veth, tbf 10 mbit, small
 * SO_SNDBUF): the direct system call meets a full socket buffer and the rest goes through
 * dgram's own queue; the receiver in the other namespace sees every datagram once, in order.
 */
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  createSocket, nativeBackend, wrapDgram, WskError, type UdpSocket,
} from '../../lib';
import { binding, NativeOption } from '../../lib/binding';
import {
  createSlowLink, FIXTURES, JsonChild, qdiscStats, startReceiver, type JsonLine, type ReceiverReport, type SlowLink,
  type SlowReceiver,
} from './netns';
import { useNamespaceSuite } from './namespace-suite';
import { openReceiver, openUdpSocketCount, patterned, type Receiver } from './receiver';

const { EOPNOTSUPP } = os.constants.errno;

/** A dgram socket bound to loopback of `type`, port 0. */
async function boundDgram(type: 'udp4' | 'udp6' = 'udp4'): Promise<dgram.Socket> {
  const socket = dgram.createSocket(type);
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, type === 'udp6' ? '::1' : '127.0.0.1', () => resolve());
  });
  return socket;
}

function closeDgram(socket: dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    try {
      socket.close(() => resolve());
    } catch {
      resolve(); // closed already
    }
  });
}

function expectSameDatagrams(received: Buffer[], sent: Uint8Array[]): void {
  expect(received.length).toBe(sent.length);
  for (let i = 0; i < sent.length; i++) {
    if (!Buffer.from(sent[i]!).equals(received[i]!)) {
      throw new Error(`datagram ${i} differs: sent ${sent[i]!.byteLength} B, got ${received[i]!.byteLength} B`);
    }
  }
}

const { notes } = useNamespaceSuite('wrap-dgram');

describe('wrapDgram on loopback', () => {
  let receiver: Receiver;
  let socket: dgram.Socket;
  let socketsBefore: number;

  beforeEach(async () => {
    socketsBefore = openUdpSocketCount();
    receiver = await openReceiver('udp4');
    socket = await boundDgram('udp4');
  });
  afterEach(async () => {
    await closeDgram(socket);
    await receiver.close();
    expect(openUdpSocketCount()).toBe(socketsBefore);
  });

  test('a batch goes out on the descriptor, batched, every datagram once and in order; dgram still receives and sends', async () => {
    const sender = wrapDgram(socket);
    expect(sender.attached).toBe(true);
    expect(sender.family).toBe(4);
    const count = 2000;
    const datagrams = Array.from({ length: count }, (_, i) => patterned(i, 200));
    const result = await sender.sendBatch(datagrams, receiver.port, '127.0.0.1');
    expect(result).toEqual({ datagrams: count, bytes: count * 200, segments: count, failures: [], viaDgram: 0 });
    expectSameDatagrams(await receiver.waitFor(count), datagrams);

    const stats = sender.stats();
    notes.push(`loopback ${nativeBackend()}, gso ${String(sender.gso)}: ${count} datagrams in ${stats.syscalls} ` +
      `system calls, ${stats.messages} messages`);
    expect({ datagrams: stats.datagrams, bytes: stats.bytes, dgramDatagrams: stats.dgramDatagrams })
      .toEqual({ datagrams: count, bytes: count * 200, dgramDatagrams: 0 });
    // sendmmsg: one call per 1024 messages; the sendmsg loop: one per message, GSO making a
    // message of up to 64 datagrams. Either way far fewer calls than datagrams.
    if (nativeBackend() === 'sendmmsg') expect(stats.syscalls).toBeLessThanOrEqual(2);
    else expect(stats.syscalls).toBe(stats.messages);
    if (sender.gso) expect(stats.messages).toBeLessThanOrEqual(count / 32);
    expect(stats.syscalls).toBeLessThanOrEqual(count / 30);

    // Receiving stays dgram's: a datagram to the wrapped socket reaches its 'message' handler.
    const message = new Promise<Buffer>((resolve) => socket.once('message', resolve));
    const peer = await boundDgram('udp4');
    peer.send(Buffer.from('to the wrapped socket'), socket.address().port, '127.0.0.1');
    expect((await message).toString()).toBe('to the wrapped socket');
    await closeDgram(peer);
    // dgram's own send still works alongside, and the wrapper after it.
    await new Promise<void>((resolve, reject) => socket.send(Buffer.from('dgram'), receiver.port, '127.0.0.1',
      (error) => (error ? reject(error) : resolve())));
    expect(sender.trySendBatch([patterned(7, 10)], receiver.port, '127.0.0.1').datagrams).toBe(1);
    const tail = await receiver.waitFor(count + 2);
    expect(tail[count]!.toString()).toBe('dgram');
    expect(Buffer.from(tail[count + 1]!).equals(Buffer.from(patterned(7, 10)))).toBe(true);
  });

  test('packed batches, pieces, sendTo and sendToMany arrive as sent', async () => {
    const second = await openReceiver('udp4');
    try {
      const sender = wrapDgram(socket, { gso: false });
      const backing = patterned(3, 1000);
      const packed = await sender.sendBatch({ buffer: backing, lengths: [100, 0, 900] }, receiver.port, '127.0.0.1');
      expect(packed).toEqual({ datagrams: 3, bytes: 1000, segments: 3, failures: [], viaDgram: 0 });
      const pieces = [[backing.subarray(0, 10), backing.subarray(500, 510)]];
      expect((await sender.sendBatch(pieces, receiver.port, '127.0.0.1')).datagrams).toBe(1);
      expectSameDatagrams(await receiver.waitFor(4), [
        backing.subarray(0, 100), new Uint8Array(0), backing.subarray(100), Buffer.concat(pieces[0]!),
      ]);
      const a = patterned(1, 50);
      const b = patterned(2, 60);
      const to = await sender.sendTo([{ data: a, port: second.port, address: '127.0.0.1' }, { data: b, port: receiver.port }]);
      expect(to).toEqual({ datagrams: 2, bytes: 110, segments: 2, failures: [], viaDgram: 0 });
      const many = await sender.sendToMany([a, b], sender.prepareDestinations([{ port: receiver.port }, { port: second.port }]));
      expect(many).toEqual({ datagrams: 4, bytes: 220, segments: 4, failures: [], viaDgram: 0 });
      expectSameDatagrams((await receiver.waitFor(7)).slice(4), [b, a, b]);
      expectSameDatagrams(await second.waitFor(3), [a, a, b]);
    } finally {
      await second.close();
    }
  });

  test('IPv6: a udp6 dgram socket sends through the wrapper', async () => {
    const receiver6 = await openReceiver('udp6');
    const socket6 = await boundDgram('udp6');
    try {
      const sender = wrapDgram(socket6);
      expect(sender.family).toBe(6);
      const datagrams = Array.from({ length: 100 }, (_, i) => patterned(i, 300));
      expect((await sender.sendBatch(datagrams, receiver6.port, '::1')).datagrams).toBe(100);
      expectSameDatagrams(await receiver6.waitFor(100), datagrams);
      // The IPv4 wrapper's socket cannot take an IPv6 destination, and the other way round.
      expect(() => sender.trySendBatch(datagrams, receiver.port, '127.0.0.1')).toThrow(TypeError);
      // A zone (scope id) only on the try calls: dgram's send names zones by interface name.
      expect(() => sender.sendBatch(datagrams, receiver6.port, '::1%1')).toThrow(/IPv6 zone/);
      expect(() => sender.sendToMany(datagrams, [{ port: receiver6.port, address: '::1%1' }])).toThrow(/IPv6 zone/);
      expect(sender.trySendBatch([patterned(100, 10)], receiver6.port, '::1%1').datagrams).toBe(1);
      expect((await receiver6.waitFor(101))[100]!.length).toBe(10);
    } finally {
      await closeDgram(socket6);
      await receiver6.close();
    }
  });

  test('closing the dgram socket detaches the wrapper: clear errors, and the descriptor number reused by the next socket is never written to', async () => {
    const sender = wrapDgram(socket);
    const fd = sender.fd;
    expect(fd).toBeGreaterThanOrEqual(0);
    socket.close();
    // Before dgram's 'close' event (a tick later) the descriptor is already closed: the next
    // socket opened gets the lowest free number, which is usually this one.
    const opened: UdpSocket[] = [];
    let reused: UdpSocket | null = null;
    for (let i = 0; i < 64 && reused === null; i++) {
      const candidate = createSocket('udp4');
      opened.push(candidate);
      if (candidate.fd === fd) reused = candidate;
    }
    try {
      expect(reused).not.toBeNull();
      const victim = reused!;
      const victimPort = victim.bind(0, '127.0.0.1').port;
      // Sends to the new socket itself: had the wrapper written on its descriptor, it would
      // have received its own datagrams.
      const probe = [patterned(1, 100), patterned(2, 100)];
      let thrown: unknown = null;
      try {
        sender.trySendBatch(probe, victimPort, '127.0.0.1');
      } catch (error) {
        thrown = error;
      }
      const sending = sender.sendBatch(probe, victimPort, '127.0.0.1').then(() => null, (error: unknown) => error);
      const attachedBeforeCloseEvent = sender.attached;
      await new Promise((resolve) => setImmediate(resolve)); // dgram's 'close' has been emitted
      let thrownAfter: unknown = null;
      try {
        sender.trySendTo([{ data: probe[0]!, port: victimPort }]);
      } catch (error) {
        thrownAfter = error;
      }
      const fanOut = await sender.sendToMany(probe, [{ port: victimPort }]).then(() => null, (error: unknown) => error);
      // Nothing reached the socket that now has the number.
      expect(await victim.receiveBatch({ timeoutMs: 200 })).toEqual([]);
      expect(thrown).toBeInstanceOf(WskError);
      expect(thrown).toMatchObject({ code: 'EBADF', datagramsSent: 0 });
      expect((thrown as Error).message).toMatch(/dgram socket is closed/);
      expect(await sending).toMatchObject({ name: 'WskError', code: 'EBADF' });
      expect(attachedBeforeCloseEvent).toBe(false);
      expect(sender.fd).toBe(-1);
      expect(thrownAfter).toMatchObject({ name: 'WskError', code: 'EBADF', message: expect.stringMatching(/dgram socket is closed/) });
      expect(fanOut).toMatchObject({ name: 'WskError', code: 'EBADF' });
      expect(victim.stats().syscalls).toBe(0);
      expect(sender.stats()).toMatchObject({ syscalls: 0, datagrams: 0, dgramDatagrams: 0 });
    } finally {
      for (const s of opened) s.close();
    }
  });

  test('through dgram\'s send (its queue said busy): views of the caller\'s memory, pieces, segmentSize cuts, exact results', async () => {
    const sender = wrapDgram(socket);
    // dgram's queue count is what the wrapper asks before sending directly: busy, it hands
    // every datagram to dgram's own send, as it does behind a full socket buffer.
    const handed: unknown[] = [];
    const send = socket.send.bind(socket) as (...args: unknown[]) => void;
    Object.assign(socket, {
      getSendQueueCount: () => 1,
      send: (...args: unknown[]) => {
        handed.push(args[0]);
        send(...args);
      },
    });
    const backing = patterned(5, 4000);
    const datagrams = [backing.subarray(0, 1000), [backing.subarray(1000, 1500), backing.subarray(3000, 3100)], backing];
    const result = await sender.sendBatch(datagrams, receiver.port, '127.0.0.1');
    expect(result).toEqual({ datagrams: 3, bytes: 1600 + 4000, segments: 3, failures: [], viaDgram: 3 });
    // dgram got the caller's own views (no copies): the same memory, the same objects when whole.
    expect(handed[0]).toBe(datagrams[0]);
    expect(handed[2]).toBe(backing);
    expect((handed[1] as Uint8Array[]).map((v) => [v.buffer === backing.buffer, v.byteOffset, v.byteLength]))
      .toEqual([[true, 1000, 500], [true, 3000, 100]]);
    // A packed batch with an explicit segment size: cut as UDP_SEGMENT cuts, across pieces too.
    const cut = await sender.sendBatch({ buffer: backing.subarray(0, 2500), lengths: [2500] }, receiver.port, '127.0.0.1',
      { segmentSize: 1000 });
    expect(cut).toEqual({ datagrams: 1, bytes: 2500, segments: 3, failures: [], viaDgram: 1 });
    const across = await sender.sendBatch([[backing.subarray(0, 700), backing.subarray(700, 1500)]], receiver.port,
      '127.0.0.1', { segmentSize: 1000 });
    expect(across).toEqual({ datagrams: 1, bytes: 1500, segments: 2, failures: [], viaDgram: 1 });
    expectSameDatagrams(await receiver.waitFor(8), [
      backing.subarray(0, 1000), Buffer.concat([backing.subarray(1000, 1500), backing.subarray(3000, 3100)]), backing,
      backing.subarray(0, 1000), backing.subarray(1000, 2000), backing.subarray(2000, 2500),
      backing.subarray(0, 1000), backing.subarray(1000, 1500),
    ]);
    expect(sender.stats()).toMatchObject({ syscalls: 0, dgramDatagrams: 8, dgramBytes: 1600 + 4000 + 2500 + 1500, dgramFailures: 0 });
    expect(sender.pendingDatagrams).toBe(0);
    // trySendBatch never jumps dgram's queue.
    expect(sender.trySendBatch([backing], receiver.port)).toEqual({ datagrams: 0, bytes: 0, segments: 0, failures: [] });
  });

  test('a dgram send that throws or calls back at once: that datagram fails, the rest is counted exactly, nothing hangs', async () => {
    const sender = wrapDgram(socket);
    const send = socket.send.bind(socket) as (...args: unknown[]) => void;
    let calls = 0;
    Object.assign(socket, {
      getSendQueueCount: () => 1,
      // As an instrumentation wrapper might: the 1st call of each batch reports success at once
      // without sending, the 2nd throws, the others go to dgram.
      send: (...args: unknown[]) => {
        calls++;
        if (calls % 4 === 2) throw new Error('refused by a wrapper');
        if (calls % 4 === 1) {
          (args[3] as (error: null, bytes: number) => void)(null, (args[0] as Uint8Array).byteLength);
          return;
        }
        send(...args);
      },
    });
    const datagrams = [patterned(0, 10), patterned(1, 20), patterned(2, 30), patterned(3, 40)];
    const listed = await sender.sendBatch(datagrams, receiver.port, '127.0.0.1', { continueOnError: true });
    expect(listed).toEqual({
      datagrams: 3, bytes: 80, segments: 3, viaDgram: 3,
      failures: [{ index: 1, code: 'EIO', errno: os.constants.errno.EIO, status: expect.any(Number), address: '127.0.0.1', port: receiver.port }],
    });
    const stopped = await sender.sendBatch(datagrams, receiver.port, '127.0.0.1').then(() => null, (error: unknown) => error);
    expect(stopped).toBeInstanceOf(WskError);
    expect(stopped).toMatchObject({ code: 'EIO', datagramsSent: 3, bytesSent: 80 });
    expect(sender.pendingDatagrams).toBe(0);
    await sender.drained();
    await receiver.waitFor(4); // 2 and 3 of each batch went to dgram; 0 was only said to
  });

  test('the wrapper holds no handle: a process whose dgram socket is unref\'d ends on its own after sending', async () => {
    const script = `
      const dgram = require('node:dgram');
      const { wrapDgram } = require(${JSON.stringify(path.join(__dirname, '..', '..', 'dist', 'lib', 'index.js'))});
      const socket = dgram.createSocket('udp4');
      socket.bind(0, '127.0.0.1', async () => {
        const sender = wrapDgram(socket);
        const result = await sender.sendBatch([Buffer.alloc(100), Buffer.alloc(100)], ${receiver.port}, '127.0.0.1');
        socket.unref();
        process.stdout.write(JSON.stringify(result));
      });`;
    const { execFile } = await import('node:child_process');
    const ran = await new Promise<{ code: number | null; stdout: string; killed: boolean }>((resolve) => {
      const child = execFile(process.execPath, ['-e', script], { timeout: 5000 }, (error, stdout) => {
        resolve({ code: error === null ? 0 : (error as { code?: number }).code ?? null, stdout, killed: child.killed });
      });
    });
    expect({ code: ran.code, killed: ran.killed }).toEqual({ code: 0, killed: false });
    expect(JSON.parse(ran.stdout)).toMatchObject({ datagrams: 2, viaDgram: 0 });
    expect((await receiver.waitFor(2)).length).toBe(2);
  });

  test('detach() stops using the descriptor and leaves the dgram socket open and working', async () => {
    const sender = wrapDgram(socket);
    sender.detach();
    sender.detach();
    expect(sender.attached).toBe(false);
    expect(() => sender.trySendBatch([patterned(0, 10)], receiver.port)).toThrow(WskError);
    await new Promise<void>((resolve, reject) => socket.send(Buffer.from('still open'), receiver.port, '127.0.0.1',
      (error) => (error ? reject(error) : resolve())));
    expect((await receiver.waitFor(1))[0]!.toString()).toBe('still open');
    // Detached, the socket may be wrapped again.
    const again = wrapDgram(socket);
    expect(again.trySendBatch([patterned(0, 10)], receiver.port).datagrams).toBe(1);
    await receiver.waitFor(2);
  });

  test('a dgram socket connected after wrapping: wrapped sends are refused with dgram\'s code until it is disconnected', async () => {
    const sender = wrapDgram(socket);
    expect(sender.trySendBatch([patterned(0, 10)], receiver.port).datagrams).toBe(1);
    await receiver.waitFor(1);
    const other = await openReceiver('udp4');
    try {
      await new Promise<void>((resolve) => socket.connect(other.port, '127.0.0.1', () => resolve()));
      const refused = { code: 'ERR_SOCKET_DGRAM_IS_CONNECTED' };
      expect(() => sender.trySendBatch([patterned(1, 10)], receiver.port)).toThrow(TypeError);
      expect(() => sender.trySendTo([{ data: patterned(1, 10), port: receiver.port }])).toThrow(expect.objectContaining(refused));
      await expect(sender.sendBatch([patterned(1, 10)], receiver.port)).rejects.toMatchObject(refused);
      // dgram itself still sends to its remote, and nothing of the refused sends went anywhere.
      await new Promise<void>((resolve, reject) => socket.send(Buffer.from('via connect'), (e) => (e ? reject(e) : resolve())));
      expect((await other.waitFor(1)).map(String)).toEqual(['via connect']);
      socket.disconnect();
      const after = await sender.sendBatch([patterned(2, 10), patterned(3, 10)], receiver.port);
      expect(after.datagrams).toBe(2);
      const got = await receiver.waitFor(3);
      expectSameDatagrams(got, [patterned(0, 10), patterned(2, 10), patterned(3, 10)]);
      expect(receiver.received).toHaveLength(3);
      expect(other.received).toHaveLength(1);
    } finally {
      await other.close();
    }
  });

  test('bad inputs: not a dgram socket, unbound, binding, closed, connected, wrapped twice, bad options', async () => {
    for (const value of [undefined, null, 42, {}, { _handle: { fd: 3 } }]) {
      expect(() => wrapDgram(value as unknown as dgram.Socket)).toThrow(TypeError);
    }
    const ours = createSocket('udp4');
    try {
      expect(() => wrapDgram(ours as unknown as dgram.Socket)).toThrow(/needs a node:dgram Socket/);
    } finally {
      ours.close();
    }
    const unbound = dgram.createSocket('udp4');
    expect(() => wrapDgram(unbound)).toThrow(/not bound/);
    unbound.bind(0, '127.0.0.1'); // bound a tick later, after the address lookup
    expect(() => wrapDgram(unbound)).toThrow(/not bound/);
    await new Promise((resolve) => unbound.once('listening', resolve));
    expect(wrapDgram(unbound).attached).toBe(true);
    await closeDgram(unbound);
    expect(() => wrapDgram(unbound)).toThrow(/closed/);

    const connected = await boundDgram('udp4');
    await new Promise<void>((resolve) => connected.connect(receiver.port, '127.0.0.1', () => resolve()));
    expect(() => wrapDgram(connected)).toThrow(/connected dgram sockets are not supported/);
    await closeDgram(connected);

    const sender = wrapDgram(socket);
    expect(() => wrapDgram(socket)).toThrow(/wrapped already/);
    const other = await boundDgram('udp4');
    try {
      expect(() => wrapDgram(other, { gos: false } as never)).toThrow(/unknown wrapDgram option "gos"/);
      expect(() => wrapDgram(other, { gso: 1 } as never)).toThrow(TypeError);
      expect(() => wrapDgram(other, 'fast' as never)).toThrow(TypeError);
    } finally {
      await closeDgram(other);
    }
    // Send arguments are checked as UdpSocket checks them, before anything is sent.
    expect(() => sender.trySendBatch('nope' as never, receiver.port)).toThrow(TypeError);
    expect(() => sender.trySendBatch([patterned(0, 10)], 0)).toThrow(RangeError);
    expect(() => sender.sendBatch([patterned(0, 10)], receiver.port, 'localhost')).toThrow(TypeError);
    expect(() => sender.sendBatch([new Uint8Array(70000)], receiver.port)).toThrow(RangeError);
    // Unknown send options are refused as UdpSocket refuses them, and a wrapped send takes no
    // signal (what went through dgram's send cannot be taken back).
    expect(() => sender.trySendBatch([patterned(0, 10)], receiver.port, '127.0.0.1', { gos: false } as never))
      .toThrow(/unknown option "gos"/);
    expect(() => sender.sendBatch([patterned(0, 10)], receiver.port, '127.0.0.1',
      { signal: new AbortController().signal })).toThrow(/unknown option "signal"/);
    // Controls dgram's send cannot carry are refused where the rest might go through it...
    expect(() => sender.sendBatch([patterned(0, 10)], receiver.port, '127.0.0.1', { tos: 0x10 }))
      .toThrow(/tos\/ecn cannot go through the dgram socket's send/);
    expect(() => sender.sendTo([{ data: patterned(0, 10), port: receiver.port }], { ttl: 9 })).toThrow(TypeError);
    // ...and taken where it never does.
    expect(sender.trySendBatch([patterned(0, 10)], receiver.port, '127.0.0.1', { tos: 0x10, ttl: 9 }).datagrams).toBe(1);
    expect(sender.stats().datagrams).toBe(1);
    await receiver.waitFor(1);
  });

  test('the borrowed native socket never closes, polls or reads the descriptor', async () => {
    const sender = wrapDgram(socket);
    const native = new (binding().UdpSocket)();
    expect(native.adopt(sender.fd, 4)).toBe(0);
    expect(native.fd).toBe(sender.fd);
    expect(native.startPolling(() => undefined)).toBe(EOPNOTSUPP);
    expect(native.startReading(() => undefined)).toBe(EOPNOTSUPP);
    expect(native.receive(new Uint8Array(65536), 65536, 1)).toBe(EOPNOTSUPP);
    expect(native.enableReceiveInfo(false)).toBe(EOPNOTSUPP);
    expect(native.bind('127.0.0.1', 0, 0)).toBe(EOPNOTSUPP);
    expect(native.connect('127.0.0.1', receiver.port, 0)).toBe(EOPNOTSUPP);
    expect(native.setSendBufferSize(4096)).toBe(EOPNOTSUPP);
    // Nor are the socket's options ours to change.
    expect(native.setOption(NativeOption.broadcast, 1)).toBe(EOPNOTSUPP);
    expect(native.setOption(NativeOption.ttl, 3)).toBe(EOPNOTSUPP);
    expect(native.membership(true, '239.1.2.3', null, null)).toBe(EOPNOTSUPP);
    expect(native.setMulticastInterface('127.0.0.1')).toBe(EOPNOTSUPP);
    expect(native.disconnect()).toBe(EOPNOTSUPP);
    expect(native.close()).toBe(0);
    expect(native.fd).toBe(-1);
    // The descriptor is still open and still dgram's: both senders still work on it.
    expect(sender.trySendBatch([patterned(1, 10)], receiver.port).datagrams).toBe(1);
    await new Promise<void>((resolve, reject) => socket.send(Buffer.from('x'), receiver.port, '127.0.0.1',
      (error) => (error ? reject(error) : resolve())));
    expect((await receiver.waitFor(2)).map((d) => d.length)).toEqual([10, 1]);

    // What adopt refuses: a descriptor that is not a non-blocking UDP socket of the family.
    const family6 = new (binding().UdpSocket)();
    expect(family6.adopt(sender.fd, 6)).toBe(os.constants.errno.EAFNOSUPPORT);
    const file = fs.openSync(path.join(FIXTURES, 'common.js'), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    try {
      expect(new (binding().UdpSocket)().adopt(file, 4)).toBe(os.constants.errno.ENOTSOCK);
    } finally {
      fs.closeSync(file);
    }
    expect(new (binding().UdpSocket)().adopt(1 << 30, 4)).toBe(os.constants.errno.EBADF);
    expect(() => new (binding().UdpSocket)().adopt(-1, 4)).toThrow(/fd must be an integer/);
    expect(() => new (binding().UdpSocket)().adopt(sender.fd, 5 as never)).toThrow(/family must be 4 or 6/);
    const open = new (binding().UdpSocket)();
    expect(open.open(4)).toBe(0);
    expect(() => open.adopt(sender.fd, 4)).toThrow(/already open/);
    open.close();
  });
});

// -----------------------------------------------------------------------------------------------
// the slow link

const SIZE = 1200;
const SENDER = path.join(FIXTURES, 'wrap-dgram-sender.js');

let link: SlowLink | null = null;
let slowReceiver: SlowReceiver | null = null;

type Result = JsonLine & Record<string, any>;

/** Runs wrap-dgram-sender.js `scenario` in namespace a to its end; its result line. */
async function runWrapSender(l: SlowLink, scenario: string, params: Record<string, unknown>, timeoutMs: number): Promise<Result> {
  const child = new JsonChild(l.spawnNode('a', SENDER, [scenario, JSON.stringify(params)]),
    `wrap-dgram sender "${scenario}" in ${l.names.a}`);
  const exit = await child.waitForExit(timeoutMs);
  const result = child.lines.find((line) => line.event === 'result') as Result | undefined;
  if (result === undefined || exit.timedOut || exit.code !== 0 || result.error !== undefined) {
    throw new Error(`the sender did not end cleanly: ${JSON.stringify(exit)} ${String(result?.error)}\n${child.describe()}`);
  }
  return result;
}

/** Every sequence number 0..count-1 arrived once, in order, intact, 1200 B each. */
function expectAllInOrder(report: ReceiverReport, count: number): void {
  expect({
    count: report.count, duplicates: report.duplicates, outOfOrder: report.outOfOrder, corrupt: report.corrupt,
    sizes: report.sizes, runs: report.runs,
  }).toEqual({
    count, duplicates: 0, outOfOrder: 0, corrupt: 0, sizes: count > 0 ? { [SIZE]: count } : {},
    runs: count > 0 ? [[0, count - 1]] : [],
  });
}

describe('wrapDgram over a slow link (veth between namespaces, tbf 10 mbit)', () => {
  afterEach(async () => {
    const r = slowReceiver;
    const l = link;
    slowReceiver = null;
    link = null;
    try {
      await r?.close();
    } finally {
      await l?.destroy();
    }
  });

  test.each([
    ['IPv4', 4, 1, 0],
    ['IPv6', 6, 1, 0],
    ['IPv4, each datagram cut by segmentSize', 4, 10, SIZE],
  ] as const)('%s: a batch goes part direct, part through dgram\'s queue, a second behind it; every datagram once, in order', async (_name, family, per, segmentSize) => {
    link = await createSlowLink();
    slowReceiver = await startReceiver(link, family);
    const count = 1500 / per;
    const secondCount = 300 / per;
    const result = await runWrapSender(link, 'queued', {
      family, address: slowReceiver.address, port: slowReceiver.port, size: SIZE, count, secondCount,
      perDatagram: per, segmentSize: segmentSize || undefined, sendBufferSize: 16384, timeoutMs: 12000, watchdogMs: 16000,
    }, 20000);
    const wire = (count + secondCount) * per;
    const first = result.first as Result;
    const second = result.second as Result;
    notes.push(`queued IPv${family} per ${per}: first ${JSON.stringify(first.value ?? first.error)}, second ` +
      `${JSON.stringify(second.value ?? second.error)}; right after the first call ${JSON.stringify(result.afterFirst)}; ` +
      `stats ${JSON.stringify(result.stats)}; ${Math.round(result.totalMs)} ms`);
    expect({ ok: first.ok, error: first.error }).toEqual({ ok: true, error: undefined });
    expect({ ok: second.ok, error: second.error }).toEqual({ ok: true, error: undefined });
    const viaDgram = first.value.viaDgram as number;
    // Both parts of the first batch were non-empty: the direct call took some, dgram the rest.
    expect(viaDgram).toBeGreaterThan(0);
    expect(count - viaDgram).toBeGreaterThan(0);
    expect(first.value).toEqual({
      datagrams: count, bytes: count * per * SIZE, segments: count * per, failures: [], viaDgram,
    });
    // The second batch came while the first's rest waited in dgram: all of it went behind.
    expect(second.value).toEqual({
      datagrams: secondCount, bytes: secondCount * per * SIZE, segments: secondCount * per, failures: [], viaDgram: secondCount,
    });
    expect(result.afterFirst.pendingDatagrams).toBe(viaDgram * per);
    expect(result.afterFirst.stats.datagrams).toBe(count - viaDgram);
    expect(result.tryWhileQueued).toEqual({ datagrams: 0, bytes: 0, segments: 0, failures: [] });
    expect(result.stats).toMatchObject({
      datagrams: count - viaDgram, bytes: (count - viaDgram) * per * SIZE,
      dgramDatagrams: (viaDgram + secondCount) * per, dgramBytes: (viaDgram + secondCount) * per * SIZE, dgramFailures: 0,
    });
    expect(result.pendingAtEnd).toBe(0);
    expect(result.socketsAfter).toBe(result.socketsBefore);
    expectAllInOrder(await slowReceiver.waitFor(wire, { timeoutMs: 5000, quietMs: 300 }), wire);
    const qdisc = await qdiscStats(link);
    expect(qdisc.dropped).toBe(0);
    expect(qdisc.overlimits).toBeGreaterThan(0);
  }, 30000);

  test('refusals from the direct call and from dgram\'s callbacks are listed with their destination; exactly the rest arrives, in order', async () => {
    link = await createSlowLink();
    slowReceiver = await startReceiver(link, 4);
    const count = 1500;
    // Datagram 9, 109, 209, ... to the broadcast address: the first within what the direct call
    // takes (about 50 datagrams fill the socket buffer), the others in dgram's part.
    const every = 100;
    const offset = 9;
    const broadcast = slowReceiver.address.replace(/\.\d+$/, '.255');
    const result = await runWrapSender(link, 'failures', {
      family: 4, address: slowReceiver.address, port: slowReceiver.port, broadcast, size: SIZE, count, every, offset,
      sendBufferSize: 16384, watchdogMs: 16000,
    }, 20000);
    const sent = result.sent as Result;
    expect({ ok: sent.ok, error: sent.error }).toEqual({ ok: true, error: undefined });
    const failures = sent.value.failures as Array<Record<string, unknown> & { index: number }>;
    const isBroadcast = (index: number): boolean => index % every === offset;
    const refused = failures.filter((f) => isBroadcast(f.index));
    const collateral = failures.filter((f) => !isBroadcast(f.index));
    notes.push(`failures: ${failures.length} listed (${refused.length} to the broadcast address, ${collateral.length} ` +
      `unicast datagrams libuv failed with them); viaDgram ${String(sent.value.viaDgram)}; stats ${JSON.stringify(result.stats)}`);
    // Every datagram to the broadcast address is listed, with its destination and EACCES.
    expect(refused).toEqual(Array.from({ length: count / every }, (_, i) => ({
      index: i * every + offset, code: 'EACCES', errno: os.constants.errno.EACCES, status: 0xc0000022,
      address: broadcast, port: slowReceiver!.port,
    })));
    // libuv sends its queue with sendmmsg, up to 20 at a time, and reports a refusal of a call's
    // first datagram for every datagram of that call (src/unix/udp.c uv__udp_sendmsg_many): those
    // unicast datagrams did not go out, and are listed with that error; only in dgram's part.
    for (const failure of collateral) {
      expect(failure).toMatchObject({ code: 'EACCES', address: slowReceiver.address });
      expect(failure.index % every - offset).toBeLessThan(20);
      expect(failure.index).toBeGreaterThan(result.stats.datagrams);
    }
    // The direct call refused datagram 9 and went on past it.
    expect(result.stats.datagrams).toBeGreaterThan(offset);
    const unicast = count - count / every;
    expect(result.unicast).toBe(unicast);
    const delivered = unicast - collateral.length;
    expect({ datagrams: sent.value.datagrams, bytes: sent.value.bytes, segments: sent.value.segments })
      .toEqual({ datagrams: delivered, bytes: delivered * SIZE, segments: delivered });
    expect(sent.value.viaDgram).toBeGreaterThan(0);
    expect(sent.value.viaDgram).toBeLessThan(delivered);
    expect(result.stats.dgramFailures).toBeGreaterThan(0);
    expect(result.stats.datagrams + result.stats.dgramDatagrams).toBe(delivered);
    expect(result.socketsAfter).toBe(result.socketsBefore);
    // Exactly the unicast datagrams not listed arrive (unicast sequence numbers run 0.. in
    // message order, skipping the broadcast ones), once each, in order.
    const failed = new Set(failures.map((f) => f.index));
    const runs: Array<[number, number]> = [];
    for (let index = 0, seq = 0; index < count; index++) {
      if (isBroadcast(index)) continue;
      if (!failed.has(index)) {
        const last = runs[runs.length - 1];
        if (last !== undefined && last[1] === seq - 1) last[1] = seq;
        else runs.push([seq, seq]);
      }
      seq++;
    }
    const report = await slowReceiver.waitFor(delivered, { timeoutMs: 5000, quietMs: 500 });
    expect({
      count: report.count, duplicates: report.duplicates, outOfOrder: report.outOfOrder, corrupt: report.corrupt, runs: report.runs,
    }).toEqual({ count: delivered, duplicates: 0, outOfOrder: 0, corrupt: 0, runs });
  }, 30000);

  test.each([
    ['in libuv\'s queue (reported ECANCELED by libuv)', 300],
    ['still in dgram\'s address lookup (dropped by dgram without a report)', 0],
  ])('the dgram socket closing under datagrams %s ends the send ECANCELED with exact counts; exactly those arrive', async (_where, closeAfterMs) => {
    link = await createSlowLink();
    slowReceiver = await startReceiver(link, 4);
    const count = 1500;
    const result = await runWrapSender(link, 'close', {
      family: 4, address: slowReceiver.address, port: slowReceiver.port, size: SIZE, count, closeAfterMs,
      sendBufferSize: 16384, watchdogMs: 10000,
    }, 15000);
    notes.push(`close after ${closeAfterMs} ms: after the call ${JSON.stringify(result.afterCall)}; before close ${JSON.stringify(result.beforeClose)}; ` +
      `${JSON.stringify(result.sending)}; stats ${JSON.stringify(result.stats)}`);
    const sending = result.sending as Result;
    expect({ ok: sending.ok, name: sending.error?.name, code: sending.error?.code })
      .toEqual({ ok: false, name: 'WskError', code: 'ECANCELED' });
    const sent = sending.error.datagramsSent as number;
    const direct = result.beforeClose.stats.datagrams as number;
    expect(direct).toBeGreaterThan(0);
    if (closeAfterMs > 0) expect(sent).toBeGreaterThan(direct); // some went through dgram first
    else expect(sent).toBe(direct); // nothing of dgram's part left the process
    expect(sent).toBeLessThan(count);
    expect(sending.error.bytesSent).toBe(sent * SIZE);
    expect(result.stats.datagrams + result.stats.dgramDatagrams).toBe(sent);
    expect(result.stats.dgramFailures).toBe(count - sent);
    expect(result.tryAfterClose).toMatchObject({ ok: false, error: { name: 'WskError', code: 'EBADF' } });
    expect(result.sendAfterClose).toMatchObject({ ok: false, error: { name: 'WskError', code: 'EBADF' } });
    expect({ attached: result.attached, pendingAtEnd: result.pendingAtEnd }).toEqual({ attached: false, pendingAtEnd: 0 });
    expect(result.socketsAfter).toBe(result.socketsBefore);
    expectAllInOrder(await slowReceiver.waitFor(sent, { timeoutMs: 5000, quietMs: 500 }), sent);
  }, 30000);
});
