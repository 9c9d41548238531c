/**
 * Dual-stack address handling without the addon: on a dual-stack IPv6 socket an IPv4 literal
 * becomes its IPv4-mapped address (text ::ffff:a.b.c.d, record family 6 with those 16 bytes) in
 * every place a destination or a source is read; an IPv6-only socket refuses it as before.
 */
import { parseIpLiteral, v4MappedLiteral } from '../../lib/address';
import {
  buildAddressedBatch, buildFanOutBatch, DESTINATION_RECORD_BYTES, DestinationCache, DestinationSet,
  encodeDestination, type BuildOptions,
} from '../../lib/batch';
import { nativeControls } from '../../lib/controls';
import { wskBufList } from '../../lib/wsk/buf';
import {
  buildControlInfo, controlInPktinfo, controlInt, IP_TOS, IP_TTL, IPPROTO_IP, IPPROTO_IPV6, IPV6_TCLASS,
  parseControlInfo, translateControls,
} from '../../lib/wsk/cmsg';
import { IoAllocateIrp } from '../../lib/wsk/irp';
import { mdlChain } from '../../lib/wsk/mdl';
import { WskSendMessages } from '../../lib/wsk/send-messages';
import { FakeSender } from './fake-sender';

const STATUS_SUCCESS = 0;
const STATUS_INVALID_PARAMETER = 0xc000000d;
const STATUS_NOT_SUPPORTED = 0xc00000bb;
const STATUS_INVALID_ADDRESS_COMPONENT = 0xc0000207;

const V6: BuildOptions = { family: 6, segment: false, continueOnError: true, controls: undefined };

/** 16 address bytes of ::ffff:a.b.c.d. */
function mappedBytes(a: number, b: number, c: number, d: number): number[] {
  return [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d];
}

/** A destination record: family 6, 0, port big-endian, scope 0, the address bytes. */
function record(port: number, address: number[]): number[] {
  return [6, 0, port >> 8, port & 0xff, 0, 0, 0, 0, ...address];
}

