/**
 * The bench's pacing section (`--pacing`): wsk-dgram's Pacer against node:dgram paced by
 * setInterval, each at several rates for a few seconds, one sender process per run, one
 * receiver (this process). Per run: the achieved rate against the target (the Pacer's target
 * is within 2 %), system calls per datagram (`perf stat` on the sender's sendmsg/sendmmsg
 * tracepoints where perf works, else the socket's own count for wsk-dgram), and how evenly the
 * datagrams arrive: the receiver counts arrivals in every 1 ms of the run and reports the
 * median and 99th percentile of those counts (an even sender's are both near rate/1000).
 */
import { execFile, execFileSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';

export const PACING_DEFAULTS = { rates: [20_000, 100_000, 200_000], seconds: 3, size: 1200 } as const;
/** The Pacer's achieved rate must be within this fraction of its target. */
const TOLERANCE = 0.02;
const QUIET_MS = 100;

type PacingContender = 'pacer' | 'interval';
const NAMES: Record<PacingContender, string> = { pacer: 'wsk-dgram Pacer', interval: 'node:dgram setInterval' };

export interface PacingRow {
  contender: PacingContender;
  name: string;
  targetRate: number;
  sent: number;
  received: number;
  seconds: number;
  achievedRate: number;
  /** achieved / target - 1. */
  error: number;
  /** Within TOLERANCE (judged for the Pacer only; null for node:dgram). */
  pass: boolean | null;
  syscalls: number | null;
  syscallsPerDatagram: number | null;
  /** How syscalls were counted: 'perf' (tracepoints), 'socket' (socket.stats()), or null. */
  syscallSource: 'perf' | 'socket' | null;
  /** Arrivals per 1 ms bucket over the run: median, 99th percentile, max, share of empty buckets. */
  perMsP50: number;
  perMsP99: number;
  perMsMax: number;
  emptyBucketPercent: number;
}

/** The receiver: counts the run's datagrams into 1 ms buckets from the first arrival. */
class ArrivalCounter {
  readonly #socket: dgram.Socket;
  #run = 0;
  #first = 0;
  #last = 0;
  #buckets: number[] = [];
  received = 0;

  private constructor(socket: dgram.Socket) {
    this.#socket = socket;
    socket.on('message', (message) => {
      if (message.length < 4 || message.readUInt32BE(0) !== this.#run) return;
      const now = performance.now();
      if (this.received === 0) this.#first = now;
      this.#last = now;
      this.received++;
      const bucket = Math.floor(now - this.#first);
      while (this.#buckets.length <= bucket) this.#buckets.push(0);
      this.#buckets[bucket]!++;
    });
  }

  static async open(family: 4 | 6): Promise<ArrivalCounter> {
    // The instrument, not a contender: node:dgram with a receive buffer as large as the
    // kernel allows without privileges (net.core.rmem_max).
    let rmemMax = 4 * 1024 * 1024;
    try {
      rmemMax = Number(fs.readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
    } catch {
      // keep the guess
    }
    const socket = dgram.createSocket({ type: family === 6 ? 'udp6' : 'udp4', recvBufferSize: Math.min(rmemMax, 64 * 1024 * 1024) });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, family === 6 ? '::1' : '127.0.0.1', () => resolve());
    });
    return new ArrivalCounter(socket);
  }

  get port(): number {
    return this.#socket.address().port;
  }

  start(run: number): void {
    this.#run = run;
    this.received = 0;
    this.#buckets = [];
  }

  /** Waits for QUIET_MS without arrivals, then returns the run's counts. */
  async finish(): Promise<{ received: number; p50: number; p99: number; max: number; emptyPercent: number }> {
    while (this.received > 0 && performance.now() - this.#last < QUIET_MS) {
      await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
    }
    // Buckets from the first to the last arrival (the edges are partial: leave them out).
    const inner = this.#buckets.slice(1, -1);
    const sorted = [...inner].sort((a, b) => a - b);
    const pick = (q: number): number => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
    return {
      received: this.received, p50: pick(0.5), p99: pick(0.99), max: sorted.at(-1) ?? 0,
      emptyPercent: inner.length === 0 ? 0 : (inner.filter((c) => c === 0).length / inner.length) * 100,
    };
  }

  close(): void {
    this.#socket.close();
  }
}

/** perf stat with the sendmsg/sendmmsg tracepoints, if it runs here. */
function perfWorks(): boolean {
  try {
    execFileSync('perf', ['stat', '-x,', '-e', 'syscalls:sys_enter_sendmmsg', 'true'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

interface SenderReport {
  sent: number;
  bytes: number;
  seconds: number;
  syscalls: number | null;
}

function runSender(contender: PacingContender, rate: number, seconds: number, size: number, host: string, port: number,
  run: number, perf: boolean): Promise<SenderReport> {
  const script = path.join(__dirname, 'pacing-sender.js');
  const senderArgs = [script, contender, String(rate), String(seconds), String(size), host, String(port), String(run)];
  const perfFile = path.join(os.tmpdir(), `wsk-dgram-pacing-${process.pid}-${run}.csv`);
  const [command, args] = perf
    ? ['perf', ['stat', '-x,', '-o', perfFile, '-e', 'syscalls:sys_enter_sendmsg,syscalls:sys_enter_sendmmsg,syscalls:sys_enter_sendto',
      process.execPath, ...senderArgs]] as const
    : [process.execPath, senderArgs] as const;
  return new Promise((resolve, reject) => {
    execFile(command, [...args], { encoding: 'utf8', timeout: (seconds + 30) * 1000 }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`the pacing sender failed: ${stderr.trim() || error.message}`));
        return;
      }
      const report = JSON.parse(stdout.trim().split('\n').at(-1)!) as SenderReport;
      if (perf) {
        // CSV lines: count,unit,event,... (comments start with #).
        const text = fs.readFileSync(perfFile, 'utf8');
        fs.rmSync(perfFile, { force: true });
        let calls = 0;
        for (const line of text.split('\n')) {
          const [count] = line.split(',');
          if (line.includes('syscalls:sys_enter_') && /^\d+$/.test(count ?? '')) calls += Number(count);
        }
        report.syscalls = calls;
      }
      resolve(report);
    });
  });
}

export async function runPacing(options: { rates: readonly number[]; seconds: number; size: number; family: 4 | 6;
  progress: (line: string) => void; }): Promise<{ text: string; json: object }> {
  const host = options.family === 6 ? '::1' : '127.0.0.1';
  const perf = perfWorks();
  const receiver = await ArrivalCounter.open(options.family);
  const rows: PacingRow[] = [];
  let run = 0x7000_0000;
  try {
    for (const rate of options.rates) {
      for (const contender of ['pacer', 'interval'] as const) {
        receiver.start(++run);
        const sent = await runSender(contender, rate, options.seconds, options.size, host, receiver.port, run, perf);
        const arrivals = await receiver.finish();
        const achievedRate = sent.sent / sent.seconds;
        const error = achievedRate / rate - 1;
        const syscallSource = perf ? 'perf' : sent.syscalls !== null ? 'socket' : null;
        rows.push({
          contender, name: NAMES[contender], targetRate: rate, sent: sent.sent, received: arrivals.received, seconds: sent.seconds,
          achievedRate, error, pass: contender === 'pacer' ? Math.abs(error) <= TOLERANCE : null,
          syscalls: sent.syscalls, syscallsPerDatagram: sent.syscalls === null ? null : sent.syscalls / Math.max(1, sent.sent),
          syscallSource, perMsP50: arrivals.p50, perMsP99: arrivals.p99, perMsMax: arrivals.max, emptyBucketPercent: arrivals.emptyPercent,
        });
        options.progress(`pacing: ${NAMES[contender].padEnd(24)} target ${rate.toLocaleString('en-US').padStart(9)} dg/s ` +
          `achieved ${Math.round(achievedRate).toLocaleString('en-US').padStart(9)} (${(error * 100).toFixed(2)} %)`);
      }
    }
  } finally {
    receiver.close();
  }
  const lines = [
    `wsk-dgram bench, pacing: ${options.size} B datagrams to loopback ${host} for ${options.seconds} s per run; one sender process per run`,
    `Node ${process.version}, Linux ${os.release()}, ${os.cpus().length} CPUs; 1-minute load average ${os.loadavg()[0]!.toFixed(2)}`,
    'achieved = datagrams sent / send time; the Pacer must be within 2 % of its target (PASS/MISS)',
    `syscalls/dg = sending system calls per datagram (${perf ? 'perf stat on the sendmsg/sendmmsg/sendto tracepoints' : 'socket.stats() for wsk-dgram; perf is not available for node:dgram'})`,
    'per 1 ms = datagrams arriving in each millisecond of the run at the receiver: median, 99th percentile, max, and',
    '  the share of milliseconds with none (an even sender at R dg/s has R/1000 in each)',
    '',
    `${'contender'.padEnd(24)} ${'target'.padStart(9)} ${'achieved'.padStart(9)} ${'error'.padStart(8)}       ${'received'.padStart(9)} ` +
      `${'syscalls/dg'.padStart(11)} ${'p50/ms'.padStart(6)} ${'p99/ms'.padStart(6)} ${'max/ms'.padStart(6)} ${'empty'.padStart(6)}`,
  ];
  for (const r of rows) {
    lines.push(`${r.name.padEnd(24)} ${r.targetRate.toLocaleString('en-US').padStart(9)} ${Math.round(r.achievedRate).toLocaleString('en-US').padStart(9)} ` +
      `${`${(r.error * 100).toFixed(2)}%`.padStart(8)} ${r.pass === null ? '    ' : r.pass ? 'PASS' : 'MISS'}  ${r.received.toLocaleString('en-US').padStart(9)} ` +
      `${(r.syscallsPerDatagram === null ? '-' : r.syscallsPerDatagram.toFixed(4)).padStart(11)} ${String(r.perMsP50).padStart(6)} ` +
      `${String(r.perMsP99).padStart(6)} ${String(r.perMsMax).padStart(6)} ${`${r.emptyBucketPercent.toFixed(1)}%`.padStart(6)}`);
  }
  return { text: lines.join('\n'), json: { meta: { size: options.size, seconds: options.seconds, family: options.family, perf,
    node: process.version, kernel: os.release(), cpus: os.cpus().length }, pacing: rows } };
}
