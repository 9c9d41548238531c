/**
 * `wsk-dgram sink`: the batched receiver (UdpSocket.receiveBatch, recvmmsg) as a tool. Counts
 * datagrams and bytes, and from the headers blast writes (header.ts) loss, duplicates and
 * reordering per sender; shows the kernel's UDP receive counters beside its own.
 */
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { createSocket, type UdpSocket } from '../socket';
import { gbit, grouped, integerFlag, parseFlags, secondsFlag, UsageError } from './args';
import { readHeader, SequenceTracker } from './header';
import { counterDelta, readUdpCounters, type UdpCounters } from './kernel';

export const SINK_USAGE = `usage: wsk-dgram sink --port N [options]

Receives UDP datagrams in batches (recvmmsg) and counts them; for datagrams from
\`wsk-dgram blast\` it also counts loss, duplicates and reordering per sender. Ends on Ctrl-C
(SIGINT) or SIGTERM with a summary, or after --duration, --count or --idle.

  --port N           UDP port to listen on, 1 .. 65535
  --bind ADDR        local address (default 0.0.0.0; an IPv6 address such as :: or ::1 listens on IPv6)
  --gro              ask the kernel to coalesce datagrams of a flow (UDP_GRO, Linux 5.0+)
  --rcvbuf BYTES     receive buffer to ask for (default 64M; k, M, G suffixes)
  --duration S       stop after S seconds
  --count N          stop after N datagrams
  --idle S           stop once nothing arrived for S seconds (after the first datagram)
  --json             NDJSON records (start, interval, summary) on stdout
  -h, --help         this text

The kernel's receive counters (/proc/net/snmp Udp, /proc/net/snmp6 Udp6) are shown beside
the sink's: RcvbufErrors counts datagrams the kernel dropped for want of receive buffer.
They are the whole network namespace's. Loss is counted below the highest sequence number
seen: datagrams lost at the very end of a run are not seen as lost.
`;

const INTERVAL_MS = 1000;
const DEFAULT_RCVBUF = 64 * 1024 * 1024;
const MAX_DATAGRAMS = 256;
const SLOT = 65535;

export interface SinkOptions {
  port: number;
  bind: string;
  family: 4 | 6;
  gro: boolean;
  rcvbuf: number;
  duration: number | null;
  count: number | null;
  idle: number | null;
  json: boolean;
}

