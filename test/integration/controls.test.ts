/**
 * Control information round-trips through the kernel: set on the send side (WSK CMSGHDR blocks
 * and the idiomatic options), read back by the batched receiver on loopback.
 */
import {
  buildControlInfo, controlDword, controlIn6Pktinfo, controlInPktinfo, controlInt, createSocket,
  IoAllocateIrp, IoAllocateMdl, IP_ECN, IP_TOS, IP_TTL, IPPROTO_IP, IPPROTO_IPV6,
  IPPROTO_UDP, IPV6_ECN, IPV6_HOPLIMIT, IPV6_TCLASS, UDP_SEND_MSG_SIZE, WskSendMessages, wskBufList,
  type ReceivedDatagram, type UdpSocket,
} from '../../lib';

const STATUS_SUCCESS = 0;
const STATUS_INVALID_PARAMETER = 0xc000000d;
const STATUS_NOT_SUPPORTED = 0xc00000bb;

/** Collects `count` datagrams from the receiver, bounded: at most 40 batches / 3 s. */
async function receive(socket: UdpSocket, count: number): Promise<ReceivedDatagram[]> {
  const received: ReceivedDatagram[] = [];
  const deadline = Date.now() + 3000;
  for (let i = 0; i < 40 && received.length < count && Date.now() < deadline; i++) {
    const batch = await socket.receiveBatch({ timeoutMs: Math.max(1, deadline - Date.now()) });
    // Copy: the arena is reused by the next receive.
    received.push(...batch.map((d) => ({ ...d, data: Uint8Array.from(d.data) })));
  }
  return received;
}

/** Nothing more arrives within `ms`. */
async function expectSilence(socket: UdpSocket, ms = 100): Promise<void> {
  expect(await socket.receiveBatch({ timeoutMs: ms })).toEqual([]);
}

function wskSend(socket: UdpSocket, payloads: Uint8Array[], remote: object, control: Uint8Array | null): number {
  const list = wskBufList(payloads.map((p) => ({ Mdl: IoAllocateMdl(p), Offset: 0, Length: p.byteLength })));
  const irp = IoAllocateIrp();
  const status = WskSendMessages(socket, list, 0, remote as never, control?.byteLength ?? 0, control, irp);
  expect(irp.completed).toBe(true);
  return status;
}

