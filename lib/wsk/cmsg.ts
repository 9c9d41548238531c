/**
 * CMSGHDR control information for WskSendMessages: the Windows x64 framing (WSACMSGHDR), builders
 * for it, a parser that never throws, and the translation of the supported controls into the
 * platform-neutral {@link SendControls} that the native send encodes for its OS.
 *
 * ## Framing (Windows x64, mswsock.h `WSACMSGHDR`)
 * Each control object is a 16-byte header `{ SIZE_T cmsg_len @0 (8 bytes LE); INT cmsg_level @8;
 * INT cmsg_type @12 }` followed by its data at +16. `cmsg_len` = 16 + data length
 * ({@link WSA_CMSG_LEN}); the next object starts at the header's offset + align8(`cmsg_len`)
 * (WSA_CMSG_NXTHDR), so an object takes {@link WSA_CMSG_SPACE} bytes. The same framing as Linux
 * x86-64; only the level/type numbers and some payloads differ (table below). 32-bit Windows
 * (12-byte header, 4-byte alignment) is not modelled.
 *
 * ## Supported controls
 * The one table of supported controls is `CONTROLS` below (also exported, descriptive only, as
 * {@link SUPPORTED_CONTROLS}); a unit test checks that this doc table matches it.
 *
 * | name | level | type | socket | data | SendControls field | valid values | Linux (native back-end) |
 * |---|---|---|---|---|---|---|---|
 * | IP_PKTINFO | 0 | 19 | IPv4 | IN_PKTINFO, 8 bytes | sourceAddress, interfaceIndex | address 0.0.0.0 / ifindex 0: field not set | 0/8 `in_pktinfo` {ifindex, spec_dst = source, addr} |
 * | IP_TOS | 0 | 3 | IPv4 | INT | tos | 0..255 | 0/1 int |
 * | IP_TTL | 0 | 4 | IPv4 | INT | ttl | 1..255 | 0/2 int |
 * | IP_ECN | 0 | 50 | IPv4 | INT | ecn | 0..3 | low 2 bits of the IP_TOS byte |
 * | IPV6_PKTINFO | 41 | 19 | IPv6 | IN6_PKTINFO, 20 bytes | sourceAddress, interfaceIndex | address :: / ifindex 0: field not set | 41/50 `in6_pktinfo` {addr, ifindex} |
 * | IPV6_TCLASS | 41 | 39 | IPv6 | INT | tos | 0..255 | 41/67 int |
 * | IPV6_HOPLIMIT | 41 | 21 | IPv6 | INT | ttl | 1..255 | 41/52 int |
 * | IPV6_ECN | 41 | 50 | IPv6 | INT | ecn | 0..3 | low 2 bits of the IPV6_TCLASS byte |
 * | UDP_SEND_MSG_SIZE | 17 | 2 | both | DWORD | segmentSize | 1..65527 | 17/103 UDP_SEGMENT u16 |
 *
 * Payloads are little-endian INT / DWORD / ULONG as on Windows x64; addresses are in network
 * order. Where the two columns differ in range (Linux also takes -1 for IPV6_TCLASS and
 * IPV6_HOPLIMIT, 0 for IPV6_HOPLIMIT), the narrower range above applies on every platform.
 */

import { types } from 'node:util';
import type { SendControls } from '../transport';
import { STATUS_INVALID_PARAMETER, STATUS_NOT_SUPPORTED, type NTSTATUS } from './ntstatus';
import { encodeSockaddr, formatIPv6 } from './sockaddr';
import { describeError, describeValue } from '../describe';

// ---------------------------------------------------------------------------------------------
// Windows constants (checked against MinGW-w64's headers by test/unit/cmsg-constants.test.ts)

