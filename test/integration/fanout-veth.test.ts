/**
 * Many destinations over a real link: a veth pair of MTU 1500 between two fresh network
 * namespaces (netns.ts createSlowLink, with its tbf removed: see newLink), IPv4 and IPv6, on both
 * Linux back-ends (sendmmsg, and the portable sendmsg loop selected by WSK_DGRAM_BACKEND=sendmsg
 * in the sender's environment). The loopback versions are in batch-shape.test.ts.
 *
 * - Fan-out: sendToMany of one packed batch (10 x 1000 B, segmentSize 1000) to 64 ports of a
 *   receiver in the other namespace. Every port gets its 10 datagrams, byte for byte, in order,
 *   and nothing else; the result is exact; with GSO every destination's run is one super-packet
 *   (messages 64, never a run across two destinations), without it 640 messages; sendmmsg makes
 *   one call for it all.
 * - Failures: sendTo of 2049 messages (blocks of 16 to one of 4 ports) with some sent to an
 *   address with no route (ENETUNREACH) or one the kernel refuses (EACCES: IPv4 the veth
 *   subnet's broadcast without SO_BROADCAST, IPv6 a `prohibit` route), at indices that include
 *   the first, the last, the sendmmsg window edges 1023/1024/1025 and a refused pair that GSO
 *   makes one super-packet. The failures list is exact; every other datagram arrives once, in
 *   order, byte for byte; both back-ends, GSO on and off, give identical results.
 *
 * The sender (wsk-dgram) and the receiver (node:dgram, not the library under test) are child
 * processes, fixtures/fanout-sender.js `send` in namespace a and `receive` in namespace b.
 * Needs root and iproute2: without them createSlowLink throws and the tests fail (never skip).
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { createSlowLink, FIXTURES, JsonChild, type JsonLine, type SlowLink } from './netns';
import { useNamespaceSuite } from './namespace-suite';

const SCRIPT = path.join(FIXTURES, 'fanout-sender.js');

interface PlannedMessage {
  seq: number;
  size: number;
  port: number;
  address: string;
  kind: FailureKind | null;
}
type FailureKind = 'unroutable' | 'refused';
interface Plan {
  count: number;
  ports: number[];
  address: string;
  failing: Array<[number, FailureKind]>;
  addresses: Record<FailureKind, string>;
}
/* eslint-disable @typescript-eslint/no-require-imports */
const fixture = require(SCRIPT) as {
  fanOutDatagrams(count: number, size: number): Buffer[];
  addressedPlan(plan: Plan): PlannedMessage[];
};
const { datagram } = require(path.join(FIXTURES, 'common.js')) as { datagram(seq: number, size: number): Buffer };
/* eslint-enable @typescript-eslint/no-require-imports */

const { EACCES, ENETUNREACH } = os.constants.errno as Record<string, number>;
const STATUS = { EACCES: 0xc0000022, ENETUNREACH: 0xc000023c }; // ACCESS_DENIED, NETWORK_UNREACHABLE

const MTU = 1500;
const BACKENDS = ['sendmmsg', 'sendmsg'] as const;
type Backend = (typeof BACKENDS)[number];
const STEP_MS = 5000; // bound of every exchange with a child
const QUIET_MS = 300; // silence after the expected count, so that extra datagrams show

type Line = JsonLine & Record<string, any>;

interface Stats {
  syscalls: number;
  messages: number;
  datagrams: number;
  bytes: number;
  segments: number;
}

// -----------------------------------------------------------------------------------------------
// comparing what arrived with what was sent

const seqOf = (d: Buffer): string => (d.length >= 4 ? `seq ${d.readUInt32BE(0)}, ${d.length} B` : `${d.length} B`);

/** Null when `received` is `expected`, in order and byte for byte; else the first difference. */
function diffDatagrams(expected: readonly Buffer[], received: readonly Buffer[]): string | null {
  const length = Math.max(expected.length, received.length);
  for (let i = 0; i < length; i++) {
    const want = expected[i];
    const got = received[i];
    if (want !== undefined && got !== undefined && want.equals(got)) continue;
    const what = got === undefined ? 'missing' : want === undefined ? `extra (${seqOf(got)})` :
      `${seqOf(got)} where ${seqOf(want)} was sent`;
    return `#${i}: ${what} (${received.length} received, ${expected.length} sent)`;
  }
  return null;
}

