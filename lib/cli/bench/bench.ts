/**
 * The benchmark (`npm run bench`): node:dgram, wsk-dgram (plain batch, GSO, each from an array
 * of buffers and from one packed buffer; the WSK layer) and a C reference sender (sendto,
 * sendmmsg, UDP_SEGMENT) send to one counting receiver over loopback, in one process run, for
 * several payload sizes; and node:dgram, wsk-dgram (trySendToMany) and C (sendmmsg with a
 * msg_name per message) fan the same payloads out to FANOUT_PEERS ports of that receiver.
 *
 * - Rates are datagrams SENT per second of send time. Loss (sent minus what the receiver
 *   counted) is shown beside the rate and never subtracted from it: on loopback the receiver's
 *   kernel work runs inside the sender's system call, and a receiver slower than the sender
 *   drops, which says nothing about the sender.
 * - The receiver (scripts/c/counter.c) is a separate process with a large SO_RCVBUFFORCE buffer
 *   that dequeues with recvmmsg and copies only each datagram's 8-byte stamp, so it is not the
 *   bottleneck; it reports per run after the socket has been quiet for 40 ms.
 * - Contenders are interleaved: each repetition runs every contender once, in an order that
 *   rotates by one each repetition (never all runs of one contender first). The table shows
 *   medians over the repetitions.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { MAX_UDP_PAYLOAD, nativeBackend } from '../..';
import { buildCProgram, Counter, jsCounterCommand, NoCompilerError, readCpuTimes } from './c-tools';
import { writeChart } from './chart';
import { PACING_DEFAULTS, runPacing } from './pacing';
import {
  CONTENDER_IDS,
  CONTENDER_NAMES,
  FANOUT_IDS,
  FANOUT_PEERS,
  gsoInEffect,
  openContenders,
  STAMP_BYTES,
  type Contender,
  type ContenderId,
} from './contenders';
import { evaluateTargets, formatTable, formatTargets, summarize, type RunRecord } from './report';

const DEFAULT_SIZES = [64, 512, 1200, 1472];
const DEFAULT_COUNT = 200_000;
const DEFAULT_REPS = 5;
const DEFAULT_BATCH = 1024;
const DEFAULT_FANOUT_PAYLOADS = 1;
/** A fan-out call of the C sender holds every destination's share: at most 1024 messages. */
const MAX_FANOUT_PAYLOADS = Math.floor(1024 / FANOUT_PEERS);
const RECEIVE_BUFFER = 256 * 1024 * 1024; // asked for; Linux grants twice this
/** Untimed warm-up per in-process contender and size, so that the timed runs meet warm JIT code. */
const WARMUP_ROUNDS = 16;
/** Other work (percent of one CPU) during a run above which the report warns. */
const OTHER_WORK_WARNING = 10;
/** /proc/stat counts in 10 ms steps per CPU: shorter runs get no other-work figure. */
const MIN_WINDOW_FOR_OTHER_WORK = 200_000; // microseconds

/** How the bench was started, for its usage text: `npm run bench --` or `wsk-dgram bench`. */
let invokedAs = 'npm run bench --';

