/**
 * Segmentation offload (UDP_SEGMENT) over a real link: a veth pair of MTU 1500 between two fresh
 * network namespaces, where the kernel really cuts super-packets into wire datagrams (the
 * loopback variant, where nothing needs cutting, is gso.test.ts).
 *
 * - Equivalence: a mixed batch (runs with shorter tails, empty datagrams, sizes 1 .. MTU payload,
 *   a run of more than 128 segments, runs whose total passes 65507 B, datagrams given as pieces,
 *   IP-fragmented singles) sent with GSO on and then off reaches the receiver in the other
 *   namespace as the same datagrams, byte for byte, in the same order, both times; IPv4 and
 *   IPv6; once through a tbf qdisc on the sender's veth (which segments a super-packet larger than
 *   its burst on the way out) and once with no qdisc (the super-packet crosses the veth whole and
 *   the receiving side's UDP stack segments it).
 * - Refusal: equal 2000 B datagrams (a segment larger than the MTU payload) with GSO on: the kernel
 *   refuses the super-packet (EMSGSIZE), that segment size goes plain from then on, and every
 *   datagram still arrives (IP-fragmented), once, in order; the result's counts are exact.
 *
 * The sender (wsk-dgram) and the receiver (node:dgram, not the library under test) are child
 * processes in namespaces a and b: fixtures/gso-sender.js `send` / `receive`. The receiver hands
 * back every datagram's bytes; the test compares them with the batch the fixture's buildBatch
 * makes (the sender sends exactly that batch). Needs root and iproute2: without them
 * createSlowLink throws and the tests fail (they are never skipped).
 */
import * as path from 'node:path';
import { binding } from '../../lib/binding';
import { createSlowLink, FIXTURES, JsonChild, type JsonLine, type SlowLink } from './netns';
import { useNamespaceSuite } from './namespace-suite';

const SCRIPT = path.join(FIXTURES, 'gso-sender.js');

type Datagram = Uint8Array | Uint8Array[];
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fixture = require(SCRIPT) as {
  payload(index: number, length: number): Buffer;
  buildBatch(kind: 'mixed' | 'equal', family: 4 | 6, options?: { size?: number; count?: number; mtu?: number }): Datagram[];
  HEADERS: Record<4 | 6, number>;
  MAX_UDP_PAYLOAD: Record<4 | 6, number>;
};

const MTU = 1500;
const STEP_MS = 5000; // bound of every exchange with a child
const QUIET_MS = 300; // silence after the expected count, so that extra datagrams show

type Line = JsonLine & Record<string, any>;

interface Stats {
  syscalls: number;
  messages: number;
  datagrams: number;
  bytes: number;
}

// -----------------------------------------------------------------------------------------------
// comparing what arrived with what was sent

function flat(datagram: Datagram): Buffer {
  return Buffer.concat(datagram instanceof Uint8Array ? [datagram] : datagram);
}

function preview(bytes: Buffer): string {
  return `${bytes.length} B ${bytes.subarray(0, 8).toString('hex')}${bytes.length > 8 ? '..' : ''}`;
}

/**
 * Null when `received` is `expected`, datagram for datagram, byte for byte, in order; otherwise
 * what is wrong at the first difference (missing, extra, duplicated, reordered, altered), and
 * how many positions differ.
 */
function diffDatagrams(expected: readonly Buffer[], received: readonly Buffer[]): string | null {
  let first = -1;
  let differing = 0;
  for (let i = 0; i < Math.max(expected.length, received.length); i++) {
    const want = expected[i];
    const got = received[i];
    if (want !== undefined && got !== undefined && want.equals(got)) continue;
    differing++;
    if (first < 0) first = i;
  }
  if (first < 0) return null;
  const want = expected[first];
  const got = received[first];
  let what: string;
  if (got === undefined) {
    what = `missing: only ${received.length} of ${expected.length} datagrams arrived`;
  } else if (want === undefined) {
    const copyOf = expected.findIndex((e) => e.equals(got));
    what = `extra datagram (${preview(got)})${copyOf >= 0 ? `, a copy of #${copyOf}` : ''}`;
  } else {
    const match = expected.findIndex((e) => e.equals(got));
    if (match >= 0 && match < first) {
      what = `#${first} is a duplicate of #${match} (or came late)`;
    } else if (match > first) {
      what = `#${first} is #${match}: ${match - first} datagram(s) missing or reordered before it`;
    } else {
      let offset = 0;
      while (offset < Math.min(want.length, got.length) && want[offset] === got[offset]) offset++;
      what = `#${first} altered: ${got.length} B received, ${want.length} B sent, first difference at byte ${offset}`;
    }
  }
  return `${what} (${received.length} received, ${expected.length} sent, ${differing} position(s) differ; ` +
    `expected ${want === undefined ? '-' : preview(want)}, received ${got === undefined ? '-' : preview(got)})`;
}

