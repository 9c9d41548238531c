/** Destinations as the public calls take them: IP literals (no DNS) and ports, checked. */
import * as net from 'node:net';
import { describeValue } from './describe';

export function checkPort(port: unknown, allowZero: boolean): number {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < (allowZero ? 0 : 1) ||
    port > 65535) {
    throw new RangeError(`port must be an integer from ${allowZero ? 0 : 1} to 65535, got ${describeValue(port)}`);
  }
  return port;
}

/** The IPv4-mapped IPv6 literal of an IPv4 literal (RFC 4291 2.5.5.2): "::ffff:a.b.c.d". */
export function v4MappedLiteral(ipv4: string): string {
  return `::ffff:${ipv4}`;
}

/**
 * Parses an IP literal for a socket of `family`. An IPv6 literal may carry a numeric zone
 * ("fe80::1%2"). Names are not resolved: wsk-dgram never does DNS on the send path.
 *
 * On a dual-stack IPv6 socket (`dualStack`), an IPv4 literal stands for its IPv4-mapped address
 * and comes back in that form ("127.0.0.1" gives "::ffff:127.0.0.1"): the one form the kernel
 * takes, and the one the socket reports its IPv4 peers in (as node:dgram does).
 */
export function parseIpLiteral(address: unknown, family: 4 | 6, dualStack = false,
): { address: string; scopeId: number } {
  if (typeof address !== 'string') {
    throw new TypeError(`address must be a string IP literal, got ${typeof address}`);
  }
  let literal = address;
  let scopeId = 0;
  const zone = address.indexOf('%');
  if (zone >= 0) {
    const suffix = address.slice(zone + 1);
    if (!/^\d{1,10}$/.test(suffix) || Number(suffix) > 0xffffffff) {
      throw new TypeError(`address zone must be a numeric interface index: ${address}`);
    }
    literal = address.slice(0, zone);
    scopeId = Number(suffix);
  }
  const found = net.isIP(literal);
  if (found === 0 || (found === 4 && zone >= 0)) {
    throw new TypeError(`address must be an IPv4 or IPv6 literal, got ${JSON.stringify(address)}`);
  }
  if (found === 4 && family === 6 && dualStack) return { address: v4MappedLiteral(literal), scopeId: 0 };
  if (found !== family) {
    const hint = found === 4 ? ' (IPv6-only: create it with ipv6Only: false to reach IPv4 peers)' : '';
    throw new TypeError(`address ${address} is IPv${found} but the socket is udp${family}${hint}`);
  }
  return { address: literal, scopeId };
}
