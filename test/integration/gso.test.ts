/**
 * Segmentation offload (UDP_SEGMENT) puts the same datagrams on the wire as plain sends, byte
 * for byte and in order, on loopback. (The veth variant, where segmentation really happens at
 * MTU 1500, is in gso-veth.test.ts.)
 */
import { createSocket, MAX_UDP_PAYLOAD, type Datagram, type UdpSocket } from '../../lib';
import { openReceiver, patterned, type Receiver } from './receiver';

/** Runs that break in every way the coalescing rules know. */
function mixedBatch(family: 4 | 6): Datagram[] {
  const batch: Datagram[] = [];
  let index = 0;
  const add = (size: number, count: number): void => {
    for (let i = 0; i < count; i++) batch.push(patterned(index++, size));
  };
  add(1200, 10);        // a run
  add(700, 1);          // a shorter tail ends it
  add(700, 3);          // a new run of the tail's size
  add(0, 2);            // empty datagrams never coalesce
  add(1472, 60);        // 60 x 1472 > 65507: split by the payload limit
  add(100, 300);        // more than 128 segments: split by the segment limit
  add(1500, 1);         // a larger one after a run
  add(1200, 5);
  add(1300, 1);         // longer than the run's size: cannot join it
  // Equal-size datagrams given as pieces.
  for (let i = 0; i < 4; i++) {
    const whole = patterned(index++, 900);
    batch.push([whole.subarray(0, 100), whole.subarray(100, 900)]);
  }
  add(MAX_UDP_PAYLOAD[family], 2); // each fills a super-packet alone
  add(1, 50);
  return batch;
}

function flat(datagram: Datagram): Buffer {
  return Buffer.concat(datagram instanceof Uint8Array ? [datagram] : datagram);
}

describe.each([
  ['udp4', '127.0.0.1'],
  ['udp6', '::1'],
] as const)('%s loopback', (type, host) => {
  let receiver: Receiver;
  let socket: UdpSocket;
  beforeEach(async () => {
    receiver = await openReceiver(type);
    socket = createSocket({ type });
  });
  afterEach(async () => {
    socket.close();
    await receiver.close();
  });

  test('the kernel offers segmentation and it is on by default', () => {
    expect(socket.gso).toBe(true);
  });

  test('GSO on and off deliver the same datagrams, in order, and GSO uses fewer messages', async () => {
    const family = type === 'udp6' ? 6 : 4;
    const batch = mixedBatch(family);
    const expected = batch.map(flat);
    const total = expected.reduce((sum, d) => sum + d.length, 0);

    const plain = socket.trySendBatch(batch, receiver.port, host, { gso: false });
    expect(plain).toEqual({ datagrams: batch.length, bytes: total, segments: batch.length, failures: [] });
    const afterPlain = socket.stats();
    expect(afterPlain.messages).toBe(batch.length);

    const offloaded = socket.trySendBatch(batch, receiver.port, host, { gso: true });
    expect(offloaded).toEqual({ datagrams: batch.length, bytes: total, segments: batch.length, failures: [] });
    const afterGso = socket.stats();
    const gsoMessages = afterGso.messages - afterPlain.messages;
    // 10+1 | 3 | 1 | 1 | 44+16 | 128+128+44 | 1 | 5+... : far fewer messages than datagrams.
    expect(gsoMessages).toBeLessThan(batch.length / 4);
    expect(afterGso.datagrams).toBe(2 * batch.length);
    expect(afterGso.bytes).toBe(2 * total);

    const received = await receiver.waitFor(2 * batch.length);
    for (let i = 0; i < received.length; i++) {
      const want = expected[i % batch.length]!;
      if (!received[i]!.equals(want)) {
        throw new Error(`datagram ${i} (${i < batch.length ? 'plain' : 'GSO'} pass) differs: ` +
          `${received[i]!.length} B received, ${want.length} B sent`);
      }
    }
  });

  test('the socket option and the per-call option both turn it off', async () => {
    const batch = Array.from({ length: 64 }, (_, i) => patterned(i, 1000));
    socket.gso = false;
    expect(socket.gso).toBe(false);
    socket.trySendBatch(batch, receiver.port, host);
    expect(socket.stats().messages).toBe(64);
    socket.gso = true;
    await socket.sendBatch(batch, receiver.port, host, { gso: false });
    expect(socket.stats().messages).toBe(128);
    await socket.sendBatch(batch, receiver.port, host);
    expect(socket.stats().messages).toBe(129);
    const received = await receiver.waitFor(192);
    expect(received.map((d) => d.readUInt32BE(0))).toEqual([...Array(3)].flatMap(() => batch.map((_, i) => i)));
    expect(() => socket.trySendBatch(batch, receiver.port, host, { gso: 1 as never })).toThrow(TypeError);
    expect(() => createSocket({ type, gso: 'yes' as never })).toThrow(TypeError);
  });
});
