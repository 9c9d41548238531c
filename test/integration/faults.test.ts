/**
 * Faults while sends are pending, on the slow link of netns.ts (a veth pair between two fresh
 * namespaces, tbf on the sender's side, SO_SNDBUF 16 KiB): the sending link goes down, the peer's
 * link goes down, the route goes away, the receiving namespace is deleted, the socket is closed,
 * IoCancelIrp races completion, a worker is terminated, the process gets SIGTERM.
 *
 * The sender (fixtures/faults-sender.js) runs in namespace A, the receiver
 * (fixtures/faults-receiver.js) in namespace B; the receiver reports every run of sequence
 * numbers, so what the sender says it sent is compared with what arrived, datagram by datagram.
 * Each scenario ends with: every request settled exactly once and nothing settling afterwards,
 * what arrived is an in-order prefix (with intact bytes) of what the sender reports sent (all of
 * it when the path still delivers), and no UDP socket left open.
 *
 * What this kernel does (Linux 6.18, seen on every run; the tests assert it):
 * - `ip link set dev va down` on the sender's side: the pending sends fail at once with
 *   ENETUNREACH (the routes through va go with it); the qdisc's backlog, already counted as
 *   sent, is dropped, so the receiver gets FEWER datagrams than datagramsSent (tens of them).
 *   (Between the qdisc's deactivation and the routes' removal a send can still be accepted and
 *   dropped: one more reason a user may rely only on "arrived <= datagramsSent".)
 * - The peer's link down (carrier lost on va, which keeps its routes): the pending sends
 *   SUCCEED, every byte "sent", within about a second, and most of it never arrives. Until the
 *   kernel's link watch (at most once a second) deactivates the qdisc, tbf feeds the veth, which
 *   drops; then the rest goes into a noop qdisc that drops it and reports success.
 * - The route removed (the link stays up): the pending sends fail at once with ENETUNREACH, and
 *   what the qdisc held still arrives: receiver == datagramsSent exactly.
 * - `ip netns del` of the receiving namespace only removes its name while the receiver process
 *   is inside: traffic goes on. Once the receiver has gone, the namespace is torn down, the veth
 *   pair with it, and the pending sends fail with ENETUNREACH.
 * - close(): the sendBatch promises reject ECANCELED with the exact datagramsSent, the IRP
 *   completes STATUS_CANCELLED, and exactly datagramsSent arrive.
 * Needs root and iproute2: without them createSlowLink throws and the tests fail.
 */
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import {
  createSlowLink,
  FIXTURES,
  JsonChild,
  qdiscStats,
  type ExitInfo,
  type JsonLine,
  type SlowLink,
} from './netns';
import { useNamespaceSuite } from './namespace-suite';
import { openUdpSocketCount } from './receiver';

const SENDER = path.join(FIXTURES, 'faults-sender.js');
const RECEIVER = path.join(FIXTURES, 'faults-receiver.js');
const SIZE = 1200;
const STATUS_SUCCESS = 0;
const STATUS_CANCELLED = 0xc0000120;
const STATUS_NETWORK_UNREACHABLE = 0xc000023c;
const STATUS_PENDING = 0x103;
/** Datagrams per pending request: 4.8 MB, about 4 s at 10 mbit, so every fault finds them pending. */
const COUNT = 4000;

// Any field of a child's JSON line.
type Line = JsonLine & Record<string, any>;

interface Report {
  reached: boolean;
  count: number;
  bytes: number;
  duplicates: number;
  outOfOrder: number;
  corrupt: number;
  short: number;
  sizes: Record<string, number>;
  runs: Array<[number, number]>;
  runsTruncated: boolean;
}

interface Receiver {
  port: number;
  address: string;
  family: 4 | 6;
  child: JsonChild;
  /** Once `count` arrived and then `quietMs` passed without another (or after `timeoutMs`). */
  waitFor(count: number, timeoutMs: number, quietMs?: number): Promise<Report>;
  /** Once no datagram arrived for `quietMs` (quietMs 0: what arrived so far). */
  settle(timeoutMs: number, quietMs?: number): Promise<Report>;
  /** Stops receiving, reports what arrived, and exits. */
  final(): Promise<Report>;
  close(): Promise<void>;
}

