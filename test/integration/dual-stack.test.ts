/**
 * Dual stack on real loopback sockets: one IPv6 socket created with `ipv6Only: false` sends to
 * an IPv4 peer (127.0.0.1) and an IPv6 peer (::1) in one program, and receives from both.
 *
 * The peers: node:dgram sockets (bytes and sources as dgram users see them) and our own batched
 * receivers with packet information (TOS, TTL, destination), one udp4 on 127.0.0.1 and one
 * udp6 on ::1. The kernel reads only IPv4-level controls for an IPv4-mapped destination (Linux:
 * udpv6_sendmsg hands it to udp_sendmsg), so the TOS/TTL checks fail if a message to an IPv4
 * peer carries IPV6_TCLASS / IPV6_HOPLIMIT. Runs on both back-ends (WSK_DGRAM_BACKEND=sendmsg).
 */
import * as dgram from 'node:dgram';
import * as os from 'node:os';
import {
  buildControlInfo, controlInPktinfo, controlInt, createSocket, IoAllocateIrp, IoAllocateMdl, IP_TOS, IP_TTL,
  IPPROTO_IP, IPPROTO_IPV6, IPV6_HOPLIMIT, IPV6_TCLASS, WskError, WskSendMessages, wskBufList,
  type ReceivedDatagram, type UdpSocket,
} from '../../lib';
import { binding } from '../../lib/binding';
import { openUdpSocketCount, patterned } from './receiver';

const { EACCES, EAFNOSUPPORT, EINVAL, ENETUNREACH } = os.constants.errno;
/** 127.0.0.0/8's broadcast address on lo: a send without SO_BROADCAST gives EACCES, locally. */
const BROADCAST = '127.255.255.255';

interface DgramMessage {
  data: Buffer;
  address: string;
  family: string;
  port: number;
}

/** A node:dgram receiver that keeps every datagram with its rinfo. */
interface DgramPeer {
  readonly socket: dgram.Socket;
  readonly port: number;
  readonly messages: DgramMessage[];
  /** The first `count` datagrams, or a rejection after `timeoutMs` saying what arrived. */
  waitFor(count: number, timeoutMs?: number): Promise<DgramMessage[]>;
  close(): Promise<void>;
}

async function openDgramPeer(options: dgram.SocketOptions, address: string): Promise<DgramPeer> {
  const socket = dgram.createSocket(options);
  const messages: DgramMessage[] = [];
  let notify: (() => void) | null = null;
  socket.on('message', (data, rinfo) => {
    messages.push({ data, address: rinfo.address, family: rinfo.family, port: rinfo.port });
    notify?.();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, address, () => resolve());
  });
  return {
    socket,
    port: socket.address().port,
    messages,
    waitFor(count, timeoutMs = 3000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          notify = null;
          reject(new Error(`received ${messages.length} of ${count} datagrams in ${timeoutMs} ms`));
        }, timeoutMs);
        const check = (): void => {
          if (messages.length < count) return;
          clearTimeout(timer);
          notify = null;
          resolve(messages.slice(0, count));
        };
        notify = check;
        check();
      });
    },
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}

/** Collects `count` datagrams (copied out of the arena), bounded: at most 40 batches / 3 s. */
async function receive(socket: UdpSocket, count: number): Promise<ReceivedDatagram[]> {
  const received: ReceivedDatagram[] = [];
  const deadline = Date.now() + 3000;
  for (let i = 0; i < 40 && received.length < count && Date.now() < deadline; i++) {
    const batch = await socket.receiveBatch({ timeoutMs: Math.max(1, deadline - Date.now()) });
    received.push(...batch.map((d) => ({ ...d, data: Uint8Array.from(d.data) })));
  }
  return received;
}

/** What a receiver saw of each datagram: text, source, TOS, TTL. */
function seen(datagrams: ReceivedDatagram[]): [string, string, number, number | null, number | null][] {
  return datagrams.map((d) => [Buffer.from(d.data).toString(), d.source.address, d.source.port, d.tos, d.ttl]);
}

