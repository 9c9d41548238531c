/**
 * The soak's sender (a child process, run inside namespace A by scripts/soak.ts):
 *
 *   node sender.js '<SenderConfig as JSON>'
 *
 * Runs every path of the plan at once on one event loop, sharing one budget of datagrams and
 * one deadline. The loopback paths are the bench's contenders (plain batch, GSO, WSK layer),
 * each call one "run" of theirs; the pending path is sendBatch over the slow link with a few
 * calls outstanding. A path never has more than its window of datagrams beyond what its
 * receiver acknowledged (the acknowledgements arrive on stdin), so nothing is dropped for lack
 * of receive buffer and the counts must match exactly.
 *
 * Prints JSON lines (protocol.ts SenderLine): samples of memory and descriptors twice a second,
 * the warm-up mark, and one result, then exits (code 1 if a path failed). Each sample follows a
 * full GC, so that the RSS follows live memory: between V8's own major collections, garbage
 * ArrayBuffers (a send's layout is one) pile up in malloc'd memory, and the RSS keeps the high
 * mark they reached (seen: +12 MB at the first major GC, 12 s into a run, then flat), which is
 * no leak. What a leak keeps survives the collection.
 */
import * as readline from 'node:readline';
import { performance } from 'node:perf_hooks';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { createSocket, type UdpSocket } from '../../lib';
import { makePool, openContenders, stamp, type Contender } from '../../lib/cli/bench/contenders';
import {
  MAX_CALLS,
  openDescriptors,
  readMemory,
  type MemoryReading,
  runId,
  type PathId,
  type PathPlan,
  type SenderCommand,
  type SenderConfig,
  type SenderLine,
  type SenderPathReport,
} from './protocol';

const SAMPLE_MS = 500;

function emit(line: SenderLine): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/** A forced full collection (V8's gc(), exposed at run time), or null where V8 refuses. */
function collector(): (() => void) | null {
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as unknown;
    return typeof gc === 'function' ? (gc as () => void) : null;
  } catch {
    return null;
  }
}

/** One budget of datagrams and one deadline for all paths. */
class Budget {
  reserved = 0;
  #started = performance.now();
  constructor(readonly limit: number, readonly seconds: number) {}

  start(): void {
    this.#started = performance.now();
  }

  elapsed(): number {
    return (performance.now() - this.#started) / 1000;
  }

  /** Up to `n` datagrams to send now; 0 once the budget is spent or the time is up. */
  reserve(n: number): number {
    if (this.elapsed() >= this.seconds) return 0;
    const granted = Math.min(n, this.limit - this.reserved);
    this.reserved += granted;
    return Math.max(0, granted);
  }

  /** How far the run is, by count or time, whichever is further (0..1). */
  progress(): number {
    return Math.min(1, Math.max(this.reserved / this.limit, this.elapsed() / this.seconds));
  }
}

/** Acknowledged counts per path, and paths waiting for them. */
class Credit {
  readonly #acked = new Map<PathId, number>();
  readonly #waiters = new Set<() => void>();

  constructor(readonly stallMs: number) {}

  acked(path: PathId): number {
    return this.#acked.get(path) ?? 0;
  }

