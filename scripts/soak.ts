/**
 * The soak (`npm run soak`): sends many datagrams (default 10,000,000) through the library's
 * send paths at once, for a long time, and checks that nothing is lost, reordered, corrupted or
 * leaked:
 *
 *   plain    trySendBatch (sendBatch for a rest) with { gso: false }, over loopback
 *   gso      the same with GSO on, equal sizes (UDP_SEGMENT super-packets), over loopback
 *   wsk      WskSendMessages with a fresh IRP per call, 2-MDL chains, over loopback
 *   pending  sendBatch over a slow link (veth + tbf) with a small SO_SNDBUF, several calls
 *            outstanding, so that sends really wait in the socket's queue
 *
 * The loopback paths are the bench's contenders (lib/cli/bench/contenders.ts). Layout: two
 * network namespaces made for the run (test/integration/netns.ts, removed at the end, on error
 * and on SIGINT/SIGTERM). The sender (soak/sender.ts) runs in namespace A; one receiver
 * (soak/receiver.ts) in A gets the loopback paths, another in B gets the pending path over the
 * veth. Receivers acknowledge counts; this process relays them to the sender, which never has
 * more than a window (sized to the receive buffer) unacknowledged per path: loopback drops
 * silently when a receive buffer is full, and the counts must match exactly.
 *
 * Checks: per path, the receiver's count equals the sender's, all in order and intact; the
 * pending path went pending; GSO was in effect; the sender's RSS grew < 10 MB after the warm-up
 * (the first 10% of the run; RSS read after a full GC, the young generation pinned: see
 * SENDER_NODE_OPTIONS and soak/sender.ts); its open descriptors are the same at the end as at
 * the start; the namespaces are gone. Prints PASS/FAIL per check and exits 1 on any FAIL.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createSlowLink, ourNamespaces, type SlowLink } from '../test/integration/netns';
import { LineChild } from './soak/child';
import { evaluate, formatText, int, mb, type PathRow, type SoakOutcome, type SenderResult } from './soak/report';
import {
  PATH_IDS,
  type Layout,
  type MemorySample,
  type PathId,
  type PathPlan,
  type ReceiverConfig,
  type ReceiverLine,
  type ReceiverPathReport,
  type SenderConfig,
  type SenderLine,
} from './soak/protocol';

const DEFAULT_DATAGRAMS = 10_000_000;
/** A --seconds run without --datagrams stops by time; this only bounds its count. */
const SECONDS_RUN_DATAGRAMS = 1e10;
/** A --datagrams run without --seconds stops by count; this only bounds its time. */
const DATAGRAMS_RUN_SECONDS = 4 * 3600;
const WARM_UP = 0.1;
const PROGRESS_MS = 5000;

/** Payload size, datagrams per call and layout of each path. */
const PATH_SHAPES: Record<PathId, { size: number; batch: number; layout: Layout }> = {
  plain: { size: 256, batch: 256, layout: 'pool' },
  gso: { size: 1200, batch: 256, layout: 'pool' },
  pending: { size: 1000, batch: 256, layout: 'pool' },
  wsk: { size: 512, batch: 256, layout: 'split' },
};
/** node:dgram asks for this much; net.core.rmem_max caps it (4 MiB here, which Linux doubles). */
const RECEIVE_BUFFER = 8 * 2 ** 20;
/**
 * Receive-buffer cost of one queued datagram beyond its payload (skb truesize); a window fills
 * at most half the buffer with datagrams costing this much.
 */
const DATAGRAM_OVERHEAD = 1536;
const MAX_WINDOW_CALLS = 16;
/** The slow link: its rate is well below what the sender offers, so the pending path waits. */
const LINK_RATE = '200mbit';
const LINK_BURST = '256kbit';
const PENDING_SEND_BUFFER = 32 * 1024;
const PENDING_DEPTH = 4;
const ACK_EVERY = 128;
/**
 * The sender's young generation stays at V8's initial size: V8 otherwise doubles it when it
 * sees fit (seen: +4 MB at ~15 s, +9 MB more at ~75 s, kept after a full GC), which is its
 * policy, not a leak, and would eat most of the 10 MB the RSS check allows.
 */
const SENDER_NODE_OPTIONS = '--max-semi-space-size=1';
const STALL_MS = 10_000;

interface Options {
  datagrams: number;
  seconds: number;
  paths: PathId[];
  json: boolean;
}

