import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import type { SendControls } from '../../lib/transport';
import {
  IPPROTO_IP,
  IPPROTO_IPV6,
  IPPROTO_UDP,
  IPV6_ECN,
  IPV6_HOPLIMIT,
  IPV6_PKTINFO,
  IPV6_TCLASS,
  IP_ECN,
  IP_PKTINFO,
  IP_TOS,
  IP_TTL,
  SUPPORTED_CONTROLS,
  UDP_SEND_MSG_SIZE,
  WSACMSGHDR_SIZE,
  WSA_CMSGDATA_ALIGN,
  WSA_CMSGHDR_ALIGN,
  WSA_CMSG_ALIGNMENT,
  WSA_CMSG_DATA_OFFSET,
  WSA_CMSG_LEN,
  WSA_CMSG_SPACE,
  buildControlInfo,
  controlDword,
  controlIn6Pktinfo,
  controlInPktinfo,
  controlInt,
  encodeControls,
  parseControlInfo,
  translateControls,
  type CMSGHDR,
  type ControlObject,
} from '../../lib/wsk/cmsg';

const STATUS_INVALID_PARAMETER = 0xc000000d;
const STATUS_NOT_SUPPORTED = 0xc00000bb;
const INT_MIN = -(2 ** 31);
const INT_MAX = 2 ** 31 - 1;

/** Hex with spaces and `|` separators to bytes. */
function hex(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text.replace(/[\s|]+/g, ''), 'hex'));
}

function objectsOf(block: unknown, length: unknown): CMSGHDR[] {
  const result = parseControlInfo(block, length);
  if (!result.ok) throw new Error(`expected success, got 0x${result.status.toString(16)}: ${result.reason}`);
  return result.objects;
}

function parseStatus(block: unknown, length: unknown): number | 'ok' {
  const result = parseControlInfo(block, length);
  return result.ok ? 'ok' : result.status;
}

/** Builds, parses and translates: the whole path a WskSendMessages call takes. */
function translateObjects(objects: ControlObject[], family: 4 | 6): ReturnType<typeof translateControls> {
  const block = buildControlInfo(objects);
  return translateControls(objectsOf(block, block.byteLength), family);
}

function controlsOf(objects: ControlObject[], family: 4 | 6): SendControls {
  const result = translateObjects(objects, family);
  if (!result.ok) throw new Error(`expected success, got 0x${result.status.toString(16)}: ${result.reason}`);
  return result.controls;
}

function translateStatus(objects: ControlObject[], family: 4 | 6): number | 'ok' {
  const result = translateObjects(objects, family);
  return result.ok ? 'ok' : result.status;
}

/** A block with a raw header: cmsg_len as a 64-bit value, then level, type and data. */
function rawObject(cmsgLen: bigint, level: number, type: number, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const bytes = new Uint8Array(16 + data.byteLength);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, cmsgLen, true);
  view.setInt32(8, level, true);
  view.setInt32(12, type, true);
  bytes.set(data, 16);
  return bytes;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

describe('framing macros (mswsock.h, x64)', () => {
  it('has a 16-byte header, data at +16, 8-byte alignment', () => {
    expect(WSACMSGHDR_SIZE).toBe(16);
    expect(WSA_CMSG_DATA_OFFSET).toBe(16);
    expect(WSA_CMSG_ALIGNMENT).toBe(8);
  });

  it.each([
    // n, WSA_CMSG_LEN(n), WSA_CMSG_SPACE(n)
    [0, 16, 16],
    [1, 17, 24],
    [4, 20, 24],
    [8, 24, 24],
    [9, 25, 32],
    [20, 36, 40],
  ])('WSA_CMSG_LEN(%i) = %i, WSA_CMSG_SPACE = %i', (n, len, space) => {
    expect(WSA_CMSG_LEN(n)).toBe(len);
    expect(WSA_CMSG_SPACE(n)).toBe(space);
  });

  it('WSA_CMSGHDR_ALIGN / WSA_CMSGDATA_ALIGN round up to 8, also past 2^31', () => {
    expect([0, 1, 7, 8, 9, 16, 17].map(WSA_CMSGHDR_ALIGN)).toEqual([0, 8, 8, 8, 16, 16, 24]);
    expect([0, 1, 8, 9].map(WSA_CMSGDATA_ALIGN)).toEqual([0, 8, 8, 16]);
    expect(WSA_CMSGHDR_ALIGN(2 ** 31 + 1)).toBe(2 ** 31 + 8);
  });

  it('refuses lengths that are not non-negative integers', () => {
    expect(() => WSA_CMSG_LEN(-1)).toThrow(RangeError);
    expect(() => WSA_CMSG_SPACE(1.5)).toThrow(RangeError);
    expect(() => WSA_CMSGHDR_ALIGN(Number.NaN)).toThrow(RangeError);
  });
});

