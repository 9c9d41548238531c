/**
 * Remote addresses for WskSendMessages: Windows' SOCKADDR_IN / SOCKADDR_IN6 bytes, a
 * JavaScript-friendly SOCKADDR_INET object, and their validation into a `Destination`.
 */

import { isIPv4, isIPv6 } from 'node:net';
import { types } from 'node:util';
import type { Destination } from '../transport';
import { STATUS_INVALID_ADDRESS_COMPONENT, STATUS_INVALID_PARAMETER, type NTSTATUS } from './ntstatus';
import { describeValue } from '../describe';
import { parseIPv4, parseIPv6 } from '../ip';

/** Windows' `AF_INET` (ws2def.h); the same value as on Linux. */
export const AF_INET = 2;
/** Windows' `AF_INET6` (ws2def.h). Linux uses 10: raw bytes here always carry 23. */
export const AF_INET6 = 23;

/** Size of Windows' `SOCKADDR_IN` (family, port, 4 address bytes, 8 bytes `sin_zero`). */
export const SOCKADDR_IN_SIZE = 16;
/** Size of Windows' `SOCKADDR_IN6` (family, port, flowinfo, 16 address bytes, scope id). */
export const SOCKADDR_IN6_SIZE = 28;
/** Size of Windows' `SOCKADDR_STORAGE`: no socket address is longer. */
export const SOCKADDR_STORAGE_SIZE = 128;

/**
 * JavaScript form of Windows' `SOCKADDR_INET` union (SOCKADDR_IN or SOCKADDR_IN6 chosen by
 * `si_family`). `family` takes the spellings Node uses (`'IPv4'`, `'IPv6'`, their lower-case
 * `net.SocketAddress` forms) or the IP version number. An IPv6 `address` may end in a numeric
 * zone (`'fe80::1%3'`), which becomes the scope id; `scopeId` says it too (a zone and a
 * non-zero `scopeId` must agree).
 */
export interface SOCKADDR_INET {
  family: 'IPv4' | 'IPv6' | 'ipv4' | 'ipv6' | 4 | 6;
  address: string;
  port: number;
  /** IPv6 only: `sin6_scope_id` (interface index of a link-local address). */
  scopeId?: number;
}

/**
 * What a WSK call takes as `PSOCKADDR RemoteAddress`: raw SOCKADDR_IN / SOCKADDR_IN6 bytes in
 * Windows layout (at most 128 bytes, SOCKADDR_STORAGE), or a {@link SOCKADDR_INET} object.
 */
export type SOCKADDR = Uint8Array | SOCKADDR_INET;

/** Result of {@link parseRemoteAddress}. */
export type ParseRemoteAddressResult =
  | { readonly ok: true; readonly destination: Destination }
  | { readonly ok: false; readonly status: NTSTATUS; readonly reason: string };

/**
 * Encodes a destination as Windows sockaddr bytes: for IPv4 a 16-byte SOCKADDR_IN
 * (`sin_family` = 2 little-endian, `sin_port` big-endian, 4 address bytes, 8 zero bytes), for
 * IPv6 a 28-byte SOCKADDR_IN6 (`sin6_family` = 23 little-endian, port big-endian,
 * `sin6_flowinfo` 0, 16 address bytes, `sin6_scope_id` little-endian). Throws a TypeError for
 * an address that is not an IP literal of the family, a RangeError for a port outside 0..65535
 * or a scope id outside 0..2^32-1.
 */
export function encodeSockaddr(dest: Destination): Uint8Array {
  const { family, address, port, scopeId } = dest;
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) {
    throw new RangeError(`encodeSockaddr: port ${describeValue(port)} is not in 0..65535`);
  }
  if (family === 4) {
    const ip = parseIPv4(address);
    if (ip === null) throw new TypeError(`encodeSockaddr: ${JSON.stringify(address)} is not an IPv4 address`);
    const bytes = new Uint8Array(SOCKADDR_IN_SIZE);
    const view = new DataView(bytes.buffer);
    view.setUint16(0, AF_INET, true);
    view.setUint16(2, port, false);
    bytes.set(ip, 4);
    return bytes;
  }
  if (family === 6) {
    const ip = parseIPv6(address);
    if (ip === null) throw new TypeError(`encodeSockaddr: ${JSON.stringify(address)} is not an IPv6 address`);
    const scope = scopeId ?? 0;
    if (!Number.isInteger(scope) || scope < 0 || scope > 0xffffffff) {
      throw new RangeError(`encodeSockaddr: scope id ${describeValue(scope)} is not a ULONG`);
    }
    const bytes = new Uint8Array(SOCKADDR_IN6_SIZE);
    const view = new DataView(bytes.buffer);
    view.setUint16(0, AF_INET6, true);
    view.setUint16(2, port, false);
    view.setUint32(4, 0, false);
    bytes.set(ip, 8);
    view.setUint32(24, scope, true);
    return bytes;
  }
  throw new TypeError(`encodeSockaddr: family ${describeValue(family)} is not 4 or 6`);
}

/**
 * Validates a WSK `RemoteAddress` for a socket of `socketFamily` and turns it into a
 * `Destination` (IP literal without zone, port, scope id). Never throws.
 *
 * - STATUS_INVALID_PARAMETER: not a Uint8Array nor an object; bytes shorter than their family's
 *   structure (SOCKADDR_IN needs 16, SOCKADDR_IN6 28; extra bytes up to 128 are ignored, as is
 *   `sin_zero` and `sin6_flowinfo`) or longer than 128 (SOCKADDR_STORAGE); a family field that
 *   is neither AF_INET (2) nor AF_INET6 (23), e.g. Linux' AF_INET6 (10); an address that is not
 *   an IP literal of the stated family; a zone that is not a number or disagrees with
 *   `scopeId`; a scope id on IPv4; a port that is not an integer in 1..65535 (port 0 is
 *   refused, as Windows' send does).
 * - STATUS_INVALID_ADDRESS_COMPONENT: a well-formed address of the other family than the
 *   socket (an IPv4-mapped IPv6 address is IPv6).
 */
