/**
 * ICMP errors over real links (Linux IP_RECVERR / IPV6_RECVERR and the error queue), IPv4 and
 * IPv6, on both Linux back-ends (sendmmsg, and the portable sendmsg loop: the sender is given
 * its back-end, whatever this process runs with):
 *
 * - Two new namespaces (netns.ts createSlowLink, its tbf removed): a sendTo mixing datagrams to
 *   ports with no listener and to a live node:dgram receiver. Every datagram is accepted, none
 *   fails, every live one arrives once, in order, byte for byte; each dead one gives exactly one
 *   'icmp' port-unreachable event for its destination (its seq read back from the quoted
 *   payload), and stats().icmp counts exactly those.
 * - The same link, an unconnected socket alternating dead and live sends with receives in
 *   between and nothing reading the error queue first: no send or receive ever fails.
 * - The same link, a connected socket whose peer port is closed: the batch result the docs
 *   define (stop at the datagram the ICMP's error surfaced at; with continueOnError every other
 *   datagram fails), identical on both back-ends, exact system calls.
 * - A router namespace between sender and receiver (netns-router.ts): a far side with MTU 1280
 *   gives "fragmentation needed" (IPv4, DF via setMtuDiscovery('do')) / "packet too big" (IPv6,
 *   setDontFragment) with the MTU, and getMtu() reports it afterwards; `unreachable`,
 *   `prohibit` and missing routes at the router give host/net unreachable and prohibited.
 *
 * The sender is fixtures/icmp-sender.js (wsk-dgram) in the sender's namespace; the receiver is
 * fixtures/fanout-sender.js `receive` (node:dgram, not the library under test).
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { createSlowLink, FIXTURES, JsonChild, type JsonLine, type SlowLink } from './netns';
import { createRoutedPath, type Node, type RoutedPath } from './netns-router';
import { useNamespaceSuite } from './namespace-suite';

/* eslint-disable @typescript-eslint/no-require-imports */
const { datagram } = require(path.join(FIXTURES, 'common.js')) as { datagram(seq: number, size: number): Buffer };
/* eslint-enable @typescript-eslint/no-require-imports */

const SENDER = path.join(FIXTURES, 'icmp-sender.js');
const RECEIVER = path.join(FIXTURES, 'fanout-sender.js');
const BACKENDS = ['sendmmsg', 'sendmsg'] as const;
type Backend = (typeof BACKENDS)[number];
const STEP_MS = 8000;
const { ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, EMSGSIZE, EACCES } = os.constants.errno as Record<string, number>;
/** Ports nothing listens on in a fresh namespace. */
const DEAD_PORTS = [9, 7777];

type Line = JsonLine & Record<string, any>;

interface IcmpCounters {
  received: number; portUnreachable: number; hostUnreachable: number; netUnreachable: number;
  fragmentationNeeded: number; prohibited: number; other: number; local: number; dropped: number;
}
interface Stats { syscalls: number; messages: number; datagrams: number; bytes: number; segments: number; icmp: IcmpCounters }

const ZERO_ICMP: IcmpCounters = {
  received: 0, portUnreachable: 0, hostUnreachable: 0, netUnreachable: 0, fragmentationNeeded: 0, prohibited: 0,
  other: 0, local: 0, dropped: 0,
};

/** after - before, the icmp counters included. */
function delta(line: Line): Stats {
  const before = line.before as Stats;
  const after = line.after as Stats;
  const icmp = Object.fromEntries(Object.keys(ZERO_ICMP).map((k) => [k, after.icmp[k as keyof IcmpCounters] -
    before.icmp[k as keyof IcmpCounters]])) as unknown as IcmpCounters;
  return {
    syscalls: after.syscalls - before.syscalls, messages: after.messages - before.messages,
    datagrams: after.datagrams - before.datagrams, bytes: after.bytes - before.bytes,
    segments: after.segments - before.segments, icmp,
  };
}

