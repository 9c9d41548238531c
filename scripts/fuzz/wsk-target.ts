/**
 * Target "wsk": WskSendMessages (lib/wsk) over a real socket with arbitrary WSK_BUF_LIST / MDL
 * graphs (valid, cyclic, with lying getters whose answers change from one read to the next,
 * offsets and lengths out of range), CMSGHDR blocks (built with encodeControls, then corrupted,
 * or random bytes), SOCKADDR objects and raw bytes, and IRPs (fresh, completed, foreign, with
 * completion routines that throw, cancel or close). Sends go to a receiver on the fast lane, or
 * on the slow lane where they go pending, and then get cancelled, closed or have their buffers
 * detached or shrunk while pending.
 *
 * Property: the call returns an NTSTATUS and never throws; a usable IRP completes exactly once,
 * at once unless STATUS_PENDING was returned, with the returned status; its Information equals
 * the bytes the receiver got (so never more than was sent). For graphs without lying getters an
 * independent model says what the batch is: STATUS_SUCCESS means exactly its datagrams arrived,
 * a batch the model refuses must not succeed. Every getter counts its reads: a call that keeps
 * reading past the bound (a loop) fails the case instead of hanging the run.
 */
import fc from 'fast-check';
import { createSocket, type UdpSocket } from '../../lib/socket';
import {
  buildControlInfo, encodeControls, encodeSockaddr, IP_ECN, IP_PKTINFO, IP_TOS, IP_TTL, IPPROTO_IP, IPPROTO_IPV6,
  IPPROTO_UDP, IPV6_HOPLIMIT, IPV6_TCLASS, UDP_SEND_MSG_SIZE, IoAllocateIrp, IoCancelIrp, IoSetCompletionRoutine, IRP, ntStatusName,
  STATUS_PENDING, STATUS_SUCCESS, WskSendMessages,
} from '../../lib/wsk';
import type { SendControls } from '../../lib/transport';
import { bufSpecArb, makeBuffer, type BufKind, type BufSpec, type MadeBuffer } from './buffers';
import {
  compareDatagrams, concatBytes, errorName, errorText, fail, GetterError, ReadBudget, sameBytes, sameMultiset, segmented,
  sleep, withoutEach,
  takeUncaught, turn, within,
  rarely,
  isOwnError, ownError, withCleanup,
} from './common';
import type { TargetDefinition } from './harness';
import { FAST_V4, FAST_V6, fillerDatagrams, Receiver, SLOW_V4 } from './loopback';

const MAX_PAYLOAD = { 4: 65507, 6: 65527 } as const;
/** Payload bytes per case: small on the slow lane, so that it drains in a few milliseconds. */
const CAP = { fast: 48 * 1024, slow: 12 * 1024 } as const;
const READ_LIMIT = 20000;

// ---------------------------------------------------------------------------------------------
// Case descriptions

/** What a lying getter answers: a node/entry index, or one of these. */
type Answer = number | null | 'self' | 'garbage' | 'undefined';
interface Lie<P extends string> { prop: P; answers: Answer[]; cycle: boolean }
/** `next`: the following node ('following'; none after the last), none (null), or any node (a cycle when not later). */
interface NodeSpec { pool: number | 'empty' | 'garbage'; next: number | null | 'following'; lie: Lie<'Next' | 'Bytes'> | null }
interface Pos { f: number; d: number; raw: unknown }
interface EntrySpec {
  mdl: number | null | 'garbage';
  offset: Pos;
  length: Pos;
  /** 'next': the following entry (null after the last); a number: that entry (a cycle when earlier). */
  next: 'next' | 'null' | number;
  buffer: 'object' | 'garbage';
  lie: Lie<'Next' | 'Buffer' | 'Mdl' | 'Offset' | 'Length'> | null;
}
interface RemoteSpec {
  kind: 'object' | 'bytes' | 'null' | 'undefined' | 'garbage' | 'random';
  family: unknown;
  address: 'rx' | 'otherFamily' | 'garbage' | 'unroutable' | 'zone' | 'nonString';
  port: 'rx' | number | string;
  scope: unknown;
  cut: number;
  flip: { at: number; value: number } | null;
  random: Uint8Array;
  lie: { prop: 'port' | 'address' | 'family'; cycle: boolean } | null;
}
interface ControlSpec {
  kind: 'none' | 'valid' | 'objects' | 'lengthOff' | 'flipped' | 'random' | 'nullWithLength' | 'notBytes';
  /** For 'objects': control objects of any level, type and data length, framed by buildControlInfo. */
  objects: Array<{ level: number; type: number; data: Uint8Array }>;
  controls: { tos?: number; ttl?: number; ecn?: number; segmentSize?: number; source?: boolean; interfaceIndex?: number };
  delta: number;
  flip: { at: number; value: number };
  random: Uint8Array;
}
type IrpKind = 'fresh' | 'noRoutine' | 'completed' | 'cancelledFirst' | 'subclass' | 'foreign';
type RoutineKind = 'count' | 'throw' | 'cancelSelf' | 'close' | 'reenter';
type AfterKind = 'none' | 'cancelNow' | 'cancelLater' | 'closeNow' | 'closeLater' | 'detach' | 'shrink';

interface WskCase {
  family: 4 | 6;
  lane: 'fast' | 'slow';
  /** On the slow lane: a batch sent first (socket.sendBatch), so that the WSK call goes pending. */
  filler: boolean;
  socket: 'fresh' | 'closed' | 'connected' | 'notSocket';
  notSocket: number;
  gso: boolean;
  pool: BufSpec[];
  nodes: NodeSpec[];
  list: 'entries' | 'null' | 'garbage';
  entries: EntrySpec[];
  flags: number;
  remote: RemoteSpec;
  control: ControlSpec;
  irp: IrpKind;
  foreign: number;
  routine: RoutineKind;
  after: { kind: AfterKind; target: number; keep: number };
}

