/**
 * The Pacer (lib/pacer.ts) over a real socket on loopback: a receiver counts what arrived, the
 * socket's own counters show that paced sends still go a tick's worth per system call (and as
 * GSO super-packets where the kernel takes them). Durations are checked only loosely (a lower
 * bound that shows pacing happened, an upper bound far above the expected time).
 */
import { performance } from 'node:perf_hooks';
import { createSocket, Pacer, type UdpSocket } from '../../dist/lib';

const sockets: UdpSocket[] = [];
afterEach(() => {
  for (const socket of sockets.splice(0)) socket.close();
});

async function receiveAll(receiver: UdpSocket, expected: number, size: number): Promise<number> {
  let received = 0;
  const deadline = performance.now() + 10000;
  while (received < expected && performance.now() < deadline) {
    const batch = await receiver.receiveBatch({ maxDatagrams: 1024, slotSize: 2048, timeoutMs: 500 });
    for (const d of batch) {
      expect(d.data.length).toBe(size);
      received++;
    }
    if (batch.length === 0 && received > 0) break;
  }
  return received;
}

test.each([
  ['an array of datagrams', false],
  ['one packed buffer per tick', true],
])('paced sends from %s: every datagram arrives, a tick per call', async (_label, packed) => {
  const sender = createSocket('udp4');
  const receiver = createSocket('udp4');
  sockets.push(sender, receiver);
  receiver.bind(0, '127.0.0.1');
  const port = receiver.address().port;
  const size = 100;
  const total = 3000;
  const memory = Buffer.alloc(total * size, 0x33);
  let next = 0;
  const started = performance.now();
  const pacer = new Pacer(sender, {
    rate: 20_000, port, address: '127.0.0.1',
    next: ({ datagrams }) => {
      if (next === total) return null;
      const n = Math.min(datagrams, total - next);
      const slice = memory.subarray(next * size, (next + n) * size);
      next += n;
      return packed ? { buffer: slice, segmentSize: size }
        : Array.from({ length: n }, (_, i) => slice.subarray(i * size, (i + 1) * size));
    },
  });
  const [stats, received] = await Promise.all([pacer.done, receiveAll(receiver, total, size)]);
  const elapsed = performance.now() - started;
  expect(stats).toMatchObject({ datagrams: total, bytes: total * size, queued: 0, unsent: 0, failed: 0 });
  expect(received).toBe(total);
  // 3000 at 20k/s take about 150 ms: far more than one tick, far less than 10 s.
  expect(elapsed).toBeGreaterThan(100);
  expect(elapsed).toBeLessThan(10000);
  // A tick's worth per call, each call one system call: far fewer calls than datagrams.
  const socketStats = sender.stats();
  expect(socketStats.datagrams).toBe(total);
  expect(socketStats.syscalls).toBe(stats.calls);
  expect(stats.calls).toBeLessThanOrEqual(stats.ticks);
  expect(stats.calls).toBeLessThan(total / 5);
  // Equal sizes to one destination: GSO super-packets when the kernel has it.
  if (sender.gso) expect(socketStats.messages).toBeLessThan(stats.calls * 2);
});

test('try mode over a real socket: nothing on loopback would block, counts exact', async () => {
  const sender = createSocket({ type: 'udp4', gso: false });
  const receiver = createSocket('udp4');
  sockets.push(sender, receiver);
  receiver.bind(0, '127.0.0.1');
  const datagram = Buffer.alloc(64, 1);
  let left = 1000;
  const pacer = new Pacer(sender, {
    bitrate: 64 * 8 * 10_000, mode: 'try', port: receiver.address().port, address: '127.0.0.1',
    next: ({ bytes }) => {
      if (left === 0) return null;
      const n = Math.min(left, Math.max(1, Math.floor(bytes / 64)));
      left -= n;
      return new Array<Buffer>(n).fill(datagram);
    },
  });
  const [stats, received] = await Promise.all([pacer.done, receiveAll(receiver, 1000, 64)]);
  expect(stats).toMatchObject({ datagrams: 1000, bytes: 64_000, unsent: 0 });
  expect(received).toBe(1000);
  expect(sender.stats().messages).toBe(1000);
});