/** The icmp counters the events add up to (what stats().icmp must say). */
function tally(events: Line[]): IcmpCounters {
  const counters = { ...ZERO_ICMP };
  const key: Record<string, keyof IcmpCounters> = {
    'port-unreachable': 'portUnreachable', 'host-unreachable': 'hostUnreachable', 'net-unreachable': 'netUnreachable',
    'fragmentation-needed': 'fragmentationNeeded', 'packet-too-big': 'fragmentationNeeded', prohibited: 'prohibited',
    other: 'other',
  };
  for (const e of events) {
    counters.received++;
    counters[key[e.kind as string]!]++;
  }
  return counters;
}

class Peer {
  #id = 0;
  constructor(readonly child: JsonChild) {}

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
    await this.child.waitForExit(3000);
  }
}

interface Spawner {
  spawnNode(where: string, script: string, args: readonly string[]): import('node:child_process').ChildProcess;
}

let link: SlowLink | null = null;
let routed: RoutedPath | null = null;
let peers: Peer[] = [];
const { notes } = useNamespaceSuite('icmp');

async function start(spawner: Spawner, where: string, script: string, args: string[], label: string): Promise<[Peer, Line]> {
  const child = new JsonChild(spawner.spawnNode(where, script, args), label);
  const peer = new Peer(child);
  peers.push(peer);
  const ready = await child.nextLine((l) => l.event === 'ready' || l.event === 'error', STEP_MS, `${label} to be ready`) as Line;
  if (ready.event !== 'ready') throw new Error(`${String(ready.message)}\n${child.describe()}`);
  return [peer, ready];
}

async function startSender(spawner: Spawner, where: string, params: Record<string, unknown>, backend: Backend): Promise<Peer> {
  const [peer, ready] = await start(spawner, where, SENDER, [JSON.stringify({ lifetimeMs: 60000, backend, ...params })],
    `icmp-sender.js (${backend})`);
  // The premise of every comparison between back-ends: the child runs the one it was given.
  expect({ backend: ready.backend, env: ready.env }).toEqual({ backend, env: backend });
  return peer;
}

async function startReceiver(spawner: Spawner, where: string, params: Record<string, unknown>): Promise<[Peer, number[]]> {
  const [peer, ready] = await start(spawner, where, RECEIVER, ['receive', JSON.stringify({ lifetimeMs: 60000, ...params })],
    'fanout-sender.js receive');
  return [peer, ready.ports as number[]];
}

/** What arrived at the receiver since the last take, per port, once `count` arrived and 300 ms passed. */
async function take(receiver: Peer, count: number): Promise<Buffer[][]> {
  const line = await receiver.ask({ cmd: 'take', count, timeoutMs: 5000, quietMs: 300 }, 'take', 9000);
  return (line.perPort as string[][]).map((list) => list.map((d) => Buffer.from(d, 'base64')));
}

const ICMP_SYSCTLS = ['sysctl', '-q', '-w', 'net.ipv4.icmp_ratelimit=0', 'net.ipv4.icmp_ratemask=0',
  'net.ipv4.icmp_msgs_per_sec=100000', 'net.ipv4.icmp_msgs_burst=100000', 'net.ipv6.icmp.ratelimit=0'];

async function mustExec(l: { exec(ns: any, argv: readonly string[]): Promise<{ code: number | null; stderr: string; stdout: string }> },
  ns: string, argv: string[]): Promise<string> {
  const result = await l.exec(ns, argv);
  if (result.code !== 0) throw new Error(`\`${argv.join(' ')}\` in ${ns}: ${result.stderr.trim()}`);
  return result.stdout;
}

/**
 * Two namespaces, no qdisc and RPS off on the receiving side (as fanout-veth.test.ts: every
 * packet, the ICMP back included, is handled on the sender's CPU inside the send call), and no
 * ICMP rate limits in either namespace, so that every datagram to a dead port gets its ICMP.
 */
async function newLink(): Promise<SlowLink> {
  link = await createSlowLink({ rate: '1gbit' });
  await mustExec(link, 'a', ['tc', 'qdisc', 'del', 'dev', link.interfaces.a, 'root']);
  await mustExec(link, 'b', ['sh', '-c', `echo 0 > /sys/class/net/${link.interfaces.b}/queues/rx-0/rps_cpus`]);
  for (const side of ['a', 'b']) await mustExec(link, side, ICMP_SYSCTLS);
  return link;
}