// ---------------------------------------------------------------------------------------------
// Arbitraries

const answerArb: fc.Arbitrary<Answer> = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 5 }) },
  { weight: 3, arbitrary: fc.constantFrom<Answer>(null, 'self') },
  { weight: 1, arbitrary: fc.constantFrom<Answer>('garbage', 'undefined') },
);
// Answers that differ between the first read (a check) and later ones (the walk) are the point.
const answersArb: fc.Arbitrary<Answer[]> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom<Answer[]>([null, 'self'], ['self', null], [null, 0], [0, null]) },
  { weight: 2, arbitrary: fc.array(answerArb, { minLength: 1, maxLength: 4 }) },
);
const lieArb = <P extends string>(props: readonly P[]): fc.Arbitrary<Lie<P>> => fc.record({
  prop: fc.constantFrom(...props),
  answers: answersArb,
  cycle: fc.boolean(),
});

const wskBufKinds: fc.Arbitrary<BufKind> = fc.oneof(
  { weight: 40, arbitrary: fc.constantFrom<BufKind>('u8', 'buffer', 'view') },
  { weight: 12, arbitrary: fc.constantFrom<BufKind>('rab', 'rabTrack', 'sab', 'pooled', 'subclass') },
  { weight: 1, arbitrary: fc.constantFrom<BufKind>('detached', 'rabOob', 'u16', 'arraybuffer', 'plainArray') },
);

const nodeArb: fc.Arbitrary<NodeSpec> = fc.record({
  pool: fc.oneof(
    { weight: 30, arbitrary: fc.integer({ min: 0, max: 3 }) },
    { weight: 10, arbitrary: fc.constant('empty' as const) },
    { weight: 1, arbitrary: fc.constant('garbage' as const) },
  ),
  next: fc.oneof(
    { weight: 20, arbitrary: fc.constant('following' as const) },
    { weight: 10, arbitrary: fc.constant(null) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 5 }) },
  ),
  lie: rarely(lieArb(['Next', 'Bytes'] as const), 8),
});
// An empty MDL whose link reads NULL for the chain check and something else for the walk: the
// shape a check-then-walk can be fooled by, generated on purpose besides the random ones.
const liarArb: fc.Arbitrary<NodeSpec> = fc.record({
  pool: fc.constant('empty' as const),
  next: fc.constant('following' as const),
  lie: fc.record({
    prop: fc.constant('Next' as const),
    answers: fc.constantFrom<Answer[]>([null, 'self'], [null, 0], [null, 1]),
    cycle: fc.boolean(),
  }),
});

const posArb: fc.Arbitrary<Pos> = fc.oneof(
  { weight: 40, arbitrary: fc.record({ f: fc.integer({ min: 0, max: 100 }), d: fc.constant(0), raw: fc.constant(undefined) }) },
  { weight: 4, arbitrary: fc.record({ f: fc.integer({ min: 0, max: 100 }), d: fc.integer({ min: -1, max: 2 }), raw: fc.constant(undefined) }) },
  { weight: 1, arbitrary: fc.record({ f: fc.constant(0), d: fc.constant(0),
    raw: fc.constantFrom<unknown>(-1, 1.5, NaN, 2 ** 32, 2 ** 32 - 1, 2 ** 53, 65508, 65528, '1', null, 10n) }) },
);

const entryArb: fc.Arbitrary<EntrySpec> = fc.record({
  mdl: fc.oneof(
    { weight: 12, arbitrary: fc.integer({ min: 0, max: 5 }) },
    { weight: 2, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.constant('garbage' as const) },
  ),
  offset: posArb,
  length: posArb,
  next: fc.oneof(
    { weight: 20, arbitrary: fc.constant('next' as const) },
    { weight: 1, arbitrary: fc.constant('null' as const) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: 5 }) },
  ),
  buffer: fc.oneof({ weight: 30, arbitrary: fc.constant('object' as const) }, { weight: 1, arbitrary: fc.constant('garbage' as const) }),
  lie: rarely(lieArb(['Next', 'Buffer', 'Mdl', 'Offset', 'Length'] as const), 25),
});

const remoteArb: fc.Arbitrary<RemoteSpec> = fc.record({
  kind: fc.oneof(
    { weight: 12, arbitrary: fc.constant('object' as const) },
    { weight: 8, arbitrary: fc.constant('bytes' as const) },
    { weight: 2, arbitrary: fc.constantFrom('null' as const, 'undefined' as const) },
    { weight: 1, arbitrary: fc.constantFrom('garbage' as const, 'random' as const) },
  ),
  family: fc.oneof({ weight: 10, arbitrary: fc.constant('match') }, { weight: 1, arbitrary: fc.constantFrom<unknown>('IPv4', 'ipv6', 4, 6, 'inet', 2, 23, null) }),
  address: fc.oneof(
    { weight: 20, arbitrary: fc.constant('rx' as const) },
    { weight: 1, arbitrary: fc.constantFrom('otherFamily' as const, 'garbage' as const, 'unroutable' as const, 'zone' as const, 'nonString' as const) },
  ),
  port: fc.oneof({ weight: 20, arbitrary: fc.constant('rx' as const) }, { weight: 1, arbitrary: fc.constantFrom<number | string>(0, 65536, -1, 1.5, '80') }),
  scope: fc.oneof({ weight: 10, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom<unknown>(0, 1, 2 ** 32, -1, 'x') }),
  cut: fc.oneof({ weight: 10, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -30, max: 110 }) }),
  flip: rarely(fc.record({ at: fc.nat(27), value: fc.nat(255) }), 10),
  random: fc.uint8Array({ maxLength: 130 }),
  lie: rarely(fc.record({ prop: fc.constantFrom('port' as const, 'address' as const, 'family' as const), cycle: fc.boolean() }), 20),
});