describe.each([
  { type: 'udp4' as const, host: '127.0.0.1', family: 'IPv4' as const },
  { type: 'udp6' as const, host: '::1', family: 'IPv6' as const },
])('$type', ({ type, host, family }) => {
  let receiver: UdpSocket;
  let sender: UdpSocket;
  let remote: { family: 'IPv4' | 'IPv6'; address: string; port: number };
  const v6 = type === 'udp6';
  const level = v6 ? IPPROTO_IPV6 : IPPROTO_IP;

  beforeEach(() => {
    receiver = createSocket(type);
    receiver.bind(0, host);
    receiver.enableReceiveInfo();
    sender = createSocket(type);
    remote = { family, address: host, port: receiver.address().port };
  });
  afterEach(() => {
    sender.close();
    receiver.close();
  });

  test.each([0, 1, 2, 3])('WSK: TOS 0xB8 with ECN codepoint %i arrives as set', async (ecn) => {
    const control = buildControlInfo([
      controlInt(level, v6 ? IPV6_TCLASS : IP_TOS, 0xb8),
      controlInt(level, v6 ? IPV6_ECN : IP_ECN, ecn),
    ]);
    expect(wskSend(sender, [Buffer.from('a'), Buffer.from('b')], remote, control)).toBe(STATUS_SUCCESS);
    const got = await receive(receiver, 2);
    expect(got.map((d) => [Buffer.from(d.data).toString(), d.tos, d.ecn])).toEqual([
      ['a', 0xb8 | ecn, ecn],
      ['b', 0xb8 | ecn, ecn],
    ]);
  });

  test('WSK: TTL / hop limit arrives as set, and the default differs', async () => {
    const control = buildControlInfo([controlInt(level, v6 ? IPV6_HOPLIMIT : IP_TTL, 7)]);
    expect(wskSend(sender, [Buffer.from('x')], remote, control)).toBe(STATUS_SUCCESS);
    expect(wskSend(sender, [Buffer.from('y')], remote, null)).toBe(STATUS_SUCCESS);
    const got = await receive(receiver, 2);
    expect(got[0]!.ttl).toBe(7);
    expect(got[1]!.ttl).toBe(64);
  });

  test('WSK: the source address chosen by packet info', async () => {
    // All of 127/8 is local, so 127.0.0.2 is a source the kernel accepts; ::1 is IPv6's only one.
    const source = v6 ? '::1' : '127.0.0.2';
    const control = buildControlInfo([v6 ? controlIn6Pktinfo(source, 0) : controlInPktinfo(source, 0)]);
    expect(wskSend(sender, [Buffer.from('s')], remote, control)).toBe(STATUS_SUCCESS);
    const [datagram] = await receive(receiver, 1);
    expect(datagram!.source.address).toBe(source);
    expect(datagram!.destination).toBe(host);
    expect(datagram!.interfaceIndex).toBeGreaterThan(0);
    if (!v6) {
      // Without the control the source is the destination's own address.
      expect(wskSend(sender, [Buffer.from('t')], remote, null)).toBe(STATUS_SUCCESS);
      expect((await receive(receiver, 1))[0]!.source.address).toBe('127.0.0.1');
    }
  });

  test('WSK: UDP_SEND_MSG_SIZE splits one buffer into datagrams of that size (GRO off)', async () => {
    const payload = Uint8Array.from({ length: 5000 }, (_, i) => (i * 13) & 0xff);
    const control = buildControlInfo([controlDword(IPPROTO_UDP, UDP_SEND_MSG_SIZE, 1200)]);
    expect(wskSend(sender, [payload], remote, control)).toBe(STATUS_SUCCESS);
    const got = await receive(receiver, 5);
    expect(got.map((d) => d.data.byteLength)).toEqual([1200, 1200, 1200, 1200, 200]);
    expect(Buffer.concat(got.map((d) => d.data)).equals(Buffer.from(payload))).toBe(true);
    expect(got.every((d) => d.segmentSize === 0)).toBe(true);
    await expectSilence(receiver);
  });

  test('WSK: UDP_SEND_MSG_SIZE arrives as one coalesced chunk with its segment size (GRO on)', async () => {
    receiver.enableReceiveInfo({ gro: true });
    const payload = Uint8Array.from({ length: 6000 }, (_, i) => (i * 7) & 0xff);
    const control = buildControlInfo([controlDword(IPPROTO_UDP, UDP_SEND_MSG_SIZE, 1000)]);
    expect(wskSend(sender, [payload], remote, control)).toBe(STATUS_SUCCESS);
    const got = await receive(receiver, 1);
    expect(got).toHaveLength(1);
    expect(got[0]!.segmentSize).toBe(1000);
    expect(Buffer.from(got[0]!.data).equals(Buffer.from(payload))).toBe(true);
  });

  test('WSK: malformed and unsupported blocks give their NTSTATUS and send nothing', async () => {
    const good = [Buffer.from('never')];
    const truncated = buildControlInfo([controlInt(level, v6 ? IPV6_TCLASS : IP_TOS, 1)]).subarray(0, 12);
    expect(wskSend(sender, good, remote, truncated)).toBe(STATUS_INVALID_PARAMETER);
    const unknown = buildControlInfo([controlInt(level, 77, 1)]);
    expect(wskSend(sender, good, remote, unknown)).toBe(STATUS_NOT_SUPPORTED);
    const otherFamily = buildControlInfo([controlInt(v6 ? IPPROTO_IP : IPPROTO_IPV6, v6 ? IP_TOS : IPV6_TCLASS, 1)]);
    expect(wskSend(sender, good, remote, otherFamily)).toBe(STATUS_NOT_SUPPORTED);
    const outOfRange = buildControlInfo([controlInt(level, v6 ? IPV6_HOPLIMIT : IP_TTL, 300)]);
    expect(wskSend(sender, good, remote, outOfRange)).toBe(STATUS_INVALID_PARAMETER);
    // A good control after a bad one does not rescue the call.
    const mixed = buildControlInfo([controlInt(level, v6 ? IPV6_HOPLIMIT : IP_TTL, 9), controlInt(level, 77, 1)]);
    expect(wskSend(sender, good, remote, mixed)).toBe(STATUS_NOT_SUPPORTED);
    await expectSilence(receiver);
  });

  test('idiomatic options: tos, ecn, ttl, sourceAddress, segmentSize', async () => {
    const source = v6 ? '::1' : '127.0.0.3';
    await sender.sendBatch([Buffer.from('o1'), Buffer.from('o2')], remote.port, host,
      { tos: 0x28, ecn: 2, ttl: 3, sourceAddress: source });
    const got = await receive(receiver, 2);
    expect(got.map((d) => [Buffer.from(d.data).toString(), d.tos, d.ecn, d.ttl, d.source.address]))
      .toEqual([['o1', 0x2a, 2, 3, source], ['o2', 0x2a, 2, 3, source]]);
    sender.trySendBatch([new Uint8Array(2500)], remote.port, host, { segmentSize: 1000 });
    expect((await receive(receiver, 3)).map((d) => d.data.byteLength)).toEqual([1000, 1000, 500]);
    expect(() => sender.trySendBatch([Buffer.from('z')], remote.port, host, { ecn: 4 })).toThrow(RangeError);
    expect(() => sender.trySendBatch([Buffer.from('z')], remote.port, host, { ttl: 0 })).toThrow(RangeError);
    expect(() => sender.trySendBatch([Buffer.from('z')], remote.port, host, { tos: 1.5 })).toThrow(TypeError);
    expect(() => sender.trySendBatch([Buffer.from('z')], remote.port, host, { sourceAddress: v6 ? '127.0.0.1' : '::1' }))
      .toThrow(TypeError);
    await expectSilence(receiver);
  });

  test('the receiver as an async iterator, and receiveBatch ends with [] on close', async () => {
    sender.trySendBatch([1, 2, 3, 4, 5].map((n) => Buffer.from([n])), remote.port, host);
    const seen: number[] = [];
    for await (const datagram of receiver.datagrams({ maxDatagrams: 2, timeoutMs: 500 })) {
      seen.push(datagram.data[0]!);
      if (seen.length === 5) break;
    }
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    const waiting = receiver.receiveBatch();
    receiver.close();
    await expect(waiting).resolves.toEqual([]);
  });
});