const linkSpawner = (l: SlowLink): Spawner => ({ spawnNode: (where, script, args) => l.spawnNode(where, script, args) });
const routedSpawner = (r: RoutedPath): Spawner => ({ spawnNode: (where, script, args) => r.spawnNode(where as Node, script, args) });

afterEach(async () => {
  const closing = peers;
  const l = link;
  const r = routed;
  peers = [];
  link = null;
  routed = null;
  try {
    await Promise.all(closing.map((p) => p.close()));
  } finally {
    await l?.destroy();
    await r?.destroy();
  }
});

function expectEvent(e: Line, expected: Record<string, unknown>): void {
  expect(e).toEqual(expect.objectContaining(expected));
}

describe('ICMP errors between two new namespaces', () => {
  test('the tally and delta helpers count what they are given', () => {
    expect(tally([{ kind: 'port-unreachable' }, { kind: 'packet-too-big' }, { kind: 'prohibited' }] as Line[]))
      .toEqual({ ...ZERO_ICMP, received: 3, portUnreachable: 1, fragmentationNeeded: 1, prohibited: 1 });
    const before = { syscalls: 1, messages: 1, datagrams: 1, bytes: 1, segments: 1, icmp: ZERO_ICMP };
    const after = { ...before, syscalls: 3, icmp: { ...ZERO_ICMP, received: 2 } };
    expect(delta({ before, after } as Line)).toEqual({ ...before, syscalls: 2, messages: 0, datagrams: 0, bytes: 0,
      segments: 0, icmp: { ...ZERO_ICMP, received: 2 } });
  });

  test.each([4, 6] as const)('IPv%i: a sendTo mixing dead ports and a live receiver: nothing fails, every live datagram arrives, one port-unreachable event per dead datagram for its destination; stats match; both back-ends', async (family) => {
    const l = await newLink();
    const address = l.address('b', family);
    const [receiver, ports] = await startReceiver(linkSpawner(l), 'b', { family, address, ports: 2 });
    // 96 messages: every third to a dead port (alternating two), the rest alternating two live ports.
    const messages = Array.from({ length: 96 }, (_, seq) => {
      const dead = seq % 3 === 0;
      const port = dead ? DEAD_PORTS[(seq / 3) % 2]! : ports[seq % 2]!;
      return { seq, size: 100 + (seq % 7) * 50, port, address, dead };
    });
    const live = messages.filter((m) => !m.dead);
    const dead = messages.filter((m) => m.dead);
    const expected = ports.map((port) => live.filter((m) => m.port === port).map((m) => datagram(m.seq, m.size)));
    const totalBytes = messages.reduce((sum, m) => sum + m.size, 0);

    for (const backend of BACKENDS) {
      const sender = await startSender(linkSpawner(l), 'a', { family, bind: l.address('a', family) }, backend);
      const sent = await sender.ask({ cmd: 'send-to', messages, expectEvents: dead.length }, 'done');
      const got = await take(receiver, live.length);
      await sender.close();
      const stats = delta(sent);
      const events = sent.events as Line[];
      notes.push(`IPv${family} ${backend}: 96 messages (${dead.length} dead) in ${stats.syscalls} calls; ${events.length} events`);

      expect({ backend, error: sent.error, result: sent.result })
        .toEqual({ backend, error: null, result: { datagrams: 96, bytes: totalBytes, segments: 96, failures: [] } });
      // Every live datagram once, in order, byte for byte.
      expect(got.map((list) => list.map((d) => d.toString('hex')))).toEqual(expected.map((list) => list.map((d) => d.toString('hex'))));
      // One event per dead datagram, for its destination, in the order they were sent.
      expect(events.map((e) => e.seq)).toEqual(dead.map((m) => m.seq));
      events.forEach((e, i) => expectEvent(e, {
        kind: 'port-unreachable', address, port: dead[i]!.port, family: family === 6 ? 'IPv6' : 'IPv4',
        origin: family === 6 ? 'icmp6' : 'icmp', icmpType: family === 6 ? 1 : 3, icmpCode: family === 6 ? 4 : 3,
        errno: ECONNREFUSED, code: 'ECONNREFUSED', status: 0xc0000236, offender: address, mtu: null,
      }));
      expect(stats.icmp).toEqual(tally(events));
      expect(stats.icmp.portUnreachable).toBe(dead.length);
      expect({ ...stats, syscalls: 0 }).toEqual({ syscalls: 0, messages: 96, datagrams: 96, bytes: totalBytes, segments: 96, icmp: stats.icmp });
      // Each ICMP's leftover error costs at most the one call it failed (and its retry).
      if (backend === 'sendmsg') {
        expect(stats.syscalls).toBeGreaterThanOrEqual(96);
        expect(stats.syscalls).toBeLessThanOrEqual(96 + dead.length);
      } else {
        expect(stats.syscalls).toBeLessThanOrEqual(1 + 2 * dead.length);
      }
    }
  }, 40000);

  test.each([4, 6] as const)('IPv%i: an unconnected socket alternating dead and live peers, receiving in between: an ICMP never fails a later send or receive; both back-ends', async (family) => {
    const l = await newLink();
    const address = l.address('b', family);
    const [receiver, ports] = await startReceiver(linkSpawner(l), 'b', { family, address, ports: 1 });
    const rounds = 20;
    for (const backend of BACKENDS) {
      const sender = await startSender(linkSpawner(l), 'a', { family, bind: l.address('a', family) }, backend);
      const run = await sender.ask({
        cmd: 'alternate', rounds, deadPort: DEAD_PORTS[0], livePort: ports[0], address, expectEvents: 0,
      }, 'done', 20000);
      const got = await take(receiver, rounds);
      await sender.close();
      const stats = delta(run);
      notes.push(`IPv${family} ${backend}: alternate ${rounds} rounds in ${stats.syscalls} calls, icmp ${JSON.stringify(stats.icmp)}`);

      expect({ backend, receiveError: run.receiveError }).toEqual({ backend, receiveError: null });
      expect(run.sends).toEqual(Array.from({ length: 3 * rounds }, () => ({
        result: { datagrams: 1, bytes: 64, segments: 1, failures: [] }, error: null,
      })));
      expect(run.received).toEqual(Array.from({ length: rounds }, (_, i) => i));
      expect(got[0]!.map((d) => d.readUInt32BE(0))).toEqual(Array.from({ length: rounds }, (_, i) => 3 * i + 2));
      // No listener: the errors are counted (by whoever read them: a send, a receive, a poll), never lost.
      expect(stats.icmp).toEqual({ ...ZERO_ICMP, received: 2 * rounds, portUnreachable: 2 * rounds });
      expect({ datagrams: stats.datagrams, messages: stats.messages }).toEqual({ datagrams: 3 * rounds, messages: 3 * rounds });
    }
  }, 60000);

  test.each([4, 6] as const)('IPv%i: a connected socket whose peer port is closed: the batch stops at the datagram the ICMP surfaced at, with ECONNREFUSED; with continueOnError every second datagram fails; identical on both back-ends', async (family) => {
    const l = await newLink();
    const address = l.address('b', family);
    const outcomes: unknown[] = [];
    for (const backend of BACKENDS) {
      const sender = await startSender(linkSpawner(l), 'a', { family, bind: l.address('a', family) }, backend);
      // gso off: with it the ten equal datagrams would be one super-packet, one message, and the
      // error would surface at the next call's first datagram.
      const stop = await sender.ask({
        cmd: 'connected-batch', port: DEAD_PORTS[0], address, count: 10, size: 200, options: { gso: false }, expectEvents: 1,
      }, 'done');
      const onward = await sender.ask({
        cmd: 'connected-batch', port: DEAD_PORTS[0], address, count: 10, size: 200,
        options: { gso: false, continueOnError: true }, expectEvents: 5,
      }, 'done');
      await sender.close();
      const stopStats = delta(stop);
      const onwardStats = delta(onward);
      notes.push(`IPv${family} ${backend}: connected, stop: ${stopStats.syscalls} calls; continueOnError: ${onwardStats.syscalls} calls`);

      // Datagram 0 leaves; its ICMP comes back before datagram 1 is sent (inside the call, on this
      // link), so datagram 1 is the one the error surfaces at: not sent, the batch ends there.
      expect({ backend, result: stop.result, error: stop.error }).toEqual({
        backend, result: null,
        error: expect.objectContaining({ name: 'WskError', code: 'ECONNREFUSED', status: 0xc0000236, datagramsSent: 1, bytesSent: 200 }),
      });
      expect({ backend, events: (stop.events as Line[]).map((e) => [e.kind, e.seq, e.port]) })
        .toEqual({ backend, events: [['port-unreachable', 0, DEAD_PORTS[0]]] });
      expect(stopStats).toEqual({
        syscalls: backend === 'sendmmsg' ? 1 : 2, messages: 1, datagrams: 1, bytes: 200, segments: 1,
        icmp: { ...ZERO_ICMP, received: 1, portUnreachable: 1 },
      });
      // continueOnError: each ICMP fails the datagram after the one that caused it, which clears
      // it, so the next goes out and is refused in turn.
      const failures = [1, 3, 5, 7, 9].map((index) => ({ index, code: 'ECONNREFUSED', errno: ECONNREFUSED, status: 0xc0000236 }));
      expect({ backend, result: onward.result, error: onward.error })
        .toEqual({ backend, result: { datagrams: 5, bytes: 1000, segments: 5, failures }, error: null });
      expect((onward.events as Line[]).map((e) => e.seq)).toEqual([0, 2, 4, 6, 8]);
      expect(onwardStats).toEqual({
        syscalls: backend === 'sendmmsg' ? 5 : 10, messages: 5, datagrams: 5, bytes: 1000, segments: 5,
        icmp: { ...ZERO_ICMP, received: 5, portUnreachable: 5 },
      });
      // The same outcome, but for the system call named in the message.
      const { message: _message, ...stopError } = stop.error as Record<string, unknown>;
      outcomes.push({ stop: [stop.result, stopError], onward: onward.result });
    }
    expect(outcomes[1]).toEqual(outcomes[0]);
  }, 40000);
});

