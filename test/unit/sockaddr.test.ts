import * as net from 'node:net';
import fc from 'fast-check';
import type { Destination } from '../../lib/transport';
import { AF_INET, AF_INET6, encodeSockaddr, parseRemoteAddress } from '../../lib/wsk/sockaddr';

const STATUS_INVALID_PARAMETER = 0xc000000d;
const STATUS_INVALID_ADDRESS_COMPONENT = 0xc0000207;

function hex(text: string): Uint8Array {
  return Uint8Array.from(Buffer.from(text.replace(/\s+/g, ''), 'hex'));
}

function status(input: unknown, family: 4 | 6): number | 'ok' {
  const result = parseRemoteAddress(input, family);
  return result.ok ? 'ok' : result.status;
}

function destination(input: unknown, family: 4 | 6): Destination {
  const result = parseRemoteAddress(input, family);
  if (!result.ok) throw new Error(`expected success, got ${result.status.toString(16)}: ${result.reason}`);
  return result.destination;
}

describe('constants', () => {
  it('uses the Windows address family values', () => {
    expect(AF_INET).toBe(2);
    expect(AF_INET6).toBe(23);
  });
});

describe('encodeSockaddr golden bytes', () => {
  it('SOCKADDR_IN 127.0.0.1:5000', () => {
    expect(encodeSockaddr({ family: 4, address: '127.0.0.1', port: 5000, scopeId: 0 })).toEqual(
      hex('0200 1388 7f000001 0000000000000000'),
    );
  });

  it('SOCKADDR_IN6 [::1]:443', () => {
    expect(encodeSockaddr({ family: 6, address: '::1', port: 443, scopeId: 0 })).toEqual(
      hex('1700 01bb 00000000 00000000000000000000000000000001 00000000'),
    );
  });

  it('SOCKADDR_IN6 [fe80::1%3]:5353 (scope id little-endian)', () => {
    expect(encodeSockaddr({ family: 6, address: 'fe80::1', port: 5353, scopeId: 3 })).toEqual(
      hex('1700 14e9 00000000 fe800000000000000000000000000001 03000000'),
    );
  });

  it('SOCKADDR_IN6 with a middle :: and an IPv4-mapped tail', () => {
    expect(encodeSockaddr({ family: 6, address: '2001:db8::ff00:42:8329', port: 1, scopeId: 0 }).subarray(8, 24)).toEqual(
      hex('20010db8000000000000ff0000428329'),
    );
    expect(encodeSockaddr({ family: 6, address: '::ffff:192.0.2.1', port: 1, scopeId: 0 }).subarray(8, 24)).toEqual(
      hex('00000000000000000000ffffc0000201'),
    );
    expect(encodeSockaddr({ family: 6, address: '1:2:3:4:5:6:7::', port: 1, scopeId: 0 }).subarray(8, 24)).toEqual(
      hex('00010002000300040005000600070000'),
    );
  });

  it('throws on what is not a Destination', () => {
    expect(() => encodeSockaddr({ family: 4, address: '::1', port: 1, scopeId: 0 })).toThrow(TypeError);
    expect(() => encodeSockaddr({ family: 6, address: '1.2.3.4', port: 1, scopeId: 0 })).toThrow(TypeError);
    expect(() => encodeSockaddr({ family: 6, address: 'fe80::1%3', port: 1, scopeId: 0 })).toThrow(TypeError);
    expect(() => encodeSockaddr({ family: 4, address: '1.2.3.4', port: 65536, scopeId: 0 })).toThrow(RangeError);
    expect(() => encodeSockaddr({ family: 5 as 4, address: '1.2.3.4', port: 1, scopeId: 0 })).toThrow(TypeError);
  });
});

