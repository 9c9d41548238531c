/**
 * Socket options with node:dgram's names: the createSocket options read and applied once, and
 * the setters UdpSocket forwards to (broadcast, TTL, TOS, multicast, membership, buffer sizes,
 * disconnect). Arguments are checked here (TypeError / RangeError) and again on the native side;
 * an OS refusal is a WskError whose `syscall` is the dgram method's name (as dgram's errors'
 * is), or `setsockopt(SO_...)` for a createSocket option.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { NativeOption, type NativeOptionNumber, type NativeUdpSocket } from './binding';
import { describeValue } from './describe';
import { WskError } from './errors';
import { checkOptionNames, SOCKET_OPTION_NAMES } from './option-names';
import { osErrorName } from './wsk/wsa';

/** The createSocket options, each read once and checked. */
export interface SocketSettings {
  readonly type: 'udp4' | 'udp6';
  readonly gso: boolean | undefined;
  readonly sendBufferSize: number | undefined;
  readonly recvBufferSize: number | undefined;
  readonly reuseAddr: boolean;
  readonly reusePort: boolean;
  /** Read once for the code that implements them; not checked here. */
  readonly ipv6Only: unknown;
  readonly signal: unknown;
}

const MAX_BUFFER_SIZE = 0x7fffffff;

function checkBoolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean, got ${describeValue(value)}`);
  return value;
}

function checkInteger(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${name} must be an integer, got ${describeValue(value)}`);
  }
  if (value < min || value > max) throw new RangeError(`${name} must be from ${min} to ${max}, got ${value}`);
  return value;
}

function checkBufferSize(value: unknown, name: string): number {
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > MAX_BUFFER_SIZE) {
    throw new RangeError(`${name} must be an integer from 1 to 2^31-1, got ${describeValue(value)}`);
  }
  return value as number;
}

/**
 * Reads `options` (a type string or the createSocket options object) once: each field is read
 * one time, so a getter cannot answer the check one thing and the socket another. Unknown names
 * are a TypeError. Nothing is opened yet, so a bad option leaves no descriptor behind.
 */
export function readSocketOptions(options: unknown): SocketSettings {
  if (typeof options === 'string' || options === undefined || options === null) {
    const type: unknown = options;
    if (type !== 'udp4' && type !== 'udp6') {
      throw new TypeError(`socket type must be 'udp4' or 'udp6', got ${describeValue(type)}`);
    }
    return { type, gso: undefined, sendBufferSize: undefined, recvBufferSize: undefined, reuseAddr: false,
      reusePort: false, ipv6Only: undefined, signal: undefined };
  }
  checkOptionNames(options, SOCKET_OPTION_NAMES, 'createSocket');
  const bag = options as Record<string, unknown>;
  const { type, gso, sendBufferSize, recvBufferSize, reuseAddr, reusePort, ipv6Only, signal } = bag;
  if (type !== 'udp4' && type !== 'udp6') {
    throw new TypeError(`socket type must be 'udp4' or 'udp6', got ${describeValue(type)}`);
  }
  return {
    type,
    gso: gso === undefined ? undefined : checkBoolean(gso, 'gso'),
    sendBufferSize: sendBufferSize === undefined ? undefined : checkBufferSize(sendBufferSize, 'sendBufferSize'),
    recvBufferSize: recvBufferSize === undefined ? undefined : checkBufferSize(recvBufferSize, 'recvBufferSize'),
    reuseAddr: reuseAddr === undefined ? false : checkBoolean(reuseAddr, 'reuseAddr'),
    reusePort: reusePort === undefined ? false : checkBoolean(reusePort, 'reusePort'),
    ipv6Only,
    signal,
  };
}

function set(native: NativeUdpSocket, option: NativeOptionNumber, value: number, syscall: string): void {
  const error = native.setOption(option, value);
  if (error !== 0) throw new WskError(error, syscall);
}

/** Applies the options that must come before any bind (reuse) and the buffer sizes. */
export function applySocketOptions(native: NativeUdpSocket, settings: SocketSettings): void {
  if (settings.reuseAddr) set(native, NativeOption.reuseAddress, 1, 'setsockopt(SO_REUSEADDR)');
  if (settings.reusePort) set(native, NativeOption.reusePort, 1, 'setsockopt(SO_REUSEPORT)');
  if (settings.recvBufferSize !== undefined) setBufferSize(native, 'receive', settings.recvBufferSize, 'setsockopt(SO_RCVBUF)');
  if (settings.sendBufferSize !== undefined) setBufferSize(native, 'send', settings.sendBufferSize, 'setsockopt');
}

/** Sets a 0/1 option from a boolean (dgram takes any value; a non-boolean is a TypeError here). */
export function setFlag(native: NativeUdpSocket, option: NativeOptionNumber, flag: unknown, syscall: string): boolean {
  set(native, option, checkBoolean(flag, 'flag') ? 1 : 0, syscall);
  return flag as boolean;
}