/** Windows' `IPPROTO_IP` (Windows SDK ws2def.h `IPPROTO`; MinGW-w64: winsock2.h). Level of IP_* controls. */
export const IPPROTO_IP = 0;
/** Windows' `IPPROTO_IPV6` (Windows SDK ws2def.h `IPPROTO`; MinGW-w64: winsock2.h). Level of IPV6_* controls. */
export const IPPROTO_IPV6 = 41;
/** Windows' `IPPROTO_UDP` (Windows SDK ws2def.h `IPPROTO`; MinGW-w64: winsock2.h). Level of UDP_* controls. */
export const IPPROTO_UDP = 17;
/** Windows' `IP_TOS` (ws2ipdef.h): the TOS byte, an INT. */
export const IP_TOS = 3;
/** Windows' `IP_TTL` (ws2ipdef.h): the TTL, an INT. */
export const IP_TTL = 4;
/** Windows' `IP_PKTINFO` (ws2ipdef.h): source address and interface, an IN_PKTINFO. */
export const IP_PKTINFO = 19;
/** Windows' `IP_ECN` (ws2ipdef.h): the ECN codepoint, an INT. */
export const IP_ECN = 50;
/** Windows' `IPV6_HOPLIMIT` (ws2ipdef.h): the hop limit, an INT. */
export const IPV6_HOPLIMIT = 21;
/** Windows' `IPV6_PKTINFO` (ws2ipdef.h): source address and interface, an IN6_PKTINFO. */
export const IPV6_PKTINFO = 19;
/** Windows' `IPV6_TCLASS` (ws2ipdef.h): the traffic class byte, an INT. */
export const IPV6_TCLASS = 39;
/** Windows' `IPV6_ECN` (ws2ipdef.h): the ECN codepoint, an INT. */
export const IPV6_ECN = 50;
/**
 * Windows' `UDP_SEND_MSG_SIZE` (Windows SDK 10.0.19041+ ws2ipdef.h, "options at the
 * IPPROTO_UDP level"; Windows 10 2004+): the segment size of UDP send offload, a DWORD. Not in
 * MinGW-w64's headers; MsQuic passes it as a WskSendMessages / WSASendMsg control.
 */
export const UDP_SEND_MSG_SIZE = 2;

/** `sizeof(IN_PKTINFO)` (ws2tcpip.h): `{ IN_ADDR ipi_addr; UINT ipi_ifindex; }`. */
export const IN_PKTINFO_SIZE = 8;
/** `sizeof(IN6_PKTINFO)` (ws2tcpip.h): `{ IN6_ADDR ipi6_addr; UINT ipi6_ifindex; }`. */
export const IN6_PKTINFO_SIZE = 20;

/**
 * The Linux numbers the native back-end and the batched receiver use (linux/in.h, linux/in6.h,
 * linux/udp.h; SOL_* from glibc's bits/in.h and netinet/udp.h). For the record and the header
 * test: nothing in this module translates to them; the native side does.
 */
export const LINUX_CONTROLS = Object.freeze({
  SOL_IP: 0,
  SOL_IPV6: 41,
  SOL_UDP: 17,
  IP_TOS: 1,
  IP_TTL: 2,
  IP_PKTINFO: 8,
  IP_RECVTTL: 12,
  IP_RECVTOS: 13,
  IPV6_RECVPKTINFO: 49,
  IPV6_PKTINFO: 50,
  IPV6_RECVHOPLIMIT: 51,
  IPV6_HOPLIMIT: 52,
  IPV6_RECVTCLASS: 66,
  IPV6_TCLASS: 67,
  UDP_SEGMENT: 103,
  UDP_GRO: 104,
} as const);

// ---------------------------------------------------------------------------------------------
// Framing

/** `sizeof(WSACMSGHDR)` on x64: SIZE_T + INT + INT. */
export const WSACMSGHDR_SIZE = 16;
/** Alignment of headers and data on x64 (`TYPE_ALIGNMENT(WSACMSGHDR)` = `MAX_NATURAL_ALIGNMENT` = 8). */
export const WSA_CMSG_ALIGNMENT = 8;
/** Offset of the data from the start of its header: `WSA_CMSG_DATA(cmsg) - cmsg` = 16. */
export const WSA_CMSG_DATA_OFFSET = 16;

function checkLength(name: string, length: number): void {
  if (typeof length !== 'number' || !Number.isSafeInteger(length) || length < 0) {
    throw new RangeError(`${name}: length ${describeValue(length)} is not a non-negative integer`);
  }
}

function align8(n: number): number {
  // Not `(n + 7) & ~7`: lengths may exceed 2^31.
  return Math.ceil(n / WSA_CMSG_ALIGNMENT) * WSA_CMSG_ALIGNMENT;
}