/** Throws, naming every port that differs, unless each port got exactly its datagrams. */
function expectPorts(what: string, expected: readonly Buffer[][], take: Line): void {
  const perPort = (take.perPort as string[][]).map((list) => list.map((d) => Buffer.from(d, 'base64')));
  const problems: string[] = [];
  if (perPort.length !== expected.length) problems.push(`${perPort.length} ports reported, ${expected.length} expected`);
  expected.forEach((want, p) => {
    const diff = diffDatagrams(want, perPort[p] ?? []);
    if (diff !== null) problems.push(`port #${p}: ${diff}`);
  });
  if (problems.length > 0) {
    throw new Error(`${what}: ${problems.length} port(s) wrong: ${problems.slice(0, 8).join('; ')} ` +
      `[receiver got ${String(take.count)} in all, reached ${String(take.reached)} after ${String(take.waitedMs)} ms, ` +
      `socket drops ${String(take.drops)}]`);
  }
}

/**
 * Messages the coalescing makes of `plan` with GSO: a run is consecutive datagrams to one
 * destination of its first one's size, a shorter one joining and ending it; a datagram the
 * kernel refuses is never in a run with accepted ones, and is not counted (never accepted).
 * Runs here stay far below the segment (64) and payload limits.
 */
function gsoMessages(plan: readonly PlannedMessage[]): number {
  let messages = 0;
  let head: PlannedMessage | null = null;
  for (const m of plan) {
    if (m.kind !== null) {
      head = null;
    } else if (head !== null && m.port === head.port && m.address === head.address && m.size <= head.size) {
      if (m.size < head.size) head = null;
    } else {
      messages++;
      head = m;
    }
  }
  return messages;
}

// -----------------------------------------------------------------------------------------------
// the children

class Peer {
  #id = 0;
  constructor(readonly child: JsonChild) {}

  /** Sends `command` and resolves with the child's answer to it (bounded). */
  async ask(command: Record<string, unknown>, answer: string, timeoutMs = STEP_MS): Promise<Line> {
    const id = ++this.#id;
    this.child.send({ ...command, id });
    const line = await this.child.nextLine((l) => l.id === id && (l.event === answer || l.event === 'error'),
      timeoutMs, `${answer} for ${command.cmd as string}`) as Line;
    if (line.event === 'error') throw new Error(`${String(line.message)}\n${this.child.describe()}`);
    return line;
  }

  async close(): Promise<void> {
    if (this.child.exit !== null) return;
    this.child.send({ cmd: 'exit' });
    this.child.child.stdin?.end();
    const exit = await this.child.waitForExit(3000);
    if (exit.timedOut) throw new Error(`${this.child.label} did not exit within 3 s`);
  }
}

/**
 * Starts a role of the fixture in its namespace. The sender is given `backend`, which it puts in
 * its own environment as WSK_DGRAM_BACKEND before it loads the addon (which reads it once, at
 * load), whatever this process was started with. (Jest's sandboxed process.env never reaches
 * child_process, so the variable cannot simply be set here.)
 */
async function startPeer(l: SlowLink, role: 'send' | 'receive', params: Record<string, unknown>,
  backend?: Backend): Promise<[Peer, Line]> {
  const side = role === 'send' ? 'a' : 'b';
  const spawned = l.spawnNode(side, SCRIPT, [role, JSON.stringify({ lifetimeMs: 30000, backend, ...params })]);
  const child = new JsonChild(spawned, `fanout-sender.js ${role}${backend ? ` (${backend})` : ''} in ${l.names[side]}`);
  const peer = new Peer(child);
  peers.push(peer);
  const ready = await child.nextLine((line) => line.event === 'ready' || line.event === 'error', STEP_MS,
    `${role} to be ready`) as Line;
  if (ready.event !== 'ready') throw new Error(`${String(ready.message)}\n${child.describe()}`);
  if (backend !== undefined) {
    // The premise of every comparison below: the child runs the back-end it was given.
    expect({ backend: ready.backend, env: ready.env }).toEqual({ backend, env: backend });
  }
  return [peer, ready];
}

/** Everything that arrived since the last take, once `count` arrived in all and QUIET_MS passed. */
function take(receiver: Peer, count: number): Promise<Line> {
  return receiver.ask({ cmd: 'take', count, timeoutMs: STEP_MS, quietMs: QUIET_MS }, 'take', STEP_MS + 3000);
}

function delta(line: Line): Stats {
  const before = line.before as Stats;
  const after = line.after as Stats;
  const keys = ['syscalls', 'messages', 'datagrams', 'bytes', 'segments'] as const;
  return Object.fromEntries(keys.map((k) => [k, after[k] - before[k]])) as unknown as Stats;
}

