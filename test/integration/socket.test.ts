/** The idiomatic API on real loopback sockets, received by Node's dgram. */
import { createSocket, MAX_UDP_PAYLOAD, nativeBackend, WskError, type UdpSocket } from '../../lib';
import { openUdpSocketCount, openReceiver, patterned, type Receiver } from './receiver';

function expectSameDatagrams(received: Buffer[], sent: Uint8Array[]): void {
  expect(received.length).toBe(sent.length);
  for (let i = 0; i < sent.length; i++) {
    // Compare as Buffers so a mismatch names the datagram index.
    if (!Buffer.from(sent[i]!).equals(received[i]!)) {
      throw new Error(`datagram ${i} differs: sent ${sent[i]!.byteLength} B, got ${received[i]!.byteLength} B`);
    }
  }
}

describe('UdpSocket over IPv4 loopback', () => {
  let receiver: Receiver;
  let socket: UdpSocket;
  let descriptorsBefore: number;

  beforeEach(async () => {
    descriptorsBefore = openUdpSocketCount();
    receiver = await openReceiver('udp4');
    socket = createSocket('udp4');
  });
  afterEach(async () => {
    socket.close();
    await receiver.close();
    expect(openUdpSocketCount()).toBe(descriptorsBefore);
  });

  test.each([1, 64, 1024, 5000])('a batch of %i datagrams arrives whole and in order', async (count) => {
    // 5000 x 1200 B would outgrow the receive buffer of a receiver that cannot drain during the
    // synchronous send; 200 B keeps every batch within it while still crossing UIO_MAXIOV.
    const size = count > 1024 ? 200 : 1200;
    const datagrams = Array.from({ length: count }, (_, i) => patterned(i, size));
    const result = await socket.sendBatch(datagrams, receiver.port, '127.0.0.1');
    expect(result).toEqual({ datagrams: count, bytes: count * size, segments: count, failures: [] });
    expectSameDatagrams(await receiver.waitFor(count), datagrams);
  });

  test.each([0, 1, 1200, MAX_UDP_PAYLOAD[4]])('a payload of %i bytes arrives byte for byte', async (size) => {
    const datagrams = [patterned(1, size), patterned(2, size), patterned(3, size)];
    const result = socket.trySendBatch(datagrams, receiver.port, '127.0.0.1');
    expect(result).toEqual({ datagrams: 3, bytes: 3 * size, segments: 3, failures: [] });
    expectSameDatagrams(await receiver.waitFor(3), datagrams);
  });

  test('datagrams made of pieces are sent without copying, pieces joined in order', async () => {
    const backing = patterned(9, 3000);
    const datagrams = [
      [backing.subarray(0, 10), backing.subarray(100, 150)],
      backing.subarray(10, 20),
      [backing.subarray(2000, 3000), new Uint8Array(0), backing.subarray(5, 6)],
      [],
    ];
    const expected = datagrams.map((d) => Buffer.concat(d instanceof Uint8Array ? [d] : d));
    const result = await socket.sendBatch(datagrams, receiver.port, '127.0.0.1');
    expect(result).toEqual({ datagrams: 4, bytes: 60 + 10 + 1001, segments: 4, failures: [] });
    expectSameDatagrams(await receiver.waitFor(4), expected);
  });

  test('a connected socket sends without a destination', async () => {
    socket.connect(receiver.port, '127.0.0.1');
    expect(socket.remoteAddress()).toEqual({ address: '127.0.0.1', family: 'IPv4', port: receiver.port });
    const datagrams = [patterned(1, 10), patterned(2, 20)];
    expect(socket.trySendBatch(datagrams)).toEqual({ datagrams: 2, bytes: 30, segments: 2, failures: [] });
    expectSameDatagrams(await receiver.waitFor(2), datagrams);
    expect(() => socket.trySendBatch(datagrams, receiver.port, '127.0.0.1')).toThrow(/connected/);
  });

  test('ICMP port unreachable on a connected socket becomes ECONNREFUSED', async () => {
    const closed = await openReceiver('udp4');
    const port = closed.port;
    await closed.close();
    socket.connect(port, '127.0.0.1');
    // The first datagram draws the ICMP error; a later send reports it. Bounded: 50 tries.
    let failure: unknown;
    for (let attempt = 0; attempt < 50 && failure === undefined; attempt++) {
      try {
        await socket.sendBatch([patterned(attempt, 8)]);
      } catch (error) {
        failure = error;
      }
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(failure).toBeInstanceOf(WskError);
    const error = failure as WskError;
    expect(error.code).toBe('ECONNREFUSED');
    expect(error.statusName).toBe('STATUS_CONNECTION_REFUSED');
    expect(error.status).toBe(0xc0000236);
    expect(error.syscall).toBe(nativeBackend()); // sendmmsg, or sendmsg for the portable loop
    expect(error.datagramsSent).toBe(0);
  });

  test('bind reports the bound address and a busy port is a typed error', () => {
    const local = socket.bind(0, '127.0.0.1');
    expect(local.address).toBe('127.0.0.1');
    expect(local.port).toBeGreaterThan(0);
    const other = createSocket('udp4');
    try {
      expect(() => other.bind(local.port, '127.0.0.1')).toThrow(
        expect.objectContaining({ code: 'EADDRINUSE', statusName: 'STATUS_ADDRESS_ALREADY_ASSOCIATED', syscall: 'bind' }),
      );
    } finally {
      other.close();
    }
  });

  test('SO_SNDBUF can be set and read back', () => {
    socket.setSendBufferSize(65536);
    // Linux doubles the value to account for bookkeeping.
    expect(socket.getSendBufferSize()).toBe(131072);
  });

  test('bad arguments are TypeError / RangeError and send nothing', async () => {
    const one = [patterned(0, 4)];
    expect(() => socket.trySendBatch('x' as never, receiver.port)).toThrow(TypeError);
    expect(() => socket.trySendBatch([42 as never], receiver.port)).toThrow(TypeError);
    expect(() => socket.trySendBatch([[new Uint8Array(1), 'x' as never]], receiver.port)).toThrow(TypeError);
    expect(() => socket.trySendBatch(one, 0)).toThrow(RangeError);
    expect(() => socket.trySendBatch(one, 65536)).toThrow(RangeError);
    expect(() => socket.trySendBatch(one, 1.5)).toThrow(RangeError);
    expect(() => socket.trySendBatch(one)).toThrow(/destination port is required/);
    expect(() => socket.trySendBatch(one, receiver.port, 'localhost')).toThrow(TypeError);
    expect(() => socket.trySendBatch(one, receiver.port, '::1')).toThrow(/IPv6 but the socket is udp4/);
    expect(() => socket.trySendBatch([new Uint8Array(MAX_UDP_PAYLOAD[4] + 1)], receiver.port)).toThrow(RangeError);
    expect(() => socket.trySendBatch([[new Uint8Array(40000), new Uint8Array(40000)]], receiver.port)).toThrow(RangeError);
    expect(() => socket.trySendBatch([Array.from({ length: 1025 }, () => new Uint8Array(1))], receiver.port)).toThrow(RangeError);
    expect(() => createSocket('udp5' as never)).toThrow(TypeError);
    // sendBatch throws them at once too (node:dgram's rule for programming errors): no promise.
    expect(() => socket.sendBatch('x' as never, receiver.port)).toThrow(TypeError);
    expect(() => socket.sendBatch(one, 0)).toThrow(RangeError);
    expect(() => socket.sendBatch(one)).toThrow(/destination port is required/);
    expect(() => socket.sendBatch(one, receiver.port, '127.0.0.1', { gso: 1 as never })).toThrow(TypeError);
    expect(() => socket.sendBatch(one, receiver.port, '127.0.0.1', { continueOnError: 'yes' as never })).toThrow(TypeError);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(receiver.received).toHaveLength(0);
  });

  test('options are read once: a getter that answers a boolean, then garbage, cannot slip past the check', async () => {
    let reads = 0;
    const flipping = { get gso(): unknown { return ++reads === 1 ? true : 'garbage'; } };
    expect(socket.trySendBatch([patterned(0, 4)], receiver.port, '127.0.0.1', flipping as never).datagrams).toBe(1);
    expect(reads).toBe(1);
    expect((await receiver.waitFor(1)).length).toBe(1);
  });

  test('a datagram or piece whose memory is gone (detached, or out of bounds of a shrunk resizable buffer) is a RangeError; nothing is sent', async () => {
    const Resizable = ArrayBuffer as unknown as
      new (length: number, options: { maxByteLength: number }) => ArrayBuffer & { resize(n: number): void };
    const shrunk = new Resizable(64, { maxByteLength: 64 });
    const outOfBounds = new Uint8Array(shrunk, 0, 64);
    shrunk.resize(16);
    const detached = new Uint8Array(32);
    structuredClone(detached.buffer, { transfer: [detached.buffer] });
    const good = Buffer.from('fine');
    for (const gone of [outOfBounds, detached]) {
      expect(gone.byteLength).toBe(0);
      const attempts: Array<() => unknown> = [
        () => socket.trySendBatch([good, gone], receiver.port, '127.0.0.1'),
        () => socket.trySendBatch([good, [good, gone]], receiver.port, '127.0.0.1'),
      ];
      for (const attempt of attempts) expect(attempt).toThrow(/has no memory/);
      expect(() => socket.sendBatch([good, gone], receiver.port, '127.0.0.1')).toThrow(RangeError);
    }
    // An empty datagram that is empty by design still goes out.
    expect(socket.trySendBatch([new Uint8Array(0), good], receiver.port, '127.0.0.1')).toEqual({ datagrams: 2, bytes: 4, segments: 2, failures: [] });
    const got = await receiver.waitFor(2);
    expect(got.map((d) => d.toString())).toEqual(['', 'fine']);
  });

  test('a closed socket refuses to send with EBADF / STATUS_INVALID_HANDLE', async () => {
    socket.close();
    expect(socket.closed).toBe(true);
    expect(socket.fd).toBe(-1);
    await expect(socket.sendBatch([patterned(0, 4)], receiver.port)).rejects.toMatchObject({
      name: 'WskError', code: 'EBADF', statusName: 'STATUS_INVALID_HANDLE', status: 0xc0000008, datagramsSent: 0,
    });
    socket.close(); // idempotent
  });
});

describe('UdpSocket over IPv6 loopback', () => {
  test('batches reach ::1 byte for byte, including the IPv6 maximum payload', async () => {
    const receiver = await openReceiver('udp6');
    const socket = createSocket({ type: 'udp6' });
    try {
      expect(socket.bind(0, '::1')).toMatchObject({ address: '::1', family: 'IPv6' });
      const datagrams = [patterned(0, 0), patterned(1, 1200), patterned(2, MAX_UDP_PAYLOAD[6]),
        ...Array.from({ length: 1100 }, (_, i) => patterned(i + 3, 100))];
      const result = await socket.sendBatch(datagrams, receiver.port, '::1');
      expect(result.datagrams).toBe(datagrams.length);
      expect(result.bytes).toBe(1200 + MAX_UDP_PAYLOAD[6] + 1100 * 100);
      expectSameDatagrams(await receiver.waitFor(datagrams.length), datagrams);
      expect(() => socket.trySendBatch([new Uint8Array(MAX_UDP_PAYLOAD[6] + 1)], receiver.port, '::1')).toThrow(RangeError);
      expect(() => socket.trySendBatch([new Uint8Array(1)], receiver.port, '127.0.0.1')).toThrow(/IPv4 but the socket is udp6/);
    } finally {
      socket.close();
      await receiver.close();
    }
  });
});
