/**
 * The one batch shape on real loopback sockets: every input form gives the same datagrams on
 * the wire; fan-out and per-message destinations go out in one call per up to 1024 messages;
 * a datagram refused for its destination is reported and the rest go on; results count what
 * went on the wire. Received by node:dgram, not by the library under test.
 */
import * as dgram from 'node:dgram';
import * as os from 'node:os';
import fc from 'fast-check';
import {
  createSocket, IoAllocateIrp, nativeBackend, IoAllocateMdl, STATUS_SUCCESS, WskError, wskBufList, WskSendMessages,
  type UdpSocket,
} from '../../lib';
import { openReceiver, patterned, RECEIVE_BUFFER, type Receiver } from './receiver';

const { EACCES } = os.constants.errno;

/**
 * System calls for `messages` messages of one call: one per up to 1024 with sendmmsg, one each
 * with the portable sendmsg loop (WSK_DGRAM_BACKEND=sendmsg, the CI's second pass).
 */
function syscallsFor(messages: number): number {
  return nativeBackend() === 'sendmmsg' ? Math.ceil(messages / 1024) : messages;
}

/** An address on lo whose route is "broadcast": a send without SO_BROADCAST gives EACCES. */
const BROADCAST = '127.255.255.255';

function hexes(list: readonly Uint8Array[]): string[] {
  return list.map((d) => Buffer.from(d).toString('hex'));
}

/** Datagrams of mixed sizes with equal-size runs (so GSO has something to coalesce). */
function mixedSizes(count: number): number[] {
  const sizes: number[] = [];
  for (let i = 0; i < count; i++) sizes.push(i % 7 === 6 ? 300 + (i % 5) : 1200);
  return sizes;
}

/** Many receivers, each on its own port; every datagram is recorded with its receiver. */
class Peers {
  readonly sockets: dgram.Socket[] = [];
  readonly got: Buffer[][] = [];
  count = 0;

  static async open(n: number, type: 'udp4' | 'udp6' = 'udp4'): Promise<Peers> {
    const peers = new Peers();
    const host = type === 'udp6' ? '::1' : '127.0.0.1';
    await Promise.all(Array.from({ length: n }, (_, i) => new Promise<void>((resolve, reject) => {
      // Few peers get many datagrams each: give them room; a thousand get one each.
      const socket = dgram.createSocket({ type, recvBufferSize: n <= 64 ? RECEIVE_BUFFER : 1 << 16 });
      peers.sockets[i] = socket;
      peers.got[i] = [];
      socket.on('message', (message) => {
        peers.got[i]!.push(message);
        peers.count++;
      });
      socket.once('error', reject);
      socket.bind(0, host, () => resolve());
    })));
    return peers;
  }

  get ports(): number[] {
    return this.sockets.map((s) => s.address().port);
  }