/** The sender's answer to a send that must have resolved. */
function sent(line: Line, sender: Peer): Line {
  if (line.error !== null) throw new Error(`the send failed: ${JSON.stringify(line.error)}\n${sender.child.describe()}`);
  return line;
}

async function mustExec(l: SlowLink, side: 'a' | 'b', argv: string[]): Promise<string> {
  const result = await l.exec(side, argv);
  if (result.code !== 0) throw new Error(`\`${argv.join(' ')}\` in ${l.names[side]}: ${result.stderr.trim()}`);
  return result.stdout;
}

async function vbRxPackets(l: SlowLink): Promise<number> {
  const [info] = JSON.parse(await mustExec(l, 'b', ['ip', '-j', '-s', 'link', 'show', 'dev', l.interfaces.b])) as
    Array<{ stats64: { rx: { packets: number } } }>;
  return info!.stats64.rx.packets;
}

// -----------------------------------------------------------------------------------------------
// lifecycle: every link, child and namespace goes, whatever happened

let link: SlowLink | null = null;
let peers: Peer[] = [];
const { notes } = useNamespaceSuite('fanout-veth');

/**
 * A link with no qdisc on va and RPS off on vb: every packet then crosses the veth and reaches
 * the receiving socket on the sender's CPU, inside the send call (veth hands it to netif_rx; the
 * softirq runs as the transmit path leaves its bh-disabled section). So no per-CPU backlog
 * (netdev_max_backlog, 1000) fills during a 2049-message call and nothing is reordered; any
 * loss or reordering the tests see is the library's. No default route, so that "no route" is
 * real (the premise of ENETUNREACH).
 */
async function newLink(): Promise<SlowLink> {
  link = await createSlowLink({ rate: '1gbit' });
  await mustExec(link, 'a', ['tc', 'qdisc', 'del', 'dev', link.interfaces.a, 'root']);
  await mustExec(link, 'b', ['sh', '-c', `echo 0 > /sys/class/net/${link.interfaces.b}/queues/rx-0/rps_cpus`]);
  const [va] = JSON.parse(await mustExec(link, 'a', ['ip', '-j', 'link', 'show', 'dev', link.interfaces.a])) as
    Array<{ mtu: number; qdisc: string }>;
  const defaults = [
    await mustExec(link, 'a', ['ip', '-4', 'route', 'show', 'default']),
    await mustExec(link, 'a', ['ip', '-6', 'route', 'show', 'default']),
  ];
  expect({ mtu: va!.mtu, qdisc: va!.qdisc, defaults }).toEqual({ mtu: MTU, qdisc: 'noqueue', defaults: ['', ''] });
  return link;
}

afterEach(async () => {
  const closing = peers;
  const l = link;
  peers = [];
  link = null;
  try {
    await Promise.all(closing.map((p) => p.close()));
  } finally {
    await l?.destroy();
  }
});

// -----------------------------------------------------------------------------------------------

