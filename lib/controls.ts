/**
 * Send controls checked and put in the native form (lib/binding.ts NativeControls), shared by
 * the idiomatic API and the WSK layer. Pure: loads no native code.
 */
import type { NativeControls } from './binding';
import { describeValue } from './describe';
import { parseIpLiteral } from './address';
import { MAX_UDP_PAYLOAD, type SendControls } from './transport';

function checkInteger(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${name} must be an integer, got ${describeValue(value)}`);
  }
  if (value < min || value > max) throw new RangeError(`${name} must be from ${min} to ${max}, got ${value}`);
  return value;
}

/**
 * Checks controls and puts them in the native form: the ECN codepoint goes into the low two
 * bits of the TOS byte. Undefined when there are none. On a dual-stack IPv6 socket
 * (`dualStack`) an IPv4 source address becomes its IPv4-mapped form, for IPv4 peers.
 */
export function nativeControls(controls: SendControls, family: 4 | 6, dualStack = false,
): NativeControls | undefined {
  // Each field once: a getter cannot answer the check one thing and the send another.
  const { sourceAddress, interfaceIndex, tos, ecn, ttl, segmentSize } = controls as Record<keyof SendControls, unknown>;
  const result: NativeControls = {};
  let any = false;
  if (sourceAddress !== undefined) {
    result.sourceAddress = parseIpLiteral(sourceAddress, family, dualStack).address;
    any = true;
  }
  if (interfaceIndex !== undefined) {
    result.interfaceIndex = checkInteger(interfaceIndex, 'interfaceIndex', 0, 0xffffffff);
    any = true;
  }
  if (tos !== undefined || ecn !== undefined) {
    const byte = tos === undefined ? 0 : checkInteger(tos, 'tos', 0, 255);
    const codepoint = ecn === undefined ? byte & 3 : checkInteger(ecn, 'ecn', 0, 3);
    result.tos = (byte & ~3) | codepoint;
    any = true;
  }
  if (ttl !== undefined) {
    result.ttl = checkInteger(ttl, 'ttl', 1, 255);
    any = true;
  }
  if (segmentSize !== undefined) {
    result.segmentSize = checkInteger(segmentSize, 'segmentSize', 1, MAX_UDP_PAYLOAD[family]);
    any = true;
  }
  return any ? result : undefined;
}
