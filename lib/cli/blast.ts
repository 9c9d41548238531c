/**
 * `wsk-dgram blast`: a UDP load generator. N sender threads (each its own socket and source
 * port) send datagrams stamped with a header (header.ts) at a rate kept by the library's Pacer,
 * or as fast as they go; the main thread shows their summed counts beside the kernel's UDP
 * counters: a progress bar on a terminal, interval lines otherwise, NDJSON with --json.
 */
import { randomInt } from 'node:crypto';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { SingleBar } from 'cli-progress';
import { MAX_UDP_PAYLOAD } from '../transport';
import { gbit, grouped, hostPort, integerFlag, parseFlags, quantity, secondsFlag, UsageError } from './args';
import { HEADER_BYTES } from './header';
import { counterDelta, readUdpCounters, type UdpCounters } from './kernel';
import { Sender, type SenderConfig, type SenderCounts } from './sender';
import type { WorkerMessage } from './blast-worker';

export const BLAST_USAGE = `usage: wsk-dgram blast --to HOST:PORT --size N (--count N | --duration S) [options]

Sends UDP datagrams of N bytes to HOST:PORT, each stamped with a header (sender, sequence
number, time) that \`wsk-dgram sink\` reads to count loss, duplicates and reordering.

  --to HOST:PORT     destination; IPv6 as [ADDR]:PORT
  --size N           UDP payload bytes per datagram, ${HEADER_BYTES} .. 65507 (65527 over IPv6)
  --count N          datagrams in all (summed over the threads)     } one of
  --duration S       seconds to send                                 } these
  --rate PPS         datagrams per second in all (k, M, G suffixes: 100k)  } default: as
  --bitrate BPS      UDP payload bits per second in all (e.g. 1G)          } fast as it goes
  --batch N          datagrams per send call, 1 .. 65536 (default 1024)
  --gso on|off       UDP segmentation offload for runs of equal datagrams (default on)
  --tos N            TOS / traffic-class byte, 0 .. 255
  --ttl N            TTL / hop limit, 1 .. 255
  --src ADDR         local address to send from
  --threads N        sender threads, each with its own socket and source port (default 1)
  --json             NDJSON records (start, interval, summary) on stdout
  -h, --help         this text

Each interval and the summary show the kernel's UDP counters beside the tool's own counts
(/proc/net/snmp Udp, or Udp6 from /proc/net/snmp6 for IPv6): OutDatagrams counts kernel
messages (a GSO super-packet is one), so it is compared with the messages sent. The counters
are the whole network namespace's: other UDP senders count there too.
`;

const INTERVAL_MS = 1000;
const BAR_REFRESH_MS = 200;

export interface BlastOptions {
  to: { host: string; port: number; family: 4 | 6 };
  size: number;
  count: number | null;
  duration: number | null;
  rate: number | null;
  bitrate: number | null;
  batch: number;
  gso: boolean;
  tos: number | null;
  ttl: number | null;
  src: string | null;
  threads: number;
  json: boolean;
}

export function parseBlast(argv: readonly string[]): BlastOptions | 'help' {
  const values = parseFlags(argv, {
    to: { type: 'string' }, size: { type: 'string' }, count: { type: 'string' }, duration: { type: 'string' },
    rate: { type: 'string' }, bitrate: { type: 'string' }, batch: { type: 'string' }, gso: { type: 'string' },
    tos: { type: 'string' }, ttl: { type: 'string' }, src: { type: 'string' }, threads: { type: 'string' },
    json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
  });
  if (values.help === true) return 'help';
  if (values.to === undefined) throw new UsageError('--to HOST:PORT is required');
  if (values.size === undefined) throw new UsageError('--size N is required');
  const to = hostPort(values.to, 'to');
  const size = integerFlag(values.size, 'size', HEADER_BYTES, MAX_UDP_PAYLOAD[to.family]);
  if ((values.count === undefined) === (values.duration === undefined)) throw new UsageError('give one of --count N or --duration S');
  if (values.rate !== undefined && values.bitrate !== undefined) throw new UsageError('give --rate or --bitrate, not both');
  if (values.gso !== undefined && values.gso !== 'on' && values.gso !== 'off') throw new UsageError(`--gso must be on or off, got ${JSON.stringify(values.gso)}`);
  const threads = values.threads === undefined ? 1 : integerFlag(values.threads, 'threads', 1, 64);
  const count = values.count === undefined ? null : integerFlag(values.count, 'count', 1, Number.MAX_SAFE_INTEGER);
  if (count !== null && count < threads) throw new UsageError(`--count ${count} is less than --threads ${threads}`);
  const positiveQuantity = (text: string | undefined, name: string): number | null => {
    if (text === undefined) return null;
    const value = quantity(text, name);
    if (!(value > 0)) throw new UsageError(`--${name} must be above 0`);
    return value;
  };
  return {
    to, size, count, threads,
    duration: values.duration === undefined ? null : secondsFlag(values.duration, 'duration'),
    rate: positiveQuantity(values.rate, 'rate'),
    bitrate: positiveQuantity(values.bitrate, 'bitrate'),
    batch: values.batch === undefined ? 1024 : integerFlag(values.batch, 'batch', 1, 65536),
    gso: values.gso !== 'off',
    tos: values.tos === undefined ? null : integerFlag(values.tos, 'tos', 0, 255),
    ttl: values.ttl === undefined ? null : integerFlag(values.ttl, 'ttl', 1, 255),
    src: values.src ?? null,
    json: values.json === true,
  };
}