describe('parseIpLiteral on a dual-stack socket', () => {
  test('an IPv4 literal comes back IPv4-mapped; IPv6 and IPv4-mapped literals as they are', () => {
    expect(parseIpLiteral('127.0.0.1', 6, true)).toEqual({ address: '::ffff:127.0.0.1', scopeId: 0 });
    expect(parseIpLiteral('0.0.0.0', 6, true)).toEqual({ address: '::ffff:0.0.0.0', scopeId: 0 });
    expect(parseIpLiteral('::ffff:10.1.2.3', 6, true)).toEqual({ address: '::ffff:10.1.2.3', scopeId: 0 });
    expect(parseIpLiteral('fe80::1%3', 6, true)).toEqual({ address: 'fe80::1', scopeId: 3 });
    expect(v4MappedLiteral('192.0.2.1')).toBe('::ffff:192.0.2.1');
  });

  test('what is not an IP literal stays a TypeError; an IPv4 literal has no zone', () => {
    for (const bad of ['localhost', '127.0.0.1%1', '256.0.0.1', '', 7]) {
      expect(() => parseIpLiteral(bad, 6, true)).toThrow(TypeError);
    }
  });

  test('IPv6-only (the default) refuses an IPv4 literal and says how to get dual stack; udp4 ignores the flag', () => {
    expect(() => parseIpLiteral('127.0.0.1', 6)).toThrow(/IPv4 but the socket is udp6 \(IPv6-only: create it with ipv6Only: false/);
    expect(() => parseIpLiteral('127.0.0.1', 6, false)).toThrow(TypeError);
    expect(parseIpLiteral('::ffff:127.0.0.1', 6)).toEqual({ address: '::ffff:127.0.0.1', scopeId: 0 });
    expect(parseIpLiteral('127.0.0.1', 4, true)).toEqual({ address: '127.0.0.1', scopeId: 0 });
    expect(() => parseIpLiteral('::ffff:127.0.0.1', 4, true)).toThrow(/IPv6 but the socket is udp4/);
  });
});

describe('destination records on a dual-stack socket', () => {
  test('a plain and an IPv4-mapped literal give one record: family 6, ::ffff:a.b.c.d', () => {
    const cache = new DestinationCache(6, 256, true);
    const plain = cache.destination(4433, '198.18.0.7');
    const mapped = cache.destination(4433, '::ffff:198.18.0.7');
    expect(plain).toMatchObject({ family: 6, address: '::ffff:198.18.0.7', port: 4433, scopeId: 0 });
    const expected = record(4433, mappedBytes(198, 18, 0, 7));
    for (const destination of [plain, mapped]) {
      const table = new Uint8Array(DESTINATION_RECORD_BYTES);
      encodeDestination(destination, table, 0);
      expect([...table]).toEqual(expected);
    }
  });

  test('an IPv6-only cache refuses the IPv4 literal, and a udp4 cache is not dual-stack', () => {
    expect(() => new DestinationCache(6).destination(1, '127.0.0.1')).toThrow(TypeError);
    expect(new DestinationCache(4, 256, true).destination(1, '127.0.0.1'))
      .toMatchObject({ family: 4, address: '127.0.0.1' });
  });

  test('sendTo\'s table: both spellings of one IPv4 peer share an entry beside the IPv6 peer', () => {
    const cache = new DestinationCache(6, 256, true);
    const destinations = [
      cache.destination(1000, '127.0.0.1'),
      cache.destination(1000, '::1'),
      cache.destination(1000, '::ffff:127.0.0.1'),
    ];
    const batch = buildAddressedBatch([new Uint8Array(1), new Uint8Array(2), new Uint8Array(3)], destinations, V6);
    expect(batch.endpoints.map((e) => e.address)).toEqual(['::ffff:127.0.0.1', '::1']);
    expect([...batch.targets!]).toEqual([0, 1, 0]);
    expect([...batch.destinations!]).toEqual([
      ...record(1000, mappedBytes(127, 0, 0, 1)),
      ...record(1000, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
    ]);
  });

  test('a prepared set holds the same records, and fans out through them', () => {
    const cache = new DestinationCache(6, 256, true);
    const set = new DestinationSet(6, [cache.destination(53, '10.0.0.1'), cache.destination(53, 'fd00::1')]);
    expect([...set.table.subarray(0, DESTINATION_RECORD_BYTES)]).toEqual(record(53, mappedBytes(10, 0, 0, 1)));
    const batch = buildFanOutBatch([new Uint8Array(4)], set, V6);
    expect(batch.destinations).toBe(set.table);
    expect([...batch.targets!]).toEqual([0, 1]);
  });
});

describe('nativeControls on a dual-stack socket', () => {
  test('an IPv4 source becomes IPv4-mapped; an IPv6 source stays; IPv6-only refuses IPv4', () => {
    expect(nativeControls({ sourceAddress: '127.0.0.2', tos: 0xb8, ttl: 9 }, 6, true))
      .toEqual({ sourceAddress: '::ffff:127.0.0.2', tos: 0xb8, ttl: 9 });
    expect(nativeControls({ sourceAddress: '::ffff:127.0.0.2' }, 6, true)).toEqual({ sourceAddress: '::ffff:127.0.0.2' });
    expect(nativeControls({ sourceAddress: '::1' }, 6, true)).toEqual({ sourceAddress: '::1' });
    expect(() => nativeControls({ sourceAddress: '127.0.0.2' }, 6)).toThrow(TypeError);
    expect(() => nativeControls({ sourceAddress: '127.0.0.2' }, 6, false)).toThrow(TypeError);
  });
});

describe('the WSK layer on a dual-stack socket', () => {
  const objects = (...controls: ReturnType<typeof controlInt>[]): ReturnType<typeof parseControlInfo> =>
    parseControlInfo(buildControlInfo(controls), buildControlInfo(controls).byteLength);

  test('translateControls takes IPPROTO_IP controls on a dual-stack IPv6 socket only', () => {
    const parsed = objects(controlInt(IPPROTO_IP, IP_TOS, 0xb8), controlInt(IPPROTO_IP, IP_TTL, 9),
      controlInPktinfo('127.0.0.2', 0));
    if (!parsed.ok) throw new Error(parsed.reason);
    expect(translateControls(parsed.objects, 6, true))
      .toEqual({ ok: true, controls: { tos: 0xb8, ttl: 9, sourceAddress: '127.0.0.2' } });
    expect(translateControls(parsed.objects, 6)).toMatchObject({ ok: false, status: STATUS_NOT_SUPPORTED });
    expect(translateControls(parsed.objects, 6, false)).toMatchObject({ ok: false, status: STATUS_NOT_SUPPORTED });
    expect(translateControls(parsed.objects, 4, true)).toEqual(translateControls(parsed.objects, 4));
  });

  test('one value at both levels (IP_TOS and IPV6_TCLASS) is refused: a call carries one', () => {
    const parsed = objects(controlInt(IPPROTO_IP, IP_TOS, 0xb8), controlInt(IPPROTO_IPV6, IPV6_TCLASS, 0x10));
    if (!parsed.ok) throw new Error(parsed.reason);
    expect(translateControls(parsed.objects, 6, true)).toMatchObject({
      ok: false, status: STATUS_INVALID_PARAMETER, reason: expect.stringMatching(/IPV6_TCLASS and IP_TOS both give tos/) as string,
    });
  });

  test('WskSendMessages: IPv4-level controls for an IPv4-mapped peer reach the socket in neutral form', () => {
    const sender = Object.assign(new FakeSender(6), { ipv6Only: false });
    const control = buildControlInfo([controlInt(IPPROTO_IP, IP_TOS, 0xb8), controlInPktinfo('127.0.0.2', 0)]);
    const list = wskBufList([{ Mdl: mdlChain(new Uint8Array(3)), Offset: 0, Length: 3 }]);
    const remote = { family: 'IPv6' as const, address: '::ffff:127.0.0.1', port: 4433 };
    const status = WskSendMessages(sender, list, 0, remote, control.byteLength, control, IoAllocateIrp());
    expect(status).toBe(STATUS_SUCCESS);
    expect(sender.calls[0]!.controls).toEqual({ tos: 0xb8, sourceAddress: '::ffff:127.0.0.2' });
    expect([...sender.calls[0]!.batch.destinations!]).toEqual(record(4433, mappedBytes(127, 0, 0, 1)));
    // An IPv6-only socket refuses the same controls; a SOCKADDR_IN is refused either way (WSK
    // takes an IPv4 peer of an IPv6 socket as IPv4-mapped).
    const only = new FakeSender(6);
    expect(WskSendMessages(only, list, 0, remote, control.byteLength, control, IoAllocateIrp())).toBe(STATUS_NOT_SUPPORTED);
    const v4 = { family: 'IPv4' as const, address: '127.0.0.1', port: 4433 };
    expect(WskSendMessages(sender, list, 0, v4, 0, null, IoAllocateIrp())).toBe(STATUS_INVALID_ADDRESS_COMPONENT);
    expect(only.calls).toHaveLength(0);
    expect(sender.calls).toHaveLength(1);
  });
});