describe('builders: golden bytes', () => {
  // Header: cmsg_len (8 bytes LE) | cmsg_level (INT LE) | cmsg_type (INT LE) | data | padding
  it.each<[string, ControlObject, string]>([
    ['IP_TOS 0xB8', controlInt(IPPROTO_IP, IP_TOS, 0xb8), '14 00 00 00 00 00 00 00 | 00 00 00 00 | 03 00 00 00 | b8 00 00 00 | 00 00 00 00'],
    ['IP_TTL 64', controlInt(IPPROTO_IP, IP_TTL, 64), '14 00 00 00 00 00 00 00 | 00 00 00 00 | 04 00 00 00 | 40 00 00 00 | 00 00 00 00'],
    ['IP_ECN 2', controlInt(IPPROTO_IP, IP_ECN, 2), '14 00 00 00 00 00 00 00 | 00 00 00 00 | 32 00 00 00 | 02 00 00 00 | 00 00 00 00'],
    ['IPV6_TCLASS 0x2E', controlInt(IPPROTO_IPV6, IPV6_TCLASS, 0x2e), '14 00 00 00 00 00 00 00 | 29 00 00 00 | 27 00 00 00 | 2e 00 00 00 | 00 00 00 00'],
    ['IPV6_HOPLIMIT 255', controlInt(IPPROTO_IPV6, IPV6_HOPLIMIT, 255), '14 00 00 00 00 00 00 00 | 29 00 00 00 | 15 00 00 00 | ff 00 00 00 | 00 00 00 00'],
    ['IPV6_ECN 1', controlInt(IPPROTO_IPV6, IPV6_ECN, 1), '14 00 00 00 00 00 00 00 | 29 00 00 00 | 32 00 00 00 | 01 00 00 00 | 00 00 00 00'],
    ['INT -2 (two\'s complement)', controlInt(-1, 0x7fffffff, -2), '14 00 00 00 00 00 00 00 | ff ff ff ff | ff ff ff 7f | fe ff ff ff | 00 00 00 00'],
    ['UDP_SEND_MSG_SIZE 1200', controlDword(IPPROTO_UDP, UDP_SEND_MSG_SIZE, 1200), '14 00 00 00 00 00 00 00 | 11 00 00 00 | 02 00 00 00 | b0 04 00 00 | 00 00 00 00'],
    ['DWORD 0xFFFFFFFF', controlDword(IPPROTO_UDP, UDP_SEND_MSG_SIZE, 0xffffffff), '14 00 00 00 00 00 00 00 | 11 00 00 00 | 02 00 00 00 | ff ff ff ff | 00 00 00 00'],
    [
      'IP_PKTINFO 127.0.0.2 ifindex 1 (8 bytes: no padding)',
      controlInPktinfo('127.0.0.2', 1),
      '18 00 00 00 00 00 00 00 | 00 00 00 00 | 13 00 00 00 | 7f 00 00 02 | 01 00 00 00',
    ],
    [
      'IP_PKTINFO 10.1.2.3 ifindex 0x01020304',
      controlInPktinfo('10.1.2.3', 0x01020304),
      '18 00 00 00 00 00 00 00 | 00 00 00 00 | 13 00 00 00 | 0a 01 02 03 | 04 03 02 01',
    ],
    [
      'IPV6_PKTINFO 2001:db8::1 ifindex 3 (20 bytes, padded to 24)',
      controlIn6Pktinfo('2001:db8::1', 3),
      '24 00 00 00 00 00 00 00 | 29 00 00 00 | 13 00 00 00 | 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 | 03 00 00 00 | 00 00 00 00',
    ],
    ['empty data', { level: 1, type: 2, data: new Uint8Array(0) }, '10 00 00 00 00 00 00 00 | 01 00 00 00 | 02 00 00 00'],
    [
      '9 data bytes (padded to 16)',
      { level: 0, type: 0, data: hex('01 02 03 04 05 06 07 08 09') },
      '19 00 00 00 00 00 00 00 | 00 00 00 00 | 00 00 00 00 | 01 02 03 04 05 06 07 08 09 | 00 00 00 00 00 00 00',
    ],
  ])('%s', (_label, object, expected) => {
    expect(buildControlInfo([object])).toEqual(hex(expected));
  });

  it('lays several objects end to end at 8-aligned offsets, total = sum of WSA_CMSG_SPACE', () => {
    const block = buildControlInfo([
      controlInt(IPPROTO_IP, IP_TOS, 0xb8),
      controlInPktinfo('127.0.0.2', 0),
      controlDword(IPPROTO_UDP, UDP_SEND_MSG_SIZE, 1000),
    ]);
    expect(block).toEqual(
      hex(
        '14 00 00 00 00 00 00 00 | 00 00 00 00 | 03 00 00 00 | b8 00 00 00 | 00 00 00 00' +
          '18 00 00 00 00 00 00 00 | 00 00 00 00 | 13 00 00 00 | 7f 00 00 02 | 00 00 00 00' +
          '14 00 00 00 00 00 00 00 | 11 00 00 00 | 02 00 00 00 | e8 03 00 00 | 00 00 00 00',
      ),
    );
  });

  it('an empty list gives an empty block', () => {
    expect(buildControlInfo([]).byteLength).toBe(0);
  });

  it('copies data from a view with a byteOffset, and pads with zeros even from dirty memory', () => {
    const backing = Uint8Array.from([0xee, 0xaa, 0xbb, 0xcc, 0xee]);
    expect(buildControlInfo([{ level: 0, type: 0, data: backing.subarray(1, 4) }])).toEqual(
      hex('13 00 00 00 00 00 00 00 | 00 00 00 00 | 00 00 00 00 | aa bb cc 00 00 00 00 00'),
    );
  });

  it('throws TypeError / RangeError for bad JavaScript arguments', () => {
    expect(() => buildControlInfo('x' as unknown as ControlObject[])).toThrow(TypeError);
    expect(() => buildControlInfo([null as unknown as ControlObject])).toThrow(TypeError);
    expect(() => buildControlInfo([{ level: 0, type: 0, data: [1] as unknown as Uint8Array }])).toThrow(TypeError);
    expect(() => buildControlInfo([{ level: 2 ** 31, type: 0, data: new Uint8Array(0) }])).toThrow(RangeError);
    expect(() => buildControlInfo([{ level: 0, type: 0.5, data: new Uint8Array(0) }])).toThrow(RangeError);
    expect(() => controlInt(0, 3, 2 ** 31)).toThrow(RangeError);
    expect(() => controlInt(0, INT_MIN - 1, 0)).toThrow(RangeError);
    expect(() => controlDword(17, 2, -1)).toThrow(RangeError);
    expect(() => controlDword(17, 2, 2 ** 32)).toThrow(RangeError);
    expect(() => controlInPktinfo('::1', 0)).toThrow(TypeError);
    expect(() => controlInPktinfo('1.2.3', 0)).toThrow(TypeError);
    expect(() => controlInPktinfo('1.2.3.4', -1)).toThrow(RangeError);
    expect(() => controlIn6Pktinfo('127.0.0.1', 0)).toThrow(TypeError);
    expect(() => controlIn6Pktinfo('fe80::1%2', 0)).toThrow(TypeError);
    expect(() => controlIn6Pktinfo('::1', 2 ** 32)).toThrow(RangeError);
  });
});