describe('parseRemoteAddress: raw bytes', () => {
  it('reads SOCKADDR_IN', () => {
    expect(destination(hex('0200 1388 7f000001 0000000000000000'), 4)).toEqual({
      family: 4,
      address: '127.0.0.1',
      port: 5000,
      scopeId: 0,
    });
  });

  it('reads SOCKADDR_IN6 with scope id, ignoring flowinfo', () => {
    expect(destination(hex('1700 14e9 12345678 fe800000000000000000000000000001 03000000'), 6)).toEqual({
      family: 6,
      address: 'fe80::1',
      port: 5353,
      scopeId: 3,
    });
  });

  it('reads a view at an offset into a bigger buffer', () => {
    const backing = new Uint8Array(40);
    backing.set(hex('0200 0050 0a000001 0000000000000000'), 7);
    expect(destination(backing.subarray(7, 23), 4)).toEqual({ family: 4, address: '10.0.0.1', port: 80, scopeId: 0 });
  });

  it('accepts trailing bytes up to SOCKADDR_STORAGE (128) and ignores sin_zero', () => {
    const v4 = new Uint8Array(128);
    v4.set(hex('0200 0001 01020304 ffffffffffffffff'));
    expect(destination(v4, 4).address).toBe('1.2.3.4');
    const v6 = new Uint8Array(28 + 4);
    v6.set(hex('1700 0001 00000000 00000000000000000000000000000001 00000000'));
    expect(destination(v6, 6).address).toBe('::1');
  });

  it.each([
    ['empty', ''],
    ['1 byte', '02'],
    ['SOCKADDR_IN of 15 bytes', '0200 1388 7f000001 00000000000000'],
    ['SOCKADDR_IN6 of 27 bytes', '1700 01bb 00000000 00000000000000000000000000000001 000000'],
    ['Linux AF_INET6 (10)', '0a00 01bb 00000000 00000000000000000000000000000001 00000000'],
    ['family in big-endian order', '0002 1388 7f000001 0000000000000000'],
    ['family 0', '0000 1388 7f000001 0000000000000000'],
    ['port 0 (IPv4)', '0200 0000 7f000001 0000000000000000'],
    ['port 0 (IPv6)', '1700 0000 00000000 00000000000000000000000000000001 00000000'],
  ])('rejects %s with STATUS_INVALID_PARAMETER', (_label, bytes) => {
    expect(status(hex(bytes), 4)).toBe(STATUS_INVALID_PARAMETER);
    expect(status(hex(bytes), 6)).toBe(STATUS_INVALID_PARAMETER);
  });

  it('rejects more than 128 bytes', () => {
    const bytes = new Uint8Array(129);
    bytes.set(hex('0200 1388 7f000001'));
    expect(status(bytes, 4)).toBe(STATUS_INVALID_PARAMETER);
  });

  it('gives STATUS_INVALID_ADDRESS_COMPONENT for a well-formed address of the other family', () => {
    expect(status(hex('0200 1388 7f000001 0000000000000000'), 6)).toBe(STATUS_INVALID_ADDRESS_COMPONENT);
    expect(status(hex('1700 01bb 00000000 00000000000000000000000000000001 00000000'), 4)).toBe(
      STATUS_INVALID_ADDRESS_COMPONENT,
    );
  });
});

describe('parseRemoteAddress: SOCKADDR_INET objects', () => {
  it.each(['IPv4', 'ipv4', 4] as const)('family %p', (family) => {
    expect(destination({ family, address: '192.0.2.7', port: 9 }, 4)).toEqual({
      family: 4,
      address: '192.0.2.7',
      port: 9,
      scopeId: 0,
    });
  });

  it.each(['IPv6', 'ipv6', 6] as const)('family %p', (family) => {
    expect(destination({ family, address: '2001:db8::7', port: 65535 }, 6)).toEqual({
      family: 6,
      address: '2001:db8::7',
      port: 65535,
      scopeId: 0,
    });
  });

  it('takes a numeric zone as the scope id and strips it', () => {
    expect(destination({ family: 'IPv6', address: 'fe80::1%7', port: 1 }, 6)).toEqual({
      family: 6,
      address: 'fe80::1',
      port: 1,
      scopeId: 7,
    });
    expect(destination({ family: 'IPv6', address: 'fe80::1', port: 1, scopeId: 9 }, 6).scopeId).toBe(9);
    expect(destination({ family: 'IPv6', address: 'fe80::1%7', port: 1, scopeId: 7 }, 6).scopeId).toBe(7);
    expect(destination({ family: 'IPv6', address: 'fe80::1%7', port: 1, scopeId: 0 }, 6).scopeId).toBe(7);
  });

  it('accepts a net.SocketAddress', () => {
    const address = new net.SocketAddress({ address: '10.1.2.3', port: 4242, family: 'ipv4' });
    expect(destination(address, 4)).toEqual({ family: 4, address: '10.1.2.3', port: 4242, scopeId: 0 });
  });

  it.each([
    ['port 0', { family: 'IPv4', address: '1.2.3.4', port: 0 }],
    ['port 65536', { family: 'IPv4', address: '1.2.3.4', port: 65536 }],
    ['port -1', { family: 'IPv4', address: '1.2.3.4', port: -1 }],
    ['port 1.5', { family: 'IPv4', address: '1.2.3.4', port: 1.5 }],
    ['port NaN', { family: 'IPv4', address: '1.2.3.4', port: Number.NaN }],
    ['port "80"', { family: 'IPv4', address: '1.2.3.4', port: '80' }],
    ['no port', { family: 'IPv4', address: '1.2.3.4' }],
    ['unknown family', { family: 'IPv5', address: '1.2.3.4', port: 1 }],
    ['no family', { address: '1.2.3.4', port: 1 }],
    ['family 2 (AF_INET is for bytes)', { family: 2, address: '1.2.3.4', port: 1 }],
    ['octet 256', { family: 'IPv4', address: '256.1.1.1', port: 1 }],
    ['three octets', { family: 'IPv4', address: '1.2.3', port: 1 }],
    ['a host name', { family: 'IPv4', address: 'localhost', port: 1 }],
    ['an empty address', { family: 'IPv4', address: '', port: 1 }],
    ['address not a string', { family: 'IPv4', address: 0x7f000001, port: 1 }],
    ['IPv4 family with an IPv6 address', { family: 'IPv4', address: '::1', port: 1 }],
    ['IPv6 family with an IPv4 address', { family: 'IPv6', address: '1.2.3.4', port: 1 }],
    ['IPv4 with a zone', { family: 'IPv4', address: '1.2.3.4%1', port: 1 }],
    ['IPv4 with a scope id', { family: 'IPv4', address: '1.2.3.4', port: 1, scopeId: 3 }],
    ['a named zone', { family: 'IPv6', address: 'fe80::1%eth0', port: 1 }],
    ['an empty zone', { family: 'IPv6', address: 'fe80::1%', port: 1 }],
    ['a zone above ULONG', { family: 'IPv6', address: 'fe80::1%4294967296', port: 1 }],
    ['zone and scopeId disagree', { family: 'IPv6', address: 'fe80::1%7', port: 1, scopeId: 8 }],
    ['scopeId -1', { family: 'IPv6', address: 'fe80::1', port: 1, scopeId: -1 }],
    ['a bad IPv6', { family: 'IPv6', address: '1::2::3', port: 1 }],
  ])('rejects %s with STATUS_INVALID_PARAMETER', (_label, input) => {
    expect(status(input, 4)).toBe(STATUS_INVALID_PARAMETER);
    expect(status(input, 6)).toBe(STATUS_INVALID_PARAMETER);
  });

  it.each([null, undefined, 42, 'host:1', true, new Uint16Array(8)])('rejects %p', (input) => {
    expect(status(input, 4)).toBe(STATUS_INVALID_PARAMETER);
  });

  it('gives STATUS_INVALID_ADDRESS_COMPONENT for the other family, also IPv4-mapped IPv6', () => {
    expect(status({ family: 'IPv4', address: '1.2.3.4', port: 1 }, 6)).toBe(STATUS_INVALID_ADDRESS_COMPONENT);
    expect(status({ family: 'IPv6', address: '::1', port: 1 }, 4)).toBe(STATUS_INVALID_ADDRESS_COMPONENT);
    expect(status({ family: 'IPv6', address: '::ffff:1.2.3.4', port: 1 }, 4)).toBe(STATUS_INVALID_ADDRESS_COMPONENT);
    expect(status({ family: 'IPv6', address: '::ffff:1.2.3.4', port: 1 }, 6)).toBe('ok');
  });
});