/** Mirrors mswsock.h `WSA_CMSGHDR_ALIGN(length)`: rounds up to the header alignment (8). */
export function WSA_CMSGHDR_ALIGN(length: number): number {
  checkLength('WSA_CMSGHDR_ALIGN', length);
  return align8(length);
}

/** Mirrors mswsock.h `WSA_CMSGDATA_ALIGN(length)`: rounds up to MAX_NATURAL_ALIGNMENT (8 on x64). */
export function WSA_CMSGDATA_ALIGN(length: number): number {
  checkLength('WSA_CMSGDATA_ALIGN', length);
  return align8(length);
}

/** Mirrors mswsock.h `WSA_CMSG_LEN(length)`: the `cmsg_len` of an object with `length` data bytes, 16 + length. */
export function WSA_CMSG_LEN(length: number): number {
  checkLength('WSA_CMSG_LEN', length);
  return WSA_CMSG_DATA_OFFSET + length;
}

/** Mirrors mswsock.h `WSA_CMSG_SPACE(length)`: the bytes one object takes in a block, 16 + align8(length). */
export function WSA_CMSG_SPACE(length: number): number {
  checkLength('WSA_CMSG_SPACE', length);
  return WSACMSGHDR_SIZE + align8(length);
}

/**
 * One control object as parsed from a ControlInfo block (Windows: `WSACMSGHDR` / `CMSGHDR` and
 * the data that follows it).
 */
export interface CMSGHDR {
  /** `cmsg_len`: header + data bytes (16 + `data.byteLength`), without the trailing padding. */
  cmsg_len: number;
  /** `cmsg_level` (an INT: read signed), e.g. {@link IPPROTO_IP}. */
  cmsg_level: number;
  /** `cmsg_type` (an INT: read signed), e.g. {@link IP_TOS}. */
  cmsg_type: number;
  /** The `cmsg_len - 16` data bytes: a view into the parsed buffer, not a copy. */
  data: Uint8Array;
}

/** A control object to build: level, type and data bytes (framing added by {@link buildControlInfo}). */
export interface ControlObject {
  level: number;
  type: number;
  data: Uint8Array;
}

const INT_MIN = -(2 ** 31);
const INT_MAX = 2 ** 31 - 1;
const ULONG_MAX = 0xffffffff;

function isInt(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= INT_MIN && value <= INT_MAX;
}

function isUlong(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= ULONG_MAX;
}

/**
 * Builds a ControlInfo block: each object's header and data at an 8-aligned offset, zero padding
 * after each object's data, total length = the sum of {@link WSA_CMSG_SPACE} (so the last object
 * is padded too). Pass the result with `ControlInfoLength` = its byteLength. An empty list gives
 * an empty array: pass NULL with length 0 instead (Windows rejects a non-NULL block of length 0).
 * Throws a TypeError for something that is not a list of objects with Uint8Array data, a
 * RangeError for a level or type that is not an INT.
 */
export function buildControlInfo(objects: readonly ControlObject[]): Uint8Array {
  if (!Array.isArray(objects)) throw new TypeError('buildControlInfo: objects is not an array');
  let total = 0;
  objects.forEach((object: unknown, i) => {
    if (typeof object !== 'object' || object === null) {
      throw new TypeError(`buildControlInfo: object ${i} is not an object`);
    }
    const { level, type, data } = object as Partial<ControlObject>;
    if (!isInt(level)) throw new RangeError(`buildControlInfo: object ${i}: level ${describeValue(level)} is not an INT`);
    if (!isInt(type)) throw new RangeError(`buildControlInfo: object ${i}: type ${describeValue(type)} is not an INT`);
    if (!types.isUint8Array(data)) throw new TypeError(`buildControlInfo: object ${i}: data is not a Uint8Array`);
    total += WSA_CMSG_SPACE(data.byteLength);
  });
  const block = new Uint8Array(total);
  const view = new DataView(block.buffer);
  let offset = 0;
  for (const { level, type, data } of objects) {
    view.setBigUint64(offset, BigInt(WSA_CMSG_LEN(data.byteLength)), true);
    view.setInt32(offset + 8, level, true);
    view.setInt32(offset + 12, type, true);
    block.set(data, offset + WSA_CMSG_DATA_OFFSET);
    offset += WSA_CMSG_SPACE(data.byteLength);
  }
  return block;
}