describe('parseControlInfo', () => {
  const TOS = '14 00 00 00 00 00 00 00 | 00 00 00 00 | 03 00 00 00 | b8 00 00 00 | 00 00 00 00';

  it('parses a block of three objects, data as views into the block', () => {
    const block = hex(
      TOS +
        '24 00 00 00 00 00 00 00 | 29 00 00 00 | 13 00 00 00 | 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 | 07 00 00 00 | 00 00 00 00' +
        '10 00 00 00 00 00 00 00 | fe ff ff ff | 05 00 00 00',
    );
    const objects = objectsOf(block, block.byteLength);
    expect(objects.map(({ cmsg_len, cmsg_level, cmsg_type, data }) => [cmsg_len, cmsg_level, cmsg_type, Array.from(data)])).toEqual([
      [20, 0, 3, [0xb8, 0, 0, 0]],
      [36, 41, 19, [...new Array<number>(15).fill(0), 1, 7, 0, 0, 0]],
      [16, -2, 5, []],
    ]);
    const [first, second] = objects as [CMSGHDR, CMSGHDR];
    expect(first.data.buffer).toBe(block.buffer);
    expect(first.data.byteOffset).toBe(16);
    expect(second.data.byteOffset).toBe(24 + 16);
    block[16] = 0x2e;
    expect(first.data[0]).toBe(0x2e);
  });

  it('takes offsets relative to the view, whatever its byteOffset (even odd)', () => {
    const backing = new Uint8Array(3 + 24 + 5).fill(0x55);
    backing.set(hex(TOS), 3);
    const view = backing.subarray(3, 27);
    const [object] = objectsOf(view, 24);
    expect(object?.cmsg_type).toBe(3);
    expect(Array.from(object?.data ?? [])).toEqual([0xb8, 0, 0, 0]);
  });

  it('NULL with length 0 is no control information', () => {
    expect(objectsOf(null, 0)).toEqual([]);
    expect(objectsOf(undefined, 0)).toEqual([]);
  });

  it('accepts the last object with or without its padding, and ignores bytes past ControlInfoLength', () => {
    const block = concat(hex(TOS), hex('ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff ff'));
    expect(objectsOf(block, 20)).toHaveLength(1);
    expect(objectsOf(block, 21)).toHaveLength(1);
    expect(objectsOf(block, 24)).toHaveLength(1);
    // Padding is not read: it may hold anything.
    expect(objectsOf(hex(TOS.slice(0, -11) + 'de ad be ef'), 24)).toHaveLength(1);
  });

  const tos = hex(TOS);
  const pktinfo = buildControlInfo([controlInPktinfo('1.2.3.4', 1)]);
  it.each<[string, unknown, unknown]>([
    ['ControlInfo an ArrayBuffer', tos.buffer, 24],
    ['ControlInfo a number array', Array.from(tos), 24],
    ['ControlInfo a DataView', new DataView(tos.buffer), 24],
    ['ControlInfo a Uint16Array', new Uint16Array(12), 24],
    ['ControlInfo a string', 'abc', 3],
    ['ControlInfoLength 1.5', tos, 1.5],
    ['ControlInfoLength NaN', tos, Number.NaN],
    ['ControlInfoLength -1', tos, -1],
    ['ControlInfoLength a string', tos, '24'],
    ['ControlInfoLength a bigint', tos, 24n],
    ['ControlInfoLength 2^32 (not a ULONG)', tos, 2 ** 32],
    ['ControlInfoLength Infinity', tos, Number.POSITIVE_INFINITY],
    ['ControlInfoLength missing', tos, undefined],
    ['NULL with ControlInfoLength 24', null, 24],
    ['a buffer with ControlInfoLength 0', tos, 0],
    ['an empty buffer with ControlInfoLength 0', new Uint8Array(0), 0],
    ['ControlInfoLength past byteLength', tos, 25],
    ['ControlInfoLength 15 < one header', tos, 15],
    ['ControlInfoLength 8 < one header', tos, 8],
    ['cmsg_len 0', rawObject(0n, 0, 3, new Uint8Array(8)), 24],
    ['cmsg_len 15', rawObject(15n, 0, 3, new Uint8Array(8)), 24],
    ['cmsg_len 25 past ControlInfoLength 24', rawObject(25n, 0, 3, new Uint8Array(8)), 24],
    ['cmsg_len 20 past ControlInfoLength 19', tos, 19],
    ['cmsg_len with high word 1 (would wrap to 20)', rawObject((1n << 32n) + 20n, 0, 3, new Uint8Array(8)), 24],
    ['cmsg_len 2^64-1', rawObject(2n ** 64n - 1n, 0, 3, new Uint8Array(8)), 24],
    ['cmsg_len 2^63', rawObject(2n ** 63n, 0, 3, new Uint8Array(8)), 24],
    ['1 byte after the last padding', concat(tos, new Uint8Array(8)), 25],
    ['15 bytes after the last padding', concat(tos, new Uint8Array(16)), 39],
    ['16 zero bytes after the last padding (cmsg_len 0)', concat(tos, new Uint8Array(16)), 40],
    ['second cmsg_len past the end', concat(tos, rawObject(20n, 0, 4, new Uint8Array(4))), 24 + 19],
    ['second cmsg_len past the end (high word)', concat(tos, rawObject(1n << 40n, 0, 4, new Uint8Array(8))), 48],
    // A header packed right after the previous data (no padding) is read at the aligned offset
    // 24, where its cmsg_len's high half and its level meet: 41 << 32, past the end.
    ['header packed without padding (misaligned)', concat(tos.subarray(0, 20), rawObject(20n, 41, 39, hex('b8000000')), new Uint8Array(4)), 44],
    ['header packed without padding, level 0 (cmsg_len 0)', concat(tos.subarray(0, 20), rawObject(20n, 0, 4, hex('40000000')), new Uint8Array(4)), 44],
    ['8 bytes after an unpadded IN_PKTINFO', concat(pktinfo, new Uint8Array(8)), 32],
  ])('%s: STATUS_INVALID_PARAMETER', (_label, block, length) => {
    const result = parseControlInfo(block, length);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.status).toBe(STATUS_INVALID_PARAMETER);
      expect(result.reason).toMatch(/\w/);
    }
  });

  it('a non-NULL block with length 0 is refused for that reason (as WSASendMsg does)', () => {
    expect(parseControlInfo(tos, 0)).toEqual({
      ok: false,
      status: STATUS_INVALID_PARAMETER,
      reason: 'ControlInfo is given but ControlInfoLength is 0',
    });
  });

  it('the reason names the offending object and its offset', () => {
    const result = parseControlInfo(concat(tos, rawObject(2n ** 40n, 0, 4, new Uint8Array(8))), 48);
    expect(result).toEqual({
      ok: false,
      status: STATUS_INVALID_PARAMETER,
      reason: 'object 1 at offset 24: cmsg_len 1099511627776 runs past ControlInfoLength 48',
    });
  });

  it('never throws for a Uint8Array whose accessors throw', () => {
    const evil = new Uint8Array(24);
    Object.defineProperty(evil, 'byteLength', {
      get(): number {
        throw new Error('boom');
      },
    });
    expect(parseStatus(evil, 24)).toBe(STATUS_INVALID_PARAMETER);
    const evilSub = hex(TOS);
    Object.defineProperty(evilSub, 'subarray', {
      value: () => {
        throw new Error('boom');
      },
    });
    expect(parseStatus(evilSub, 24)).toBe(STATUS_INVALID_PARAMETER);
  });
});