/** The usage text of the bench. */
export function benchUsage(prog = invokedAs): string {
  return `usage: ${prog} [options]\n` +
      `  --count N        datagrams per run (default ${DEFAULT_COUNT})\n` +
      `  --reps N         repetitions; the table shows medians (default ${DEFAULT_REPS})\n` +
      `  --sizes A,B,...  payload sizes in bytes, at least ${STAMP_BYTES} (default ${DEFAULT_SIZES.join(',')})\n` +
      `  --contenders L   comma-separated subset of: ${CONTENDER_IDS.join(',')}\n` +
      '  --family 4|6     loopback 127.0.0.1 (default) or ::1\n' +
      `  --batch N        datagrams per call for wsk-dgram, the WSK layer and C sendmmsg, and per\n` +
      `                   round (one awaited callback) for node:dgram; 1..1024 (default ${DEFAULT_BATCH})\n` +
      '  --fanout-payloads N\n' +
      `                   datagrams to each of the ${FANOUT_PEERS} fan-out peers per call (per round for\n` +
      `                   node:dgram); 1..${MAX_FANOUT_PAYLOADS} (default ${DEFAULT_FANOUT_PAYLOADS})\n` +
      '  --json [FILE]    every raw run, the medians and the targets as JSON: to FILE, or without\n' +
      '                   FILE to stdout (the text report then goes to stderr)\n' +
      '  --chart FILE     datagrams/s per contender and size as a chart: FILE.svg (vega-lite), or\n' +
      '                   FILE.png (needs the optional @resvg/resvg-wasm)\n' +
      '  --pacing         the pacing section instead: the library\'s Pacer against node:dgram paced\n' +
      `                   by setInterval, at --rates (default ${PACING_DEFAULTS.rates.map((r) => `${r / 1000}k`).join(',')}) datagrams/s for\n` +
      `                   --seconds (default ${PACING_DEFAULTS.seconds}) each, ${PACING_DEFAULTS.size} B (or the first of --sizes)\n` +
      '  --help           this text\n' +
      'The C reference sender and receiver (scripts/c/) are built with $CC (default cc) on first\n' +
      'use into ~/.cache/wsk-dgram ($WSK_DGRAM_CACHE); without a compiler the C contenders are\n' +
      'skipped and a JavaScript receiver counts.\n';
}

function usage(status: number): never {
  (status === 0 ? process.stdout : process.stderr).write(benchUsage());
  process.exit(status);
}

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n`);
  usage(2);
}

function integerOption(text: string, name: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min || value > max) {
    fail(`--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return value;
}

interface Options {
  count: number;
  reps: number;
  sizes: number[];
  contenders: ContenderId[];
  family: 4 | 6;
  batch: number;
  fanoutPayloads: number;
  /** A file, true for stdout, or undefined. */
  json: string | true | undefined;
  chart: string | undefined;
  pacing: boolean;
  rates: number[];
  seconds: number;
}

/**
 * `--json` takes an optional FILE: given as the next argument when that is not a flag (the
 * bench's old form `--json FILE` keeps working), alone it means stdout.
 */
function splitJsonFlag(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--json') {
      const next = argv[i + 1];
      if (next !== undefined && !next.startsWith('-')) {
        out.push(`--json-file=${next}`);
        i++;
      } else {
        out.push('--json-stdout');
      }
    } else if (arg.startsWith('--json=')) {
      out.push(`--json-file=${arg.slice('--json='.length)}`);
    } else {
      out.push(arg);
    }
  }
  return out;
}