/** A control object whose data is one INT (4 bytes LE), e.g. IP_TOS. RangeError unless all three are INTs. */
export function controlInt(level: number, type: number, value: number): ControlObject {
  if (!isInt(value)) throw new RangeError(`controlInt: value ${describeValue(value)} is not an INT`);
  const data = new Uint8Array(4);
  new DataView(data.buffer).setInt32(0, value, true);
  return checkedObject('controlInt', level, type, data);
}

/**
 * A control object whose data is one DWORD (4 bytes LE), e.g. UDP_SEND_MSG_SIZE. RangeError for a
 * value outside 0..2^32-1 or a level / type that is not an INT.
 */
export function controlDword(level: number, type: number, value: number): ControlObject {
  if (!isUlong(value)) throw new RangeError(`controlDword: value ${describeValue(value)} is not a DWORD`);
  const data = new Uint8Array(4);
  new DataView(data.buffer).setUint32(0, value, true);
  return checkedObject('controlDword', level, type, data);
}

/**
 * An IPPROTO_IP / IP_PKTINFO object: Windows' IN_PKTINFO, the 4 address bytes then the ifindex
 * (UINT, LE) = 8 bytes. `0.0.0.0` means "no source address", 0 "no interface". TypeError for an
 * address that is not an IPv4 literal, RangeError for an ifindex outside 0..2^32-1.
 */
export function controlInPktinfo(address: string, ifindex: number): ControlObject {
  const data = new Uint8Array(IN_PKTINFO_SIZE);
  data.set(addressBytes('controlInPktinfo', 4, address), 0);
  if (!isUlong(ifindex)) throw new RangeError(`controlInPktinfo: ifindex ${describeValue(ifindex)} is not a ULONG`);
  new DataView(data.buffer).setUint32(4, ifindex, true);
  return { level: IPPROTO_IP, type: IP_PKTINFO, data };
}

/**
 * An IPPROTO_IPV6 / IPV6_PKTINFO object: Windows' IN6_PKTINFO, the 16 address bytes then the
 * ifindex (UINT, LE) = 20 bytes. `::` means "no source address", 0 "no interface". TypeError for
 * an address that is not an IPv6 literal (a zone suffix is refused), RangeError for an ifindex
 * outside 0..2^32-1.
 */
export function controlIn6Pktinfo(address: string, ifindex: number): ControlObject {
  const data = new Uint8Array(IN6_PKTINFO_SIZE);
  data.set(addressBytes('controlIn6Pktinfo', 6, address), 0);
  if (!isUlong(ifindex)) throw new RangeError(`controlIn6Pktinfo: ifindex ${describeValue(ifindex)} is not a ULONG`);
  new DataView(data.buffer).setUint32(16, ifindex, true);
  return { level: IPPROTO_IPV6, type: IPV6_PKTINFO, data };
}

function checkedObject(caller: string, level: number, type: number, data: Uint8Array): ControlObject {
  if (!isInt(level)) throw new RangeError(`${caller}: level ${describeValue(level)} is not an INT`);
  if (!isInt(type)) throw new RangeError(`${caller}: type ${describeValue(type)} is not an INT`);
  return { level, type, data };
}

/** Address literal to network-order bytes, with the same grammar as RemoteAddress (sockaddr.ts). */
function addressBytes(caller: string, family: 4 | 6, address: string): Uint8Array {
  let sockaddr: Uint8Array;
  try {
    sockaddr = encodeSockaddr({ family, address, port: 0, scopeId: 0 });
  } catch {
    throw new TypeError(`${caller}: ${JSON.stringify(address)} is not an IPv${family} address`);
  }
  return family === 4 ? sockaddr.subarray(4, 8) : sockaddr.subarray(8, 24);
}

// ---------------------------------------------------------------------------------------------
// Parser

/** Result of {@link parseControlInfo}. */
export type ParseControlInfoResult =
  | { readonly ok: true; readonly objects: CMSGHDR[] }
  | { readonly ok: false; readonly status: NTSTATUS; readonly reason: string };

/** Result of {@link translateControls}. */
export type TranslateControlsResult =
  | { readonly ok: true; readonly controls: SendControls }
  | { readonly ok: false; readonly status: NTSTATUS; readonly reason: string };

type Failure = { readonly ok: false; readonly status: NTSTATUS; readonly reason: string };