describe('translateControls: each supported control', () => {
  it.each<[string, ControlObject, 4 | 6, SendControls]>([
    ['IP_PKTINFO source and interface', controlInPktinfo('127.0.0.2', 7), 4, { sourceAddress: '127.0.0.2', interfaceIndex: 7 }],
    ['IP_PKTINFO source only (ifindex 0)', controlInPktinfo('127.0.0.2', 0), 4, { sourceAddress: '127.0.0.2' }],
    ['IP_PKTINFO interface only (0.0.0.0)', controlInPktinfo('0.0.0.0', 3), 4, { interfaceIndex: 3 }],
    ['IP_PKTINFO neither', controlInPktinfo('0.0.0.0', 0), 4, {}],
    ['IP_PKTINFO ifindex 2^32-1', controlInPktinfo('255.255.255.255', 0xffffffff), 4, { sourceAddress: '255.255.255.255', interfaceIndex: 0xffffffff }],
    ['IP_TOS 0', controlInt(IPPROTO_IP, IP_TOS, 0), 4, { tos: 0 }],
    ['IP_TOS 255', controlInt(IPPROTO_IP, IP_TOS, 255), 4, { tos: 255 }],
    ['IP_TTL 1', controlInt(IPPROTO_IP, IP_TTL, 1), 4, { ttl: 1 }],
    ['IP_TTL 255', controlInt(IPPROTO_IP, IP_TTL, 255), 4, { ttl: 255 }],
    ['IP_ECN 0', controlInt(IPPROTO_IP, IP_ECN, 0), 4, { ecn: 0 }],
    ['IP_ECN 3', controlInt(IPPROTO_IP, IP_ECN, 3), 4, { ecn: 3 }],
    ['IPV6_PKTINFO source and interface', controlIn6Pktinfo('::1', 2), 6, { sourceAddress: '::1', interfaceIndex: 2 }],
    ['IPV6_PKTINFO interface only (::)', controlIn6Pktinfo('::', 9), 6, { interfaceIndex: 9 }],
    ['IPV6_PKTINFO neither', controlIn6Pktinfo('::', 0), 6, {}],
    ['IPV6_PKTINFO RFC 5952 text', controlIn6Pktinfo('2001:DB8:0:0:1:0:0:1', 0), 6, { sourceAddress: '2001:db8::1:0:0:1' }],
    ['IPV6_PKTINFO IPv4-mapped', controlIn6Pktinfo('::ffff:127.0.0.2', 0), 6, { sourceAddress: '::ffff:127.0.0.2' }],
    ['IPV6_PKTINFO no zero run', controlIn6Pktinfo('1:2:3:4:5:6:7:8', 0), 6, { sourceAddress: '1:2:3:4:5:6:7:8' }],
    ['IPV6_TCLASS 0', controlInt(IPPROTO_IPV6, IPV6_TCLASS, 0), 6, { tos: 0 }],
    ['IPV6_TCLASS 255', controlInt(IPPROTO_IPV6, IPV6_TCLASS, 255), 6, { tos: 255 }],
    ['IPV6_HOPLIMIT 1', controlInt(IPPROTO_IPV6, IPV6_HOPLIMIT, 1), 6, { ttl: 1 }],
    ['IPV6_HOPLIMIT 255', controlInt(IPPROTO_IPV6, IPV6_HOPLIMIT, 255), 6, { ttl: 255 }],
    ['IPV6_ECN 0', controlInt(IPPROTO_IPV6, IPV6_ECN, 0), 6, { ecn: 0 }],
    ['IPV6_ECN 3', controlInt(IPPROTO_IPV6, IPV6_ECN, 3), 6, { ecn: 3 }],
    ['UDP_SEND_MSG_SIZE 1 on IPv4', controlDword(IPPROTO_UDP, UDP_SEND_MSG_SIZE, 1), 4, { segmentSize: 1 }],
    ['UDP_SEND_MSG_SIZE 65527 on IPv4', controlDword(IPPROTO_UDP, UDP_SEND_MSG_SIZE, 65527), 4, { segmentSize: 65527 }],
    ['UDP_SEND_MSG_SIZE 1200 on IPv6', controlDword(IPPROTO_UDP, UDP_SEND_MSG_SIZE, 1200), 6, { segmentSize: 1200 }],
  ])('%s', (_label, object, family, expected) => {
    const controls = controlsOf([object], family);
    expect(controls).toStrictEqual(expected);
  });

  it('translates several controls at once; TOS and ECN together are fine', () => {
    expect(
      controlsOf(
        [
          controlInt(IPPROTO_IP, IP_TOS, 0xb8),
          controlInt(IPPROTO_IP, IP_ECN, 1),
          controlInt(IPPROTO_IP, IP_TTL, 9),
          controlInPktinfo('127.0.0.3', 1),
          controlDword(IPPROTO_UDP, UDP_SEND_MSG_SIZE, 512),
        ],
        4,
      ),
    ).toStrictEqual({ tos: 0xb8, ecn: 1, ttl: 9, sourceAddress: '127.0.0.3', interfaceIndex: 1, segmentSize: 512 });
  });

  it('no objects: no controls', () => {
    expect(translateControls([], 4)).toEqual({ ok: true, controls: {} });
    expect(translateControls(objectsOf(null, 0), 6)).toEqual({ ok: true, controls: {} });
  });
});