describe('round trips', () => {
  it('encode then parse gives the destination back', () => {
    const cases: Destination[] = [
      { family: 4, address: '127.0.0.1', port: 5000, scopeId: 0 },
      { family: 4, address: '255.255.255.255', port: 65535, scopeId: 0 },
      { family: 6, address: '::1', port: 443, scopeId: 0 },
      { family: 6, address: 'fe80::1', port: 1, scopeId: 4294967295 },
      { family: 6, address: '2001:db8::ff00:42:8329', port: 8080, scopeId: 0 },
      { family: 6, address: '::ffff:192.0.2.1', port: 53, scopeId: 0 },
      { family: 6, address: '1:0:0:1::1', port: 2, scopeId: 0 },
    ];
    for (const d of cases) expect(destination(encodeSockaddr(d), d.family)).toEqual(d);
  });

  it('IPv4: any 4 bytes and port survive bytes -> parse -> encode', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.integer({ min: 1, max: 65535 }), (ip, port) => {
        const bytes = new Uint8Array(16);
        bytes.set([2, 0, port >> 8, port & 0xff, ...ip]);
        const d = destination(bytes, 4);
        expect(d.address).toBe(ip.join('.'));
        expect(d.port).toBe(port);
        expect(encodeSockaddr(d)).toEqual(bytes);
      }),
      { numRuns: 200 },
    );
  });

  it('IPv6: any 16 bytes, port and scope survive bytes -> parse -> encode; text is canonical', () => {
    // Bias towards zero groups so that :: compression is exercised.
    const group = fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 0xffff }));
    fc.assert(
      fc.property(
        fc.array(group, { minLength: 8, maxLength: 8 }),
        fc.integer({ min: 1, max: 65535 }),
        fc.nat({ max: 0xffffffff }),
        (groups, port, scopeId) => {
          const bytes = new Uint8Array(28);
          const view = new DataView(bytes.buffer);
          view.setUint16(0, 23, true);
          view.setUint16(2, port, false);
          groups.forEach((g, i) => view.setUint16(8 + 2 * i, g, false));
          view.setUint32(24, scopeId, true);
          const d = destination(bytes, 6);
          expect(net.isIPv6(d.address)).toBe(true);
          expect(d.scopeId).toBe(scopeId);
          expect(encodeSockaddr(d)).toEqual(bytes);
          // libuv's inet_ntop agrees, except that it writes IPv4-compatible ::a.b.c.d.
          const ipv4Compatible = groups.slice(0, 6).every((g) => g === 0) && groups[6] !== 0;
          if (!ipv4Compatible) {
            expect(d.address).toBe(new net.SocketAddress({ address: d.address, family: 'ipv6' }).address);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('parseRemoteAddress never throws', () => {
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.uint8Array({ maxLength: 140 })), fc.constantFrom(4, 6), (input, family) => {
        const result = parseRemoteAddress(input, family);
        expect(typeof result.ok).toBe('boolean');
      }),
      { numRuns: 300 },
    );
  });
});