describe('ICMP errors from a router namespace', () => {
  test.each([4, 6] as const)('IPv%i: a far side with MTU 1280 gives fragmentation needed / packet too big with the MTU, from the router; getMtu() reports it afterwards', async (family) => {
    routed = await createRoutedPath({ farMtu: 1280 });
    const r = routed;
    const ip = family === 6 ? r.ipv6 : r.ipv4;
    const [receiver, ports] = await startReceiver(routedSpawner(r), 'd', { family, address: family === 6 ? '::' : '0.0.0.0', ports: 1 });
    for (const [run, backend] of BACKENDS.entries()) {
      // Each run its own destination: the kernel keeps the path MTU it learned per destination.
      const address = run === 0 ? ip.d : ip.d2;
      const sender = await startSender(routedSpawner(r), 's', { family, bind: ip.s }, backend);
      const result = await sender.ask({
        cmd: 'mtu', port: ports[0], address, size: 1400, smallSize: 1200,
        ...(family === 4 ? { mtuDiscovery: 'do' } : { dontFragment: true }),
      }, 'done');
      const got = await take(receiver, 1);
      await sender.close();
      const stats = delta(result);
      notes.push(`IPv${family} ${backend}: MTU ${String(result.mtuBefore)} -> ${String(result.mtuAfter)}, events ${JSON.stringify(result.events)}`);

      expect(result.mode).toEqual(family === 4 ? { mtuDiscovery: 'do', dontFragment: true } : { mtuDiscovery: 'want', dontFragment: true });
      expect({ before: result.mtuBefore, after: result.mtuAfter }).toEqual({ before: 1500, after: 1280 });
      // The event came while nothing was sent or received (the POLLERR poll of an 'icmp' listener).
      expect(result.eventsBeforeNextSend).toBe(1);
      // The first 1400 B datagram leaves (the path MTU is not known yet) and dies at the router.
      expect(result.first).toEqual({ result: { datagrams: 1, bytes: 1400, segments: 1, failures: [] }, error: null });
      expect(result.events).toEqual([expect.objectContaining({
        kind: family === 6 ? 'packet-too-big' : 'fragmentation-needed', address, port: ports[0], mtu: 1280, seq: 1,
        icmpType: family === 6 ? 2 : 3, icmpCode: family === 6 ? 0 : 4, errno: EMSGSIZE, code: 'EMSGSIZE',
        offender: ip.rs,
      })]);
      // Now the kernel knows: a 1400 B datagram with DF is refused at once (EMSGSIZE, a local
      // error in the counters), a 1200 B one arrives.
      expect(result.again).toEqual({ result: null, error: expect.objectContaining({ code: 'EMSGSIZE', datagramsSent: 0 }) });
      expect(result.small).toEqual({ result: { datagrams: 1, bytes: 1200, segments: 1, failures: [] }, error: null });
      expect(got[0]!.map((d) => d.toString('hex'))).toEqual([datagram(3, 1200).toString('hex')]);
      expect(stats.icmp).toEqual({ ...tally(result.events as Line[]), local: 1 });
    }
  }, 40000);

  test.each([4, 6] as const)('IPv%i: unreachable, prohibit and missing routes at the router give host/net unreachable and prohibited, while the live receiver gets everything sent to it; both back-ends', async (family) => {
    routed = await createRoutedPath();
    const r = routed;
    const ip = family === 6 ? r.ipv6 : r.ipv4;
    const address = ip.d;
    const nowhere = r.nowhere[family];
    const [receiver, ports] = await startReceiver(routedSpawner(r), 'd', { family, address, ports: 1 });
    const targets = [
      { address: nowhere.unreachable, kind: family === 6 ? 'net-unreachable' : 'host-unreachable',
        icmp: family === 6 ? [1, 0] : [3, 1], errno: family === 6 ? ENETUNREACH : EHOSTUNREACH },
      { address: nowhere.prohibited, kind: 'prohibited', icmp: family === 6 ? [1, 1] : [3, 13], errno: family === 6 ? EACCES : EHOSTUNREACH },
      { address: nowhere.unrouted, kind: 'net-unreachable', icmp: family === 6 ? [1, 0] : [3, 0], errno: ENETUNREACH },
    ];
    // 12 messages: live, live, unreachable, live, live, prohibited, live, live, unrouted, live,
    // live, live. (The router sends at most 5 IPv4 route errors at once to one source: each run
    // sends from its own address.)
    const messages = Array.from({ length: 12 }, (_, seq) => {
      const target = seq % 3 === 2 && seq < 9 ? targets[(seq - 2) / 3]! : null;
      return { seq, size: 300, port: ports[0]!, address: target?.address ?? address, target };
    });
    const dead = messages.filter((m) => m.target !== null);
    for (const [run, backend] of BACKENDS.entries()) {
      const sender = await startSender(routedSpawner(r), 's', { family, bind: run === 0 ? ip.s : ip.s2 }, backend);
      const sent = await sender.ask({ cmd: 'send-to', messages: messages.map(({ target: _t, ...m }) => m), expectEvents: dead.length }, 'done');
      const got = await take(receiver, 9);
      await sender.close();
      const stats = delta(sent);
      const events = sent.events as Line[];
      notes.push(`IPv${family} ${backend}: routes to nowhere: ${stats.syscalls} calls, icmp ${JSON.stringify(stats.icmp)}`);

      expect({ backend, error: sent.error, result: sent.result })
        .toEqual({ backend, error: null, result: { datagrams: 12, bytes: 3600, segments: 12, failures: [] } });
      expect(got[0]!.map((d) => d.readUInt32BE(0))).toEqual(messages.filter((m) => m.target === null).map((m) => m.seq));
      expect(events.map((e) => e.seq)).toEqual(dead.map((m) => m.seq));
      events.forEach((e, i) => {
        const target = dead[i]!.target!;
        expectEvent(e, {
          kind: target.kind, address: target.address, port: ports[0], icmpType: target.icmp[0], icmpCode: target.icmp[1],
          errno: target.errno, offender: ip.rs, mtu: null,
        });
      });
      expect(stats.icmp).toEqual(tally(events));
      expect(stats.icmp.received).toBe(3);
    }
  }, 40000);
});
