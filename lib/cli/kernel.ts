/**
 * The kernel's own UDP counters, for the tools to show beside their counts: /proc/net/snmp
 * (`Udp:` lines, IPv4) and /proc/net/snmp6 (`Udp6*`, IPv6). Linux only; elsewhere null.
 *
 * They count for the whole network namespace (every process's UDP), and per kernel message: a
 * GSO super-packet is one OutDatagram however many datagrams it carries, and with GRO a
 * coalesced chunk is one InDatagram.
 */
import * as fs from 'node:fs';

export interface UdpCounters {
  inDatagrams: number;
  outDatagrams: number;
  /** Datagrams dropped on receive for want of socket buffer. */
  rcvbufErrors: number;
  /** Sends refused for want of socket buffer (ENOBUFS/EAGAIN on a full buffer count here). */
  sndbufErrors: number;
  inErrors: number;
  noPorts: number;
}

const FIELDS: Record<string, keyof UdpCounters> = {
  InDatagrams: 'inDatagrams', OutDatagrams: 'outDatagrams', RcvbufErrors: 'rcvbufErrors',
  SndbufErrors: 'sndbufErrors', InErrors: 'inErrors', NoPorts: 'noPorts',
};

/** Parses the `Udp:` header and value lines of /proc/net/snmp text. */
export function parseSnmp(text: string): UdpCounters | null {
  const lines = text.split('\n').filter((line) => line.startsWith('Udp: '));
  if (lines.length < 2) return null;
  const names = lines[0]!.trim().split(/\s+/).slice(1);
  const values = lines[1]!.trim().split(/\s+/).slice(1).map(Number);
  return collect(names.map((name, i) => [name, values[i]!]));
}

/** Parses the `Udp6Name value` lines of /proc/net/snmp6 text. */
export function parseSnmp6(text: string): UdpCounters | null {
  const pairs: [string, number][] = [];
  for (const line of text.split('\n')) {
    const match = /^Udp6(\w+)\s+(\d+)/.exec(line);
    if (match !== null) pairs.push([match[1]!, Number(match[2])]);
  }
  return pairs.length === 0 ? null : collect(pairs);
}

function collect(pairs: readonly [string, number][]): UdpCounters | null {
  const counters: UdpCounters = { inDatagrams: 0, outDatagrams: 0, rcvbufErrors: 0, sndbufErrors: 0, inErrors: 0, noPorts: 0 };
  let found = 0;
  for (const [name, value] of pairs) {
    const field = FIELDS[name];
    if (field !== undefined && Number.isFinite(value)) {
      counters[field] = value;
      found++;
    }
  }
  return found === Object.keys(FIELDS).length ? counters : null;
}

/** The UDP counters of `family` now, or null where the kernel does not publish them. */
export function readUdpCounters(family: 4 | 6): UdpCounters | null {
  try {
    return family === 6 ? parseSnmp6(fs.readFileSync('/proc/net/snmp6', 'utf8')) : parseSnmp(fs.readFileSync('/proc/net/snmp', 'utf8'));
  } catch {
    return null;
  }
}

/** `after - before`, field by field (null when either is). */
export function counterDelta(after: UdpCounters | null, before: UdpCounters | null): UdpCounters | null {
  if (after === null || before === null) return null;
  return {
    inDatagrams: after.inDatagrams - before.inDatagrams,
    outDatagrams: after.outDatagrams - before.outDatagrams,
    rcvbufErrors: after.rcvbufErrors - before.rcvbufErrors,
    sndbufErrors: after.sndbufErrors - before.sndbufErrors,
    inErrors: after.inErrors - before.inErrors,
    noPorts: after.noPorts - before.noPorts,
  };
}