function parseOptions(argv: readonly string[]): Options {
  let values;
  try {
    ({ values } = parseArgs({
      args: splitJsonFlag(argv),
      options: {
        count: { type: 'string', default: String(DEFAULT_COUNT) },
        reps: { type: 'string', default: String(DEFAULT_REPS) },
        sizes: { type: 'string', default: DEFAULT_SIZES.join(',') },
        contenders: { type: 'string', default: CONTENDER_IDS.join(',') },
        family: { type: 'string', default: '4' },
        batch: { type: 'string', default: String(DEFAULT_BATCH) },
        'fanout-payloads': { type: 'string', default: String(DEFAULT_FANOUT_PAYLOADS) },
        'json-file': { type: 'string' },
        'json-stdout': { type: 'boolean', default: false },
        chart: { type: 'string' },
        pacing: { type: 'boolean', default: false },
        rates: { type: 'string', default: PACING_DEFAULTS.rates.join(',') },
        seconds: { type: 'string', default: String(PACING_DEFAULTS.seconds) },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    fail((error as Error).message);
  }
  if (values.help) usage(0);
  if (values.family !== '4' && values.family !== '6') fail(`--family must be 4 or 6, got ${values.family}`);
  const family = values.family === '6' ? 6 : 4;
  const sizes = values.sizes.split(',').map((s) => integerOption(s.trim(), 'sizes', STAMP_BYTES, MAX_UDP_PAYLOAD[family]));
  const contenders = values.contenders.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const id of contenders) {
    if (!(CONTENDER_IDS as readonly string[]).includes(id)) {
      fail(`unknown contender ${JSON.stringify(id)}; choose from ${CONTENDER_IDS.join(',')}`);
    }
  }
  if (contenders.length === 0) fail('--contenders names none');
  if (values.chart !== undefined && !/\.(svg|png)$/i.test(values.chart)) fail(`--chart must name a .svg or .png file, got ${values.chart}`);
  const rates = values.rates.split(',').map((r) => {
    const match = /^(\d+(?:\.\d+)?)(k?)$/i.exec(r.trim());
    const rate = match === null ? NaN : Number(match[1]) * (match[2] === '' ? 1 : 1000);
    if (!(rate >= 1 && rate <= 10_000_000)) fail(`--rates takes datagrams per second from 1 to 10M (e.g. 20k,100k), got ${JSON.stringify(r)}`);
    return rate;
  });
  const seconds = Number(values.seconds);
  if (!(seconds > 0 && seconds <= 600)) fail(`--seconds must be from 0 to 600, got ${JSON.stringify(values.seconds)}`);
  return {
    count: integerOption(values.count, 'count', 1, 100_000_000),
    reps: integerOption(values.reps, 'reps', 1, 1000),
    sizes: [...new Set(sizes)],
    contenders: contenders as ContenderId[],
    family,
    batch: integerOption(values.batch, 'batch', 1, 1024),
    fanoutPayloads: integerOption(values['fanout-payloads'], 'fanout-payloads', 1, MAX_FANOUT_PAYLOADS),
    json: values['json-stdout'] ? true : values['json-file'],
    chart: values.chart,
    pacing: values.pacing,
    rates,
    seconds,
  };
}

function progress(text: string): void {
  process.stderr.write(`${text}\n`);
}

/**
 * Runs the bench with command-line `argv` (what follows `npm run bench --` or
 * `wsk-dgram bench`); `prog` names the command in its usage text. Exits the process on a usage
 * error (status 2) or --help.
 */
export async function runBench(argv: readonly string[], prog = 'npm run bench --'): Promise<void> {
  invokedAs = prog;
  const options = parseOptions(argv);
  if (options.pacing) {
    const report = await runPacing({ rates: options.rates, seconds: options.seconds,
      size: argv.some((a) => a.startsWith('--sizes')) ? options.sizes[0]! : PACING_DEFAULTS.size, family: options.family, progress });
    emit(options, report.text, report.json);
    return;
  }
  const started = performance.now();
  const loadBefore = os.loadavg()[0]!;
  const host = options.family === 6 ? '::1' : '127.0.0.1';

  // The C programs are built on first use; without a compiler the bench goes on without them.
  let refSender = '';
  let counterCommand: string | string[];
  let noCompiler: string | null = null;
  try {
    refSender = buildCProgram('ref_sender');
    counterCommand = buildCProgram('counter');
  } catch (error) {
    if (!(error instanceof NoCompilerError)) throw error;
    noCompiler = error.message;
    counterCommand = jsCounterCommand();
    const skipped = options.contenders.filter((id) => id.startsWith('c-'));
    options.contenders = options.contenders.filter((id) => !id.startsWith('c-'));
    progress(`bench: ${error.message}: skipping the C reference sender${skipped.length > 0 ? ` (${skipped.join(', ')})` : ''}; ` +
      'the JavaScript receiver counts instead of the C one');
    if (options.contenders.length === 0) fail('no contender left to run without a C compiler');
  }
  // The receiver opens the fan-out peers' ports only when a fan-out contender runs.
  const fanout = options.contenders.some((id) => FANOUT_IDS.includes(id));
  const counter = await Counter.start(counterCommand, options.family, RECEIVE_BUFFER,
    fanout ? FANOUT_PEERS : 1);
  const target = {
    family: options.family, host, port: counter.port, batch: options.batch,
    fanoutPorts: counter.ports, fanoutPayloads: options.fanoutPayloads, refSender,
  };
  const contenders = await openContenders(options.contenders, target);

  const runs: RunRecord[] = [];
  let runId = 0;
  const total = options.sizes.length * options.reps * contenders.length;
  let gso: boolean | null = null;
  try {
    for (const size of options.sizes) {
      for (const contender of contenders) contender.prepare(size);
      for (const contender of contenders.filter((c) => c.inProcess)) {
        // Untimed warm-up; its datagrams are counted under their own run id and discarded.
        await contender.run(++runId, Math.min(options.count, WARMUP_ROUNDS * Math.max(options.batch,
          options.fanoutPayloads * FANOUT_PEERS)));
        await counter.report(runId);
      }
      for (let rep = 0; rep < options.reps; rep++) {
        for (let position = 0; position < contenders.length; position++) {
          const contender = contenders[(rep + position) % contenders.length]!;
          runs.push(await measureRun(contender, ++runId, size, rep, position, options.count, counter));
          const last = runs[runs.length - 1]!;
          progress(`[${String(runs.length).padStart(String(total).length)}/${total}] ${size} B rep ${rep + 1}/${options.reps} ` +
            `${contender.name.padEnd(24)} ${Math.round(last.datagramsPerSecond).toLocaleString('en-US').padStart(11)} dg/s ` +
            `loss ${((last.lost / last.sent) * 100).toFixed(2)}%`);
        }
      }
    }
    // After the runs (a socket whose GSO the kernel refused has turned it off) and before
    // closing (a closed socket reports no segment limit).
    gso = gsoInEffect(contenders);
  } finally {
    for (const contender of contenders) await contender.close();
    await counter.close();
  }

  const summaries = summarize(runs, options.sizes);
  const targets = evaluateTargets(summaries, runs, options.sizes);
  const seconds = (performance.now() - started) / 1000;
  const meta = {
    node: process.version,
    kernel: os.release(),
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? '',
    nativeBackend: nativeBackend(),
    gsoInEffect: gso,
    family: options.family,
    host,
    count: options.count,
    reps: options.reps,
    batch: options.batch,
    fanoutPeers: fanout ? FANOUT_PEERS : 0,
    fanoutPayloads: options.fanoutPayloads,
    sizes: options.sizes,
    contenders: contenders.map((c) => c.id),
    receiveBuffer: counter.receiveBuffer,
    receiverLate: counter.late,
    receiverForeign: counter.foreign,
    /** Why the C programs were not built (null: they were). */
    noCompiler,
    seconds,
    /** One-minute load averages before and after (after includes the bench's own load). */
    loadAverage: { before: loadBefore, after: os.loadavg()[0]! },
  };

  const out: string[] = [];
  out.push(`wsk-dgram bench: ${options.count.toLocaleString('en-US')} datagrams per run, ${options.reps} interleaved ` +
    `repetitions (order rotates), median rates; ${options.batch} datagrams per call; loopback ${host}`);
  out.push(`Node ${process.version}, Linux ${os.release()}, ${meta.cpus} CPUs; native backend ${meta.nativeBackend}` +
    (gso === null ? '' : `, GSO ${gso ? 'in effect' : 'NOT in effect (the GSO rows are plain sendmmsg)'}`));
  if (fanout) {
    out.push(`fan-out rows: ${options.fanoutPayloads} datagram(s) to each of ${FANOUT_PEERS} ports of the receiver per call ` +
      `(${options.fanoutPayloads * FANOUT_PEERS} per call or node:dgram round), no GSO`);
  }
  out.push(`1-minute load average before the bench: ${loadBefore.toFixed(2)} ` +
    '(well above 0 means other work shares the CPUs and skews the rates)');
  out.push('datagrams/s = datagrams SENT per second of send time (loss is not subtracted); Gbit/s = UDP payload bits');
  out.push('CPU = user and system microseconds per datagram sent, all repetitions pooled: process.cpuUsage() deltas in process,');
  out.push('  getrusage in the C child; the kernel splits user/system by sampling at its tick, so small user times are coarse');
  out.push('dg/call = datagrams per sending system call; dg/msg = per kernel message (a UDP_SEGMENT super-packet is one)');
  out.push(`loss = sent - received, over all repetitions, by a separate recvmmsg receiver (receive buffer ${Math.round(counter.receiveBuffer / 2 ** 20)} MiB)`);
  out.push('other % = median CPU of other work on the machine plus hypervisor steal during the runs, in % of one CPU');
  out.push('  (from /proc/stat, which counts in 10 ms steps: "-" where runs were shorter than 0.2 s)');
  out.push('vs dgram = against node:dgram (unconnected); vs matching = against the contender named after it');
  const other = runs.filter((r) => r.otherCpuPercent !== null)
    .map((r) => r.otherCpuPercent! + (r.stealPercent ?? 0));
  const disturbed = other.filter((o) => o > OTHER_WORK_WARNING).length;
  if (disturbed > 0) {
    out.push(`WARNING: other work took more than ${OTHER_WORK_WARNING}% of a CPU during ${disturbed} of ${runs.length} runs ` +
      `(worst ${Math.max(...other).toFixed(0)}%): the machine was not quiet, ratios are less reliable`);
  }
  if (counter.late + counter.foreign > 0) {
    out.push(`WARNING: the receiver saw ${counter.late} datagrams after their run's report and ${counter.foreign} ` +
      'without a run id; they are counted in no run (loss may be overstated by that much)');
  }
  if (noCompiler !== null) out.push(`NOTE: ${noCompiler}: the C contenders were skipped; a JavaScript receiver counted`);
  for (const size of options.sizes) out.push('', formatTable(summaries, size));
  out.push('', formatTargets(targets));
  out.push('', `bench took ${seconds.toFixed(1)} s`);
  if (options.chart !== undefined) {
    await writeChart(options.chart, summaries, options.sizes, meta);
    out.push(`chart: ${options.chart}`);
  }
  emit(options, out.join('\n'), { meta, runs, summaries, targets });
}

/** The text report to stdout (stderr when the JSON goes to stdout), the JSON where asked. */
function emit(options: Options, text: string, json: unknown): void {
  (options.json === true ? process.stderr : process.stdout).write(`${text}\n`);
  if (options.json === true) process.stdout.write(`${JSON.stringify(json)}\n`);
  else if (options.json !== undefined) fs.writeFileSync(options.json, `${JSON.stringify(json, null, 2)}\n`);
}

async function measureRun(contender: Contender, run: number, size: number, rep: number, position: number,
  count: number, counter: Counter): Promise<RunRecord> {
  const receiverCpu = counter.cpu;
  const cpuBefore = readCpuTimes();
  const start = performance.now();
  const sent = await contender.run(run, count);
  const window = (performance.now() - start) * 1000; // microseconds
  const cpuAfter = readCpuTimes();
  const counted = await counter.report(run);
  // Other work = all CPU time the machine spent in the window, minus the sender's and the
  // receiver's own (the receiver's since its previous report: the window plus an idle wait).
  let otherCpuPercent: number | null = null;
  let stealPercent: number | null = null;
  if (cpuBefore !== null && cpuAfter !== null && window >= MIN_WINDOW_FOR_OTHER_WORK) {
    const other = cpuAfter.busy - cpuBefore.busy - sent.userUs - sent.sysUs - (counted.cpu - receiverCpu);
    otherCpuPercent = (Math.max(0, other) / window) * 100;
    stealPercent = ((cpuAfter.steal - cpuBefore.steal) / window) * 100;
  }
  if (sent.sent !== count) throw new Error(`${contender.name} sent ${sent.sent} of ${count} datagrams`);
  if (sent.bytes !== count * size) {
    throw new Error(`${contender.name} reports ${sent.bytes} bytes sent, expected ${count * size}`);
  }
  if (counted.datagrams > sent.sent) {
    throw new Error(`the receiver counted ${counted.datagrams} datagrams of run ${run}, but ${sent.sent} were sent`);
  }
  return {
    size,
    rep,
    position,
    contender: contender.id,
    name: CONTENDER_NAMES[contender.id],
    run,
    ...sent,
    received: counted.datagrams,
    receivedBytes: counted.bytes,
    receivingPorts: counted.sockets,
    drops: counted.drops,
    lost: sent.sent - counted.datagrams,
    datagramsPerSecond: sent.sent / sent.seconds,
    gbitPerSecond: (sent.bytes * 8) / sent.seconds / 1e9,
    otherCpuPercent,
    stealPercent,
  };
}