const controlArb: fc.Arbitrary<ControlSpec> = fc.record({
  kind: fc.oneof(
    { weight: 10, arbitrary: fc.constant('none' as const) },
    { weight: 8, arbitrary: fc.constant('valid' as const) },
    { weight: 2, arbitrary: fc.constant('objects' as const) },
    { weight: 2, arbitrary: fc.constantFrom('lengthOff' as const, 'flipped' as const, 'random' as const) },
    { weight: 1, arbitrary: fc.constantFrom('nullWithLength' as const, 'notBytes' as const) },
  ),
  controls: fc.record({
    tos: fc.integer({ min: 0, max: 255 }),
    ttl: fc.integer({ min: 1, max: 255 }),
    ecn: fc.integer({ min: 0, max: 3 }),
    segmentSize: fc.integer({ min: 8, max: 1500 }),
    source: fc.boolean(),
    interfaceIndex: fc.constantFrom(0, 1),
  }, { requiredKeys: [] }),
  objects: fc.array(fc.record({
    level: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(IPPROTO_IP, IPPROTO_IPV6, IPPROTO_UDP) },
      { weight: 1, arbitrary: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) }),
    type: fc.oneof({ weight: 6, arbitrary: fc.constantFrom(IP_TOS, IP_TTL, IP_PKTINFO, IP_ECN, IPV6_HOPLIMIT, IPV6_TCLASS, UDP_SEND_MSG_SIZE) },
      { weight: 1, arbitrary: fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 }) }),
    data: fc.oneof({ weight: 4, arbitrary: fc.uint8Array({ minLength: 4, maxLength: 4 }) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 24 }) }),
  }), { minLength: 1, maxLength: 4 }),
  delta: fc.integer({ min: -17, max: 17 }),
  flip: fc.record({ at: fc.nat(80), value: fc.nat(255) }),
  random: fc.uint8Array({ maxLength: 64 }),
});

const caseArb: fc.Arbitrary<WskCase> = fc.record({
  family: fc.oneof({ weight: 4, arbitrary: fc.constant(4 as const) }, { weight: 1, arbitrary: fc.constant(6 as const) }),
  lane: fc.oneof({ weight: 3, arbitrary: fc.constant('fast' as const) }, { weight: 2, arbitrary: fc.constant('slow' as const) }),
  filler: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
  socket: fc.oneof(
    { weight: 20, arbitrary: fc.constant('fresh' as const) },
    { weight: 3, arbitrary: fc.constant('connected' as const) },
    { weight: 1, arbitrary: fc.constantFrom('closed' as const, 'notSocket' as const) },
  ),
  notSocket: fc.nat(4),
  gso: fc.boolean(),
  pool: fc.array(bufSpecArb({ maxLength: 1500, kinds: wskBufKinds }), { minLength: 1, maxLength: 4 }),
  nodes: fc.array(fc.oneof({ weight: 15, arbitrary: nodeArb }, { weight: 1, arbitrary: liarArb }), { minLength: 1, maxLength: 6 }),
  list: fc.oneof({ weight: 30, arbitrary: fc.constant('entries' as const) }, { weight: 1, arbitrary: fc.constantFrom('null' as const, 'garbage' as const) }),
  entries: fc.array(entryArb, { minLength: 1, maxLength: 10 }),
  flags: fc.oneof({ weight: 30, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constantFrom(1, -1, 0x80000000, NaN) }),
  remote: remoteArb,
  control: controlArb,
  irp: fc.oneof(
    { weight: 20, arbitrary: fc.constant<IrpKind>('fresh') },
    { weight: 2, arbitrary: fc.constantFrom<IrpKind>('noRoutine', 'subclass', 'cancelledFirst') },
    { weight: 2, arbitrary: fc.constantFrom<IrpKind>('completed', 'foreign') },
  ),
  foreign: fc.nat(5),
  routine: fc.oneof({ weight: 12, arbitrary: fc.constant<RoutineKind>('count') }, { weight: 1, arbitrary: fc.constantFrom<RoutineKind>('throw', 'cancelSelf', 'close', 'reenter') }),
  after: fc.record({
    kind: fc.oneof(
      { weight: 6, arbitrary: fc.constant<AfterKind>('none') },
      { weight: 4, arbitrary: fc.constantFrom<AfterKind>('cancelNow', 'cancelLater', 'closeNow', 'closeLater', 'detach', 'shrink') },
    ),
    target: fc.nat(3),
    keep: fc.nat(20),
  }),
});

function nextNode(c: WskCase, n: number): number | null {
  const next = (c.nodes[n] as NodeSpec).next;
  if (next === 'following') return n + 1 < c.nodes.length ? n + 1 : null;
  return next === null ? null : next % c.nodes.length;
}

// ---------------------------------------------------------------------------------------------
// The honest model: what the WSK_BUF_LIST says when no getter lies

const ULONG_MAX = 0xffffffff;
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

type BatchModel = { ok: true; datagrams: Uint8Array[] } | { ok: false; why: string };

interface Built {
  list: unknown;
  /** Per entry: the Offset and Length values given. */
  values: Array<{ offset: unknown; length: unknown }>;
  honest: boolean;
}