let link: SlowLink | null = null;
const children: JsonChild[] = [];
const { notes } = useNamespaceSuite('faults');
let commandId = 0;
const udpAtStart = openUdpSocketCount();

/** Runs a command with a bound; resolves with its exit code and output. */
function sh(argv: readonly string[], timeoutMs = 10000): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(argv[0] as string, argv.slice(1), { timeout: timeoutMs, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      const exitCode = (error as { code?: unknown } | null)?.code;
      const code = error === null ? 0 : typeof exitCode === 'number' ? exitCode : -1;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

async function must(argv: readonly string[]): Promise<void> {
  const result = await sh(argv);
  if (result.code !== 0) throw new Error(`\`${argv.join(' ')}\` failed (${result.code}): ${result.out.trim()}`);
}

async function newLink(rate?: string): Promise<SlowLink> {
  link = await createSlowLink(rate === undefined ? {} : { rate });
  return link;
}

async function startReceiver(l: SlowLink, family: 4 | 6): Promise<Receiver> {
  const address = l.address('b', family);
  const child = new JsonChild(l.spawnNode('b', RECEIVER, [JSON.stringify({ family, address, lifetimeMs: 60000 })]),
    `receiver in ${l.names.b}`);
  children.push(child);
  const ready = await child.nextLine((line) => line.event === 'ready', 5000, 'the receiver to bind');
  const ask = async (command: Record<string, unknown>, timeoutMs: number): Promise<Report> => {
    const id = ++commandId;
    child.send({ ...command, id, timeoutMs });
    const line = await child.nextLine((l2) => l2.event === 'report' && l2.id === id, timeoutMs + 5000,
      `the receiver's report on ${JSON.stringify(command)}`);
    return line as unknown as Report;
  };
  return {
    port: ready.port as number,
    address,
    family,
    child,
    waitFor: (count, timeoutMs, quietMs = 300) => ask({ cmd: 'wait', count, quietMs }, timeoutMs),
    settle: (timeoutMs, quietMs = 300) => ask({ cmd: 'settle', quietMs }, timeoutMs),
    final: () => ask({ cmd: 'final' }, 3000),
    async close() {
      if (child.exit !== null) return;
      child.send({ cmd: 'exit' });
      child.child.stdin?.end();
      await child.waitForExit(3000);
    },
  };
}

function startSender(l: SlowLink, scenario: string, params: Record<string, unknown>): JsonChild {
  const child = new JsonChild(l.spawnNode('a', SENDER, [scenario, JSON.stringify(params)]),
    `sender "${scenario}" in ${l.names.a}`);
  children.push(child);
  return child;
}

/** Sends `command` to the sender and waits for its `event` line with the same id. */
async function askSender(child: JsonChild, command: Record<string, unknown>, event: string, timeoutMs: number): Promise<Line> {
  const id = ++commandId;
  child.send({ ...command, id });
  return child.nextLine((line) => line.event === event && line.id === id, timeoutMs, `the sender's "${event}"`) as Promise<Line>;
}

/** The result line of a sender that ended on its own with exit code 0 and no error. */
function cleanResult(child: JsonChild, exit: ExitInfo): Line {
  const result = child.lines.find((line) => line.event === 'result') as Line | undefined;
  if (exit.timedOut || exit.code !== 0 || exit.signal !== null || result === undefined || result.error !== undefined) {
    throw new Error(`the sender did not end cleanly (${JSON.stringify(exit)}; ` +
      `error: ${String(result?.error)})\n${child.describe()}`);
  }
  return result;
}

function base(r: Receiver): Record<string, unknown> {
  return { family: r.family, address: r.address, port: r.port, size: SIZE, sendBufferSize: 16384 };
}

/** Runs [first, last] of `segments` ([first seq, datagrams]) sent in this order, contiguous ones merged. */
function runsOf(segments: ReadonlyArray<readonly [number, number]>): Array<[number, number]> {
  const runs: Array<[number, number]> = [];
  for (const [first, count] of segments) {
    if (count <= 0) continue;
    const last = runs[runs.length - 1];
    if (last !== undefined && last[1] + 1 === first) last[1] = first + count - 1;
    else runs.push([first, first + count - 1]);
  }
  return runs;
}

/** The first `count` datagrams of `segments`, as runs. */
function prefixRuns(segments: ReadonlyArray<readonly [number, number]>, count: number): Array<[number, number]> {
  const taken: Array<[number, number]> = [];
  let left = count;
  for (const [first, n] of segments) {
    const take = Math.min(n, left);
    taken.push([first, take]);
    left -= take;
  }
  return runsOf(taken);
}

/** Every datagram once, in order, with its bytes intact, and all of one size (SIZE unless given). */
function expectIntact(report: Report, size = SIZE): void {
  expect({
    duplicates: report.duplicates, outOfOrder: report.outOfOrder, corrupt: report.corrupt, short: report.short,
    runsTruncated: report.runsTruncated, sizes: report.sizes,
  }).toEqual({
    duplicates: 0, outOfOrder: 0, corrupt: 0, short: 0, runsTruncated: false,
    sizes: report.count > 0 ? { [size]: report.count } : {},
  });
}

/**
 * What arrived is exactly the first report.count datagrams of what the sender sent
 * (`segments`), and no more than it sent. With `all`, it is everything it sent.
 */
function expectPrefixOf(report: Report, segments: ReadonlyArray<readonly [number, number]>, all: boolean): void {
  const sent = segments.reduce((sum, [, n]) => sum + n, 0);
  expectIntact(report);
  if (all) expect({ received: report.count }).toEqual({ received: sent });
  else expect(report.count).toBeLessThanOrEqual(sent);
  expect(report.runs).toEqual(prefixRuns(segments, report.count));
  expect(report.bytes).toBe(report.count * SIZE);
}

/** Each request settled once (the IRP: its routine once, its promise once), none after the end, no socket left. */
function expectSettledOnce(result: Line, names: readonly string[]): void {
  expect(result.settles).toEqual(Object.fromEntries(names.map((name) => [name, 1])));
  expect({ late: result.late }).toEqual({ late: 0 });
  expect({ udpAfter: result.udpAfter }).toEqual({ udpAfter: result.udpBefore });
}

function expectRejected(outcome: Line | null, code: string, statusName: string): Line {
  expect({ ok: outcome?.ok, name: outcome?.error?.name, code: outcome?.error?.code, statusName: outcome?.error?.statusName })
    .toEqual({ ok: false, name: 'WskError', code, statusName });
  return outcome?.error as Line;
}

afterEach(async () => {
  const l = link;
  link = null;
  for (const child of children.splice(0)) {
    if (child.exit === null) child.child.kill('SIGKILL');
  }
  await l?.destroy();
});

afterAll(async () => {
  // This process made no socket of its own; the children's are checked in their results.
  expect(openUdpSocketCount()).toBe(udpAtStart);
});

// -----------------------------------------------------------------------------------------------
// the path breaks while A = sendBatch(0..n-1), B = WskSendMessages(n..2n-1), C = sendBatch(2n..3n-1) wait

interface PendingRun {
  l: SlowLink;
  r: Receiver;
  sender: JsonChild;
  pending: Line;
}

async function startPending(family: 4 | 6): Promise<PendingRun> {
  const l = await newLink();
  const r = await startReceiver(l, family);
  const sender = startSender(l, 'pending', { ...base(r), count: COUNT, watchdogMs: 20000 });
  const pending = await sender.nextLine((line) => line.event === 'pending', 8000, 'the sender to report pending sends') as Line;
  // All three wait: A behind the full socket buffer, B and C behind A.
  expect(pending.returnedB).toBe('STATUS_PENDING');
  expect(pending.settled).toEqual({ A: false, B: false, C: false });
  expect(pending.pendingRequests).toBe(3);
  expect(pending.pendingDatagrams).toBeGreaterThan(2 * COUNT);
  return { l, r, sender, pending };
}

/** Tells the sender the fault is in place and waits (bounded) for its result. */
async function finishPending(run: PendingRun, command: Record<string, unknown>): Promise<Line> {
  run.sender.send({ ...command, id: ++commandId });
  return cleanResult(run.sender, await run.sender.waitForExit(10000));
}

function sentBy(result: Line): { a: number; b: number; c: number } {
  const count = (o: Line | null): number => (o?.ok === true ? o.value.datagrams : o?.error?.datagramsSent) as number;
  return { a: count(result.A), b: (result.B?.Information as number) / SIZE, c: count(result.C) };
}

function segmentsOf(sent: { a: number; b: number; c: number }): Array<[number, number]> {
  return [[0, sent.a], [COUNT, sent.b], [2 * COUNT, sent.c]];
}

/** A failed with `code` part-way, B and C failed with it having sent nothing. */
function expectFailedInOrder(result: Line, code: string, statusName: string, status: number): number {
  const a = expectRejected(result.A, code, statusName);
  const sentA = a.datagramsSent as number;
  expect(sentA).toBeGreaterThan(0);
  expect(sentA).toBeLessThan(COUNT);
  expect(a.bytesSent).toBe(sentA * SIZE);
  expect({ Status: result.B.Status, Information: result.B.Information }).toEqual({ Status: status, Information: 0 });
  expect(result.routineCallsB).toBe(1);
  expect(result.routineInsideCallB).toBe(false);
  const c = expectRejected(result.C, code, statusName);
  expect({ datagramsSent: c.datagramsSent, bytesSent: c.bytesSent }).toEqual({ datagramsSent: 0, bytesSent: 0 });
  return sentA;
}

function expectCleanEnd(result: Line): void {
  expectSettledOnce(result, ['A', 'B.routine', 'B.promise', 'C']);
  expect(result.pendingAtEnd).toEqual({ pendingDatagrams: 0, pendingBytes: 0, pendingRequests: 0 });
}

describe('faults while sends are pending (veth between namespaces, tbf 10 mbit)', () => {
  test.each([4, 6] as const)('IPv%i: the sending link goes down: every pending send fails with ENETUNREACH, the qdisc backlog is lost', async (family) => {
    const run = await startPending(family);
    await must(['ip', '-n', run.l.names.a, 'link', 'set', 'dev', run.l.interfaces.a, 'down']);
    const result = await finishPending(run, { cmd: 'watch', timeoutMs: 3000 });
    notes.push(`link down IPv${family}: ${JSON.stringify(sentBy(result))} sent, settled ${JSON.stringify(result.settledMsAfterCommand)} ms after the command`);
    // Not left pending until close: the failure comes at once.
    expect(result.closedStillPending).toBeNull();
    const sentA = expectFailedInOrder(result, 'ENETUNREACH', 'STATUS_NETWORK_UNREACHABLE', STATUS_NETWORK_UNREACHABLE);
    expect(result.B.failure).toMatchObject({ code: 'ENETUNREACH', datagramsSent: 0 });
    expectCleanEnd(result);
    // The path is cut: what was in the qdisc was dropped, so at most what the kernel accepted arrived.
    const report = await run.r.settle(5000);
    notes.push(`link down IPv${family}: receiver got ${report.count} of the ${sentA} datagrams accepted`);
    expectPrefixOf(report, segmentsOf(sentBy(result)), false);
  });

  test.each([4, 6] as const)('IPv%i: the peer\'s link goes down (carrier lost): every pending send "succeeds" within about a second, yet most of it never arrives', async (family) => {
    const run = await startPending(family);
    await must(['ip', '-n', run.l.names.b, 'link', 'set', 'dev', run.l.interfaces.b, 'down']);
    const result = await finishPending(run, { cmd: 'watch', timeoutMs: 5000 });
    notes.push(`peer down IPv${family}: settled ${JSON.stringify(result.settledMsAfterCommand)} ms after the command`);
    expect(result.closedStillPending).toBeNull();
    expect(result.A).toEqual({ ok: true, value: { datagrams: COUNT, bytes: COUNT * SIZE, segments: COUNT, failures: [] } });
    expect({ Status: result.B.Status, Information: result.B.Information }).toEqual({ Status: STATUS_SUCCESS, Information: COUNT * SIZE });
    expect(result.C).toEqual({ ok: true, value: { datagrams: COUNT, bytes: COUNT * SIZE, segments: COUNT, failures: [] } });
    expect(result.routineCallsB).toBe(1);
    // Within about a second (the link watch), far sooner than the 8 s that B and C alone need at 10 mbit.
    expect(Math.max(result.settledMsAfterCommand.A, result.settledMsAfterCommand.B, result.settledMsAfterCommand.C)).toBeLessThan(3000);
    expectCleanEnd(result);
    const report = await run.r.settle(5000);
    notes.push(`peer down IPv${family}: receiver got ${report.count} of ${3 * COUNT} "sent"`);
    expectPrefixOf(report, segmentsOf(sentBy(result)), false);
    expect(report.count).toBeLessThan(COUNT);
  });

  test.each([4, 6] as const)('IPv%i: the route is removed: every pending send fails with ENETUNREACH, and all that was accepted arrives', async (family) => {
    const run = await startPending(family);
    const prefix = family === 4 ? `${run.l.ipv4.a.replace(/\.\d+$/, '.0')}/24` : `${run.l.ipv6.a.replace(/::1$/, '::')}/64`;
    await must(['ip', '-n', run.l.names.a, `-${family}`, 'route', 'del', prefix, 'dev', run.l.interfaces.a]);
    const result = await finishPending(run, { cmd: 'watch', timeoutMs: 3000 });
    notes.push(`route removed IPv${family}: ${JSON.stringify(sentBy(result))} sent, settled ${JSON.stringify(result.settledMsAfterCommand)} ms after the command`);
    expect(result.closedStillPending).toBeNull();
    const sentA = expectFailedInOrder(result, 'ENETUNREACH', 'STATUS_NETWORK_UNREACHABLE', STATUS_NETWORK_UNREACHABLE);
    expectCleanEnd(result);
    // The packets in the qdisc already had their route: the link still delivers them.
    const report = await run.r.waitFor(sentA, 5000);
    expectPrefixOf(report, segmentsOf(sentBy(result)), true);
    const qdisc = await qdiscStats(run.l);
    expect(qdisc.dropped).toBe(0);
  });

  test.each([4, 6] as const)('IPv%i: the receiving namespace is deleted: traffic goes on while the receiver is inside; once it left, the pending sends fail with ENETUNREACH', async (family) => {
    const run = await startPending(family);
    const before = await run.r.settle(2000, 0);
    await must(['ip', 'netns', 'del', run.l.names.b]);
    const listing = await sh(['ip', 'netns', 'list']);
    expect(listing.out.split('\n').some((line) => line.startsWith(run.l.names.b))).toBe(false);
    // The name is gone, the namespace is not: its receiver keeps it alive, datagrams still come.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const during = await run.r.settle(2000, 0);
    const state = await askSender(run.sender, { cmd: 'state' }, 'state', 3000);
    expect(during.count).toBeGreaterThan(before.count);
    expect(state.settled).toEqual({ A: false, B: false, C: false });
    // The receiver goes: the last process in it, so the kernel tears the namespace down, veth included.
    run.sender.send({ cmd: 'watch', id: ++commandId, timeoutMs: 5000 });
    const final = await run.r.final();
    await run.r.child.waitForExit(3000);
    const goneStarted = performance.now();
    let vethGone = false;
    while (!vethGone && performance.now() - goneStarted < 5000) {
      vethGone = (await sh(['ip', '-n', run.l.names.a, 'link', 'show', run.l.interfaces.a])).code !== 0;
      if (!vethGone) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    notes.push(`namespace deleted IPv${family}: the veth went ${Math.round(performance.now() - goneStarted)} ms after the receiver exited`);
    expect(vethGone).toBe(true);
    const result = cleanResult(run.sender, await run.sender.waitForExit(10000));
    notes.push(`namespace deleted IPv${family}: ${JSON.stringify(sentBy(result))} sent, receiver got ${final.count}; ` +
      `settled ${JSON.stringify(result.settledMsAfterCommand)} ms after the command`);
    expect(result.closedStillPending).toBeNull();
    const sentA = expectFailedInOrder(result, 'ENETUNREACH', 'STATUS_NETWORK_UNREACHABLE', STATUS_NETWORK_UNREACHABLE);
    expectCleanEnd(result);
    expect(final.count).toBeLessThanOrEqual(sentA);
    expectPrefixOf(final, segmentsOf(sentBy(result)), false);
  });

  test.each([4, 6] as const)('IPv%i: close() while pending: the sendBatch promises reject ECANCELED with the exact datagramsSent, the IRP completes STATUS_CANCELLED', async (family) => {
    const run = await startPending(family);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const result = await finishPending(run, { cmd: 'close' });
    notes.push(`close IPv${family}: ${JSON.stringify(sentBy(result))} sent; settled inside close(): ${JSON.stringify(result.closeReport.settledInsideClose)}`);
    expect(result.closeReport.before.pendingRequests).toBe(3);
    expect(result.closeReport.after).toEqual({ pendingDatagrams: 0, pendingBytes: 0, pendingRequests: 0 });
    const sentA = expectFailedInOrder(result, 'ECANCELED', 'STATUS_CANCELLED', STATUS_CANCELLED);
    expectCleanEnd(result);
    // The path still delivers: exactly datagramsSent arrive, nothing after the close.
    const report = await run.r.waitFor(sentA, 5000, 500);
    expectPrefixOf(report, segmentsOf(sentBy(result)), true);
  });
});

// -----------------------------------------------------------------------------------------------

const MIN_SIZE = 100;
const MAX_SIZE = 1200;

/** The size of datagram `seq` of a mixed-size IRP, as fixtures/faults-sender.js makes it. */
function mixedSize(seq: number, min: number, max: number): number {
  return min + ((seq * 7919) % (max - min + 1));
}

describe('IoCancelIrp racing completion', () => {
  test('1000 IRPs cancelled around their completion: each completes once, and the bytes they report are the bytes that arrive', async () => {
    // 100 mbit: an IRP of up to 64 x 1200 B lasts a few ms, as long as the cancel timers.
    const l = await newLink('100mbit');
    const r = await startReceiver(l, 4);
    const seed = (Date.now() ^ process.pid) >>> 0;
    const iterations = 1000;
    const sender = startSender(l, 'cancel-race', {
      ...base(r), iterations, seed, maxOutstanding: 3, minSize: MIN_SIZE, maxSize: MAX_SIZE, maxCount: 64, timeoutMs: 15000,
      watchdogMs: 20000,
    });
    const result = cleanResult(sender, await sender.waitForExit(22000));
    type Irp = [number, number, number, string, number, number, number, number, number, boolean[]];
    const irps = result.irps as Irp[];
    expect(irps).toHaveLength(iterations);
    const tally: Record<string, number> = {};
    const problems: string[] = [];
    const segments: Array<[number, number]> = [];
    const sizes: Record<string, number> = {};
    let information = 0;
    for (const [seq, count, size, mode, returned, status, info, routineCalls, promiseCalls, cancels] of irps) {
      const wins = cancels.filter((c) => c).length;
      const sizeOf = (k: number): number => size || mixedSize(seq + k, MIN_SIZE, MAX_SIZE);
      // Information must be the bytes of a whole number of leading datagrams.
      let sent = 0;
      let bytes = 0;
      while (sent < count && bytes + sizeOf(sent) <= info) bytes += sizeOf(sent++);
      const total = Array.from({ length: count }, (_, k) => sizeOf(k)).reduce((x, y) => x + y, 0);
      const where = `IRP at seq ${seq} (${count} x ${size || 'mixed'} B, cancel ${mode}, seed ${seed})`;
      if (bytes !== info) problems.push(`${where}: Information ${info} is not a whole number of datagrams`);
      if (routineCalls !== 1 || promiseCalls !== 1) problems.push(`${where}: routine ran ${routineCalls}x, promise ${promiseCalls}x`);
      if (wins > 1) problems.push(`${where}: IoCancelIrp returned true ${wins} times`);
      if (status === STATUS_SUCCESS) {
        if (info !== total) problems.push(`${where}: STATUS_SUCCESS with Information ${info} of ${total}`);
        if (wins !== 0) problems.push(`${where}: IoCancelIrp returned true, yet STATUS_SUCCESS`);
      } else if (status === STATUS_CANCELLED) {
        if (returned !== STATUS_PENDING) problems.push(`${where}: cancelled, but WskSendMessages returned ${returned}`);
        if (sent >= count) problems.push(`${where}: cancelled with all ${count} datagrams sent`);
        if (wins !== 1) problems.push(`${where}: STATUS_CANCELLED, but IoCancelIrp returned true ${wins} times`);
      } else {
        problems.push(`${where}: Status 0x${status.toString(16)}`);
      }
      const outcome = status === STATUS_SUCCESS ? (wins === 0 && cancels.length > 0 ? 'cancel lost' : 'success')
        : sent === 0 ? 'cancelled, none sent' : 'cancelled part-way';
      tally[outcome] = (tally[outcome] ?? 0) + 1;
      segments.push([seq, sent]);
      for (let k = 0; k < sent; k++) sizes[sizeOf(k)] = (sizes[sizeOf(k)] ?? 0) + 1;
      information += info;
    }
    notes.push(`cancel race (seed ${seed}): ${JSON.stringify(tally)} in ${Math.round(result.totalMs)} ms`);
    expect(problems.slice(0, 10)).toEqual([]);
    expect({ lateRoutines: result.lateRoutines, latePromises: result.latePromises, lateCancels: result.lateCancels })
      .toEqual({ lateRoutines: 0, latePromises: 0, lateCancels: 0 });
    expect(result.pendingAtEnd).toEqual({ pendingDatagrams: 0, pendingBytes: 0, pendingRequests: 0 });
    expect({ udpAfter: result.udpAfter }).toEqual({ udpAfter: result.udpBefore });
    // It really raced: cancels that won part-way, that won before anything went, and that lost.
    expect(tally['cancelled part-way'] ?? 0).toBeGreaterThanOrEqual(20);
    expect(tally['cancelled, none sent'] ?? 0).toBeGreaterThanOrEqual(20);
    expect(tally['cancel lost'] ?? 0).toBeGreaterThanOrEqual(20);
    // The link goes idle (the qdisc empty, then 300 ms without a datagram), bounded.
    const idleStarted = performance.now();
    let backlog = '';
    while (performance.now() - idleStarted < 5000) {
      backlog = /backlog (\S+)/.exec((await qdiscStats(l)).text)?.[1] ?? '?';
      if (backlog === '0b') break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(backlog).toBe('0b');
    const report = await r.settle(5000);
    expect(report.reached).toBe(true);
    expect({ bytes: report.bytes }).toEqual({ bytes: information });
    expect({
      duplicates: report.duplicates, outOfOrder: report.outOfOrder, corrupt: report.corrupt, short: report.short,
      runsTruncated: report.runsTruncated,
    }).toEqual({ duplicates: 0, outOfOrder: 0, corrupt: 0, short: 0, runsTruncated: false });
    expect(report.sizes).toEqual(sizes);
    expect(report.runs).toEqual(runsOf(segments));
  });
});

// -----------------------------------------------------------------------------------------------

describe('worker threads and signals', () => {
  // DEFECT 1 can hit this one too, rarely (seen once, with the machine at load 12): a worker
  // whose queue is flushing is inside the native send when terminate() lands.
  test('workers terminated with a sendBatch and an IRP pending: no crash, nothing settles afterwards, an in-order prefix arrives, no socket left', async () => {
    const l = await newLink();
    const r = await startReceiver(l, 4);
    const rounds = 10;
    const n = 400;
    const sender = startSender(l, 'worker-pending', { ...base(r), rounds, count: n, seed: 7, watchdogMs: 20000 });
    const result = cleanResult(sender, await sender.waitForExit(22000));
    const list = result.rounds as Line[];
    expect(list).toHaveLength(rounds);
    for (const round of list) {
      expect({ base: round.base, errors: round.errors, returned: round.pending.returned, exitCode: round.exitCode })
        .toEqual({ base: round.base, errors: [], returned: 'STATUS_PENDING', exitCode: 1 });
      expect(round.pending.pendingDatagrams).toBeGreaterThan(0);
      // A terminated worker's requests never settle (its JavaScript is gone): none settled
      // twice before, and none settles once the worker is gone.
      expect(Math.max(...(round.countersAtTerminate as number[]))).toBeLessThanOrEqual(1);
      expect({ base: round.base, after: round.countersAfter }).toEqual({ base: round.base, after: round.countersAtTerminate });
    }
    // The worker environments' teardown closed every socket.
    expect({ udpAfter: result.udpAfter }).toEqual({ udpAfter: result.udpBefore });
    const report = await r.settle(8000);
    expect(report.reached).toBe(true);
    expectIntact(report);
    // Round by round: at least what went out at once, at most the two requests, from its first datagram.
    const got = new Map(report.runs.map(([first, last]) => [first, last - first + 1]));
    expect(report.runs).toHaveLength(rounds);
    for (const round of list) {
      const arrived = got.get(round.base) ?? 0;
      expect({ base: round.base, atLeast: arrived >= round.pending.sentAtOnce, atMost: arrived <= 2 * n })
        .toEqual({ base: round.base, atLeast: true, atMost: true });
    }
    expect(report.runs.map(([first]) => first)).toEqual(list.map((round) => round.base));
  });

  // DEFECT 1 (open on this branch): terminate() while the worker is inside a native method can
  // abort the whole process; here that is the child, so jest survives and this test fails.
  test('workers terminated while inside trySendBatch, 30 times: the process survives (exit 0), no socket left, each worker\'s datagrams arrive in order', async () => {
    const l = await newLink();
    const r = await startReceiver(l, 4);
    // Without the fix, the child aborted within the first 4 rounds in 6 of 6 trials.
    const rounds = 30;
    const batch = 1024;
    const sender = startSender(l, 'worker-native', {
      ...base(r), rounds, batch, size: 100, loopMs: 5000, seed: (Date.now() ^ process.pid) >>> 0, watchdogMs: 25000,
    });
    const exit = await sender.waitForExit(27000);
    notes.push(`worker-native: child ${JSON.stringify(exit)} after ${sender.lines.filter((line) => line.event === 'round').length} rounds`);
    const result = cleanResult(sender, exit);
    const list = result.rounds as Line[];
    expect(list).toHaveLength(rounds);
    for (const round of list) {
      expect({ base: round.base, errors: round.errors, exitCode: round.exitCode })
        .toEqual({ base: round.base, errors: [], exitCode: 1 });
    }
    expect({ udpAfter: result.udpAfter }).toEqual({ udpAfter: result.udpBefore });
    const report = await r.settle(8000);
    expect(report.reached).toBe(true);
    expectIntact(report, 100);
    // A worker counts what each call sent after it returns: the call it was terminated in may
    // have sent up to `batch` more.
    const got = new Map(report.runs.map(([first, last]) => [first, last - first + 1]));
    for (const round of list) {
      const arrived = got.get(round.base) ?? 0;
      expect({ base: round.base, ok: arrived >= round.sent && arrived <= round.sent + batch })
        .toEqual({ base: round.base, ok: true });
    }
    expect(report.runs.map(([first]) => first)).toEqual(list.filter((round) => (got.get(round.base) ?? 0) > 0).map((round) => round.base));
  });

  test.each([false, true])('SIGTERM to a sender with sends pending (handler: %s): it ends by the signal or by its handler, never a crash; an in-order prefix arrives', async (handler) => {
    const l = await newLink();
    const r = await startReceiver(l, 4);
    const sender = startSender(l, 'sigterm', { ...base(r), count: COUNT, handler, watchdogMs: 15000 });
    const pending = await sender.nextLine((line) => line.event === 'pending', 8000, 'the sender to report pending sends') as Line;
    expect(pending.settled).toEqual({ A: false, B: false });
    expect(pending.pendingDatagrams).toBeGreaterThan(COUNT);
    sender.child.kill('SIGTERM');
    const exit = await sender.waitForExit(3000);
    notes.push(`sigterm handler ${String(handler)}: ${JSON.stringify(exit)}`);
    const segments: Array<[number, number]> = [[0, COUNT], [COUNT, COUNT]];
    if (!handler) {
      // Node's default action: killed by SIGTERM itself (SIGABRT/SIGSEGV would be a crash; SIGTERM dumps no core).
      expect({ timedOut: exit.timedOut, signal: exit.signal, code: exit.code }).toEqual({ timedOut: false, signal: 'SIGTERM', code: null });
      const report = await r.settle(5000);
      expect(report.count).toBeGreaterThanOrEqual(pending.sentAtOnce as number);
      expectPrefixOf(report, segments, false);
      return;
    }
    const result = cleanResult(sender, exit);
    const a = expectRejected(result.A, 'ECANCELED', 'STATUS_CANCELLED');
    const sentA = a.datagramsSent as number;
    expect(sentA).toBeGreaterThanOrEqual(pending.sentAtOnce as number);
    expect(sentA).toBeLessThan(COUNT);
    expect({ Status: result.B.Status, Information: result.B.Information }).toEqual({ Status: STATUS_CANCELLED, Information: 0 });
    expectSettledOnce(result, ['A', 'B.routine', 'B.promise']);
    const report = await r.waitFor(sentA, 5000, 500);
    expectPrefixOf(report, [[0, sentA]], true);
  });
});