export function parseSink(argv: readonly string[]): SinkOptions | 'help' {
  const values = parseFlags(argv, {
    port: { type: 'string' }, bind: { type: 'string' }, gro: { type: 'boolean' }, rcvbuf: { type: 'string' },
    duration: { type: 'string' }, count: { type: 'string' }, idle: { type: 'string' }, json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help === true) return 'help';
  if (values.port === undefined) throw new UsageError('--port N is required');
  const bind = values.bind ?? '0.0.0.0';
  return {
    port: integerFlag(values.port, 'port', 1, 65535),
    bind,
    family: bind.includes(':') ? 6 : 4,
    gro: values.gro === true,
    rcvbuf: values.rcvbuf === undefined ? DEFAULT_RCVBUF : integerFlag(values.rcvbuf, 'rcvbuf', 1, 0x7fffffff),
    duration: values.duration === undefined ? null : secondsFlag(values.duration, 'duration'),
    count: values.count === undefined ? null : integerFlag(values.count, 'count', 1, Number.MAX_SAFE_INTEGER),
    idle: values.idle === undefined ? null : secondsFlag(values.idle, 'idle'),
    json: values.json === true,
  };
}

/** What the receive buffer setting came to. */
interface BufferReport {
  asked: number;
  /** What the kernel reports (Linux: twice what it granted), or null when it cannot be read. */
  granted: number | null;
  note: string | null;
}

/**
 * Sets SO_RCVBUF through the socket's setRecvBufferSize where this build has it (issue 11 adds
 * it). Without it the kernel's default stays, and the report says so.
 */
function setReceiveBuffer(socket: UdpSocket, bytes: number): BufferReport {
  const withBuffer = socket as unknown as { setRecvBufferSize?: (n: number) => void; getRecvBufferSize?: () => number };
  if (typeof withBuffer.setRecvBufferSize !== 'function') {
    return { asked: bytes, granted: null, note: `this build of wsk-dgram cannot set SO_RCVBUF: the kernel's default (net.core.rmem_default = ${readSysctl('rmem_default')}) stays` };
  }
  try {
    withBuffer.setRecvBufferSize(bytes);
  } catch (error) {
    return { asked: bytes, granted: null, note: `setting the receive buffer failed: ${(error as Error).message}` };
  }
  const granted = typeof withBuffer.getRecvBufferSize === 'function' ? withBuffer.getRecvBufferSize() : null;
  const note = granted !== null && granted < bytes
    ? `the kernel granted less than asked (net.core.rmem_max = ${readSysctl('rmem_max')}; root may exceed it)` : null;
  return { asked: bytes, granted, note };
}

function readSysctl(name: string): string {
  try {
    return fs.readFileSync(`/proc/sys/net/core/${name}`, 'utf8').trim();
  } catch {
    return '?';
  }
}

interface SenderAccount {
  session: number;
  thread: number;
  source: string;
  tracker: SequenceTracker;
}

export async function runSink(argv: readonly string[]): Promise<number> {
  const options = parseSink(argv);
  if (options === 'help') {
    process.stdout.write(SINK_USAGE);
    return 0;
  }
  const out = process.stdout;
  let socket: UdpSocket;
  let buffer: BufferReport;
  try {
    socket = createSocket(options.family === 6 ? 'udp6' : 'udp4');
    buffer = setReceiveBuffer(socket, options.rcvbuf);
    socket.bind(options.port, options.bind);
    if (options.gro) socket.enableReceiveInfo({ gro: true });
  } catch (error) {
    process.stderr.write(`wsk-dgram sink: ${(error as Error).message}\n`);
    return 1;
  }
  const local = socket.address();
  const listen = options.family === 6 ? `[${local.address}]:${local.port}` : `${local.address}:${local.port}`;
  if (options.json) {
    out.write(`${JSON.stringify({ type: 'start', listen, gro: options.gro, rcvbuf: buffer })}\n`);
  } else {
    out.write(`sink: listening on ${listen}${options.gro ? ' with GRO' : ''}; receive buffer asked ${grouped(buffer.asked)} B, ` +
      `${buffer.granted === null ? 'not set' : `kernel reports ${grouped(buffer.granted)} B`}\n`);
    if (buffer.note !== null) out.write(`sink: note: ${buffer.note}\n`);
  }

  const senders = new Map<number, SenderAccount>();
  let datagrams = 0;
  let bytes = 0;
  let chunks = 0; // receive entries: with GRO one holds several datagrams
  let calls = 0;
  let foreign = 0;
  let truncated = 0;
  let first: number | null = null;
  let lastArrival = 0;
  let stopping = false;
  const kernelStart = readUdpCounters(options.family);
  const started = performance.now();

  const account = (data: Uint8Array, offset: number, length: number, source: string): void => {
    datagrams++;
    bytes += length;
    const header = readHeader(data, offset, length);
    if (header === null) {
      foreign++;
      return;
    }
    const key = header.session * 65536 + header.thread;
    let sender = senders.get(key);
    if (sender === undefined) {
      sender = { session: header.session, thread: header.thread, source, tracker: new SequenceTracker() };
      senders.set(key, sender);
    }
    sender.tracker.add(header.sequence);
  };

  const totals = (): { lost: number; duplicates: number; reordered: number; tooLate: number } => {
    let lost = 0; let duplicates = 0; let reordered = 0; let tooLate = 0;
    for (const s of senders.values()) {
      lost += s.tracker.lost;
      duplicates += s.tracker.duplicates;
      reordered += s.tracker.reordered;
      tooLate += s.tracker.tooLate;
    }
    return { lost, duplicates, reordered, tooLate };
  };

  const kernelRecord = (delta: UdpCounters | null): { inDatagrams: number; rcvbufErrors: number; inErrors: number } | null =>
    (delta === null ? null : { inDatagrams: delta.inDatagrams, rcvbufErrors: delta.rcvbufErrors, inErrors: delta.inErrors });
  const table = options.family === 6 ? 'Udp6' : 'Udp';
  const kernelText = (k: ReturnType<typeof kernelRecord>): string => (k === null ? 'kernel counters not available'
    : `kernel ${table} InDatagrams ${grouped(k.inDatagrams)} RcvbufErrors ${grouped(k.rcvbufErrors)}`);

  let previous = { at: started, datagrams: 0, bytes: 0, chunks: 0, lost: 0, kernel: kernelStart };
  const emitInterval = (): void => {
    const now = performance.now();
    const seconds = (now - previous.at) / 1000;
    const kernelNow = readUdpCounters(options.family);
    const counts = totals();
    const record = {
      start: round((previous.at - started) / 1000), end: round((now - started) / 1000),
      datagrams: datagrams - previous.datagrams, bytes: bytes - previous.bytes, chunks: chunks - previous.chunks,
      lost: counts.lost - previous.lost,
    };
    const kernel = kernelRecord(counterDelta(kernelNow, previous.kernel));
    if (options.json) {
      out.write(`${JSON.stringify({ type: 'interval', ...record, datagramsPerSecond: round(record.datagrams / seconds),
        gbitPerSecond: round(gbit(record.bytes, seconds), 6), kernel })}\n`);
    } else if (first !== null) {
      out.write(`[${record.start.toFixed(1).padStart(6)}-${record.end.toFixed(1).padStart(6)} s] received ` +
        `${grouped(record.datagrams).padStart(11)} dg ${grouped(record.datagrams / seconds).padStart(11)} dg/s ` +
        `${gbit(record.bytes, seconds).toFixed(3).padStart(7)} Gbit/s lost ${grouped(record.lost)} | ${kernelText(kernel)}\n`);
    }
    previous = { at: now, datagrams, bytes, chunks, lost: counts.lost, kernel: kernelNow };
  };
  const timer = setInterval(emitInterval, INTERVAL_MS);

  const stop = (): void => {
    stopping = true;
    socket.close(); // a receive waiting resolves with []
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const deadline = options.duration === null ? null : setTimeout(stop, options.duration * 1000);

  const arena = new Uint8Array(MAX_DATAGRAMS * SLOT);
  try {
    while (!stopping) {
      const timeoutMs = options.idle !== null && first !== null ? Math.max(1, Math.ceil(options.idle * 1000 - (performance.now() - lastArrival))) : 500;
      const batch = await socket.receiveBatch({ maxDatagrams: MAX_DATAGRAMS, slotSize: SLOT, arena, timeoutMs });
      if (stopping) break;
      if (batch.length === 0) {
        if (options.idle !== null && first !== null && performance.now() - lastArrival >= options.idle * 1000) break;
        continue;
      }
      calls++;
      lastArrival = performance.now();
      first ??= lastArrival;
      for (const d of batch) {
        chunks++;
        if (d.truncated) truncated++;
        const source = d.source.family === 'IPv6' ? `[${d.source.address}]:${d.source.port}` : `${d.source.address}:${d.source.port}`;
        if (d.segmentSize > 0 && d.data.length > d.segmentSize) {
          for (let at = 0; at < d.data.length; at += d.segmentSize) account(d.data, at, Math.min(d.segmentSize, d.data.length - at), source);
        } else {
          account(d.data, 0, d.data.length, source);
        }
      }
      if (options.count !== null && datagrams >= options.count) break;
    }
  } catch (error) {
    process.stderr.write(`wsk-dgram sink: ${(error as Error).message}\n`);
    return 1;
  } finally {
    clearInterval(timer);
    if (deadline !== null) clearTimeout(deadline);
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    socket.close();
  }

  const ended = performance.now();
  if (!options.json && first !== null && ended - previous.at > 50) emitInterval();
  const kernel = kernelRecord(counterDelta(readUdpCounters(options.family), kernelStart));
  // The rate is over the time datagrams were arriving (first to last), not the waiting before.
  const activeSeconds = first === null ? 0 : (lastArrival - first) / 1000;
  const counts = totals();
  const perSender = [...senders.values()].map((s) => ({
    session: s.session, thread: s.thread, source: s.source, received: s.tracker.received, highest: s.tracker.highest,
    lost: s.tracker.lost, duplicates: s.tracker.duplicates, reordered: s.tracker.reordered, tooLate: s.tracker.tooLate,
  }));
  const expected = datagrams - foreign - counts.duplicates + counts.lost;
  const lossPercent = expected > 0 ? (counts.lost / expected) * 100 : 0;
  if (options.json) {
    out.write(`${JSON.stringify({ type: 'summary', seconds: round((ended - started) / 1000), activeSeconds: round(activeSeconds),
      datagrams, bytes, chunks, receiveCalls: calls, foreign, truncated, ...counts, lossPercent: round(lossPercent, 4),
      datagramsPerSecond: activeSeconds > 0 ? round(datagrams / activeSeconds) : 0,
      gbitPerSecond: round(gbit(bytes, activeSeconds), 6), senders: perSender, kernel, rcvbuf: buffer })}\n`);
  } else {
    const lines = [
      `summary: received ${grouped(datagrams)} datagrams (${grouped(bytes)} B payload) in ${grouped(calls)} receive calls` +
        (activeSeconds > 0 ? `, ${grouped(datagrams / activeSeconds)} dg/s, ${gbit(bytes, activeSeconds).toFixed(3)} Gbit/s over ${activeSeconds.toFixed(2)} s of arrivals` : ''),
      `  from blast headers: lost ${grouped(counts.lost)} (${lossPercent.toFixed(3)} %), duplicates ${grouped(counts.duplicates)}, ` +
        `reordered ${grouped(counts.reordered)}` + (counts.tooLate > 0 ? `, ${grouped(counts.tooLate)} too late to tell` : '') +
        `; ${grouped(foreign)} without a blast header` + (truncated > 0 ? `, ${grouped(truncated)} truncated` : ''),
      `  ${kernelText(kernel)}` + (kernel !== null ? `: the kernel dropped ${grouped(kernel.rcvbufErrors)} for want of receive buffer` : '') +
        (options.gro ? ` (with GRO the kernel counts each coalesced chunk once: ${grouped(chunks)} chunks)` : ''),
    ];
    for (const s of perSender) {
      lines.push(`  sender ${s.session.toString(16).padStart(8, '0')}#${s.thread} from ${s.source}: ${grouped(s.received)} received, ` +
        `highest sequence ${grouped(s.highest)}, lost ${grouped(s.lost)}, duplicates ${grouped(s.duplicates)}, reordered ${grouped(s.reordered)}`);
    }
    out.write(`${lines.join('\n')}\n`);
  }
  return 0;
}

function round(value: number, digits = 3): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