function modelBatch(c: WskCase, made: MadeBuffer[], built: Built): BatchModel {
  if (c.list !== 'entries' || c.entries.length === 0) return { ok: false, why: 'no list' };
  const max = MAX_PAYLOAD[c.family];
  const datagrams: Uint8Array[] = [];
  const visited = new Set<number>();
  for (let i: number | null = 0; i !== null;) {
    if (visited.has(i)) return { ok: false, why: 'list cycle' };
    visited.add(i);
    const e = c.entries[i] as EntrySpec;
    if (e.buffer === 'garbage') return { ok: false, why: 'Buffer not an object' };
    const { offset, length } = built.values[i] as { offset: unknown; length: unknown };
    if (!isCount(offset) || offset > ULONG_MAX) return { ok: false, why: 'Offset' };
    if (!isCount(length)) return { ok: false, why: 'Length' };
    if (e.mdl === 'garbage') return { ok: false, why: 'Mdl not an object' };
    if (e.mdl === null) {
      if (length !== 0 || offset !== 0) return { ok: false, why: 'Mdl NULL with Length/Offset' };
      datagrams.push(new Uint8Array(0));
    } else {
      // The chain from the head: objects with Uint8Array Bytes, no cycle.
      const chain: Uint8Array[] = [];
      const seen = new Set<number>();
      for (let n: number | null = e.mdl % c.nodes.length; n !== null;) {
        if (seen.has(n)) return { ok: false, why: 'MDL cycle' };
        seen.add(n);
        const node = c.nodes[n] as NodeSpec;
        if (node.pool === 'garbage') return { ok: false, why: 'garbage MDL' };
        const bytes = node.pool === 'empty' ? new Uint8Array(0) : made[node.pool % made.length] as MadeBuffer;
        if (!(bytes instanceof Uint8Array) && !bytes.isU8) return { ok: false, why: 'Bytes not a Uint8Array' };
        chain.push(bytes instanceof Uint8Array ? bytes : bytes.content.subarray(0, bytes.length));
        n = nextNode(c, n);
      }
      const first = chain[0] as Uint8Array;
      if (offset > first.byteLength) return { ok: false, why: 'Offset past the first MDL' };
      if (length > max) return { ok: false, why: 'too long' };
      const all = concatBytes(chain);
      if (offset + length > all.byteLength) return { ok: false, why: 'runs off the chain' };
      datagrams.push(all.slice(offset, offset + length));
    }
    i = e.next === 'next' ? (i + 1 < c.entries.length ? i + 1 : null) : e.next === 'null' ? null : e.next % c.entries.length;
  }
  return { ok: true, datagrams };
}

// ---------------------------------------------------------------------------------------------

export interface WskTargetOptions {
  isolated: boolean;
  ipv6: boolean;
  exclude: ReadonlySet<string>;
}

export function wskTarget(options: WskTargetOptions): TargetDefinition<WskCase> {
  const budget = new ReadBudget(READ_LIMIT);
  const figures: Record<string, number> = {
    'honest cases': 0, 'model batches valid': 0, pending: 0, 'datagrams verified': 0, 'bytes verified': 0,
    'lying cases': 0,
  };
  const bump = (key: string, by = 1): void => {
    figures[key] = (figures[key] ?? 0) + by;
  };
  const arbitrary = caseArb.map((c): WskCase => {
    let out = c;
    if (!options.ipv6 || (out.family === 6 && (out.lane === 'slow' || !options.isolated))) out = { ...out, family: 4 };
    if (!options.isolated) {
      out = { ...out, lane: 'fast' };
      if (out.remote.kind === 'random') out = { ...out, remote: { ...out.remote, kind: 'bytes' } };
      // Outside a private namespace an address byte must never change: it could leave the machine.
      const flip = out.remote.flip;
      if (flip !== null && flip.at >= 4) out = { ...out, remote: { ...out.remote, flip: null } };
      if (out.remote.address === 'unroutable') out = { ...out, remote: { ...out.remote, address: 'garbage' } };
    }
    if (options.exclude.has('lying')) {
      out = { ...out, nodes: out.nodes.map((n) => ({ ...n, lie: null })), entries: out.entries.map((e) => ({ ...e, lie: null })),
        remote: { ...out.remote, lie: null } };
    }
    return out;
  });
  return {
    name: 'wsk',
    arbitrary,
    async: true,
    kindOf: (c) => `wsk-${c.lane}`,
    run: (c) => runCase(c, budget, bump),
    figures: () => ({ ...figures }),
  };
}

async function runCase(c: WskCase, budget: ReadBudget, bump: (key: string, by?: number) => void): Promise<string> {
  budget.reset();
  takeUncaught();
  const family = c.family;
  const receiver = new Receiver(c.lane === 'slow' ? SLOW_V4 : family === 6 ? FAST_V6 : FAST_V4, family);
  let socket: UdpSocket | null = null;
  return withCleanup(async () => {
    socket = createSocket(c.lane === 'slow' ? { type: 'udp4', sendBufferSize: 1, gso: c.gso }
      : { type: family === 6 ? 'udp6' : 'udp4', gso: c.gso });
    return runWith(c, socket, receiver, budget, bump);
  }, () => {
    socket?.close();
    receiver.close();
  });
}