function fail(status: NTSTATUS, reason: string): Failure {
  return { ok: false, status, reason };
}

/**
 * Parses WskSendMessages' `ControlInfoLength` + `ControlInfo` into its control objects, walking
 * like WSA_CMSG_FIRSTHDR / WSA_CMSG_NXTHDR. Never throws, whatever it is given; every failure is
 * STATUS_INVALID_PARAMETER with a reason:
 *
 * - `ControlInfoLength` not an integer in 0..2^32-1 (ULONG);
 * - `ControlInfo` NULL (null/undefined) with a length other than 0 (NULL with 0 is fine: no
 *   objects), or not a Uint8Array, or given with length 0 (Windows' WSASendMsg refuses that
 *   too), or shorter (`byteLength`) than `ControlInfoLength`. Bytes past `ControlInfoLength` are
 *   not read, as in Windows;
 * - `ControlInfoLength` < 16: no room for the first header;
 * - a `cmsg_len` < 16, or running past `ControlInfoLength` (read as 64 bits: a non-zero high
 *   word is refused, never wrapped);
 * - bytes after the last object that are more than its alignment padding and too few (< 16) for
 *   another header. Padding after the last object up to align8(`cmsg_len`) may be there or not
 *   (WSA_CMSG_SPACE and WSA_CMSG_LEN totals both parse) and is not read. Windows' own
 *   WSA_CMSG_NXTHDR silently stops at such a tail; we refuse it, since it can only be a length
 *   mistake.
 *
 * Alignment: every header is read at an 8-aligned offset from the start of `ControlInfo` (the
 * walk steps by align8(`cmsg_len`), as WSA_CMSG_NXTHDR does), so a following header cannot be
 * misaligned by construction; a block written without the padding (a header packed right after
 * the previous data) is read at the aligned offset and refused there, normally for its
 * `cmsg_len`. The alignment of `ControlInfo` in memory (`byteOffset`) does not matter: nothing
 * here or in the native code reads the block in place.
 *
 * The objects' `data` are views into `ControlInfo`; levels and types are not checked here (see
 * {@link translateControls}).
 */
export function parseControlInfo(ControlInfo: unknown, ControlInfoLength: unknown): ParseControlInfoResult {
  try {
    return parse(ControlInfo, ControlInfoLength);
  } catch (error) {
    // Only reachable with hostile objects (e.g. a Uint8Array subclass whose getters throw).
    return fail(STATUS_INVALID_PARAMETER, `ControlInfo could not be read: ${describeError(error)}`);
  }
}

function parse(ControlInfo: unknown, ControlInfoLength: unknown): ParseControlInfoResult {
  if (!isUlong(ControlInfoLength)) {
    return fail(STATUS_INVALID_PARAMETER, `ControlInfoLength ${describeValue(ControlInfoLength)} is not a ULONG`);
  }
  const length = ControlInfoLength;
  if (ControlInfo === null || ControlInfo === undefined) {
    if (length !== 0) return fail(STATUS_INVALID_PARAMETER, `ControlInfoLength is ${length} but ControlInfo is NULL`);
    return { ok: true, objects: [] };
  }
  if (!types.isUint8Array(ControlInfo)) return fail(STATUS_INVALID_PARAMETER, 'ControlInfo is not a Uint8Array');
  if (length === 0) return fail(STATUS_INVALID_PARAMETER, 'ControlInfo is given but ControlInfoLength is 0');
  if (length > ControlInfo.byteLength) {
    return fail(
      STATUS_INVALID_PARAMETER,
      `ControlInfoLength ${length} is more than ControlInfo's ${ControlInfo.byteLength} bytes`,
    );
  }
  if (length < WSACMSGHDR_SIZE) {
    return fail(STATUS_INVALID_PARAMETER, `ControlInfoLength ${length} is shorter than a CMSGHDR (16 bytes)`);
  }

  const view = new DataView(ControlInfo.buffer, ControlInfo.byteOffset, length);
  const objects: CMSGHDR[] = [];
  let offset = 0;
  for (;;) {
    const left = length - offset;
    if (left < WSACMSGHDR_SIZE) {
      return fail(
        STATUS_INVALID_PARAMETER,
        `${left} bytes after the padding of object ${objects.length - 1} (at offset ${offset}) cannot hold a CMSGHDR`,
      );
    }
    const lo = view.getUint32(offset, true);
    const hi = view.getUint32(offset + 4, true);
    const where = `object ${objects.length} at offset ${offset}`;
    if (hi !== 0 || lo > left) {
      const cmsgLen = (BigInt(hi) << 32n) | BigInt(lo);
      return fail(
        STATUS_INVALID_PARAMETER,
        `${where}: cmsg_len ${cmsgLen} runs past ControlInfoLength ${length}`,
      );
    }
    if (lo < WSACMSGHDR_SIZE) {
      return fail(STATUS_INVALID_PARAMETER, `${where}: cmsg_len ${lo} is shorter than a CMSGHDR (16 bytes)`);
    }
    objects.push({
      cmsg_len: lo,
      cmsg_level: view.getInt32(offset + 8, true),
      cmsg_type: view.getInt32(offset + 12, true),
      data: ControlInfo.subarray(offset + WSA_CMSG_DATA_OFFSET, offset + lo),
    });
    const next = offset + align8(lo);
    // What is left up to `next` is this object's padding; nothing after it is another object.
    if (next >= length) return { ok: true, objects };
    offset = next;
  }
}