export function parseRemoteAddress(input: unknown, socketFamily: 4 | 6): ParseRemoteAddressResult {
  const parsed = types.isUint8Array(input) ? parseSockaddrBytes(input) : parseSockaddrObject(input);
  if (!parsed.ok) return parsed;
  if (parsed.destination.family !== socketFamily) {
    return {
      ok: false,
      status: STATUS_INVALID_ADDRESS_COMPONENT,
      reason: `an IPv${parsed.destination.family} address cannot be used on an IPv${socketFamily} socket`,
    };
  }
  return parsed;
}

function invalid(reason: string): ParseRemoteAddressResult {
  return { ok: false, status: STATUS_INVALID_PARAMETER, reason };
}

function isPort(port: unknown): port is number {
  return typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 0xffff;
}

function parseSockaddrBytes(bytes: Uint8Array): ParseRemoteAddressResult {
  if (bytes.byteLength < 2) return invalid(`sockaddr of ${bytes.byteLength} bytes has no family field`);
  if (bytes.byteLength > SOCKADDR_STORAGE_SIZE) {
    return invalid(`sockaddr of ${bytes.byteLength} bytes is longer than SOCKADDR_STORAGE (128)`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const family = view.getUint16(0, true);
  if (family === AF_INET) {
    if (bytes.byteLength < SOCKADDR_IN_SIZE) {
      return invalid(`SOCKADDR_IN needs ${SOCKADDR_IN_SIZE} bytes, got ${bytes.byteLength}`);
    }
    const port = view.getUint16(2, false);
    if (port === 0) return invalid('port 0 is not a destination');
    const address = `${bytes[4]}.${bytes[5]}.${bytes[6]}.${bytes[7]}`;
    return { ok: true, destination: { family: 4, address, port, scopeId: 0 } };
  }
  if (family === AF_INET6) {
    if (bytes.byteLength < SOCKADDR_IN6_SIZE) {
      return invalid(`SOCKADDR_IN6 needs ${SOCKADDR_IN6_SIZE} bytes, got ${bytes.byteLength}`);
    }
    const port = view.getUint16(2, false);
    if (port === 0) return invalid('port 0 is not a destination');
    const address = formatIPv6(bytes.subarray(8, 24));
    const scopeId = view.getUint32(24, true);
    return { ok: true, destination: { family: 6, address, port, scopeId } };
  }
  return invalid(`sockaddr family ${family} is neither AF_INET (2) nor AF_INET6 (23)`);
}

function parseSockaddrObject(input: unknown): ParseRemoteAddressResult {
  if (typeof input !== 'object' || input === null) {
    return invalid('RemoteAddress is neither sockaddr bytes nor a SOCKADDR_INET object');
  }
  const { family, address, port, scopeId } = input as { readonly [K in keyof SOCKADDR_INET]?: unknown };
  let version: 4 | 6;
  if (family === 'IPv4' || family === 'ipv4' || family === 4) version = 4;
  else if (family === 'IPv6' || family === 'ipv6' || family === 6) version = 6;
  else return invalid(`family ${describeValue(family)} is not IPv4 or IPv6`);
  if (typeof address !== 'string') return invalid('address is not a string');
  if (!isPort(port)) return invalid(`port ${describeValue(port)} is not an integer in 1..65535`);

  if (version === 4) {
    if (!isIPv4(address)) return invalid(`${JSON.stringify(address)} is not an IPv4 address`);
    if (scopeId !== undefined && scopeId !== 0) return invalid('an IPv4 address has no scope id');
    return { ok: true, destination: { family: 4, address, port, scopeId: 0 } };
  }

  let literal = address;
  let zone: number | undefined;
  const percent = address.indexOf('%');
  if (percent >= 0) {
    const zoneText = address.slice(percent + 1);
    if (!/^[0-9]{1,10}$/.test(zoneText) || Number(zoneText) > 0xffffffff) {
      return invalid(`zone ${JSON.stringify(zoneText)} is not an interface index`);
    }
    zone = Number(zoneText);
    literal = address.slice(0, percent);
  }
  if (!isIPv6(literal)) return invalid(`${JSON.stringify(address)} is not an IPv6 address`);
  if (scopeId !== undefined) {
    if (typeof scopeId !== 'number' || !Number.isInteger(scopeId) || scopeId < 0 || scopeId > 0xffffffff) {
      return invalid(`scopeId ${describeValue(scopeId)} is not a ULONG`);
    }
    // scopeId 0 means "none given", so a zone in the address wins over it.
    if (zone !== undefined && scopeId !== 0 && zone !== scopeId) {
      return invalid(`zone %${zone} and scopeId ${scopeId} disagree`);
    }
    zone ??= scopeId;
  }
  return { ok: true, destination: { family: 6, address: literal, port, scopeId: zone ?? 0 } };
}

/**
 * 16 bytes to RFC 5952 text: lower-case hex, the longest run (first on a tie) of two or more
 * zero groups written `::`, IPv4-mapped addresses as `::ffff:a.b.c.d`.
 */
export function formatIPv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] as number) << 8) | (bytes[i + 1] as number));
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  }
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (list: number[]): string => list.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}