describe('translateControls: refusals', () => {
  it.each<[string, ControlObject, 4 | 6]>([
    ['IP_TOS -1', controlInt(IPPROTO_IP, IP_TOS, -1), 4],
    ['IP_TOS 256', controlInt(IPPROTO_IP, IP_TOS, 256), 4],
    ['IP_TTL 0', controlInt(IPPROTO_IP, IP_TTL, 0), 4],
    ['IP_TTL 256', controlInt(IPPROTO_IP, IP_TTL, 256), 4],
    ['IP_TTL INT_MIN', controlInt(IPPROTO_IP, IP_TTL, INT_MIN), 4],
    ['IP_ECN -1', controlInt(IPPROTO_IP, IP_ECN, -1), 4],
    ['IP_ECN 4', controlInt(IPPROTO_IP, IP_ECN, 4), 4],
    ['IPV6_TCLASS -1 (Linux: default; not taken)', controlInt(IPPROTO_IPV6, IPV6_TCLASS, -1), 6],
    ['IPV6_TCLASS 256', controlInt(IPPROTO_IPV6, IPV6_TCLASS, 256), 6],
    ['IPV6_HOPLIMIT 0', controlInt(IPPROTO_IPV6, IPV6_HOPLIMIT, 0), 6],
    ['IPV6_HOPLIMIT -1', controlInt(IPPROTO_IPV6, IPV6_HOPLIMIT, -1), 6],
    ['IPV6_HOPLIMIT 256', controlInt(IPPROTO_IPV6, IPV6_HOPLIMIT, 256), 6],
    ['IPV6_ECN 4', controlInt(IPPROTO_IPV6, IPV6_ECN, 4), 6],
    ['UDP_SEND_MSG_SIZE 0', controlDword(IPPROTO_UDP, UDP_SEND_MSG_SIZE, 0), 4],
    ['UDP_SEND_MSG_SIZE 65528', controlDword(IPPROTO_UDP, UDP_SEND_MSG_SIZE, 65528), 6],
    ['UDP_SEND_MSG_SIZE 0xFFFFFFFF (a DWORD, not -1)', controlDword(IPPROTO_UDP, UDP_SEND_MSG_SIZE, 0xffffffff), 4],
  ])('value out of range: %s -> STATUS_INVALID_PARAMETER', (_label, object, family) => {
    expect(translateStatus([object], family)).toBe(STATUS_INVALID_PARAMETER);
  });

  it.each<[string, ControlObject, 4 | 6]>([
    ['IP_TOS with 1 byte', { level: IPPROTO_IP, type: IP_TOS, data: hex('b8') }, 4],
    ['IP_TOS with 8 bytes', { level: IPPROTO_IP, type: IP_TOS, data: hex('b8000000 00000000') }, 4],
    ['IP_TTL with no data', { level: IPPROTO_IP, type: IP_TTL, data: new Uint8Array(0) }, 4],
    ['IP_ECN with 2 bytes', { level: IPPROTO_IP, type: IP_ECN, data: hex('0100') }, 4],
    ['IP_PKTINFO with 12 bytes (Linux in_pktinfo layout)', { level: IPPROTO_IP, type: IP_PKTINFO, data: new Uint8Array(12) }, 4],
    ['IP_PKTINFO with 7 bytes', { level: IPPROTO_IP, type: IP_PKTINFO, data: new Uint8Array(7) }, 4],
    ['IPV6_PKTINFO with 16 bytes', { level: IPPROTO_IPV6, type: IPV6_PKTINFO, data: new Uint8Array(16) }, 6],
    ['IPV6_PKTINFO with 24 bytes', { level: IPPROTO_IPV6, type: IPV6_PKTINFO, data: new Uint8Array(24) }, 6],
    ['IPV6_TCLASS with 1 byte', { level: IPPROTO_IPV6, type: IPV6_TCLASS, data: hex('b8') }, 6],
    ['IPV6_HOPLIMIT with 5 bytes', { level: IPPROTO_IPV6, type: IPV6_HOPLIMIT, data: new Uint8Array(5) }, 6],
    ['IPV6_ECN with 3 bytes', { level: IPPROTO_IPV6, type: IPV6_ECN, data: new Uint8Array(3) }, 6],
    ['UDP_SEND_MSG_SIZE with 2 bytes (Linux u16)', { level: IPPROTO_UDP, type: UDP_SEND_MSG_SIZE, data: hex('b004') }, 4],
  ])('wrong data length: %s -> STATUS_INVALID_PARAMETER', (_label, object, family) => {
    expect(translateStatus([object], family)).toBe(STATUS_INVALID_PARAMETER);
  });

  it.each<[string, ControlObject, 4 | 6]>([
    ['IP_TOS on IPv6', controlInt(IPPROTO_IP, IP_TOS, 0), 6],
    ['IP_TTL on IPv6', controlInt(IPPROTO_IP, IP_TTL, 64), 6],
    ['IP_ECN on IPv6', controlInt(IPPROTO_IP, IP_ECN, 1), 6],
    ['IP_PKTINFO on IPv6', controlInPktinfo('127.0.0.1', 0), 6],
    ['IPV6_TCLASS on IPv4', controlInt(IPPROTO_IPV6, IPV6_TCLASS, 0), 4],
    ['IPV6_HOPLIMIT on IPv4', controlInt(IPPROTO_IPV6, IPV6_HOPLIMIT, 64), 4],
    ['IPV6_ECN on IPv4', controlInt(IPPROTO_IPV6, IPV6_ECN, 1), 4],
    ['IPV6_PKTINFO on IPv4', controlIn6Pktinfo('::1', 0), 4],
  ])('family mismatch: %s -> STATUS_NOT_SUPPORTED', (_label, object, family) => {
    expect(translateStatus([object], family)).toBe(STATUS_NOT_SUPPORTED);
  });

  it.each<[string, ControlObject]>([
    ['Linux IP_TOS number (0/1)', controlInt(0, 1, 0)],
    ['Linux IP_PKTINFO number (0/8)', { level: 0, type: 8, data: new Uint8Array(12) }],
    ['Linux UDP_SEGMENT (17/103)', { level: 17, type: 103, data: hex('b004') }],
    ['Windows IP_OPTIONS (0/1)', { level: 0, type: 1, data: new Uint8Array(0) }],
    ['IPPROTO_TCP level (6/1)', controlInt(6, 1, 1)],
    ['SOL_SOCKET level (0xffff/0x1001)', controlInt(0xffff, 0x1001, 1)],
    ['negative level', controlInt(-1, 3, 0)],
    ['UDP_COALESCED_INFO (17/3, receive side)', controlDword(17, 3, 1200)],
  ])('unknown control: %s -> STATUS_NOT_SUPPORTED', (_label, object) => {
    expect(translateStatus([object], 4)).toBe(STATUS_NOT_SUPPORTED);
    expect(translateStatus([object], 6)).toBe(STATUS_NOT_SUPPORTED);
  });

  it.each<[string, ControlObject[], 4 | 6]>([
    ['IP_TOS twice', [controlInt(IPPROTO_IP, IP_TOS, 1), controlInt(IPPROTO_IP, IP_TOS, 1)], 4],
    ['IP_PKTINFO twice', [controlInPktinfo('127.0.0.1', 0), controlInt(IPPROTO_IP, IP_TTL, 3), controlInPktinfo('0.0.0.0', 1)], 4],
    ['IPV6_HOPLIMIT twice', [controlInt(IPPROTO_IPV6, IPV6_HOPLIMIT, 1), controlInt(IPPROTO_IPV6, IPV6_HOPLIMIT, 2)], 6],
    ['UDP_SEND_MSG_SIZE twice', [controlDword(IPPROTO_UDP, UDP_SEND_MSG_SIZE, 1), controlDword(IPPROTO_UDP, UDP_SEND_MSG_SIZE, 2)], 6],
  ])('duplicate: %s -> STATUS_INVALID_PARAMETER', (_label, objects, family) => {
    expect(translateStatus(objects, family)).toBe(STATUS_INVALID_PARAMETER);
  });

  it('the first failing object decides', () => {
    const outOfRange = controlInt(IPPROTO_IP, IP_TOS, 256);
    const unknown = controlInt(0, 1, 0);
    expect(translateStatus([outOfRange, unknown], 4)).toBe(STATUS_INVALID_PARAMETER);
    expect(translateStatus([unknown, outOfRange], 4)).toBe(STATUS_NOT_SUPPORTED);
  });

  it('refuses input that is not parser output, without throwing', () => {
    const bad: Array<[unknown, unknown]> = [
      [null, 4],
      ['x', 4],
      [[null], 4],
      [[{ cmsg_len: 20, cmsg_level: 0, cmsg_type: 3, data: [0, 0, 0, 0] }], 4],
      [[{ cmsg_len: 20, cmsg_level: '0', cmsg_type: 3, data: new Uint8Array(4) }], 4],
      [[], 5],
      [[], '4'],
    ];
    for (const [objects, family] of bad) {
      const result = translateControls(objects as CMSGHDR[], family as 4);
      expect(result).toMatchObject({ ok: false, status: STATUS_INVALID_PARAMETER });
    }
    const throwing = [{}];
    Object.defineProperty(throwing[0], 'cmsg_level', {
      get(): number {
        throw new Error('boom');
      },
    });
    expect(translateControls(throwing as CMSGHDR[], 4)).toMatchObject({ ok: false, status: STATUS_INVALID_PARAMETER });
  });
});