// ---------------------------------------------------------------------------------------------
// Supported controls: the one table

/** A supported control, as described in the module's table (see {@link SUPPORTED_CONTROLS}). */
export interface ControlDescription {
  /** The Windows name, e.g. `'IP_TOS'`. */
  readonly name: string;
  readonly level: number;
  readonly type: number;
  /** The socket family it works on; null for both. */
  readonly family: 4 | 6 | null;
  /** The exact data length it takes. */
  readonly dataLength: number;
  /** The SendControls fields it sets. */
  readonly fields: readonly (keyof SendControls)[];
}

interface ControlSpec extends ControlDescription {
  /** Reads `data` (already of `dataLength` bytes) into `out`; returns an error reason or null. */
  decode(data: DataView, out: SendControls): string | null;
  /** The data bytes for `controls`, or null when the control is not needed. Throws for bad values. */
  encode(controls: SendControls, caller: string): Uint8Array | null;
}

/** An INT-valued control for one SendControls field, valid in min..max. */
function intControl(
  name: string,
  level: number,
  type: number,
  family: 4 | 6,
  field: 'tos' | 'ttl' | 'ecn',
  min: number,
  max: number,
): ControlSpec {
  return {
    name,
    level,
    type,
    family,
    dataLength: 4,
    fields: [field],
    decode(data, out) {
      const value = data.getInt32(0, true);
      if (value < min || value > max) return `${name} value ${value} is not in ${min}..${max}`;
      out[field] = value;
      return null;
    },
    encode(controls, caller) {
      const value = controls[field];
      if (value === undefined) return null;
      checkRange(caller, field, value, min, max);
      return controlInt(level, type, value).data;
    },
  };
}

function pktinfoControl(family: 4 | 6): ControlSpec {
  const addressLength = family === 4 ? 4 : 16;
  const unspecified = family === 4 ? '0.0.0.0' : '::';
  return {
    name: family === 4 ? 'IP_PKTINFO' : 'IPV6_PKTINFO',
    level: family === 4 ? IPPROTO_IP : IPPROTO_IPV6,
    type: family === 4 ? IP_PKTINFO : IPV6_PKTINFO,
    family,
    dataLength: family === 4 ? IN_PKTINFO_SIZE : IN6_PKTINFO_SIZE,
    fields: ['sourceAddress', 'interfaceIndex'],
    decode(data, out) {
      const bytes = new Uint8Array(data.buffer, data.byteOffset, addressLength);
      if (bytes.some((byte) => byte !== 0)) out.sourceAddress = family === 4 ? bytes.join('.') : formatIPv6(bytes);
      const ifindex = data.getUint32(addressLength, true);
      if (ifindex !== 0) out.interfaceIndex = ifindex;
      return null;
    },
    encode(controls, caller) {
      const { sourceAddress, interfaceIndex } = controls;
      if (sourceAddress === undefined && interfaceIndex === undefined) return null;
      if (sourceAddress !== undefined && typeof sourceAddress !== 'string') {
        throw new TypeError(`${caller}: sourceAddress is not a string`);
      }
      const ifindex = interfaceIndex ?? 0;
      if (!isUlong(ifindex)) {
        throw new RangeError(`${caller}: interfaceIndex ${describeValue(ifindex)} is not in 0..4294967295`);
      }
      const address = sourceAddress ?? unspecified;
      return (family === 4 ? controlInPktinfo(address, ifindex) : controlIn6Pktinfo(address, ifindex)).data;
    },
  };
}