/** Sets an integer option after checking it is in [min, max]; returns it, as dgram's setTTL does. */
export function setInteger(native: NativeUdpSocket, option: NativeOptionNumber, value: unknown, name: string,
  min: number, max: number, syscall: string): number {
  const checked = checkInteger(value, name, min, max);
  set(native, option, checked, syscall);
  return checked;
}

/**
 * SO_RCVBUF / SO_SNDBUF. Linux caps a request at net.core.rmem_max / wmem_max; the forced form
 * (SO_RCVBUFFORCE / SO_SNDBUFFORCE) is tried first and passes the cap when the process has
 * CAP_NET_ADMIN. Refused (EPERM), or missing on this OS (ENOPROTOOPT), the plain form is used.
 * Below the cap both set the same size.
 */
export function setBufferSize(native: NativeUdpSocket, which: 'receive' | 'send', bytes: unknown, syscall: string): void {
  const size = checkBufferSize(bytes, which === 'receive' ? 'receive buffer size' : 'send buffer size');
  const forced = native.setOption(which === 'receive' ? NativeOption.receiveBufferForce : NativeOption.sendBufferForce, size);
  if (forced === 0) return;
  const why = osErrorName(forced);
  if (why !== 'EPERM' && why !== 'ENOPROTOOPT') throw new WskError(forced, syscall);
  set(native, which === 'receive' ? NativeOption.receiveBufferSize : NativeOption.sendBufferSize, size, syscall);
}

/** Reads an integer option. */
export function getOption(native: NativeUdpSocket, option: NativeOptionNumber, syscall: string): number {
  const result = native.getOption(option);
  if (typeof result === 'number') throw new WskError(result, syscall);
  return result.value;
}

/** A multicast group or source: an IP literal of the socket's family, without a zone. */
function groupLiteral(value: unknown, family: 4 | 6, name: string): string {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string IP literal, got ${describeValue(value)}`);
  if (!(family === 4 ? isIPv4(value) : isIPv6(value) && !value.includes('%'))) {
    throw new TypeError(`${name} must be an IPv${family} literal (no zone: give the interface as ` +
      `multicastInterface), got ${describeValue(value)}`);
  }
  return value;
}

/**
 * A multicast interface as dgram takes it: IPv4, an address of the interface; IPv6, an IPv6
 * literal whose zone names the interface ('::%eth0', '::%2'; only the zone counts). undefined:
 * the OS picks.
 */
function interfaceText(value: unknown, family: 4 | 6, name: string): string | null {
  if (value === undefined) return null;
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string, got ${describeValue(value)}`);
  if (family === 4) {
    if (!isIPv4(value)) throw new TypeError(`${name} must be an IPv4 address of the interface, got ${describeValue(value)}`);
    return value;
  }
  const percent = value.indexOf('%');
  const literal = percent < 0 ? value : value.slice(0, percent);
  const zone = percent < 0 ? null : value.slice(percent + 1);
  if (!isIPv6(literal) || (zone !== null && (zone.length < 1 || zone.length > 16 || zone.includes('\0')))) {
    throw new TypeError(`${name} must be an IPv6 literal with the interface as its zone ('::%eth0' or '::%2'), ` +
      `got ${describeValue(value)}`);
  }
  return value;
}

/**
 * addMembership / dropMembership (`source` null) and their source-specific forms (`source`
 * wraps the caller's sourceAddress, checked like the group: undefined is a TypeError there,
 * not a join of every source).
 */
export function setMembership(native: NativeUdpSocket, family: 4 | 6, join: boolean, group: unknown,
  source: { readonly address: unknown } | null, multicastInterface: unknown, syscall: string): void {
  const groupText = groupLiteral(group, family, 'multicastAddress');
  const sourceText = source === null ? null : groupLiteral(source.address, family, 'sourceAddress');
  const via = interfaceText(multicastInterface, family, 'multicastInterface');
  const error = native.membership(join, groupText, sourceText, via);
  if (error !== 0) throw new WskError(error, syscall);
}

/** setMulticastInterface. */
export function setMulticastInterface(native: NativeUdpSocket, family: 4 | 6, interfaceAddress: unknown): void {
  if (interfaceAddress === undefined) throw new TypeError('interfaceAddress must be a string, got undefined');
  const via = interfaceText(interfaceAddress, family, 'interfaceAddress') as string;
  const error = native.setMulticastInterface(via);
  if (error !== 0) throw new WskError(error, 'setMulticastInterface');
}

/**
 * disconnect: a socket that is not connected is a TypeError carrying dgram's code
 * ERR_SOCKET_DGRAM_NOT_CONNECTED (a caller's mistake, like a destination on a connected socket);
 * the OS's refusal is a WskError.
 */
export function disconnect(native: NativeUdpSocket, connected: boolean): void {
  if (!connected) {
    throw Object.assign(new TypeError('disconnect: the socket is not connected'), { code: 'ERR_SOCKET_DGRAM_NOT_CONNECTED' });
  }
  const error = native.disconnect();
  if (error !== 0) throw new WskError(error, 'disconnect');
}