describe('the table of supported controls', () => {
  it('is driven by SUPPORTED_CONTROLS: each entry works on its family, is refused on the other, wants its exact length', () => {
    expect(SUPPORTED_CONTROLS.map((c) => c.name)).toEqual([
      'IP_PKTINFO',
      'IP_TOS',
      'IP_TTL',
      'IP_ECN',
      'IPV6_PKTINFO',
      'IPV6_TCLASS',
      'IPV6_HOPLIMIT',
      'IPV6_ECN',
      'UDP_SEND_MSG_SIZE',
    ]);
    for (const spec of SUPPORTED_CONTROLS) {
      // Data 01 00 .. is in range for every control (the value 1, or address 1.0.0.0 / 100::).
      const data = new Uint8Array(spec.dataLength).fill(0);
      data[0] = 1;
      const object = { level: spec.level, type: spec.type, data };
      for (const family of [4, 6] as const) {
        const expected = spec.family === null || spec.family === family ? 'ok' : STATUS_NOT_SUPPORTED;
        expect([spec.name, family, translateStatus([object], family)]).toEqual([spec.name, family, expected]);
        if (expected === 'ok') {
          const longer = { ...object, data: new Uint8Array(spec.dataLength + 1) };
          const shorter = { ...object, data: new Uint8Array(spec.dataLength - 1) };
          expect(translateStatus([longer], family)).toBe(STATUS_INVALID_PARAMETER);
          expect(translateStatus([shorter], family)).toBe(STATUS_INVALID_PARAMETER);
        }
      }
    }
    expect(Object.isFrozen(SUPPORTED_CONTROLS)).toBe(true);
  });

  it('matches the table in the module doc comment', () => {
    const source = fs.readFileSync(path.join(__dirname, '../../lib/wsk/cmsg.ts'), 'utf8');
    const rows = [...source.matchAll(/^ \* \| ([A-Z0-9_]+) \| (\d+) \| (\d+) \| (IPv4|IPv6|both) \| ([^|]+) \| ([^|]+) \|/gm)];
    const documented = rows.map((m) => {
      const data = (m[5] as string).trim();
      const bytes = /(\d+) bytes/.exec(data);
      return {
        name: m[1],
        level: Number(m[2]),
        type: Number(m[3]),
        family: m[4] === 'IPv4' ? 4 : m[4] === 'IPv6' ? 6 : null,
        dataLength: bytes ? Number(bytes[1]) : data === 'INT' || data === 'DWORD' ? 4 : -1,
        fields: (m[6] as string).split(',').map((f) => f.trim()),
      };
    });
    expect(documented).toEqual(SUPPORTED_CONTROLS.map((c) => ({ ...c, fields: [...c.fields] })));
  });
});