const MAX_SEGMENT_SIZE = 65527;

const CONTROLS: readonly ControlSpec[] = [
  pktinfoControl(4),
  intControl('IP_TOS', IPPROTO_IP, IP_TOS, 4, 'tos', 0, 255),
  intControl('IP_TTL', IPPROTO_IP, IP_TTL, 4, 'ttl', 1, 255),
  intControl('IP_ECN', IPPROTO_IP, IP_ECN, 4, 'ecn', 0, 3),
  pktinfoControl(6),
  intControl('IPV6_TCLASS', IPPROTO_IPV6, IPV6_TCLASS, 6, 'tos', 0, 255),
  intControl('IPV6_HOPLIMIT', IPPROTO_IPV6, IPV6_HOPLIMIT, 6, 'ttl', 1, 255),
  intControl('IPV6_ECN', IPPROTO_IPV6, IPV6_ECN, 6, 'ecn', 0, 3),
  {
    name: 'UDP_SEND_MSG_SIZE',
    level: IPPROTO_UDP,
    type: UDP_SEND_MSG_SIZE,
    family: null,
    dataLength: 4,
    fields: ['segmentSize'],
    decode(data, out) {
      const value = data.getUint32(0, true);
      if (value < 1 || value > MAX_SEGMENT_SIZE) {
        return `UDP_SEND_MSG_SIZE value ${value} is not in 1..${MAX_SEGMENT_SIZE}`;
      }
      out.segmentSize = value;
      return null;
    },
    encode(controls, caller) {
      const value = controls.segmentSize;
      if (value === undefined) return null;
      checkRange(caller, 'segmentSize', value, 1, MAX_SEGMENT_SIZE);
      return controlDword(IPPROTO_UDP, UDP_SEND_MSG_SIZE, value).data;
    },
  },
];

const CONTROL_BY_KEY: ReadonlyMap<string, ControlSpec> = new Map(
  CONTROLS.map((spec): [string, ControlSpec] => [`${spec.level}:${spec.type}`, spec]),
);

/** The supported controls, in the order of the module's table and of {@link encodeControls}' output. Frozen. */
export const SUPPORTED_CONTROLS: readonly ControlDescription[] = Object.freeze(
  CONTROLS.map(({ name, level, type, family, dataLength, fields }) =>
    Object.freeze({ name, level, type, family, dataLength, fields: Object.freeze([...fields]) }),
  ),
);