function usage(status: number): never {
  (status === 0 ? process.stdout : process.stderr).write(
    'usage: npm run soak -- [--datagrams N] [--seconds S] [--paths LIST] [--json]\n' +
      `  --datagrams N   datagrams in all, shared by the paths (default ${DEFAULT_DATAGRAMS.toLocaleString('en-US')};\n` +
      '                  with --seconds alone the run stops by time)\n' +
      '  --seconds S     stop after S seconds (whichever of the two limits comes first)\n' +
      `  --paths LIST    comma-separated subset of ${PATH_IDS.join(',')} (default all)\n` +
      '  --json          print the result as JSON on stdout (progress still goes to stderr)\n' +
      'Needs root and iproute2 (ip netns, tc with tbf).\n',
  );
  process.exit(status);
}

function fail(message: string): never {
  process.stderr.write(`soak: ${message}\n`);
  usage(2);
}

function parseOptions(): Options {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        datagrams: { type: 'string' },
        seconds: { type: 'string' },
        paths: { type: 'string', default: PATH_IDS.join(',') },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    fail((error as Error).message);
  }
  if (values.help) usage(0);
  let datagrams = values.seconds === undefined ? DEFAULT_DATAGRAMS : SECONDS_RUN_DATAGRAMS;
  if (values.datagrams !== undefined) {
    datagrams = Number(values.datagrams);
    if (!/^\d+$/.test(values.datagrams) || !Number.isSafeInteger(datagrams) || datagrams < 1 ||
      datagrams > SECONDS_RUN_DATAGRAMS) {
      fail(`--datagrams must be an integer from 1 to ${SECONDS_RUN_DATAGRAMS}, got ${JSON.stringify(values.datagrams)}`);
    }
  }
  let seconds = DATAGRAMS_RUN_SECONDS;
  if (values.seconds !== undefined) {
    seconds = Number(values.seconds);
    if (!/^\d+(\.\d+)?$/.test(values.seconds) || !(seconds > 0) || seconds > DATAGRAMS_RUN_SECONDS) {
      fail(`--seconds must be a number above 0 and at most ${DATAGRAMS_RUN_SECONDS}, got ${JSON.stringify(values.seconds)}`);
    }
  }
  const paths = values.paths.split(',').map((p) => p.trim()).filter((p) => p !== '');
  for (const p of paths) {
    if (!(PATH_IDS as readonly string[]).includes(p)) fail(`unknown path ${JSON.stringify(p)}; choose from ${PATH_IDS.join(',')}`);
  }
  if (paths.length === 0) fail('--paths names none');
  return { datagrams, seconds, paths: PATH_IDS.filter((p) => paths.includes(p)), json: values.json };
}

const short = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(n));

type Receiver = LineChild<ReceiverLine>;
type Sender = LineChild<SenderLine>;

/** The window of a path: whole calls that fit in half the receive buffer. */
function windowFor(shape: { size: number; batch: number }, receiveBuffer: number): number {
  const datagrams = Math.floor(receiveBuffer / 2 / (shape.size + DATAGRAM_OVERHEAD));
  const calls = Math.max(1, Math.min(MAX_WINDOW_CALLS, Math.floor(datagrams / shape.batch)));
  return calls * shape.batch;
}

async function main(): Promise<void> {
  const options = parseOptions();
  const started = performance.now();
  const loadBefore = os.loadavg()[0]!;
  const log = (text: string): void => {
    process.stderr.write(`${text}\n`);
  };

  // Namespaces go whatever happens: here (finally), on SIGINT/SIGTERM, and, should this process
  // be killed outright, by the janitor that createSlowLink starts.
  let link: SlowLink | null = null;
  let cleaning: Promise<void> | null = null;
  const cleanup = (): Promise<void> => {
    // destroy() kills the children still running, then deletes both namespaces.
    cleaning ??= link === null ? Promise.resolve() : link.destroy();
    return cleaning;
  };
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      log(`soak: ${signal}: stopping the children and removing the namespaces`);
      cleanup().catch((error: unknown) => log(`soak: cleanup failed: ${(error as Error).message}`))
        .finally(() => process.exit(code));
    });
  }

  let outcome: SoakOutcome | null = null;
  let failure: Error | null = null;
  try {
    // createSlowLink steers the receiving side's packets to one CPU: the link keeps its order.
    link = await createSlowLink({ rate: LINK_RATE, burst: LINK_BURST });
    outcome = await soak(link, options, log);
  } catch (error) {
    failure = error instanceof Error ? error : new Error(String(error));
  } finally {
    try {
      await cleanup();
    } catch (error) {
      failure ??= error instanceof Error ? error : new Error(String(error));
    }
  }
  const checks = evaluate(outcome, failure, await ourNamespaces());
  const pass = checks.every((c) => c.pass);
  const info = {
    limits: [
      options.datagrams < SECONDS_RUN_DATAGRAMS ? `${int(options.datagrams)} datagrams` : '',
      options.seconds < DATAGRAMS_RUN_SECONDS ? `${options.seconds} s` : '',
    ].filter((x) => x !== '').join(' or '),
    linkRate: LINK_RATE,
    loadBefore,
    loadAfter: os.loadavg()[0]!,
    cpus: os.cpus().length,
    seconds: (performance.now() - started) / 1000,
  };
  process.stdout.write(options.json
    ? `${JSON.stringify({ options, ...info, ...(outcome ?? {}), checks, pass }, null, 2)}\n`
    : formatText(outcome, checks, info));
  process.exitCode = pass ? 0 : 1;
}