  ack(path: PathId, received: number): void {
    if (received <= this.acked(path)) return;
    this.#acked.set(path, received);
    for (const waiter of [...this.#waiters]) waiter();
  }

  /**
   * Resolves once `issued` datagrams are at most `window` ahead of the acknowledged count.
   * Rejects when no acknowledgement came for `stallMs` (datagrams lost, receiver gone).
   */
  wait(path: PathId, issued: number, window: number): Promise<void> {
    if (issued - this.acked(path) <= window) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const stalled = (): void => {
        done();
        reject(new Error(`no acknowledgement for ${this.stallMs} ms: the receiver stays at ` +
          `${this.acked(path)} of the ${issued - window} datagrams needed`));
      };
      let timer = setTimeout(stalled, this.stallMs);
      const check = (): void => {
        if (issued - this.acked(path) > window) {
          // Progress, not yet enough: the stall clock starts again.
          clearTimeout(timer);
          timer = setTimeout(stalled, this.stallMs);
          return;
        }
        done();
        resolve();
      };
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
    });
  }
}

interface PathRun {
  readonly plan: PathPlan;
  readonly report: SenderPathReport;
  /** Datagrams handed to the socket (counted as sent once their call completed). */
  issued: number;
  started: number;
  readonly socket: UdpSocket | null;
  /** The path's send loop. */
  drive(): Promise<void>;
  close(): Promise<void>;
}

function newReport(id: PathId): SenderPathReport {
  return {
    id, sent: 0, bytes: 0, calls: 0, seconds: 0, sendSeconds: 0, wentPending: 0,
    syscalls: 0, messages: 0, gso: false, error: null,
  };
}

async function driveContender(run: PathRun, contender: Contender, budget: Budget, credit: Credit): Promise<void> {
  const { plan, report } = run;
  run.started = performance.now();
  for (let call = 0; call < MAX_CALLS; call++) {
    const n = budget.reserve(plan.batch);
    if (n === 0) break;
    await credit.wait(plan.id, run.issued + n, plan.window);
    run.issued += n;
    const measure = await contender.run(runId(plan.id, call), n);
    if (measure.sent !== n) throw new Error(`sent ${measure.sent} of ${n}`);
    report.sent += measure.sent;
    report.bytes += measure.bytes;
    report.calls++;
    report.sendSeconds += measure.seconds;
  }
}

/**
 * The pending path: sendBatch over the slow link, `depth` calls outstanding, each from its own
 * pool (a pool is stamped again only once its call completed).
 */
async function drivePending(run: PathRun, socket: UdpSocket, depth: number, budget: Budget, credit: Credit,
  stallMs: number): Promise<void> {
  const { plan, report } = run;
  const pools = Array.from({ length: depth }, () => makePool(plan.size, plan.batch));
  const outstanding: Array<Promise<void>> = [];
  let failure: Error | null = null;
  const settle = async (call: Promise<void>): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`a pending sendBatch did not complete in ${stallMs} ms`)), stallMs);
    });
    try {
      await Promise.race([call, timeout]);
    } finally {
      clearTimeout(timer);
    }
  };
  run.started = performance.now();
  for (let call = 0; call < MAX_CALLS && failure === null; call++) {
    const n = budget.reserve(plan.batch);
    if (n === 0) break;
    await credit.wait(plan.id, run.issued + n, plan.window);
    if (outstanding.length >= depth) await settle(outstanding.shift()!);
    if (failure !== null) break;
    const pool = pools[call % depth]!;
    stamp(pool, runId(plan.id, call));
    const datagrams = n === pool.length ? pool : pool.slice(0, n);
    const before = socket.pendingRequests;
    const promise = socket.sendBatch(datagrams, plan.port, plan.host);
    if (socket.pendingRequests > before) report.wentPending++;
    report.calls++;
    run.issued += n;
    outstanding.push(promise.then((result) => {
      if (result.datagrams !== n) failure ??= new Error(`sendBatch sent ${result.datagrams} of ${n}`);
      report.sent += result.datagrams;
      report.bytes += result.bytes;
    }, (error: unknown) => {
      failure ??= error instanceof Error ? error : new Error(String(error));
    }));
  }
  while (outstanding.length > 0) await settle(outstanding.shift()!);
  if (failure !== null) throw failure;
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as SenderConfig;
  const gc = collector();
  const credit = new Credit(config.stallMs);
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (text) => {
    const command = JSON.parse(text) as SenderCommand;
    if (command.cmd === 'ack') credit.ack(command.path, command.received);
  });
  // The soak went away: stop at once rather than wait for acknowledgements that cannot come.
  lines.on('close', () => {
    process.stderr.write('sender: stdin closed, ending\n');
    process.exit(2);
  });

  // Descriptors before any socket (after the stdin reader and one turn of the loop, which
  // open what Node opens lazily).
  await new Promise((resolve) => setTimeout(resolve, 50));
  const fdsBefore = openDescriptors();
  emit({ event: 'started', fds: fdsBefore.length, rss: process.memoryUsage.rss() });

  const budget = new Budget(config.datagrams, config.seconds);
  const runs: PathRun[] = [];
  for (const plan of config.paths) {
    if (plan.id === 'pending') {
      const socket = createSocket({ type: 'udp4', sendBufferSize: config.pendingSendBuffer });
      const run: PathRun = {
        plan, report: newReport(plan.id), issued: 0, started: 0, socket,
        drive: () => drivePending(run, socket, config.pendingDepth, budget, credit, config.stallMs),
        close: () => {
          socket.close();
          return Promise.resolve();
        },
      };
      runs.push(run);
    } else {
      const [contender] = await openContenders([plan.id], {
        family: 4, host: plan.host, port: plan.port, batch: plan.batch, refSender: '',
      });
      if (contender === undefined) throw new Error(`no contender for ${plan.id}`);
      contender.prepare(plan.size);
      const run: PathRun = {
        plan, report: newReport(plan.id), issued: 0, started: 0,
        socket: (contender as Contender & { socket?: UdpSocket }).socket ?? null,
        drive: () => driveContender(run, contender, budget, credit),
        close: () => contender.close(),
      };
      runs.push(run);
    }
  }
  budget.start();
  // Each loop records its own end and error; none stops the others.
  const ended = runs.map((run) => run.drive().catch((error: unknown) => {
    run.report.error = error instanceof Error ? error.message : String(error);
  }).finally(() => {
    run.report.seconds = (performance.now() - run.started) / 1000;
  }));

  let warm: MemoryReading | null = null;
  let rssPeakAfterWarm: number | null = null;
  const sample = (): void => {
    const t = budget.elapsed();
    gc?.();
    const memory = readMemory();
    if (warm === null && budget.progress() >= config.warmUp) {
      warm = memory;
      emit({ event: 'warm', t, rss: warm.rss, sent: runs.reduce((s, r) => s + r.report.sent, 0) });
    }
    if (warm !== null) rssPeakAfterWarm = Math.max(rssPeakAfterWarm ?? 0, memory.rss);
    const sent: Record<string, number> = {};
    for (const run of runs) sent[run.plan.id] = run.report.sent;
    emit({ event: 'sample', t, ...memory, sent, fds: openDescriptors().length });
  };
  const sampler = setInterval(sample, SAMPLE_MS);
  await Promise.all(ended);
  clearInterval(sampler);
  sample();

  for (const run of runs) {
    const stats = run.socket?.stats();
    if (stats !== undefined) {
      run.report.syscalls = stats.syscalls;
      run.report.messages = stats.messages;
    }
    run.report.gso = run.socket?.gso ?? false;
    await run.close();
  }
  // Let the closes and the last timers settle before the final readings.
  await new Promise((resolve) => setTimeout(resolve, 100));
  gc?.();
  const end = readMemory();
  if (rssPeakAfterWarm !== null) rssPeakAfterWarm = Math.max(rssPeakAfterWarm, end.rss);
  const fdsAfter = openDescriptors();
  const before = new Set(fdsBefore);
  emit({
    event: 'result',
    paths: runs.map((r) => r.report),
    seconds: budget.elapsed(),
    fdsBefore: fdsBefore.length,
    fdsAfter: fdsAfter.length,
    fdsNew: fdsAfter.filter((fd) => !before.has(fd)),
    warm,
    end,
    rssPeakAfterWarm,
    gcForced: gc !== null,
  });
  // stdout is a pipe, written synchronously on Linux: nothing is lost by exiting now.
  process.exit(runs.some((r) => r.report.error !== null) ? 1 : 0);
}

main().catch((error: unknown) => {
  process.stderr.write(`sender failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