function checkRange(caller: string, field: string, value: unknown, min: number, max: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${caller}: ${field} ${describeValue(value)} is not an integer in ${min}..${max}`);
  }
}

/**
 * Translates parsed control objects into the SendControls for a socket of `family`, by the
 * module's table. Never throws. The objects are taken in order and the first one that fails
 * decides the result; nothing is translated partially:
 *
 * - STATUS_NOT_SUPPORTED: a level/type not in the table; or a control of the other IP version
 *   than the socket (IPPROTO_IP on an IPv6-only socket, IPPROTO_IPV6 on IPv4): it could not
 *   take effect, so it is refused rather than ignored ("ControlInfo may not be supported by all
 *   transports"). On a dual-stack IPv6 socket (`dualStack`) IPPROTO_IP controls are taken, as
 *   Windows applies them to a send to an IPv4-mapped address; either level's value then goes
 *   out at the level each destination needs.
 * - STATUS_INVALID_PARAMETER: the same control (level and type) twice, or (dual-stack) one
 *   value given at both levels (IP_TOS and IPV6_TCLASS: a call carries one); data of the wrong
 *   length for a known control (INT / DWORD: 4 bytes, IN_PKTINFO: 8, IN6_PKTINFO: 20, not
 *   more); a value outside the table's range; `objects` not an array of CMSGHDR-shaped
 *   objects; `family` not 4 or 6.
 *
 * IP_TOS and IP_ECN (IPV6_TCLASS and IPV6_ECN) may both be given: they set `tos` and `ecn`,
 * which the send path combines (SendControls). An empty list gives empty controls.
 */
export function translateControls(objects: CMSGHDR[], family: 4 | 6, dualStack = false): TranslateControlsResult {
  try {
    return translate(objects, family, dualStack === true && family === 6);
  } catch (error) {
    return fail(STATUS_INVALID_PARAMETER, `control objects could not be read: ${describeError(error)}`);
  }
}

function translate(objects: unknown, family: unknown, dualStack: boolean): TranslateControlsResult {
  if (family !== 4 && family !== 6) {
    return fail(STATUS_INVALID_PARAMETER, `socket family ${describeValue(family)} is not 4 or 6`);
  }
  if (!Array.isArray(objects)) return fail(STATUS_INVALID_PARAMETER, 'control objects are not an array');
  const controls: SendControls = {};
  const seen = new Set<ControlSpec>();
  const setBy = new Map<keyof SendControls, ControlSpec>();
  for (let i = 0; i < objects.length; i++) {
    const object: unknown = objects[i];
    if (typeof object !== 'object' || object === null) {
      return fail(STATUS_INVALID_PARAMETER, `object ${i} is not a CMSGHDR`);
    }
    const { cmsg_level: level, cmsg_type: type, data } = object as Partial<CMSGHDR>;
    if (!isInt(level) || !isInt(type) || !types.isUint8Array(data)) {
      return fail(STATUS_INVALID_PARAMETER, `object ${i} is not a CMSGHDR (INT level and type, Uint8Array data)`);
    }
    const spec = CONTROL_BY_KEY.get(`${level}:${type}`);
    if (spec === undefined) {
      return fail(STATUS_NOT_SUPPORTED, `object ${i}: control level ${level} type ${type} is not supported`);
    }
    if (spec.family !== null && spec.family !== family && !(dualStack && spec.family === 4)) {
      return fail(
        STATUS_NOT_SUPPORTED,
        `object ${i}: ${spec.name} is an IPv${spec.family} control and cannot be used on an IPv${family} socket`,
      );
    }
    if (seen.has(spec)) return fail(STATUS_INVALID_PARAMETER, `object ${i}: ${spec.name} is given twice`);
    seen.add(spec);
    for (const field of spec.fields) {
      const other = setBy.get(field);
      if (other !== undefined) {
        return fail(STATUS_INVALID_PARAMETER, `object ${i}: ${spec.name} and ${other.name} both give ${field}; one value per call`);
      }
      setBy.set(field, spec);
    }
    if (data.byteLength !== spec.dataLength) {
      return fail(
        STATUS_INVALID_PARAMETER,
        `object ${i}: ${spec.name} takes ${spec.dataLength} bytes of data, got ${data.byteLength}`,
      );
    }
    const error = spec.decode(new DataView(data.buffer, data.byteOffset, data.byteLength), controls);
    if (error !== null) return fail(STATUS_INVALID_PARAMETER, `object ${i}: ${error}`);
  }
  return { ok: true, controls };
}

/**
 * The inverse of {@link translateControls}: the Windows ControlInfo block for `controls` on a
 * socket of `family`, one object per control in the table's order ({@link SUPPORTED_CONTROLS});
 * IN_PKTINFO / IN6_PKTINFO carries 0.0.0.0 / `::` when only `interfaceIndex` is given and 0 when
 * only `sourceAddress` is. Fields that are undefined are left out; no fields give an empty array
 * (pass NULL with length 0 for that). Throws a TypeError for a family other than 4 or 6,
 * `controls` not an object, or a `sourceAddress` that is not an IP literal of `family`, and a
 * RangeError for a value outside the table's range, so what it builds always translates.
 */
export function encodeControls(controls: SendControls, family: 4 | 6): Uint8Array {
  const caller = 'encodeControls';
  if (family !== 4 && family !== 6) throw new TypeError(`${caller}: family ${describeValue(family)} is not 4 or 6`);
  if (typeof controls !== 'object' || controls === null) throw new TypeError(`${caller}: controls is not an object`);
  const objects: ControlObject[] = [];
  for (const spec of CONTROLS) {
    if (spec.family !== null && spec.family !== family) continue;
    const data = spec.encode(controls, caller);
    if (data !== null) objects.push({ level: spec.level, type: spec.type, data });
  }
  return buildControlInfo(objects);
}