/** Runs `spawn` with `options` added to NODE_OPTIONS (the child takes the environment as it is then). */
function withNodeOptions<T>(options: string, spawn: () => T): T {
  const before = process.env.NODE_OPTIONS;
  process.env.NODE_OPTIONS = before === undefined || before === '' ? options : `${before} ${options}`;
  try {
    return spawn();
  } finally {
    if (before === undefined) delete process.env.NODE_OPTIONS;
    else process.env.NODE_OPTIONS = before;
  }
}


/** Runs the children, relays acknowledgements, shows progress; returns what they reported. */
async function soak(link: SlowLink, options: Options, log: (text: string) => void): Promise<SoakOutcome> {
  // Children end by themselves some time after the run should have.
  const lifetimeMs = (options.seconds + 120) * 1000;
  const script = (name: string): string => path.join(__dirname, 'soak', `${name}.js`);
  const acked = new Map<PathId, number>();
  let sender: Sender | null = null;

  // --- receivers: A gets the loopback paths, B the pending path over the veth ----------------
  const receivers: Array<{ label: string; child: Receiver; paths: PathId[]; ready: Promise<ReceiverLine> }> = [];
  const hostOf = (id: PathId): string => (id === 'pending' ? link.address('b', 4) : '127.0.0.1');
  for (const side of ['a', 'b'] as const) {
    const paths = options.paths.filter((id) => (id === 'pending') === (side === 'b'));
    if (paths.length === 0) continue;
    const config: ReceiverConfig = {
      paths: paths.map((id) => ({ id, host: hostOf(id), ...PATH_SHAPES[id] })),
      receiveBuffer: RECEIVE_BUFFER,
      ackEvery: ACK_EVERY,
      lifetimeMs,
    };
    const label = `receiver in ${link.names[side]}`;
    const child = new LineChild<ReceiverLine>(label, link.spawnNode(side, script('receiver'), [JSON.stringify(config)]),
      (line) => {
        if (line.event !== 'ack') return;
        acked.set(line.path, line.received);
        sender?.send({ cmd: 'ack', path: line.path, received: line.received });
      });
    // Waited for at once: a line that comes before anyone waits for it is not kept.
    const ready = child.next((l) => l.event === 'ready', 10_000, `${label} to bind`);
    ready.catch(() => undefined); // observed below
    receivers.push({ label, child, paths, ready });
  }
  const plans: PathPlan[] = [];
  for (const receiver of receivers) {
    const ready = await receiver.ready;
    if (ready.event !== 'ready') throw new Error('unreachable');
    for (const id of receiver.paths) {
      const shape = PATH_SHAPES[id];
      plans.push({
        id, ...shape, host: hostOf(id), port: ready.ports[id]!,
        window: windowFor(shape, ready.receiveBuffers[id]!),
      });
    }
  }
  plans.sort((x, y) => PATH_IDS.indexOf(x.id) - PATH_IDS.indexOf(y.id));

  // --- the sender ------------------------------------------------------------------------------
  const config: SenderConfig = {
    paths: plans,
    datagrams: options.datagrams,
    seconds: options.seconds,
    warmUp: WARM_UP,
    stallMs: STALL_MS,
    pendingSendBuffer: PENDING_SEND_BUFFER,
    pendingDepth: PENDING_DEPTH,
  };
  let rssStart = 0;
  const samples: MemorySample[] = [];
  let warmAt = null as number | null;
  let lastSample: Extract<SenderLine, { event: 'sample' }> | null = null;
  let warmRss: number | null = null;
  let lastProgress = performance.now();
  let lastProgressSent = 0;
  const progress = (): void => {
    if (lastSample === null) return;
    const now = performance.now();
    const sent = Object.values(lastSample.sent).reduce((s, n) => s + n, 0);
    let received = 0;
    for (const n of acked.values()) received += n;
    const rate = (sent - lastProgressSent) / ((now - lastProgress) / 1000);
    lastProgress = now;
    lastProgressSent = sent;
    const perPath = plans.map((p) => `${p.id} ${short(lastSample!.sent[p.id] ?? 0)}`).join(' ');
    log(`[${lastSample.t.toFixed(0).padStart(5)} s] sent ${int(sent)} received ${int(received)} ` +
      `(${int(rate)} dg/s; ${perPath}) RSS ${mb(lastSample.rss)} MB` +
      `${warmRss === null ? ' (warming up)' : ` (${lastSample.rss >= warmRss ? '+' : ''}${mb(lastSample.rss - warmRss)} since warm-up)`}` +
      ` fds ${lastSample.fds}`);
  };
  log(`soak: ${plans.map((p) => `${p.id} (${p.size} B, ${p.batch}/call, window ${p.window})`).join(', ')}; ` +
    `sender in ${link.names.a}, slow link ${LINK_RATE} to ${link.names.b}`);
  const child: Sender = new LineChild<SenderLine>(`sender in ${link.names.a}`,
    withNodeOptions(SENDER_NODE_OPTIONS, () => link.spawnNode('a', script('sender'), [JSON.stringify(config)])), (line) => {
      if (line.event === 'started') rssStart = line.rss;
      else if (line.event === 'sample') {
        lastSample = line;
        samples.push({
          t: line.t, rss: line.rss, rssAnon: line.rssAnon, rssFile: line.rssFile,
          heapTotal: line.heapTotal, heapUsed: line.heapUsed, external: line.external,
        });
      } else if (line.event === 'warm') {
        warmAt = line.t;
        warmRss = line.rss;
      }
    });
  sender = child;
  const ticker = setInterval(progress, PROGRESS_MS);
  let result: SenderResult;
  try {
    const line = await child.next((l) => l.event === 'result', lifetimeMs, 'the sender\'s result');
    if (line.event !== 'result') throw new Error('unreachable');
    result = line;
  } finally {
    clearInterval(ticker);
  }
  await child.waitForExit(10_000);
  progress();

  // --- what arrived: wait until the receivers acknowledged everything sent, then a quiet
  // moment (so that anything extra shows), then their reports ---------------------------------
  const sentOf = new Map(result.paths.map((p) => [p.id, p.sent]));
  const deadline = performance.now() + 10_000;
  while (performance.now() < deadline && plans.some((p) => (acked.get(p.id) ?? 0) < (sentOf.get(p.id) ?? 0))) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  const reports: Record<string, ReceiverPathReport> = {};
  const receiverRss: Array<{ label: string; rss: number }> = [];
  for (const [i, receiver] of receivers.entries()) {
    receiver.child.send({ cmd: 'report', id: i });
    const line = await receiver.child.next((l) => l.event === 'report' && l.id === i, 5000, `${receiver.label}'s report`);
    if (line.event !== 'report') throw new Error('unreachable');
    Object.assign(reports, line.paths);
    receiverRss.push({ label: receiver.label, rss: line.rss });
    receiver.child.send({ cmd: 'exit' });
  }
  for (const receiver of receivers) await receiver.child.waitForExit(5000);

  const rows = plans.map((plan): PathRow => {
    const s = result.paths.find((p) => p.id === plan.id)!;
    const r = reports[plan.id] ?? {
      received: 0, bytes: 0, outOfOrder: 0, backwards: 0, corrupt: 0, next: 0, firstSurprises: [],
    };
    return {
      ...s,
      size: plan.size,
      window: plan.window,
      received: r.received,
      receivedBytes: r.bytes,
      outOfOrder: r.outOfOrder,
      backwards: r.backwards,
      corrupt: r.corrupt,
      firstSurprises: r.firstSurprises,
      rate: s.seconds > 0 ? s.sent / s.seconds : 0,
    };
  });
  // At most ~200 samples in the outcome, evenly spread, the last one always.
  const step = Math.max(1, Math.ceil(samples.length / 200));
  const memory = samples.filter((_, i) => i % step === 0 || i === samples.length - 1);
  return { plans, rows, result, rssStart, warmAt, receiverRss, memory, senderExit: child.exit?.code ?? null };
}

main().catch((error: unknown) => {
  process.stderr.write(`soak failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