const text = (s: string): Buffer => Buffer.from(s);

describe('a dual-stack udp6 socket (ipv6Only: false)', () => {
  let sender: UdpSocket;
  let senderPort: number;
  let info4: UdpSocket; // udp4 on 127.0.0.1, with packet information
  let info6: UdpSocket; // udp6 on ::1, with packet information
  let descriptorsBefore: number;

  beforeEach(() => {
    descriptorsBefore = openUdpSocketCount();
    sender = createSocket({ type: 'udp6', ipv6Only: false });
    senderPort = sender.bind().port;
    info4 = createSocket('udp4');
    info4.bind(0, '127.0.0.1');
    info4.enableReceiveInfo();
    info6 = createSocket('udp6');
    info6.bind(0, '::1');
    info6.enableReceiveInfo();
  });
  afterEach(() => {
    sender.close();
    info4.close();
    info6.close();
    expect(openUdpSocketCount()).toBe(descriptorsBefore);
  });

  test('it says it is dual-stack, bound to :: like node:dgram\'s dual-stack socket', async () => {
    expect(sender.ipv6Only).toBe(false);
    expect(sender.family).toBe(6);
    const reference = dgram.createSocket({ type: 'udp6', ipv6Only: false });
    await new Promise<void>((resolve) => reference.bind(0, resolve));
    const { port: _ignored, ...theirs } = reference.address();
    const { port: _ours, ...ours } = sender.address();
    await new Promise<void>((resolve) => reference.close(() => resolve()));
    expect(ours).toEqual(theirs);
    expect(ours).toEqual({ address: '::', family: 'IPv6' });
  });

  test('one sendTo batch reaches a udp4 and a udp6 node:dgram peer: bytes, order and source', async () => {
    const peer4 = await openDgramPeer({ type: 'udp4' }, '127.0.0.1');
    const peer6 = await openDgramPeer({ type: 'udp6' }, '::1');
    try {
      const sizes = [1, 1200, 1200, 1200, 300, 0, 65507];
      const messages = sizes.map((size, i) => ({
        data: patterned(i, size),
        port: i % 2 === 0 ? peer4.port : peer6.port,
        // Even: IPv4, alternately as a plain and an IPv4-mapped literal; odd: IPv6.
        address: i % 2 === 1 ? '::1' : i % 4 === 0 ? '127.0.0.1' : '::ffff:127.0.0.1',
      }));
      const result = await sender.sendTo(messages);
      expect(result).toEqual({
        datagrams: sizes.length, bytes: sizes.reduce((a, b) => a + b, 0), segments: sizes.length, failures: [],
      });
      const got4 = await peer4.waitFor(4);
      const got6 = await peer6.waitFor(3);
      expect(got4.map((m) => m.data.toString('hex')))
        .toEqual([0, 2, 4, 6].map((i) => Buffer.from(patterned(i, sizes[i]!)).toString('hex')));
      expect(got6.map((m) => m.data.toString('hex')))
        .toEqual([1, 3, 5].map((i) => Buffer.from(patterned(i, sizes[i]!)).toString('hex')));
      // The IPv4 peer sees an IPv4 sender on the socket's port; the IPv6 peer sees ::1.
      for (const m of got4) expect([m.address, m.family, m.port]).toEqual(['127.0.0.1', 'IPv4', senderPort]);
      for (const m of got6) expect([m.address, m.family, m.port]).toEqual(['::1', 'IPv6', senderPort]);
    } finally {
      await peer4.close();
      await peer6.close();
    }
  });

  test('sendBatch to each family, plain and IPv4-mapped literal alike', async () => {
    const batch = [text('one'), text('two'), text('three')];
    expect(await sender.sendBatch(batch, info4.address().port, '127.0.0.1'))
      .toEqual({ datagrams: 3, bytes: 11, segments: 3, failures: [] });
    expect(sender.trySendBatch([text('four')], info4.address().port, '::ffff:127.0.0.1'))
      .toEqual({ datagrams: 1, bytes: 4, segments: 1, failures: [] });
    expect(await sender.sendBatch(batch, info6.address().port, '::1'))
      .toEqual({ datagrams: 3, bytes: 11, segments: 3, failures: [] });
    expect(seen(await receive(info4, 4)).map((d) => d.slice(0, 3)))
      .toEqual(['one', 'two', 'three', 'four'].map((t) => [t, '127.0.0.1', senderPort]));
    expect(seen(await receive(info6, 3)).map((d) => d.slice(0, 3)))
      .toEqual(['one', 'two', 'three'].map((t) => [t, '::1', senderPort]));
  });

  test.each([
    { name: 'tos 0xb8 and ttl 9', options: { tos: 0xb8, ttl: 9 }, tos: 0xb8, ttl: 9 },
    { name: 'DSCP with ECN codepoint 1, ttl 200', options: { tos: 0x28, ecn: 1, ttl: 200 }, tos: 0x29, ttl: 200 },
    { name: 'ECN codepoint 2 alone', options: { ecn: 2 }, tos: 2, ttl: 64 },
  ])('controls ($name) arrive as set at both peers of one sendTo batch', async ({ options, tos, ttl }) => {
    const port4 = info4.address().port;
    const port6 = info6.address().port;
    // Alternating families: each message takes the level its own destination needs.
    const result = await sender.sendTo([
      { data: text('a'), port: port4, address: '127.0.0.1' },
      { data: text('b'), port: port6, address: '::1' },
      { data: text('c'), port: port4, address: '::ffff:127.0.0.1' },
      { data: text('d'), port: port6, address: '::1' },
    ], options);
    expect(result.datagrams).toBe(4);
    // Linux's default TTL / hop limit on loopback is 64 (net.ipv4.ip_default_ttl, hop_limit).
    expect(seen(await receive(info4, 2))).toEqual([
      ['a', '127.0.0.1', senderPort, tos, ttl], ['c', '127.0.0.1', senderPort, tos, ttl],
    ]);
    expect(seen(await receive(info6, 2))).toEqual([
      ['b', '::1', senderPort, tos, ttl], ['d', '::1', senderPort, tos, ttl],
    ]);
  });

  test('controls on sendBatch, sendToMany and a prepared destination set reach an IPv4 peer', async () => {
    const port4 = info4.address().port;
    const port6 = info6.address().port;
    await sender.sendBatch([text('batch')], port4, '127.0.0.1', { tos: 0x10, ttl: 3 });
    const peers = [{ port: port4, address: '127.0.0.1' }, { port: port6, address: '::1' }];
    expect((await sender.sendToMany([text('many')], peers, { tos: 0x20, ttl: 4 })).datagrams).toBe(2);
    const prepared = sender.prepareDestinations(peers);
    expect(prepared.endpoints.map((e) => e.address)).toEqual(['::ffff:127.0.0.1', '::1']);
    expect(sender.trySendToMany([text('set')], prepared, { tos: 0x30, ttl: 5 }).datagrams).toBe(2);
    expect(seen(await receive(info4, 3))).toEqual([
      ['batch', '127.0.0.1', senderPort, 0x10, 3],
      ['many', '127.0.0.1', senderPort, 0x20, 4],
      ['set', '127.0.0.1', senderPort, 0x30, 5],
    ]);
    expect(seen(await receive(info6, 2))).toEqual([
      ['many', '::1', senderPort, 0x20, 4],
      ['set', '::1', senderPort, 0x30, 5],
    ]);
  });

  test('an IPv4 source address (plain or IPv4-mapped) is the source an IPv4 peer sees', async () => {
    const port4 = info4.address().port;
    // 127.0.0.0/8 is all local: any of it may be a source on lo.
    await sender.sendBatch([text('plain')], port4, '127.0.0.1', { sourceAddress: '127.0.0.2', tos: 0x08 });
    await sender.sendBatch([text('mapped')], port4, '::ffff:127.0.0.1', { sourceAddress: '::ffff:127.0.0.3' });
    const got = await receive(info4, 2);
    expect(got.map((d) => [Buffer.from(d.data).toString(), d.source.address, d.tos]))
      .toEqual([['plain', '127.0.0.2', 0x08], ['mapped', '127.0.0.3', 0]]);
    // An IPv6 source still works for an IPv6 peer.
    await sender.sendBatch([text('six')], info6.address().port, '::1', { sourceAddress: '::1', ttl: 6 });
    expect(seen(await receive(info6, 1))).toEqual([['six', '::1', senderPort, 0, 6]]);
  });

  test('a source of the other family than its peer is the kernel\'s to refuse (EINVAL), counted exactly', async () => {
    const port4 = info4.address().port;
    const port6 = info6.address().port;
    // Datagram 0 (IPv4 peer, IPv4 source) goes; datagram 1 (IPv6 peer, IPv4 source) is refused.
    const sending = sender.sendTo([
      { data: text('ok'), port: port4, address: '127.0.0.1' },
      { data: text('no'), port: port6, address: '::1' },
    ], { sourceAddress: '127.0.0.2' });
    await expect(sending).rejects.toMatchObject({ name: 'WskError', errno: EINVAL, datagramsSent: 1 });
    expect(seen(await receive(info4, 1)).map((d) => d.slice(0, 2))).toEqual([['ok', '127.0.0.2']]);
    expect(await info6.receiveBatch({ timeoutMs: 100 })).toEqual([]);
  });

  test('connect to a plain IPv4 literal: remote and remoteAddress() in IPv4-mapped form, as dgram; controls arrive', async () => {
    const port4 = info4.address().port;
    const connected = createSocket({ type: 'udp6', ipv6Only: false });
    try {
      connected.connect(port4, '127.0.0.1');
      expect(connected.remote).toEqual({ family: 6, address: '::ffff:127.0.0.1', port: port4, scopeId: 0 });
      expect(connected.remoteAddress()).toEqual({ address: '::ffff:127.0.0.1', family: 'IPv6', port: port4 });
      const local = connected.address();
      expect([local.address, local.family]).toEqual(['::ffff:127.0.0.1', 'IPv6']);
      await connected.sendBatch([text('c1'), text('c2')], undefined, undefined, { tos: 0x40, ttl: 11 });
      expect(connected.trySendBatch([text('c3')], undefined, undefined, { ecn: 3 }).datagrams).toBe(1);
      expect(seen(await receive(info4, 3))).toEqual([
        ['c1', '127.0.0.1', local.port, 0x40, 11],
        ['c2', '127.0.0.1', local.port, 0x40, 11],
        ['c3', '127.0.0.1', local.port, 3, 64],
      ]);
    } finally {
      connected.close();
    }
  });

  test('a connected IPv6 remote keeps IPv6-level controls', async () => {
    const connected = createSocket({ type: 'udp6', ipv6Only: false });
    try {
      connected.connect(info6.address().port, '::1');
      await connected.sendBatch([text('v6')], undefined, undefined, { tos: 0x48, ttl: 12 });
      expect(seen(await receive(info6, 1))).toEqual([['v6', '::1', connected.address().port, 0x48, 12]]);
    } finally {
      connected.close();
    }
  });

  test('receives IPv4 and IPv6 senders; sources as node:dgram reports them on a dual-stack socket, with TOS, TTL, destination', async () => {
    const receiver = createSocket({ type: 'udp6', ipv6Only: false });
    const reference = await openDgramPeer({ type: 'udp6', ipv6Only: false }, '::');
    const from4 = createSocket('udp4');
    const from6 = createSocket('udp6');
    try {
      const port = receiver.bind().port;
      receiver.enableReceiveInfo();
      from4.bind(0, '127.0.0.1');
      from6.bind(0, '::1');
      for (const target of [port, reference.port]) {
        await from4.sendBatch([text('four')], target, '127.0.0.1', { tos: 0x14, ttl: 21 });
        await from6.sendBatch([text('six')], target, '::1', { tos: 0x18, ttl: 22 });
      }
      const got = await receive(receiver, 2);
      const theirs = await reference.waitFor(2);
      expect(got.map((d) => ({ data: Buffer.from(d.data).toString(), ...d.source })))
        .toEqual(theirs.map((m) => ({ data: m.data.toString(), address: m.address, family: m.family, port: m.port })));
      expect(got.map((d) => [d.source.address, d.source.family, d.source.port, d.destination, d.tos, d.ttl])).toEqual([
        ['::ffff:127.0.0.1', 'IPv6', from4.address().port, '::ffff:127.0.0.1', 0x14, 21],
        ['::1', 'IPv6', from6.address().port, '::1', 0x18, 22],
      ]);
      // Replying to the reported source reaches the IPv4 sender.
      await receiver.sendBatch([text('reply')], got[0]!.source.port, got[0]!.source.address, { ttl: 30 });
      from4.enableReceiveInfo();
      expect(seen(await receive(from4, 1))).toEqual([['reply', '127.0.0.1', port, 0, 30]]);
    } finally {
      receiver.close();
      from4.close();
      from6.close();
      await reference.close();
    }
  });

  test('a failure names its destination in the IPv4-mapped form the socket reports peers in', async () => {
    const result = await sender.sendTo([
      { data: text('x'), port: 9, address: BROADCAST },
      { data: text('y'), port: info4.address().port, address: '127.0.0.1' },
    ]);
    expect(result.datagrams).toBe(1);
    expect(result.failures).toEqual([
      { index: 0, code: 'EACCES', errno: EACCES, status: 0xc0000022, address: `::ffff:${BROADCAST}`, port: 9 },
    ]);
    expect(seen(await receive(info4, 1)).map((d) => d[0])).toEqual(['y']);
  });

  test('a super-packet to an IPv4 peer stays within IPv4\'s payload limit', async () => {
    expect(sender.gso).toBe(true); // Linux loopback has UDP_SEGMENT (gso.test.ts)
    // 5 x 13105 = 65525 bytes: one IPv6 super-packet, but over IPv4's 65507. Split 4 + 1, it
    // goes in two messages; sent whole, the kernel refuses it (EMSGSIZE) and the socket would
    // give up on this segment size.
    const batch = { buffer: patterned(5, 5 * 13105), segmentSize: 13105 };
    const before = sender.stats().messages;
    expect((await sender.sendBatch(batch, info4.address().port, '127.0.0.1')).datagrams).toBe(5);
    expect(sender.stats().messages - before).toBe(2);
    const got = await receive(info4, 5);
    expect(got.map((d) => d.data.byteLength)).toEqual([13105, 13105, 13105, 13105, 13105]);
    // The same to the IPv6 peer is one super-packet.
    const before6 = sender.stats().messages;
    await sender.sendBatch(batch, info6.address().port, '::1');
    expect(sender.stats().messages - before6).toBe(1);
    expect((await receive(info6, 5)).length).toBe(5);
  });

  test('WskSendMessages to an IPv4-mapped SOCKADDR_IN6 with IPv4-level or IPv6-level controls: they arrive', async () => {
    const remote = { family: 'IPv6' as const, address: '::ffff:127.0.0.1', port: info4.address().port };
    const wskSend = (data: string, controls: ReturnType<typeof controlInt>[]): number => {
      const control = buildControlInfo(controls);
      const irp = IoAllocateIrp();
      const status = WskSendMessages(sender, wskBufList([{ Mdl: IoAllocateMdl(text(data)), Offset: 0, Length: data.length }]),
        0, remote, control.byteLength, control, irp);
      expect(irp.completed).toBe(true);
      return status;
    };
    // As MsQuic does on a dual-stack socket: IPPROTO_IP controls for an IPv4 peer.
    expect(wskSend('ip', [controlInt(IPPROTO_IP, IP_TOS, 0x60), controlInt(IPPROTO_IP, IP_TTL, 13),
      controlInPktinfo('127.0.0.4', 0)])).toBe(0);
    // IPv6-level values go out at the level the IPv4 peer needs all the same.
    expect(wskSend('ipv6', [controlInt(IPPROTO_IPV6, IPV6_TCLASS, 0x68), controlInt(IPPROTO_IPV6, IPV6_HOPLIMIT, 14)])).toBe(0);
    expect(seen(await receive(info4, 2))).toEqual([
      ['ip', '127.0.0.4', senderPort, 0x60, 13],
      ['ipv6', '127.0.0.1', senderPort, 0x68, 14],
    ]);
  });

  test('bind: an IPv4 address binds its IPv4-mapped form, IPv4 only; :: takes both', () => {
    const v4only = createSocket({ type: 'udp6', ipv6Only: false });
    const loop = createSocket({ type: 'udp6', ipv6Only: false });
    try {
      expect(v4only.bind(0, '0.0.0.0').address).toBe('::ffff:0.0.0.0');
      expect(v4only.trySendBatch([text('4')], info4.address().port, '127.0.0.1').datagrams).toBe(1);
      // Bound to the IPv4 wildcard, it has no IPv6 source to send from.
      expect(() => v4only.trySendBatch([text('6')], info6.address().port, '::1'))
        .toThrow(expect.objectContaining({ errno: EAFNOSUPPORT }) as Error);
      expect(loop.bind(0, '127.0.0.1').address).toBe('::ffff:127.0.0.1');
    } finally {
      v4only.close();
      loop.close();
    }
  });
});