/** A running sender, in this thread or a worker. */
interface SenderHandle {
  latest: SenderCounts | null;
  readonly done: Promise<SenderCounts>;
  stop(): void;
}

function startInProcess(config: SenderConfig): SenderHandle {
  const sender = new Sender(config);
  const handle: SenderHandle = {
    get latest() {
      return sender.counts();
    },
    done: sender.run(),
    stop: () => sender.stop(),
  };
  return handle;
}

function startWorker(config: SenderConfig): SenderHandle {
  const worker = new Worker(path.join(__dirname, 'blast-worker.js'), { workerData: config });
  const handle: { latest: SenderCounts | null; done: Promise<SenderCounts>; stop(): void } = {
    latest: null,
    done: new Promise<SenderCounts>((resolve, reject) => {
      worker.on('message', (message: WorkerMessage) => {
        if (message.type === 'progress') handle.latest = message.counts;
        else if (message.type === 'done') {
          handle.latest = message.counts;
          resolve(message.counts);
        } else reject(new Error(`thread ${config.thread}: ${message.message}`));
      });
      worker.on('error', reject);
      worker.on('exit', (code) => reject(new Error(`thread ${config.thread} exited (status ${code}) before its summary`)));
    }),
    stop: () => worker.postMessage({ type: 'stop' }),
  };
  return handle;
}

/** The counts of all senders added up. */
function sum(counts: readonly (SenderCounts | null)[]): SenderCounts {
  const total: SenderCounts = { datagrams: 0, bytes: 0, syscalls: 0, messages: 0, failed: 0, ticks: 0, forfeited: 0, waitingTicks: 0, sourcePort: 0 };
  for (const c of counts) {
    if (c === null) continue;
    total.datagrams += c.datagrams;
    total.bytes += c.bytes;
    total.syscalls += c.syscalls;
    total.messages += c.messages;
    total.failed += c.failed;
    total.ticks += c.ticks;
    total.forfeited += c.forfeited;
    total.waitingTicks += c.waitingTicks;
  }
  return total;
}

/** The kernel's counters beside the tool's: do they agree? */
function kernelRecord(delta: UdpCounters | null, messages: number): { outDatagrams: number; sndbufErrors: number; agrees: boolean } | null {
  if (delta === null) return null;
  return { outDatagrams: delta.outDatagrams, sndbufErrors: delta.sndbufErrors, agrees: delta.outDatagrams === messages && delta.sndbufErrors === 0 };
}

function kernelText(kernel: ReturnType<typeof kernelRecord>, family: 4 | 6): string {
  if (kernel === null) return 'kernel counters not available';
  const table = family === 6 ? 'Udp6' : 'Udp';
  return `kernel ${table} OutDatagrams ${grouped(kernel.outDatagrams)} SndbufErrors ${grouped(kernel.sndbufErrors)}` +
    (kernel.agrees ? ' (agrees)' : ' (differs)');
}