describe('many destinations over a veth pair (MTU 1500) between two new namespaces', () => {
  test('the comparison notices a missing, extra, duplicated, reordered or altered datagram, and the GSO model counts runs', () => {
    const expected = fixture.fanOutDatagrams(10, 1000);
    expect(diffDatagrams(expected, expected.map((d) => Buffer.from(d)))).toBeNull();
    const altered = expected.map((d) => Buffer.from(d));
    altered[4]![999] = altered[4]![999]! ^ 1;
    const mutations: Record<string, Buffer[]> = {
      missing: expected.slice(0, -1),
      extra: [...expected, datagram(10, 1000)],
      duplicated: [...expected.slice(0, 5), expected[4]!, ...expected.slice(5, 9)],
      reordered: [expected[1]!, expected[0]!, ...expected.slice(2)],
      altered,
    };
    for (const [name, received] of Object.entries(mutations)) {
      expect({ name, diff: diffDatagrams(expected, received) }).toEqual({ name, diff: expect.any(String) });
    }
    const take = { perPort: [expected, expected.slice(1)].map((l) => l.map((d) => d.toString('base64'))) } as Line;
    expect(() => expectPorts('self-test', [expected, expected], take)).toThrow(/port #1: #0/);

    // Blocks of 16 to alternating ports: one message per block; a failure inside a block splits it.
    const plan = (failing: Array<[number, FailureKind]>): PlannedMessage[] => fixture.addressedPlan({
      count: 64, ports: [1, 2], address: 'x', failing, addresses: { unroutable: 'u', refused: 'r' },
    });
    expect(plan([]).map((m) => m.size).slice(14, 18)).toEqual([100, 100, 160, 160]);
    expect(gsoMessages(plan([]))).toBe(4);
    expect(gsoMessages(plan([[5, 'refused']]))).toBe(5);
    expect(gsoMessages(plan([[0, 'refused'], [15, 'unroutable'], [16, 'refused']]))).toBe(4);
  });

  test.each([4, 6] as const)('IPv%i: sendToMany of a packed 10 x 1000 B batch to 64 ports: each port gets its 10 datagrams in order; one super-packet per destination with GSO, 640 messages without; both back-ends', async (family) => {
    const l = await newLink();
    const address = l.address('b', family);
    const [receiver, receiverReady] = await startPeer(l, 'receive', { family, address, ports: 64 });
    const ports = receiverReady.ports as number[];
    expect(new Set(ports).size).toBe(64);
    const run = fixture.fanOutDatagrams(10, 1000);
    const expected = ports.map(() => run);
    const total = { datagrams: 640, bytes: 640_000, segments: 640 };

    for (const backend of BACKENDS) {
      const [sender, ready] = await startPeer(l, 'send', { family }, backend);
      // GSO must be there: without it this test cannot show a super-packet per destination.
      expect({ backend, gso: ready.gso }).toEqual({ backend, gso: true });
      const command = { cmd: 'fan-out', ports, address, count: 10, size: 1000 };

      const rxBefore = await vbRxPackets(l);
      const gsoPass = sent(await sender.ask(command, 'sent'), sender);
      const gsoTake = await take(receiver, 640);
      const rxMid = await vbRxPackets(l);
      const plainPass = sent(await sender.ask({ ...command, options: { gso: false } }, 'sent'), sender);
      const plainTake = await take(receiver, 640);
      const rxAfter = await vbRxPackets(l);
      await sender.close();

      const gsoStats = delta(gsoPass);
      const plainStats = delta(plainPass);
      notes.push(`IPv${family} fan-out, ${backend}: GSO ${gsoStats.messages} messages in ${gsoStats.syscalls} calls, ` +
        `${Number(gsoPass.ms).toFixed(1)} ms, vb rx ${rxMid - rxBefore} packets; plain ${plainStats.messages} messages in ` +
        `${plainStats.syscalls} calls, ${Number(plainPass.ms).toFixed(1)} ms, vb rx ${rxAfter - rxMid} packets; ` +
        `receiver drops ${String(plainTake.drops)}`);

      // What arrived first (the most telling failure), then the counts.
      expectPorts(`IPv${family} ${backend} GSO pass`, expected, gsoTake);
      expectPorts(`IPv${family} ${backend} plain pass`, expected, plainTake);
      expect(gsoPass.result).toEqual({ ...total, failures: [] });
      expect(plainPass.result).toEqual({ ...total, failures: [] });
      expect({ gsoBefore: gsoPass.gsoBefore, gsoAfter: plainPass.gsoAfter }).toEqual({ gsoBefore: true, gsoAfter: true });
      // sendmmsg: one call for all 64 (640) messages; the portable loop: one call per message.
      expect(gsoStats).toEqual({ ...total, messages: 64, syscalls: backend === 'sendmmsg' ? 1 : 64 });
      expect(plainStats).toEqual({ ...total, messages: 640, syscalls: backend === 'sendmmsg' ? 1 : 640 });
    }
  }, 25000);

  test.each([4, 6] as const)('IPv%i: sendTo of 2049 messages with ENETUNREACH and EACCES destinations at 0, 17, 700-701, 1023, 1024, 1025, 1536, 2048: exact failures, everything else once and in order; both back-ends, GSO on and off, identical', async (family) => {
    const l = await newLink();
    const address = l.address('b', family);
    // Addresses inside 198.18.0.0/15 and fd00::/8 that the kernel in namespace a refuses.
    const unroutable = family === 4 ? '198.19.0.1' : 'fd00:ffff::1';
    let refused: string;
    if (family === 4) {
      refused = address.replace(/\.\d+$/, '.255'); // va's /24 broadcast: EACCES without SO_BROADCAST
      expect(await mustExec(l, 'a', ['ip', '-4', 'route', 'show', 'table', 'local', 'type', 'broadcast']))
        .toContain(`broadcast ${refused} dev ${l.interfaces.a}`);
    } else {
      // IPv6 has no broadcast; a prohibit route gives the same EACCES.
      await mustExec(l, 'a', ['ip', '-6', 'route', 'add', 'prohibit', 'fd00:fffe::/64']);
      refused = 'fd00:fffe::1';
    }
    const noRoute = await l.exec('a', ['ip', 'route', 'get', unroutable]);
    expect(noRoute.code).not.toBe(0);
    expect(noRoute.stderr).toMatch(/unreachable/i);

    const [receiver, receiverReady] = await startPeer(l, 'receive', { family, address, ports: 4, recvBufferSize: 4 << 20 });
    const ports = receiverReady.ports as number[];
    const failing: Array<[number, FailureKind]> = [
      [0, 'unroutable'], [17, 'refused'], [700, 'refused'], [701, 'refused'], [1023, 'refused'],
      [1024, 'unroutable'], [1025, 'refused'], [1536, 'unroutable'], [2048, 'refused'],
    ];
    const plan: Plan = { count: 2049, ports, address, failing, addresses: { unroutable, refused } };
    const messages = fixture.addressedPlan(plan);
    const accepted = messages.filter((m) => m.kind === null);
    const code = (kind: FailureKind): 'ENETUNREACH' | 'EACCES' => (kind === 'unroutable' ? 'ENETUNREACH' : 'EACCES');
    const expectedResult = {
      datagrams: accepted.length,
      bytes: accepted.reduce((sum, m) => sum + m.size, 0),
      segments: accepted.length,
      failures: messages.filter((m) => m.kind !== null).map((m) => ({
        index: m.seq, code: code(m.kind!), errno: code(m.kind!) === 'EACCES' ? EACCES : ENETUNREACH,
        status: STATUS[code(m.kind!)], address: m.address, port: m.port,
      })),
    };
    const expected = ports.map((port) => accepted.filter((m) => m.port === port).map((m) => datagram(m.seq, m.size)));
    expect(expected.map((list) => list.length).reduce((a, b) => a + b, 0)).toBe(2049 - failing.length);
    const plainMessages = accepted.length;
    const gsoMessageCount = gsoMessages(messages);
    // Refused system calls: one per refused message (GSO makes the pair 700-701 one message).
    const refusedCalls = { gso: failing.length - 1, plain: failing.length };

    const outcomes: Array<{ label: string; result: unknown }> = [];
    for (const backend of BACKENDS) {
      const [sender, ready] = await startPeer(l, 'send', { family }, backend);
      expect({ backend, gso: ready.gso }).toEqual({ backend, gso: true });
      for (const gso of [true, false]) {
        const label = `IPv${family} ${backend} GSO ${gso ? 'on' : 'off'}`;
        const pass = sent(await sender.ask({ cmd: 'send-to', plan, options: { gso } }, 'sent'), sender);
        const got = await take(receiver, accepted.length);
        const stats = delta(pass);
        notes.push(`${label}: ${stats.messages} messages in ${stats.syscalls} calls, ${Number(pass.ms).toFixed(1)} ms, ` +
          `receiver drops ${String(got.drops)}`);
        expectPorts(label, expected, got);
        expect({ label, result: pass.result }).toEqual({ label, result: expectedResult });
        outcomes.push({ label, result: pass.result });

        const messageCount = gso ? gsoMessageCount : plainMessages;
        expect({ label, stats: { ...stats, syscalls: 0 } }).toEqual({
          label, stats: { syscalls: 0, messages: messageCount, datagrams: accepted.length, bytes: expectedResult.bytes, segments: accepted.length },
        });
        const failedCalls = gso ? refusedCalls.gso : refusedCalls.plain;
        if (backend === 'sendmsg') {
          expect({ label, syscalls: stats.syscalls }).toEqual({ label, syscalls: messageCount + failedCalls });
        } else {
          // One call per up to 1024 messages, plus at most two per refused message: the call it
          // cuts short, and the one that starts at it and reports its error.
          expect(stats.syscalls).toBeGreaterThanOrEqual(Math.ceil((messageCount + failedCalls) / 1024));
          expect(stats.syscalls).toBeLessThanOrEqual(Math.ceil(messageCount / 1024) + 2 * failedCalls);
        }
      }
      await sender.close();
    }
    // Identical across back-ends and GSO (each already equals expectedResult: this says it plainly).
    for (const outcome of outcomes) expect(outcome.result).toEqual(outcomes[0]!.result);
    expect(outcomes).toHaveLength(4);
  }, 25000);
});