  /** Waits until `total` datagrams arrived in all, then a quiet moment so extras show. */
  async settle(total: number, timeoutMs = 5000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (this.count < total && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 100));
    if (this.count !== total) throw new Error(`${this.count} datagrams arrived, expected ${total}`);
  }

  async close(): Promise<void> {
    await Promise.all(this.sockets.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

describe('every batch form gives the same datagrams on the wire', () => {
  let receiver: Receiver;
  let socket: UdpSocket;
  beforeEach(async () => {
    receiver = await openReceiver('udp4');
  });
  afterEach(async () => {
    socket?.close();
    await receiver.close();
  });

  test.each([true, false])('arrays, pieces, packed lengths, packed segmentSize, WSK (gso %s)', async (gso) => {
    socket = createSocket({ type: 'udp4', gso });
    const sizes = mixedSizes(150);
    const datagrams = sizes.map((size, i) => patterned(i, size));
    const packed = new Uint8Array(sizes.reduce((a, b) => a + b, 0));
    let at = 0;
    for (const d of datagrams) {
      packed.set(d, at);
      at += d.length;
    }
    const expected = hexes(datagrams);
    const total = packed.length;
    const forms: Array<[string, () => Promise<unknown>]> = [
      ['array', () => socket.sendBatch(datagrams, receiver.port, '127.0.0.1')],
      ['pieces', () => socket.sendBatch(datagrams.map((d) => [d.subarray(0, 5), d.subarray(5)]), receiver.port, '127.0.0.1')],
      ['packed Uint32Array', () => socket.sendBatch({ buffer: packed, lengths: Uint32Array.from(sizes) }, receiver.port, '127.0.0.1')],
      ['packed number[]', () => socket.sendBatch({ buffer: packed, lengths: sizes }, receiver.port, '127.0.0.1')],
      ['WSK', async () => {
        const irp = IoAllocateIrp();
        const list = wskBufList(datagrams.map((d) => ({ Mdl: IoAllocateMdl(d), Offset: 0, Length: d.length })));
        WskSendMessages(socket, list, 0, { family: 4, address: '127.0.0.1', port: receiver.port }, 0, null, irp);
        await irp.promise;
        expect([irp.IoStatus.Status, irp.IoStatus.Information]).toEqual([STATUS_SUCCESS, total]);
      }],
    ];
    for (const [name, send] of forms) {
      receiver.received.length = 0;
      const result = await send();
      if (result !== undefined) expect(result).toMatchObject({ datagrams: 150, bytes: total, segments: 150, failures: [] });
      const got = await receiver.waitFor(150);
      expect({ name, got: hexes(got) }).toEqual({ name, got: expected });
    }

    // segmentSize: equal 1200 B datagrams with a short last one.
    const equal = Array.from({ length: 21 }, (_, i) => patterned(i, i === 20 ? 77 : 1200));
    const flat = Buffer.concat(equal);
    receiver.received.length = 0;
    const result = await socket.sendBatch({ buffer: flat, segmentSize: 1200 }, receiver.port, '127.0.0.1');
    expect(result).toEqual({ datagrams: 21, bytes: flat.length, segments: 21, failures: [] });
    expect(hexes(await receiver.waitFor(21))).toEqual(hexes(equal));
  });

  test('a packed batch of 5000 datagrams goes out in ceil(5000/1024) sendmmsg calls', async () => {
    socket = createSocket({ type: 'udp4', gso: false });
    const sizes = Array.from({ length: 5000 }, (_, i) => 8 + (i % 50));
    const datagrams = sizes.map((size, i) => patterned(i, size));
    const buffer = Buffer.concat(datagrams);
    const before = socket.stats();
    const result = socket.trySendBatch({ buffer, lengths: sizes }, receiver.port, '127.0.0.1');
    expect(result).toEqual({ datagrams: 5000, bytes: buffer.length, segments: 5000, failures: [] });
    expect(socket.stats().syscalls - before.syscalls).toBe(syscallsFor(5000));
    expect(hexes(await receiver.waitFor(5000))).toEqual(hexes(datagrams));
  });

  test('bad packed batches are TypeError/RangeError, thrown at once by sendBatch too, and nothing is sent', async () => {
    socket = createSocket('udp4');
    const buffer = new Uint8Array(100);
    const bad: Array<[unknown, typeof TypeError | typeof RangeError]> = [
      [{ buffer, lengths: [50, 51] }, RangeError],
      [{ buffer, lengths: [-1] }, RangeError],
      [{ buffer, lengths: [1.5] }, RangeError],
      [{ buffer, lengths: ['1'] }, RangeError],
      [{ buffer, lengths: 'x' }, TypeError],
      [{ buffer: [1, 2], lengths: [1] }, TypeError],
      [{ buffer, segmentSize: 0 }, RangeError],
      [{ buffer, segmentSize: 65508 }, RangeError],
      [{ buffer: new Uint8Array(70000), lengths: [70000] }, RangeError],
      [42, TypeError],
    ];
    for (const [batch, kind] of bad) {
      expect(() => socket.trySendBatch(batch as never, receiver.port, '127.0.0.1')).toThrow(kind);
      expect(() => socket.sendBatch(batch as never, receiver.port, '127.0.0.1')).toThrow(kind);
    }
    expect(() => socket.sendBatch([patterned(0, 4)], 0, '127.0.0.1')).toThrow(RangeError);
    await new Promise((r) => setTimeout(r, 100));
    expect(receiver.received).toEqual([]);
  });

  test('an explicit segmentSize counts the datagrams on the wire: 3600 B in 1200 B segments is 3', async () => {
    socket = createSocket('udp4');
    const big = patterned(1, 3600);
    const before = socket.stats();
    const result = await socket.sendBatch([big], receiver.port, '127.0.0.1', { segmentSize: 1200 });
    expect(result).toEqual({ datagrams: 1, bytes: 3600, segments: 3, failures: [] });
    const after = socket.stats();
    expect(after.datagrams - before.datagrams).toBe(1);
    expect(after.segments - before.segments).toBe(3);
    const got = await receiver.waitFor(3);
    expect(Buffer.concat(got).equals(Buffer.from(big))).toBe(true);
  });
});

describe('many destinations in one call', () => {
  let socket: UdpSocket;
  afterEach(() => socket?.close());

  test('one payload to 1000 destinations arrives once at each, in one sendmmsg call', async () => {
    const peers = await Peers.open(1000);
    try {
      socket = createSocket({ type: 'udp4', sendBufferSize: 4 << 20 });
      const payload = patterned(7, 200);
      const before = socket.stats();
      const result = socket.trySendToMany([payload], peers.ports.map((port) => ({ port, address: '127.0.0.1' })));
      expect(result).toEqual({ datagrams: 1000, bytes: 200_000, segments: 1000, failures: [] });
      expect(socket.stats().syscalls - before.syscalls).toBe(syscallsFor(1000));
      await peers.settle(1000);
      for (const got of peers.got) expect(hexes(got)).toEqual(hexes([payload]));
    } finally {
      await peers.close();
    }
  });

  test('a packed batch of equal runs to 64 destinations goes out as one super-packet per destination', async () => {
    const peers = await Peers.open(64);
    try {
      socket = createSocket({ type: 'udp4', sendBufferSize: 4 << 20 });
      if (!socket.gso) throw new Error('this kernel has no UDP_SEGMENT: the test cannot show GSO per destination');
      const run = Array.from({ length: 10 }, (_, i) => patterned(i, 1000));
      const before = socket.stats();
      const result = await socket.sendToMany({ buffer: Buffer.concat(run), segmentSize: 1000 },
        peers.ports.map((port) => ({ port })));
      expect(result).toMatchObject({ datagrams: 640, bytes: 640_000, failures: [] });
      const after = socket.stats();
      expect(after.datagrams - before.datagrams).toBe(640);
      expect(after.messages - before.messages).toBe(64); // never a run across two destinations
      expect(after.syscalls - before.syscalls).toBe(syscallsFor(64));
      await peers.settle(640);
      for (const got of peers.got) expect(hexes(got)).toEqual(hexes(run));
    } finally {
      await peers.close();
    }
  });

  test('a prepared destination set sends what the array sends, call after call, and stays the socket family\'s', async () => {
    const peers = await Peers.open(8);
    try {
      socket = createSocket({ type: 'udp4' });
      const list = peers.ports.map((port) => ({ port, address: '127.0.0.1' }));
      const set = socket.prepareDestinations(list);
      expect(set.size).toBe(8);
      const payloads = [patterned(1, 300), patterned(2, 301)];
      const fromArray = socket.trySendToMany(payloads, list);
      for (let round = 0; round < 3; round++) expect(socket.trySendToMany(payloads, set)).toEqual(fromArray);
      expect(fromArray).toEqual({ datagrams: 16, bytes: 8 * 601, segments: 16, failures: [] });
      await peers.settle(4 * 16);
      for (const got of peers.got) expect(hexes(got)).toEqual(hexes([...payloads, ...payloads, ...payloads, ...payloads]));
      const v6 = createSocket('udp6');
      try {
        expect(() => v6.trySendToMany(payloads, set)).toThrow(/udp4/);
        expect(() => v6.prepareDestinations([{ port: 1, address: '127.0.0.1' }])).toThrow(/destination 0/);
      } finally {
        v6.close();
      }
      expect(() => socket.prepareDestinations([{ port: 0 }])).toThrow(RangeError);
    } finally {
      await peers.close();
    }
  });

  test('sendTo: each message to its own destination; consecutive ones to a peer coalesce', async () => {
    const peers = await Peers.open(3);
    try {
      socket = createSocket({ type: 'udp4' });
      const ports = peers.ports;
      const messages = Array.from({ length: 30 }, (_, i) => ({
        data: patterned(i, 500), port: ports[Math.floor(i / 10)]!, address: '127.0.0.1',
      }));
      const result = await socket.sendTo(messages);
      expect(result).toEqual({ datagrams: 30, bytes: 15_000, segments: 30, failures: [] });
      await peers.settle(30);
      for (let p = 0; p < 3; p++) {
        expect(hexes(peers.got[p]!)).toEqual(hexes(messages.slice(p * 10, p * 10 + 10).map((m) => m.data)));
      }
    } finally {
      await peers.close();
    }
  });

  test('bad destinations are a TypeError/RangeError naming the entry; a connected socket refuses sendTo', () => {
    socket = createSocket('udp4');
    expect(() => socket.trySendToMany([patterned(0, 4)], [{ port: 1 }, { port: 0 }])).toThrow(/destination 1: port/);
    expect(() => socket.trySendToMany([patterned(0, 4)], [{ port: 1, address: '::1' }])).toThrow(/destination 0: address/);
    expect(() => socket.trySendTo([{ data: patterned(0, 4), port: 70000 }])).toThrow(RangeError);
    expect(() => socket.trySendTo([{ data: 'x', port: 9 }] as never)).toThrow(TypeError);
    expect(() => socket.trySendTo({} as never)).toThrow(TypeError);
    const connected = createSocket('udp4');
    try {
      connected.connect(9, '127.0.0.1');
      expect(() => connected.trySendTo([{ data: patterned(0, 4), port: 9 }])).toThrow(/connected/);
    } finally {
      connected.close();
    }
  });
});

describe('a result per failing datagram', () => {
  test('a failing destination at random indices, across every internal boundary: exact counts and failures', async () => {
    const peers = await Peers.open(1);
    const socket = createSocket({ type: 'udp4', sendBufferSize: 8 << 20 });
    const port = peers.ports[0]!;
    try {
      await fc.assert(fc.asyncProperty(
        fc.constantFrom(1, 20, 64, 128, 1023, 1024, 1025, 2049),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.boolean(),
        async (count, picks, useTry) => {
          const failing = new Set(picks.map((p) => p % count));
          peers.got[0]!.length = 0;
          peers.count = 0;
          const messages = Array.from({ length: count }, (_, i) => ({
            data: patterned(i, 100), port, address: failing.has(i) ? BROADCAST : '127.0.0.1',
          }));
          const result = useTry ? socket.trySendTo(messages) : await socket.sendTo(messages);
          const failures = [...failing].sort((a, b) => a - b);
          expect(result.failures.map((f) => f.index)).toEqual(failures);
          for (const f of result.failures) {
            expect(f).toMatchObject({ code: 'EACCES', errno: EACCES, address: BROADCAST, port });
            expect(f.status).toBe(0xc0000022); // STATUS_ACCESS_DENIED
          }
          expect(result.datagrams).toBe(count - failures.length);
          expect(result.bytes).toBe(100 * (count - failures.length));
          await peers.settle(count - failures.length);
          const expected = messages.filter((_, i) => !failing.has(i)).map((m) => m.data);
          expect(hexes(peers.got[0]!)).toEqual(hexes(expected));
        },
      ), { numRuns: 25 });
    } finally {
      socket.close();
      await peers.close();
    }
  });

  test('one destination keeps its contract: the first refused datagram stops the batch with a WskError', async () => {
    const socket = createSocket('udp4');
    try {
      expect(() => socket.trySendBatch([patterned(0, 10)], 9, BROADCAST)).toThrow(WskError);
      await expect(socket.sendBatch([patterned(0, 10), patterned(1, 10)], 9, BROADCAST)).rejects.toMatchObject({
        code: 'EACCES', datagramsSent: 0,
      });
      // Asked to continue, it lists both and resolves.
      const result = await socket.sendBatch([patterned(0, 10), patterned(1, 10)], 9, BROADCAST, { continueOnError: true });
      expect(result.datagrams).toBe(0);
      expect(result.failures.map((f) => [f.index, f.code])).toEqual([[0, 'EACCES'], [1, 'EACCES']]);
    } finally {
      socket.close();
    }
  });
});