describe('the default udp6 socket stays IPv6-only', () => {
  test('ipv6Only true; an IPv4 literal is a TypeError, an IPv4-mapped one the kernel\'s ENETUNREACH', () => {
    for (const socket of [createSocket('udp6'), createSocket({ type: 'udp6', ipv6Only: true })]) {
      try {
        expect(socket.ipv6Only).toBe(true);
        expect(() => socket.trySendBatch([text('x')], 9, '127.0.0.1')).toThrow(/IPv4 but the socket is udp6.*ipv6Only: false/);
        expect(() => socket.connect(9, '127.0.0.1')).toThrow(TypeError);
        expect(() => socket.bind(0, '0.0.0.0')).toThrow(TypeError);
        let error: unknown;
        try {
          socket.trySendBatch([text('x')], 9, '::ffff:127.0.0.1');
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(WskError);
        expect(error).toMatchObject({ errno: ENETUNREACH, datagramsSent: 0 });
      } finally {
        socket.close();
      }
    }
  });

  test('ipv6Only is a udp6 option: a TypeError on udp4 and for a non-boolean; udp4 says false', () => {
    expect(() => createSocket({ type: 'udp4', ipv6Only: false })).toThrow(/ipv6Only is an option of udp6/);
    expect(() => createSocket({ type: 'udp4', ipv6Only: true })).toThrow(TypeError);
    expect(() => createSocket({ type: 'udp6', ipv6Only: 0 as never })).toThrow(/ipv6Only must be a boolean/);
    const socket = createSocket('udp4');
    expect(socket.ipv6Only).toBe(false);
    socket.close();
  });
});

describe('the native open checks ipv6Only itself', () => {
  test('a non-boolean or false on IPv4 is a TypeError and opens nothing; false on IPv6 opens a dual-stack socket', () => {
    const before = openUdpSocketCount();
    const raw = new (binding().UdpSocket)();
    expect(() => raw.open(6, 'no' as never)).toThrow(/ipv6Only must be a boolean/);
    expect(() => raw.open(4, false)).toThrow(/ipv6Only is for IPv6 sockets/);
    expect(raw.fd).toBe(-1);
    expect(openUdpSocketCount()).toBe(before);
    expect(raw.open(6, false)).toBe(0);
    // Dual-stack: an IPv4-mapped bind is allowed (an IPv6-only socket refuses it with EINVAL).
    expect(raw.bind('::ffff:127.0.0.1', 0, 0)).toBe(0);
    raw.close();
    const only = new (binding().UdpSocket)();
    expect(only.open(6, true)).toBe(0);
    expect(only.bind('::ffff:127.0.0.1', 0, 0)).toBe(EINVAL);
    only.close();
    expect(openUdpSocketCount()).toBe(before);
  });
});