describe('encodeControls', () => {
  it('golden bytes, IPv4: objects in table order', () => {
    expect(encodeControls({ segmentSize: 1200, ttl: 64, tos: 0xb8 }, 4)).toEqual(
      hex(
        '14 00 00 00 00 00 00 00 | 00 00 00 00 | 03 00 00 00 | b8 00 00 00 | 00 00 00 00' +
          '14 00 00 00 00 00 00 00 | 00 00 00 00 | 04 00 00 00 | 40 00 00 00 | 00 00 00 00' +
          '14 00 00 00 00 00 00 00 | 11 00 00 00 | 02 00 00 00 | b0 04 00 00 | 00 00 00 00',
      ),
    );
  });

  it('golden bytes, IPv6: pktinfo with only an interface carries ::', () => {
    expect(encodeControls({ interfaceIndex: 5, ecn: 2 }, 6)).toEqual(
      hex(
        '24 00 00 00 00 00 00 00 | 29 00 00 00 | 13 00 00 00 | 00000000 00000000 00000000 00000000 | 05 00 00 00 | 00 00 00 00' +
          '14 00 00 00 00 00 00 00 | 29 00 00 00 | 32 00 00 00 | 02 00 00 00 | 00 00 00 00',
      ),
    );
  });

  it('pktinfo with only a source address carries ifindex 0', () => {
    expect(encodeControls({ sourceAddress: '127.0.0.2' }, 4)).toEqual(buildControlInfo([controlInPktinfo('127.0.0.2', 0)]));
  });

  it('no controls (or only undefined fields): an empty block', () => {
    expect(encodeControls({}, 4).byteLength).toBe(0);
    expect(encodeControls({ tos: undefined }, 6).byteLength).toBe(0);
  });

  it('an explicit unspecified source address is "no source" after the round trip', () => {
    const block = encodeControls({ sourceAddress: '0.0.0.0', interfaceIndex: 2 }, 4);
    expect(translateControls(objectsOf(block, block.byteLength), 4)).toEqual({ ok: true, controls: { interfaceIndex: 2 } });
  });

  it.each<[string, SendControls, unknown, ErrorConstructor]>([
    ['family 5', {}, 5, TypeError],
    ['controls null', null as unknown as SendControls, 4, TypeError],
    ['an IPv6 source on IPv4', { sourceAddress: '::1' }, 4, TypeError],
    ['an IPv4 source on IPv6', { sourceAddress: '127.0.0.1' }, 6, TypeError],
    ['a source that is not a string', { sourceAddress: 1 as unknown as string }, 4, TypeError],
    ['tos 256', { tos: 256 }, 4, RangeError],
    ['tos 1.5', { tos: 1.5 }, 6, RangeError],
    ['ttl 0', { ttl: 0 }, 4, RangeError],
    ['ecn 4', { ecn: 4 }, 6, RangeError],
    ['segmentSize 65528', { segmentSize: 65528 }, 4, RangeError],
    ['segmentSize 0', { segmentSize: 0 }, 6, RangeError],
    ['interfaceIndex -1', { interfaceIndex: -1 }, 4, RangeError],
    ['interfaceIndex 2^32', { interfaceIndex: 2 ** 32 }, 6, RangeError],
  ])('throws for %s', (_label, controls, family, error) => {
    expect(() => encodeControls(controls, family as 4 | 6)).toThrow(error);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

/** Normalizes an IPv6 literal independently of the module (WHATWG URL host serializer). */
function normalizeIPv6(address: string): string {
  return new URL(`http://[${address}]/`).hostname;
}

function normalize(controls: SendControls, family: 4 | 6): SendControls {
  const out: SendControls = { ...controls };
  if (family === 6 && out.sourceAddress !== undefined) out.sourceAddress = normalizeIPv6(out.sourceAddress);
  return out;
}

const controlsArb = (family: 4 | 6): fc.Arbitrary<SendControls> =>
  fc.record(
    {
      sourceAddress:
        family === 4
          ? fc.ipV4().filter((a) => a !== '0.0.0.0')
          : fc.ipV6().filter((a) => normalizeIPv6(a) !== '[::]'),
      interfaceIndex: fc.integer({ min: 1, max: 0xffffffff }),
      tos: fc.integer({ min: 0, max: 255 }),
      ecn: fc.integer({ min: 0, max: 3 }),
      ttl: fc.integer({ min: 1, max: 255 }),
      segmentSize: fc.integer({ min: 1, max: 65527 }),
    },
    { requiredKeys: [] },
  );

const familyAndControls = fc.constantFrom<4 | 6>(4, 6).chain((family) => fc.tuple(fc.constant(family), controlsArb(family)));

const ALLOWED_STATUSES = [STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED];

/** Parse then translate; checks that every outcome is ok or one of the two statuses. */
function checkNeverWorse(block: unknown, length: unknown, family: 4 | 6): void {
  const parsed = parseControlInfo(block, length);
  if (!parsed.ok) {
    expect(parsed.status).toBe(STATUS_INVALID_PARAMETER);
    expect(typeof parsed.reason).toBe('string');
    return;
  }
  const translated = translateControls(parsed.objects, family);
  if (!translated.ok) {
    expect(ALLOWED_STATUSES).toContain(translated.status);
    expect(typeof translated.reason).toBe('string');
  }
}

describe('properties', () => {
  it('(a) translateControls(parseControlInfo(encodeControls(c))) gives back c', () => {
    fc.assert(
      fc.property(familyAndControls, ([family, controls]) => {
        const block = encodeControls(controls, family);
        // Windows refuses a non-NULL block of length 0: an empty one goes as NULL.
        const result = translateControls(objectsOf(block.byteLength === 0 ? null : block, block.byteLength), family);
        expect(result.ok).toBe(true);
        if (result.ok) expect(normalize(result.controls, family)).toStrictEqual(normalize(controls, family));
      }),
      { numRuns: 300 },
    );
  });

  const objectArb = fc.record({
    level: fc.oneof(fc.integer({ min: INT_MIN, max: INT_MAX }), fc.constantFrom(0, 17, 41)),
    type: fc.integer({ min: INT_MIN, max: INT_MAX }),
    data: fc.uint8Array({ maxLength: 41 }),
  });

  it('(b) parseControlInfo(buildControlInfo(objects)) gives back the objects, with or without the last padding', () => {
    fc.assert(
      fc.property(fc.array(objectArb, { minLength: 1, maxLength: 6 }), fc.nat(7), (objects, trim) => {
        const block = buildControlInfo(objects);
        const last = objects[objects.length - 1] as ControlObject;
        const padding = WSA_CMSG_SPACE(last.data.byteLength) - WSA_CMSG_LEN(last.data.byteLength);
        const length = block.byteLength - Math.min(trim, padding);
        const parsed = objectsOf(block, length);
        expect(parsed.map((o) => ({ level: o.cmsg_level, type: o.cmsg_type, data: Array.from(o.data), len: o.cmsg_len }))).toEqual(
          objects.map((o) => ({ level: o.level, type: o.type, data: Array.from(o.data), len: 16 + o.data.byteLength })),
        );
      }),
      { numRuns: 300 },
    );
  });

  // Headers that look almost right: mostly the exact cmsg_len and padding, sometimes off by a
  // little or huge; levels and types mostly from the table, data mostly small INTs, so the walk
  // and the translation both get exercised.
  const intData = fc.integer({ min: -2, max: 300 }).map((v) => controlInt(0, 0, v).data);
  const fuzzHeaderArb = fc.record({
    lenDelta: fc.oneof({ arbitrary: fc.constant(0), weight: 4 }, { arbitrary: fc.integer({ min: -17, max: 17 }), weight: 1 }),
    hugeLen: fc.oneof(
      { arbitrary: fc.constant(null), weight: 9 },
      { arbitrary: fc.bigInt({ min: 2n ** 32n, max: 2n ** 64n - 1n }), weight: 1 },
      { arbitrary: fc.constantFrom(2n ** 32n + 20n, 2n ** 63n, 2n ** 64n - 1n), weight: 1 },
    ),
    key: fc.oneof(
      { arbitrary: fc.constantFrom(...SUPPORTED_CONTROLS.map((c): [number, number] => [c.level, c.type])), weight: 3 },
      { arbitrary: fc.tuple(fc.constantFrom(0, 17, 41), fc.constantFrom(1, 2, 3, 4, 8, 19, 21, 39, 50, 103)), weight: 1 },
      { arbitrary: fc.tuple(fc.integer({ min: INT_MIN, max: INT_MAX }), fc.integer({ min: INT_MIN, max: INT_MAX })), weight: 1 },
    ),
    data: fc.oneof(intData, fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.uint8Array({ minLength: 20, maxLength: 20 }), fc.uint8Array({ maxLength: 24 })),
    padDelta: fc.oneof({ arbitrary: fc.constant(0), weight: 4 }, { arbitrary: fc.integer({ min: -8, max: 8 }), weight: 1 }),
  });
  const fuzzBlockArb = fc.array(fuzzHeaderArb, { maxLength: 4 }).map((headers) =>
    concat(
      ...headers.map((h) => {
        const n = h.data.byteLength;
        const cmsgLen = h.hugeLen ?? BigInt(Math.max(0, 16 + n + h.lenDelta));
        const pad = Math.max(0, WSA_CMSG_SPACE(n) - WSA_CMSG_LEN(n) + h.padDelta);
        return concat(rawObject(cmsgLen, h.key[0], h.key[1], h.data), new Uint8Array(pad));
      }),
    ),
  );
  const lengthArb = (block: Uint8Array): fc.Arbitrary<unknown> =>
    fc.oneof(
      fc.constant(block.byteLength),
      fc.nat(block.byteLength + 40),
      fc.constantFrom(-1, 0, 1.5, Number.NaN, 2 ** 32, 2 ** 53, Number.POSITIVE_INFINITY, undefined, null, '24'),
    );

  it('(c) random bytes and lengths never throw and give ok, STATUS_INVALID_PARAMETER or STATUS_NOT_SUPPORTED', () => {
    const blockArb = fc.oneof(fc.uint8Array({ maxLength: 96 }), fuzzBlockArb);
    fc.assert(
      fc.property(
        blockArb.chain((block) => fc.tuple(fc.constant(block), lengthArb(block))),
        fc.constantFrom<4 | 6>(4, 6),
        ([block, length], family) => checkNeverWorse(block, length, family),
      ),
      { numRuns: 800 },
    );
    fc.assert(
      fc.property(fc.anything(), fc.anything(), fc.constantFrom<4 | 6>(4, 6), (block, length, family) =>
        checkNeverWorse(block, length, family),
      ),
      { numRuns: 300 },
    );
  });

  it('(c) structured fuzz reaches every outcome (so the property above tests something)', () => {
    const seen = new Map<string, number>();
    fc.assert(
      fc.property(fuzzBlockArb, fc.constantFrom<4 | 6>(4, 6), (block, family) => {
        const parsed = parseControlInfo(block.byteLength === 0 ? null : block, block.byteLength);
        if (!parsed.ok) seen.set('parse:invalid', (seen.get('parse:invalid') ?? 0) + 1);
        else if (parsed.objects.length > 0) {
          const translated = translateControls(parsed.objects, family);
          const key = translated.ok ? 'ok' : `translate:${translated.status.toString(16)}`;
          seen.set(key, (seen.get(key) ?? 0) + 1);
        }
      }),
      { numRuns: 1000, seed: 42 },
    );
    expect([...seen.keys()].sort()).toEqual(['ok', 'parse:invalid', 'translate:c000000d', 'translate:c00000bb']);
  });

  it('(d) bit flips in a valid block never throw and give ok or one of the two statuses', () => {
    fc.assert(
      fc.property(
        familyAndControls.filter(([, c]) => Object.values(c).some((v) => v !== undefined)),
        fc.array(fc.nat(), { minLength: 1, maxLength: 8 }),
        fc.integer({ min: -9, max: 9 }),
        ([family, controls], flips, lengthDelta) => {
          const block = encodeControls(controls, family);
          for (const flip of flips) {
            const bit = flip % (block.byteLength * 8);
            block[bit >> 3] = (block[bit >> 3] as number) ^ (1 << (bit & 7));
          }
          checkNeverWorse(block, block.byteLength, family);
          checkNeverWorse(block, block.byteLength + lengthDelta, family);
        },
      ),
      { numRuns: 500 },
    );
  });
});