async function runWith(c: WskCase, socket: UdpSocket, receiver: Receiver, budget: ReadBudget,
  bump: (key: string, by?: number) => void): Promise<string> {
  const family = c.family;
  const made = c.pool.map((spec) => makeBuffer(spec));
  const lying = c.nodes.some((n) => n.lie !== null) || c.entries.some((e) => e.lie !== null) || c.remote.lie !== null;
  if (lying) bump('lying cases');

  // A getter that answers from a script, counting every read against the case's budget.
  const scripted = <T>(answers: readonly T[], cycle: boolean): (() => T) => {
    let reads = 0;
    return () => {
      budget.tick();
      const i = reads++;
      return answers[cycle ? i % answers.length : Math.min(i, answers.length - 1)] as T;
    };
  };

  // MDLs.
  const bytesOf = (pool: NodeSpec['pool']): unknown =>
    pool === 'empty' ? new Uint8Array(0) : pool === 'garbage' ? 'not bytes' : (made[pool % made.length] as MadeBuffer).value;
  const nodes = c.nodes.map(() => ({}));
  const answerNode = (a: Answer, self: object): unknown =>
    a === null ? null : a === 'self' ? self : a === 'garbage' ? 42 : a === 'undefined' ? undefined : nodes[a % nodes.length];
  c.nodes.forEach((spec, i) => {
    const node = nodes[i] as Record<string, unknown>;
    const nextIndex = nextNode(c, i);
    const next = nextIndex === null ? null : nodes[nextIndex];
    const garbageNode = spec.pool === 'garbage';
    // Every link is a counting getter (an honest one answers the same each time): a walk that
    // loops through honest nodes, once a lying one led it into a cycle, is bounded too.
    const read = spec.lie?.prop === 'Next' ? scripted(spec.lie.answers.map((a) => answerNode(a, node)), spec.lie.cycle)
      : scripted([next], false);
    Object.defineProperty(node, 'Next', { get: read, enumerable: true });
    if (spec.lie?.prop === 'Bytes') {
      const read = scripted(spec.lie.answers.map((a) => (typeof a === 'number' ? bytesOf(a % 4) : a === 'self' ? bytesOf('empty') : bytesOf('garbage'))), spec.lie.cycle);
      Object.defineProperty(node, 'Bytes', { get: read, enumerable: true });
    } else if (!garbageNode) {
      node.Bytes = bytesOf(spec.pool);
    }
  });

  // Lengths as an honest reader of the chain would take them (first answers).
  const chainLength = (head: number): { first: number; total: number } => {
    let total = 0;
    let first = -1;
    const seen = new Set<number>();
    for (let n: number | null = head; n !== null && !seen.has(n);) {
      seen.add(n);
      const spec = c.nodes[n] as NodeSpec;
      const m = spec.pool === 'empty' || spec.pool === 'garbage' ? null : made[spec.pool % made.length] as MadeBuffer;
      const length = m === null || !m.isU8 ? 0 : m.length;
      if (first < 0) first = length;
      total += length;
      n = nextNode(c, n);
    }
    return { first: Math.max(first, 0), total };
  };

  // Entries.
  const cap = { left: CAP[c.lane] };
  const entries = c.entries.map(() => ({}));
  const values: Array<{ offset: unknown; length: unknown }> = [];
  c.entries.forEach((spec, i) => {
    const entry = entries[i] as Record<string, unknown>;
    const head = spec.mdl === null || spec.mdl === 'garbage' ? null : spec.mdl % nodes.length;
    const lengths = head === null ? { first: 0, total: 0 } : chainLength(head);
    const offset = spec.offset.raw !== undefined ? spec.offset.raw
      : Math.floor((spec.offset.f * lengths.first) / 100) + spec.offset.d;
    const room = Math.max(0, lengths.total - (typeof offset === 'number' ? Math.max(offset, 0) : 0));
    let length: unknown = spec.length.raw !== undefined ? spec.length.raw
      : Math.floor((spec.length.f * room) / 100) + spec.length.d;
    if (typeof length === 'number' && length > 0 && length <= room) {
      const taken = Math.min(length, cap.left);
      cap.left -= taken;
      length = taken;
    }
    if (head === null && spec.length.raw === undefined) length = spec.length.d === 0 ? 0 : length;
    const offsetValue = head === null && spec.offset.raw === undefined && spec.offset.d === 0 ? 0 : offset;
    values.push({ offset: offsetValue, length });
    const buffer: Record<string, unknown> = {
      Mdl: spec.mdl === 'garbage' ? 'not an MDL' : head === null ? null : nodes[head],
      Offset: offsetValue,
      Length: length,
    };
    const lie = spec.lie;
    if (lie !== null && (lie.prop === 'Mdl' || lie.prop === 'Offset' || lie.prop === 'Length')) {
      const mapped = lie.answers.map((a): unknown => {
        if (lie.prop === 'Mdl') return answerNode(a, {});
        if (typeof a === 'number') return a * 7;
        return a === null ? null : a === 'self' ? 2 ** 33 : a === 'garbage' ? -1 : undefined;
      });
      Object.defineProperty(buffer, lie.prop, { get: scripted(mapped, lie.cycle), enumerable: true });
    }
    if (lie?.prop === 'Buffer') {
      const other = { Mdl: null, Offset: 0, Length: 0 };
      const mapped = lie.answers.map((a): unknown => (a === 'self' ? buffer : a === null ? null : a === 'garbage' ? 7 : other));
      Object.defineProperty(entry, 'Buffer', { get: scripted(mapped, lie.cycle), enumerable: true });
    } else {
      entry.Buffer = spec.buffer === 'garbage' ? 'not a WSK_BUF' : buffer;
    }
    const next = spec.next === 'next' ? entries[i + 1] ?? null : spec.next === 'null' ? null : entries[spec.next % entries.length];
    const mapped = lie?.prop === 'Next' ? lie.answers.map((a): unknown =>
      a === null ? null : a === 'self' ? entry : a === 'garbage' ? 'x' : a === 'undefined' ? undefined : entries[a % entries.length])
      : [next];
    Object.defineProperty(entry, 'Next', { get: scripted(mapped, lie?.prop === 'Next' && lie.cycle), enumerable: true });
  });
  const list = c.list === 'null' ? null : c.list === 'garbage' ? 12 : entries.length === 0 ? null : entries[0];
  const built: Built = { list, values, honest: !lying };

  // RemoteAddress.
  const r = c.remote;
  const rxAddress = receiver.address;
  const address: unknown = r.address === 'rx' ? rxAddress : r.address === 'otherFamily' ? (family === 4 ? FAST_V6 : FAST_V4)
    : r.address === 'garbage' ? '1.2.3' : r.address === 'unroutable' ? (family === 4 ? '198.18.0.1' : 'fd00::1')
      : r.address === 'zone' ? (family === 4 ? '127.0.0.1%1' : `${rxAddress}%1`) : 77;
  const port: unknown = r.port === 'rx' ? receiver.port : r.port;
  const familyValue = r.family === 'match' ? (family === 4 ? 'IPv4' : 'IPv6') : r.family;
  let remote: unknown;
  let reaches = false;
  let maybe = false;
  switch (r.kind) {
    case 'object': {
      const object: Record<string, unknown> = { family: familyValue, address, port };
      if (r.scope !== undefined) object.scopeId = r.scope;
      if (r.lie !== null) {
        const honest = object[r.lie.prop];
        const odd = r.lie.prop === 'port' ? 0 : r.lie.prop === 'address' ? '1.2.3.4.5' : 'IPv9';
        Object.defineProperty(object, r.lie.prop, { get: scripted([honest, odd], r.lie.cycle), enumerable: true });
      }
      remote = object;
      const spelled = family === 4 ? ['match', 'IPv4', 'ipv4', 4] : ['match', 'IPv6', 'ipv6', 6];
      // '::1%1' names ::1 too (a zone is a scope id, and ::1 needs none).
      const named = r.address === 'rx' || (r.address === 'zone' && family === 6);
      reaches = named && r.port === 'rx' && spelled.includes(r.family as string) &&
        (r.scope === undefined || r.scope === 0 || (family === 6 && (r.scope === 1)));
      // A lying field answers the honest value or one that is refused: the datagrams reach the
      // receiver or go nowhere.
      maybe = reaches && r.lie !== null;
      break;
    }
    case 'bytes': {
      let bytes: Uint8Array;
      try {
        bytes = encodeSockaddr({ family, address: rxAddress, port: receiver.port, scopeId: 0 });
      } catch {
        bytes = new Uint8Array(0);
      }
      if (r.port !== 'rx' || r.address !== 'rx') {
        // The same defects, in bytes: port 0, or the family field of the other version.
        if (r.port !== 'rx') bytes[2] = bytes[3] = 0;
        if (r.address !== 'rx') bytes[0] = family === 4 ? 23 : 2;
      }
      if (r.cut !== 0) {
        const length = Math.max(0, bytes.byteLength + r.cut);
        const resized = new Uint8Array(length);
        resized.set(bytes.subarray(0, Math.min(length, bytes.byteLength)));
        bytes = resized;
      }
      if (r.flip !== null && r.flip.at < bytes.byteLength) bytes[r.flip.at] = r.flip.value;
      remote = bytes;
      const pristine = encodeSockaddr({ family, address: rxAddress, port: receiver.port, scopeId: 0 });
      // Bytes past the structure (up to 128) and sin_zero / flowinfo do not change where it goes.
      // Nor does sin6_scope_id for ::1, which needs no scope.
      const meaningful = family === 4 ? [0, 1, 2, 3, 4, 5, 6, 7] : [0, 1, 2, 3, ...Array.from({ length: 16 }, (_, k) => 8 + k)];
      // A flipped byte can turn ::1 into ::, which Linux sends to ::1 as well.
      const unspecified = family === 6 && bytes.subarray(8, 24).every((b) => b === 0);
      reaches = bytes.byteLength >= pristine.byteLength && bytes.byteLength <= 128 &&
        meaningful.every((k) => bytes[k] === pristine[k] || (unspecified && k >= 8));
      break;
    }
    case 'null': remote = null; reaches = c.socket === 'connected'; break;
    case 'undefined': remote = undefined; reaches = c.socket === 'connected'; break;
    case 'garbage': remote = [r.cut, 'x', true][Math.abs(r.cut) % 3]; break;
    case 'random': remote = r.random; break;
  }

  // ControlInfo.
  const k = c.control;
  let controlInfo: unknown = null;
  let controlLength: unknown = 0;
  let segmentSize: number | undefined;
  let segmentKnown = true;
  const sendControls = (): SendControls => {
    const out: SendControls = {};
    if (k.controls.tos !== undefined) out.tos = k.controls.tos;
    if (k.controls.ttl !== undefined) out.ttl = k.controls.ttl;
    if (k.controls.ecn !== undefined) out.ecn = k.controls.ecn;
    if (k.controls.segmentSize !== undefined) {
      // Never so small that one case's segments overflow the receiver.
      out.segmentSize = Math.max(k.controls.segmentSize, Math.ceil((CAP[c.lane] - cap.left) / 40));
    }
    if (k.controls.source === true) out.sourceAddress = family === 4 ? FAST_V4 : FAST_V6;
    if (k.controls.interfaceIndex !== undefined) out.interfaceIndex = k.controls.interfaceIndex;
    return out;
  };
  if (k.kind !== 'none') {
    const controls = sendControls();
    const block = encodeControls(controls, family);
    segmentSize = controls.segmentSize;
    switch (k.kind) {
      case 'valid':
        controlInfo = block.byteLength === 0 ? null : block;
        controlLength = block.byteLength;
        break;
      case 'lengthOff':
        controlInfo = block;
        controlLength = block.byteLength + k.delta;
        segmentKnown = false;
        break;
      case 'flipped': {
        const copy = block.slice();
        if (copy.byteLength > 0) copy[k.flip.at % copy.byteLength] = k.flip.value;
        controlInfo = copy;
        controlLength = copy.byteLength;
        segmentKnown = false;
        break;
      }
      case 'random':
        controlInfo = k.random;
        controlLength = Math.max(0, k.random.byteLength + (k.delta % 3));
        segmentKnown = false;
        segmentSize = undefined;
        break;
      case 'nullWithLength':
        controlInfo = null;
        controlLength = 16;
        break;
      case 'notBytes':
        controlInfo = [1, 2, 3];
        controlLength = 3;
        break;
      case 'objects': {
        // A segment size from random bytes could split a case into more datagrams than the
        // receive buffer holds: that one control gets a harmless value.
        const objects = k.objects.map((o) => {
          if (o.level !== IPPROTO_UDP || o.type !== UDP_SEND_MSG_SIZE || o.data.byteLength !== 4) return o;
          const data = new Uint8Array(4);
          new DataView(data.buffer).setUint32(0, 1400, true);
          return { ...o, data };
        });
        controlInfo = buildControlInfo(objects);
        controlLength = (controlInfo as Uint8Array).byteLength;
        segmentKnown = false;
        segmentSize = undefined;
        break;
      }
    }
  }

  // The socket argument.
  let target: unknown = socket;
  if (c.socket === 'closed') socket.close();
  if (c.socket === 'connected') socket.connect(receiver.port, receiver.address);
  if (c.socket === 'notSocket') target = [null, {}, { submit: 1 }, { submit: () => { throw new Error('x'); }, closed: false, family }, 'socket'][c.notSocket];

  // The IRP, with a routine that counts completions.
  let completions = 0;
  const statuses: number[] = [];
  let irp: unknown;
  let usable = true;
  const fresh = c.irp === 'subclass' ? new (class extends IRP {})() : IoAllocateIrp();
  if (c.irp === 'cancelledFirst') IoCancelIrp(fresh);
  if (c.irp === 'completed') {
    WskSendMessages(socket, null, 1, null, 0, null, fresh);
    usable = false;
  }
  if (c.irp !== 'noRoutine' && c.irp !== 'completed' && c.irp !== 'foreign') {
    IoSetCompletionRoutine(fresh, (_device, completed) => {
      completions++;
      statuses.push(completed.IoStatus.Status);
      switch (c.routine) {
        case 'count': return;
        case 'throw': {
          const error = new GetterError('thrown by a completion routine');
          ownError(error);
          throw error;
        }
        case 'cancelSelf':
          if (IoCancelIrp(completed)) fail('IoCancelIrp succeeded on an IRP inside its completion routine');
          return;
        case 'close':
          socket.close();
          return;
        case 'reenter': {
          const again = WskSendMessages(socket, null, 0, null, 0, null, completed);
          if (again !== 0xc000000d) fail(`WskSendMessages on a completed IRP returned ${ntStatusName(again)}`);
          return;
        }
      }
    }, null);
  }
  irp = fresh;
  if (c.irp === 'foreign') {
    irp = [{}, Object.create(IRP.prototype) as unknown, null, undefined, 42, { IoStatus: {}, completed: false }][c.foreign];
    usable = false;
  }
  const before = usable ? null : snapshotIrp(fresh);

  const model = built.honest ? modelBatch(c, made, built) : null;
  if (model !== null) {
    bump('honest cases');
    if (model.ok) bump('model batches valid');
  }

  // On the slow lane, a batch first that the WSK call must queue behind.
  const filler = fillerDatagrams();
  let fillerSent: number | null = c.lane === 'slow' && c.filler && (c.socket === 'fresh' || c.socket === 'connected') ? -1 : null;
  let fillerDone: Promise<void> = Promise.resolve();
  if (fillerSent !== null) {
    const promise = c.socket === 'connected' ? socket.sendBatch(filler) : socket.sendBatch(filler, receiver.port, receiver.address);
    fillerDone = promise.then((r) => {
      fillerSent = r.datagrams;
    }, (error: unknown) => {
      const sent = (error as { datagramsSent?: unknown }).datagramsSent;
      if (errorName(error) !== 'WskError' || typeof sent !== 'number') fail(`the filler batch failed: ${errorText(error)}`);
      fillerSent = sent;
    });
    fillerDone.catch(() => undefined);
  }

  // The call.
  let status: unknown;
  try {
    status = WskSendMessages(target as UdpSocket, built.list as never, c.flags, remote as never, controlLength as number,
      controlInfo as Uint8Array | null, irp as IRP);
  } catch (error) {
    fail(`WskSendMessages threw ${errorText(error)}`);
  }
  if (budget.exceeded) fail(`WskSendMessages did not finish: more than ${READ_LIMIT} property reads (a loop)`);
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 0 || status > 0xffffffff) {
    fail(`WskSendMessages returned ${String(status)}, not an NTSTATUS`);
  }
  const returned = status;
  if (!usable) {
    if (returned !== 0xc000000d) fail(`an unusable IRP got ${ntStatusName(returned)}, not STATUS_INVALID_PARAMETER`);
    const after = snapshotIrp(fresh);
    if (before !== after) fail(`WskSendMessages touched an IRP it could not use: ${before} -> ${after}`);
  } else if (returned !== STATUS_PENDING) {
    if (completions !== (c.irp === 'noRoutine' ? 0 : 1) || !fresh.completed) {
      fail(`${ntStatusName(returned)} returned, but the IRP completed ${completions} times (completed: ${String(fresh.completed)})`);
    }
    if (fresh.IoStatus.Status !== returned) {
      fail(`returned ${ntStatusName(returned)} but the IRP holds ${ntStatusName(fresh.IoStatus.Status)}`);
    }
  } else {
    bump('pending');
    if (fresh.completed) fail('STATUS_PENDING returned for an IRP that had already completed');
    // While it waits: cancel, close, or take its memory away.
    const a = c.after;
    const act = (): void => {
      switch (a.kind) {
        case 'cancelNow': case 'cancelLater': IoCancelIrp(fresh); break;
        case 'closeNow': case 'closeLater': socket.close(); break;
        case 'detach': made[a.target % made.length]?.detach(); break;
        case 'shrink': made[a.target % made.length]?.shrink(a.keep); break;
        case 'none': break;
      }
    };
    if (a.kind === 'cancelLater' || a.kind === 'closeLater') await sleep(1);
    act();
    const completed = await within(fresh.promise.then(() => true), 5000, false);
    if (!completed) fail('a pending IRP did not complete within 5 s');
    await turn();
    if (c.irp !== 'noRoutine' && completions !== 1) fail(`the pending IRP completed ${completions} times`);
    if (fresh.IoStatus.Status === STATUS_PENDING) fail('the IRP completed with STATUS_PENDING');
  }
  const final = usable ? fresh.IoStatus.Status : returned;
  const information = usable ? fresh.IoStatus.Information : 0;
  if (!Number.isSafeInteger(information) || information < 0) fail(`IoStatus.Information is ${String(information)}`);
  await turn();

  // What arrived. On the slow lane the last datagrams may still be in the qdisc: wait for the
  // bytes Information claims, then for a quiet moment, so that nothing more comes.
  if (await within(fillerDone.then(() => true), 5000, false) !== true) fail('the filler batch did not settle within 5 s');
  const fillerCount = Math.max(0, fillerSent ?? 0);
  const fillerBytes = filler.slice(0, fillerCount).reduce((sum, d) => sum + d.byteLength, 0);
  // Sent elsewhere, Information counts bytes that never come here: wait only for the filler then.
  const awaited = fillerBytes + (reaches ? information : 0);
  const deadline = Date.now() + 3000;
  for (let i = 0; i < 10000 && receiver.queuedBytes() < awaited && Date.now() < deadline; i++) {
    receiver.poll();
    await sleep(1);
  }
  if (c.lane === 'slow') await sleep(3);
  const all = receiver.take();
  const drops = receiver.drops();
  if (drops > 0) fail(`the receiver dropped ${drops} datagrams: the case overflowed its receive buffer`);
  const fillerProblem = compareDatagrams(all.slice(0, fillerCount), filler.slice(0, fillerCount), 'receiver (filler)');
  let got = all.slice(fillerCount);
  let reordered = false;
  if (fillerProblem !== null) {
    const rest = c.lane === 'slow' ? withoutEach(all, filler.slice(0, fillerCount)) : null;
    if (rest === null) fail(fillerProblem);
    got = rest;
    reordered = true;
  }
  // Compares in order; on the slow lane a mere reordering (see withoutEach) is counted, not failed.
  const check = (want: Uint8Array[], where: string): void => {
    const problem = compareDatagrams(got, want, where);
    if (problem === null) return;
    if (c.lane === 'slow' && sameMultiset(got, want)) {
      reordered = true;
      return;
    }
    fail(problem);
  };
  const gotBytes = got.reduce((sum, d) => sum + d.byteLength, 0);
  if (!reaches && gotBytes === 0 && got.length === 0) {
    // Sent elsewhere (or not at all): nothing to compare but that nothing came here.
  } else if (information !== gotBytes && (reaches || got.length > 0)) {
    fail(`IoStatus.Information is ${information} (${ntStatusName(final)}) but the receiver got ${gotBytes} bytes ` +
      `in ${got.length} datagrams`);
  }
  if (!reaches && got.length > 0) fail(`${got.length} datagrams arrived though the destination was not the receiver`);
  if (model !== null && reaches && !maybe) {
    if (!model.ok && (final === STATUS_SUCCESS || returned === STATUS_PENDING)) {
      fail(`a batch the model refuses (${model.why}) completed with ${ntStatusName(final)}${returned === STATUS_PENDING ? ' after STATUS_PENDING' : ''}`);
    }
    if (model.ok && final === STATUS_SUCCESS) {
      if (segmentKnown) {
        check(segmented(model.datagrams, segmentSize), 'receiver');
      } else if (c.lane === 'fast' && !sameBytes(concatBytes(got), concatBytes(model.datagrams))) {
        // (On the slow lane, with segments of unknown size, only the byte count is checked.)
        fail('the bytes received are not those of the batch');
      }
    }
    if (model.ok && final !== STATUS_SUCCESS && segmentKnown && segmentSize === undefined) {
      // Whatever went out before the failure is a prefix of the batch.
      check(model.datagrams.slice(0, got.length), 'receiver (prefix)');
    }
  }
  if (reordered) bump('slow-lane reorderings');
  for (const d of got) {
    bump('datagrams verified');
    bump('bytes verified', d.byteLength);
  }
  for (const error of takeUncaught()) {
    if (!isOwnError(error)) fail(`an exception reached the event loop: ${errorText(error)}`);
  }
  return `${returned === STATUS_PENDING ? 'PENDING then ' : ''}${ntStatusName(final)}`;
}

function snapshotIrp(irp: IRP): string {
  return JSON.stringify({ status: irp.IoStatus.Status, information: irp.IoStatus.Information, completed: irp.completed,
    cancel: irp.Cancel, failure: irp.FailureInfo?.reason ?? null });
}