/** Messages the coalescing rules of issue 5 make of `sizes` with a segment limit: for the notes. */
function greedyMessages(sizes: readonly number[], limit: number, maxPayload: number): number {
  let messages = 0;
  let i = 0;
  while (i < sizes.length) {
    const size = sizes[i]!;
    let total = size;
    let count = 1;
    i++;
    if (size > 0) {
      while (i < sizes.length && count < limit) {
        const next = sizes[i]!;
        if (next === 0 || next > size || total + next > maxPayload) break;
        total += next;
        count++;
        i++;
        if (next < size) break;
      }
    }
    messages++;
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
      timeoutMs, `${answer} for ${JSON.stringify(command)}`) as Line;
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

async function startPeer(l: SlowLink, role: 'send' | 'receive', params: Record<string, unknown>): Promise<[Peer, Line]> {
  const side = role === 'send' ? 'a' : 'b';
  const child = new JsonChild(l.spawnNode(side, SCRIPT, [role, JSON.stringify({ lifetimeMs: 30000, ...params })]),
    `gso-sender.js ${role} in ${l.names[side]}`);
  const peer = new Peer(child);
  peers.push(peer);
  const ready = await child.nextLine((line) => line.event === 'ready' || line.event === 'error', STEP_MS,
    `${role} to be ready`) as Line;
  if (ready.event !== 'ready') throw new Error(`${String(ready.message)}\n${child.describe()}`);
  return [peer, ready];
}

/** Every datagram that arrived since the last take, once `count` arrived and QUIET_MS passed. */
async function take(receiver: Peer, count: number): Promise<{ datagrams: Buffer[]; line: Line }> {
  const line = await receiver.ask({ cmd: 'take', count, timeoutMs: STEP_MS, quietMs: QUIET_MS }, 'take', STEP_MS + 3000);
  return { datagrams: (line.datagrams as string[]).map((d) => Buffer.from(d, 'base64')), line };
}

function expectSameDatagrams(what: string, expected: readonly Buffer[], got: { datagrams: Buffer[]; line: Line }): void {
  const diff = diffDatagrams(expected, got.datagrams);
  if (diff !== null) {
    throw new Error(`${what}: ${diff} [receiver waited ${String(got.line.waitedMs)} ms, reached ${String(got.line.reached)}, ` +
      `socket drops ${String(got.line.drops)}]`);
  }
}

function delta(line: Line): Stats {
  const before = line.before as Stats;
  const after = line.after as Stats;
  return {
    syscalls: after.syscalls - before.syscalls,
    messages: after.messages - before.messages,
    datagrams: after.datagrams - before.datagrams,
    bytes: after.bytes - before.bytes,
  };
}

/** The sender's answer to a send that must have succeeded. */
function sent(line: Line, sender: Peer, hint = ''): Line {
  if (line.error !== null) {
    throw new Error(`the send failed: ${JSON.stringify(line.error)}${hint}\n${sender.child.describe()}`);
  }
  return line;
}

async function linkCounters(l: SlowLink, side: 'a' | 'b'): Promise<{ rx: number; tx: number; mtu: number; qdisc: string }> {
  const dev = l.interfaces[side];
  const result = await l.exec(side, ['ip', '-j', '-s', 'link', 'show', 'dev', dev]);
  if (result.code !== 0) throw new Error(`ip -s link show ${dev}: ${result.stderr}`);
  const [info] = JSON.parse(result.stdout) as Array<{ mtu: number; qdisc: string; stats64: { rx: { packets: number }; tx: { packets: number } } }>;
  return { rx: info!.stats64.rx.packets, tx: info!.stats64.tx.packets, mtu: info!.mtu, qdisc: info!.qdisc };
}

async function tbfPackets(l: SlowLink): Promise<number | null> {
  const result = await l.exec('a', ['tc', '-s', 'qdisc', 'show', 'dev', l.interfaces.a]);
  const match = /tbf[\s\S]*?Sent \d+ bytes (\d+) pkt/.exec(result.stdout);
  return match === null ? null : Number(match[1]);
}

// -----------------------------------------------------------------------------------------------
// lifecycle: every link, child and namespace goes, whatever happened

let link: SlowLink | null = null;
let peers: Peer[] = [];
const { notes } = useNamespaceSuite('gso-veth');

async function newLink(qdisc: 'tbf' | 'none'): Promise<SlowLink> {
  link = await createSlowLink({ rate: '1gbit' });
  if (qdisc === 'none') {
    const result = await link.exec('a', ['tc', 'qdisc', 'del', 'dev', link.interfaces.a, 'root']);
    if (result.code !== 0) throw new Error(`tc qdisc del: ${result.stderr}`);
  }
  const [a, b] = await Promise.all([linkCounters(link, 'a'), linkCounters(link, 'b')]);
  expect({ mtuA: a.mtu, mtuB: b.mtu, qdiscA: a.qdisc }).toEqual({ mtuA: MTU, mtuB: MTU, qdiscA: qdisc === 'tbf' ? 'tbf' : 'noqueue' });
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

describe('GSO over a veth pair (MTU 1500) between two new namespaces', () => {
  test('the comparison notices a missing, duplicated, reordered, altered, truncated or extra datagram', () => {
    for (const family of [4, 6] as const) {
      const batch = fixture.buildBatch('mixed', family).map(flat);
      // Every non-empty datagram of the batch is unique, so any mix-up shows in the bytes.
      const nonEmpty = batch.filter((d) => d.length > 0).map((d) => d.toString('base64'));
      expect(new Set(nonEmpty).size).toBe(nonEmpty.length);
      expect(diffDatagrams(batch, batch.map((d) => Buffer.from(d)))).toBeNull();
    }
    const expected = fixture.buildBatch('equal', 4, { size: 2000, count: 8 }).map(flat);
    const altered = expected.map((d) => Buffer.from(d));
    altered[5]![1999] = altered[5]![1999]! ^ 1;
    const mutations: Record<string, Buffer[]> = {
      missing: [...expected.slice(0, 3), ...expected.slice(4)],
      missingLast: expected.slice(0, -1),
      duplicated: [...expected.slice(0, 4), expected[3]!, ...expected.slice(4, 7)],
      duplicatedAtEnd: [...expected, expected[7]!],
      reordered: [expected[0]!, expected[2]!, expected[1]!, ...expected.slice(3)],
      altered,
      truncated: [...expected.slice(0, 2), expected[2]!.subarray(0, 1999), ...expected.slice(3)],
      extra: [...expected, fixture.payload(99, 2000)],
    };
    for (const [name, received] of Object.entries(mutations)) {
      expect({ name, diff: diffDatagrams(expected, received) }).toEqual({ name, diff: expect.any(String) });
    }
  });

  test.each([
    [4, 'tbf'],
    [6, 'tbf'],
    [4, 'none'],
    [6, 'none'],
  ] as const)('IPv%i, qdisc %s: a mixed batch arrives the same, byte for byte and in order, with GSO on and off', async (family, qdisc) => {
    const l = await newLink(qdisc);
    const [receiver] = await startPeer(l, 'receive', { family, address: l.address('b', family) });
    const port = (receiver.child.lines.find((x) => x.event === 'ready') as Line).port as number;
    const [sender, ready] = await startPeer(l, 'send', { family, address: l.address('b', family), port });
    expect(ready.gso).toBe(true); // on by default, and the kernel offers it

    const batch = fixture.buildBatch('mixed', family, { mtu: MTU });
    const expected = batch.map(flat);
    const total = expected.reduce((sum, d) => sum + d.length, 0);
    const sizes = expected.map((d) => d.length);
    const countersBefore = await linkCounters(l, 'b');
    const tbfBefore = await tbfPackets(l);

    // Pass 1: GSO, by default.
    const gsoPass = sent(await sender.ask({ cmd: 'send', batch: 'mixed', mtu: MTU }, 'sent'), sender);
    const gsoStats = delta(gsoPass);
    const gsoReceived = await take(receiver, batch.length);
    const countersMid = await linkCounters(l, 'b');
    const tbfMid = await tbfPackets(l);
    // Pass 2: plain datagrams (per-call option).
    const plainPass = sent(await sender.ask({ cmd: 'send', batch: 'mixed', mtu: MTU, options: { gso: false } }, 'sent'), sender);
    const plainStats = delta(plainPass);
    const plainReceived = await take(receiver, batch.length);
    const countersAfter = await linkCounters(l, 'b');
    const tbfAfter = await tbfPackets(l);

    notes.push(`IPv${family} qdisc ${qdisc}: ${batch.length} datagrams, ${total} B; GSO pass ${gsoStats.messages} messages ` +
      `in ${gsoStats.syscalls} sendmmsg (greedy model: ${greedyMessages(sizes, 128, fixture.MAX_UDP_PAYLOAD[family])} at limit 128, ` +
      `${greedyMessages(sizes, 64, fixture.MAX_UDP_PAYLOAD[family])} at 64), ${Number(gsoPass.ms).toFixed(1)} ms; plain pass ` +
      `${plainStats.messages} messages in ${plainStats.syscalls} sendmmsg, ${Number(plainPass.ms).toFixed(1)} ms; ` +
      `vb rx packets GSO ${countersMid.rx - countersBefore.rx} / plain ${countersAfter.rx - countersMid.rx}` +
      (tbfBefore === null ? '' : `; tbf dequeued GSO ${tbfMid! - tbfBefore} / plain ${tbfAfter! - tbfMid!} packets`) +
      `; receiver drops ${String(plainReceived.line.drops)}`);

    // Both passes: every datagram, byte for byte, in order, nothing more (checked first: the
    // most telling failure).
    expectSameDatagrams(`IPv${family} GSO pass`, expected, gsoReceived);
    expectSameDatagrams(`IPv${family} plain pass`, expected, plainReceived);

    // The results are exact; GSO really coalesced, stayed on, and the plain pass did not.
    expect(gsoPass.result).toEqual({ datagrams: batch.length, bytes: total, segments: batch.length, failures: [] });
    expect(plainPass.result).toEqual({ datagrams: batch.length, bytes: total, segments: batch.length, failures: [] });
    expect({ gsoBefore: gsoPass.gsoBefore, gsoAfter: gsoPass.gsoAfter, afterPlain: plainPass.gsoAfter })
      .toEqual({ gsoBefore: true, gsoAfter: true, afterPlain: true });
    expect({ datagrams: gsoStats.datagrams, bytes: gsoStats.bytes }).toEqual({ datagrams: batch.length, bytes: total });
    expect(gsoStats.messages).toBeLessThanOrEqual(batch.length / 4);
    expect(plainStats).toEqual({ syscalls: plainStats.syscalls, messages: batch.length, datagrams: batch.length, bytes: total });
  }, 20000);

  test.each([4, 6] as const)('IPv%i: 2000 B segments (over the MTU payload) are refused; that size goes plain from then on, all arrive, fragmented, once, in order; smaller runs still coalesce', async (family) => {
    const l = await newLink('tbf');
    const [receiver] = await startPeer(l, 'receive', { family, address: l.address('b', family) });
    const port = (receiver.child.lines.find((x) => x.event === 'ready') as Line).port as number;
    const [sender, ready] = await startPeer(l, 'send', { family, address: l.address('b', family), port });
    expect(ready.gso).toBe(true);
    const maxSegment = MTU - fixture.HEADERS[family];

    // What the kernel itself says (one super-packet with an explicit segment size, on a socket
    // of its own, to a port where nothing listens): too large a segment, and the segment limit.
    const refusedProbe = await sender.ask({ cmd: 'probe', segmentSize: 2000, length: 4000 }, 'probe');
    const fitsProbe = await sender.ask({ cmd: 'probe', segmentSize: maxSegment, length: 2 * maxSegment }, 'probe');
    const limitProbes: Record<number, boolean> = {};
    for (const segments of [64, 65, 128, 129]) {
      limitProbes[segments] = (await sender.ask({ cmd: 'probe', segmentSize: 100, length: 100 * segments }, 'probe')).ok as boolean;
    }
    const kernelLimit = [129, 128, 65, 64].find((n) => limitProbes[n]) ?? 0;
    notes.push(`IPv${family}: the kernel answers a ${2000} B segment with ${String(refusedProbe.code)} ` +
      `(${String(refusedProbe.errno)}), a ${maxSegment} B segment with ${fitsProbe.ok ? 'success' : String(fitsProbe.code)}; ` +
      `segments of 100 B accepted up to ${kernelLimit} per super-packet (${JSON.stringify(limitProbes)})`);
    // The premise: the kernel takes a segment that fits the MTU and refuses one that does not
    // (which errno it uses is the library's business: the send below must cope with it).
    expect({ fits: fitsProbe.ok, tooLarge: refusedProbe.ok }).toEqual({ fits: true, tooLarge: false });

    const count = 200;
    const size = 2000;
    const expected = fixture.buildBatch('equal', family, { size, count }).map(flat);
    const refused = sent(await sender.ask({ cmd: 'send', batch: 'equal', size, count }, 'sent'), sender,
      `; the kernel refuses a ${size} B segment with ${String(refusedProbe.code)}, and the library should have ` +
      'taken that as a refusal of segmentation and sent plain datagrams instead');
    const stats = delta(refused);
    const received = await take(receiver, count);
    notes.push(`IPv${family}: ${count} x ${size} B with GSO on: ${stats.syscalls} sendmmsg, ${stats.messages} messages, ` +
      `gso ${String(refused.gsoBefore)} -> ${String(refused.gsoAfter)}, ${Number(refused.ms).toFixed(1)} ms`);
    expectSameDatagrams(`IPv${family} after the refusal`, expected, received);
    expect(refused.result).toEqual({ datagrams: count, bytes: count * size, segments: count, failures: [] });
    // An oversize segment (EMSGSIZE) is a property of the path, not of GSO: the socket keeps
    // GSO for segments that fit and sends larger datagrams plain.
    expect({ gsoBefore: refused.gsoBefore, gsoAfter: refused.gsoAfter }).toEqual({ gsoBefore: true, gsoAfter: true });
    // Only plain messages were accepted, and the refused call was made (and counted) too.
    expect({ messages: stats.messages, datagrams: stats.datagrams, bytes: stats.bytes })
      .toEqual({ messages: count, datagrams: count, bytes: count * size });
    expect(stats.syscalls).toBeGreaterThanOrEqual(2);

    // Remembered: the same size again goes plain at once, with no refused call first.
    const repeat = sent(await sender.ask({ cmd: 'send', batch: 'equal', size, count: 10 }, 'sent'), sender);
    expect(repeat.result).toEqual({ datagrams: 10, bytes: 10 * size, segments: 10, failures: [] });
    // One call: no refused attempt first (the portable loop makes one call per message).
    const calls = binding().backend === 'sendmsg' ? 10 : 1;
    expect({ messages: delta(repeat).messages, syscalls: delta(repeat).syscalls }).toEqual({ messages: 10, syscalls: calls });
    expectSameDatagrams(`IPv${family} repeat`, fixture.buildBatch('equal', family, { size, count: 10 }).map(flat),
      await take(receiver, 10));

    // Segments that fit the MTU still coalesce.
    const again = sent(await sender.ask({ cmd: 'send', batch: 'equal', size: 1000, count: 64 }, 'sent'), sender);
    expect(again.result).toEqual({ datagrams: 64, bytes: 64000, segments: 64, failures: [] });
    expect({ messages: delta(again).messages, gsoAfter: again.gsoAfter }).toEqual({ messages: 1, gsoAfter: true });
    expectSameDatagrams(`IPv${family} later batch`, fixture.buildBatch('equal', family, { size: 1000, count: 64 }).map(flat),
      await take(receiver, 64));
  }, 20000);
});