export async function runBlast(argv: readonly string[]): Promise<number> {
  const options = parseBlast(argv);
  if (options === 'help') {
    process.stdout.write(BLAST_USAGE);
    return 0;
  }
  const { to, threads } = options;
  const session = randomInt(0, 0x1_0000_0000 - 1);
  const configs: SenderConfig[] = Array.from({ length: threads }, (_, thread) => ({
    host: to.host, port: to.port, family: to.family, size: options.size,
    count: options.count === null ? null : Math.floor(options.count / threads) + (thread < options.count % threads ? 1 : 0),
    durationMs: options.duration === null ? null : options.duration * 1000,
    rate: options.rate === null ? null : options.rate / threads,
    bitrate: options.bitrate === null ? null : options.bitrate / threads,
    batch: options.batch, gso: options.gso, tos: options.tos, ttl: options.ttl, src: options.src, session, thread,
  }));

  const out = process.stdout;
  const tty = out.isTTY === true && !options.json;
  const pacing = options.rate !== null ? `${grouped(options.rate)} dg/s` : options.bitrate !== null
    ? `${(options.bitrate / 1e9).toFixed(3)} Gbit/s` : 'unpaced (as fast as it goes)';
  const target = to.family === 6 ? `[${to.host}]:${to.port}` : `${to.host}:${to.port}`;
  const goal = options.count !== null ? `${grouped(options.count)} datagrams` : `${options.duration} s`;

  const kernelStart = readUdpCounters(to.family);
  const started = performance.now();
  let handles: SenderHandle[];
  try {
    handles = configs.map((config) => (threads === 1 ? startInProcess(config) : startWorker(config)));
  } catch (error) {
    process.stderr.write(`wsk-dgram blast: ${(error as Error).message}\n`);
    return 1;
  }
  let interrupted = false;
  const onSignal = (): void => {
    interrupted = true;
    for (const handle of handles) handle.stop();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  if (options.json) {
    out.write(`${JSON.stringify({ type: 'start', to: target, size: options.size, count: options.count, duration: options.duration,
      rate: options.rate, bitrate: options.bitrate, batch: options.batch, gso: options.gso, threads, session })}\n`);
  } else {
    out.write(`blast: ${target}, ${options.size} B datagrams, ${goal}, ${pacing}, batch ${options.batch}, ` +
      `GSO ${options.gso ? 'on' : 'off'}, ${threads} thread${threads === 1 ? '' : 's'}, session ${session.toString(16).padStart(8, '0')}\n`);
  }

  // Intervals: each one's counts are the difference of two cumulative snapshots.
  let previous = { at: started, counts: sum([]), kernel: kernelStart };
  // `final`: the senders' final counts (the last part-interval), which the periodic snapshots
  // may not have reached yet.
  const emitInterval = (final?: SenderCounts): void => {
    const now = performance.now();
    const counts = final ?? sum(handles.map((h) => h.latest));
    const kernelNow = readUdpCounters(to.family);
    const seconds = (now - previous.at) / 1000;
    const datagrams = counts.datagrams - previous.counts.datagrams;
    const bytes = counts.bytes - previous.counts.bytes;
    const messages = counts.messages - previous.counts.messages;
    const kernel = kernelRecord(counterDelta(kernelNow, previous.kernel), messages);
    const startS = (previous.at - started) / 1000;
    const endS = (now - started) / 1000;
    if (options.json) {
      out.write(`${JSON.stringify({ type: 'interval', start: round(startS), end: round(endS), datagrams, bytes, messages,
        syscalls: counts.syscalls - previous.counts.syscalls, datagramsPerSecond: round(datagrams / seconds),
        gbitPerSecond: round(gbit(bytes, seconds), 6), kernel })}\n`);
    } else {
      out.write(`[${startS.toFixed(1).padStart(6)}-${endS.toFixed(1).padStart(6)} s] sent ${grouped(datagrams).padStart(11)} dg ` +
        `${grouped(datagrams / seconds).padStart(11)} dg/s ${gbit(bytes, seconds).toFixed(3).padStart(7)} Gbit/s ` +
        `in ${grouped(messages)} messages | ${kernelText(kernel, to.family)}\n`);
    }
    previous = { at: now, counts, kernel: kernelNow };
  };

  let bar: SingleBar | null = null;
  let timer: NodeJS.Timeout;
  const total = options.count ?? options.duration! * 1000;
  if (tty) {
    bar = new SingleBar({
      stream: out,
      format: '{bar} {percentage}% | {sent} dg | {rate} dg/s | {gbps} Gbit/s | kernel out {kout} | {elapsed}s / {left}s left',
      barCompleteChar: '\u2588', barIncompleteChar: '\u2591', hideCursor: true, clearOnComplete: false,
      fps: 10, barsize: 20,
    });
    bar.start(total, 0, { sent: '0', rate: '0', gbps: '0.000', kout: '0', elapsed: '0.0', left: '?' });
    let last = { at: started, datagrams: 0, bytes: 0 };
    timer = setInterval(() => {
      const now = performance.now();
      const counts = sum(handles.map((h) => h.latest));
      const seconds = (now - last.at) / 1000;
      const elapsed = (now - started) / 1000;
      const done = options.count !== null ? counts.datagrams : Math.min(total, now - started);
      const fraction = done / total;
      const left = fraction > 0 ? (elapsed / fraction) - elapsed : NaN;
      const kernel = counterDelta(readUdpCounters(to.family), kernelStart);
      bar!.update(done, {
        sent: grouped(counts.datagrams), rate: grouped((counts.datagrams - last.datagrams) / seconds),
        gbps: gbit(counts.bytes - last.bytes, seconds).toFixed(3), kout: kernel === null ? '-' : grouped(kernel.outDatagrams),
        elapsed: elapsed.toFixed(1), left: Number.isFinite(left) ? Math.max(0, left).toFixed(1) : '?',
      });
      last = { at: now, datagrams: counts.datagrams, bytes: counts.bytes };
    }, BAR_REFRESH_MS);
  } else {
    timer = setInterval(() => emitInterval(), INTERVAL_MS);
  }

  let finals: SenderCounts[];
  let failure: unknown = null;
  try {
    finals = await Promise.all(handles.map((h) => h.done));
  } catch (error) {
    failure = error;
    for (const handle of handles) handle.stop();
    finals = (await Promise.allSettled(handles.map((h) => h.done)))
      .map((r, i) => (r.status === 'fulfilled' ? r.value : handles[i]!.latest ?? sum([])));
  }
  clearInterval(timer);
  process.off('SIGINT', onSignal);
  process.off('SIGTERM', onSignal);
  const ended = performance.now();
  const kernelEnd = readUdpCounters(to.family);
  const totals = sum(finals);
  const seconds = (ended - started) / 1000;
  if (bar !== null) {
    const kernelTotal = counterDelta(kernelEnd, kernelStart);
    bar.update(options.count !== null ? totals.datagrams : Math.min(total, ended - started), {
      sent: grouped(totals.datagrams), rate: grouped(totals.datagrams / seconds), gbps: gbit(totals.bytes, seconds).toFixed(3),
      kout: kernelTotal === null ? '-' : grouped(kernelTotal.outDatagrams), elapsed: seconds.toFixed(1), left: '0.0',
    });
    bar.stop();
  } else if (ended - previous.at > 50 || totals.datagrams !== previous.counts.datagrams) {
    emitInterval(totals); // the last part-interval: the intervals add up to the summary
  }
  const kernel = kernelRecord(counterDelta(kernelEnd, kernelStart), totals.messages);
  const paced = options.rate !== null || options.bitrate !== null;
  if (options.json) {
    out.write(`${JSON.stringify({ type: 'summary', seconds: round(seconds), datagrams: totals.datagrams, bytes: totals.bytes,
      messages: totals.messages, syscalls: totals.syscalls, failed: totals.failed, datagramsPerSecond: round(totals.datagrams / seconds),
      gbitPerSecond: round(gbit(totals.bytes, seconds), 6), threads, session, interrupted,
      sourcePorts: finals.map((f) => f.sourcePort),
      pacer: paced ? { ticks: totals.ticks, forfeited: round(totals.forfeited), waitingTicks: totals.waitingTicks } : null,
      kernel, error: failure === null ? null : (failure as Error).message })}\n`);
  } else {
    const lines = [
      `summary: sent ${grouped(totals.datagrams)} datagrams (${grouped(totals.bytes)} B payload) in ${seconds.toFixed(2)} s: ` +
        `${grouped(totals.datagrams / seconds)} dg/s, ${gbit(totals.bytes, seconds).toFixed(3)} Gbit/s` + (interrupted ? ' (interrupted)' : ''),
      `  ${grouped(totals.syscalls)} send calls (${(totals.datagrams / Math.max(1, totals.syscalls)).toFixed(1)} dg/call), ` +
        `${grouped(totals.messages)} kernel messages (a GSO super-packet is one)` +
        (totals.failed > 0 ? `, ${grouped(totals.failed)} refused by the kernel` : ''),
      `  ${kernelText(kernel, to.family)}` + (kernel !== null && !kernel.agrees
        ? ' -- other UDP traffic in this network namespace counts there too' : ''),
    ];
    if (paced) {
      lines.push(`  pacer: ${grouped(totals.ticks)} ticks, ${grouped(totals.forfeited)} ${options.rate !== null ? 'datagrams' : 'bytes'} of credit forfeited` +
        (totals.forfeited > 0 ? ' (the sender fell behind its rate)' : ' (kept up with the rate)') +
        (totals.waitingTicks > 0 ? `, ${grouped(totals.waitingTicks)} ticks waited for the socket buffer` : ''));
    }
    if (threads > 1) lines.push(`  threads: ${finals.map((f, i) => `#${i} port ${f.sourcePort} ${grouped(f.datagrams)} dg`).join(', ')}`);
    out.write(`${lines.join('\n')}\n`);
  }
  if (failure !== null) {
    process.stderr.write(`wsk-dgram blast: ${(failure as Error).message}\n`);
    return 1;
  }
  return interrupted ? 130 : 0;
}

function round(value: number, digits = 3): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}
