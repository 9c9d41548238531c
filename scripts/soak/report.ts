/** The soak's checks and its printed report (scripts/soak.ts gathers the figures). */
import type { MemoryReading, MemorySample, PathPlan, ReceiverPathReport, SenderLine, SenderPathReport } from './protocol';

export const RSS_GROWTH_LIMIT = 10 * 2 ** 20;

export type SenderResult = Extract<SenderLine, { event: 'result' }>;

/** One path: what the sender and the receiver counted. */
export interface PathRow extends SenderPathReport, Omit<ReceiverPathReport, 'bytes' | 'next'> {
  size: number;
  window: number;
  receivedBytes: number;
  /** Datagrams per second of the path's wall time (its share of the mixed run). */
  rate: number;
}

/** What one soak run observed. */
export interface SoakOutcome {
  plans: PathPlan[];
  rows: PathRow[];
  result: SenderResult;
  rssStart: number;
  /** Seconds into the run when the warm-up ended. */
  warmAt: number | null;
  receiverRss: Array<{ label: string; rss: number }>;
  /** The sender's memory over the run (a subset of its samples). */
  memory: MemorySample[];
  senderExit: number | null;
}

export interface Check {
  name: string;
  pass: boolean;
  detail: string;
}

const MB = 2 ** 20;
export const mb = (bytes: number): string => (bytes / MB).toFixed(1);
export const int = (n: number): string => Math.round(n).toLocaleString('en-US');
const signed = (bytes: number): string => `${bytes >= 0 ? '+' : ''}${mb(bytes)}`;

/**
 * The checks. The sender's RSS is read after a full GC (the sender forces one before every
 * sample when it can) with its young generation pinned (soak.ts): V8 grows its heap, and
 * garbage piles up between its own collections, on V8's schedule, which says nothing about a
 * leak; what survives a collection, and native memory, does.
 */
export function evaluate(outcome: SoakOutcome | null, failure: Error | null, namespacesLeft: string[]): Check[] {
  const checks: Check[] = [];
  const check = (name: string, pass: boolean, detail: string): void => {
    checks.push({ name, pass, detail });
  };
  if (outcome !== null) {
    for (const row of outcome.rows) {
      check(`${row.id}: receiver count == sender count`, row.sent > 0 && row.received === row.sent,
        `sent ${int(row.sent)}, received ${int(row.received)}`);
      const surprises = row.firstSurprises.map(([e, g]) => `[${e}, ${g < 0 ? 'corrupt' : g}]`).join(' ');
      check(`${row.id}: in order and intact`, row.outOfOrder === 0 && row.corrupt === 0,
        `${int(row.outOfOrder)} out of order (${int(row.backwards)} backwards), ${int(row.corrupt)} corrupt` +
        (surprises === '' ? '' : `; first [expected, got]: ${surprises}`));
      check(`${row.id}: sender finished without error`, row.error === null, row.error ?? 'none');
      if (row.id === 'pending') {
        check('pending: sends went pending', row.wentPending > 0,
          `${int(row.wentPending)} of ${int(row.calls)} sendBatch calls waited in the queue`);
      }
      if (row.id === 'gso') {
        check('gso: GSO in effect', row.gso && row.messages > 0 && row.messages < row.sent,
          `${int(row.sent)} datagrams in ${int(row.messages)} messages (socket.gso ${String(row.gso)})`);
      }
    }
    const r = outcome.result;
    if (r.warm === null) {
      check('sender RSS growth after warm-up < 10 MB', false, 'the run ended before its warm-up did');
    } else {
      const growth = r.end.rss - r.warm.rss;
      const heap = r.end.heapTotal - r.warm.heapTotal;
      check('sender RSS growth after warm-up < 10 MB', growth < RSS_GROWTH_LIMIT,
        `${mb(r.warm.rss)} MB after warm-up -> ${mb(r.end.rss)} MB at the end: ${signed(growth)} MB ` +
        `(V8 heap ${signed(heap)}, the rest ${signed(growth - heap)}` +
        `${r.gcForced ? '; read after a full GC' : '; no GC could be forced'})`);
    }
    check('sender descriptors unchanged', r.fdsAfter === r.fdsBefore,
      `${r.fdsBefore} before the sockets, ${r.fdsAfter} after closing them` +
      (r.fdsNew.length > 0 ? `; new: ${r.fdsNew.join(', ')}` : ''));
    check('sender exited cleanly', outcome.senderExit === 0, `exit code ${String(outcome.senderExit)}`);
  }
  if (failure !== null) check('soak ran to its end', false, failure.message);
  check('namespaces removed', namespacesLeft.length === 0,
    namespacesLeft.length === 0 ? 'none left' : `left: ${namespacesLeft.join(', ')}`);
  return checks;
}

export interface RunInfo {
  limits: string;
  linkRate: string;
  loadBefore: number;
  loadAfter: number;
  cpus: number;
  seconds: number;
}

function note(row: PathRow): string {
  switch (row.id) {
    case 'pending':
      return `${int(row.wentPending)}/${int(row.calls)} calls went pending, ${int(row.syscalls)} syscalls`;
    case 'gso':
      return `${int(row.calls)} calls, ${(row.sent / Math.max(1, row.messages)).toFixed(1)} datagrams/message`;
    default:
      return `${int(row.calls)} calls`;
  }
}

export function formatText(outcome: SoakOutcome | null, checks: readonly Check[], info: RunInfo): string {
  const out: string[] = [];
  if (outcome !== null) {
    const r = outcome.result;
    const total = outcome.rows.reduce((s, row) => s + row.sent, 0);
    out.push(`wsk-dgram soak: ${int(total)} datagrams in ${r.seconds.toFixed(1)} s ` +
      `(${int(total / r.seconds)} dg/s), limit ${info.limits}; slow link ${info.linkRate}`);
    out.push(`1-minute load average ${info.loadBefore.toFixed(2)} before, ${info.loadAfter.toFixed(2)} after ` +
      `(${info.cpus} CPUs; rates are each path's share of a mixed run, paced by a node:dgram receiver: ` +
      'not a benchmark, see npm run bench)');
    out.push('');
    const cell = (cells: string[]): string =>
      cells.map((c, i) => (i === 0 ? c.padEnd(8) : i === cells.length - 1 ? `  ${c}` : c.padStart(12))).join(' ');
    out.push(cell(['path', 'size B', 'sent', 'received', 'lost', 'out of order', 'corrupt', 'dg/s', 'Mbit/s', 'notes']));
    for (const row of outcome.rows) {
      out.push(cell([row.id, String(row.size), int(row.sent), int(row.received), int(row.sent - row.received),
        int(row.outOfOrder), int(row.corrupt), int(row.rate), ((row.rate * row.size * 8) / 1e6).toFixed(0),
        `window ${row.window}; ${note(row)}`]));
    }
    out.push('');
    const reading = (m: MemoryReading): string =>
      `${mb(m.rss)} MB (V8 heap ${mb(m.heapTotal)}, rest ${mb(m.rss - m.heapTotal)})`;
    out.push(`sender RSS: ${mb(outcome.rssStart)} MB at the start; after warm-up` +
      `${outcome.warmAt === null ? '' : ` (${outcome.warmAt.toFixed(1)} s)`} ${r.warm === null ? '-' : reading(r.warm)}; ` +
      `peak ${r.rssPeakAfterWarm === null ? '-' : mb(r.rssPeakAfterWarm)} MB; at the end ${reading(r.end)}`);
    out.push(`sender descriptors: ${r.fdsBefore} before the sockets, ${r.fdsAfter} after closing them`);
    out.push(`receivers' RSS at the end: ${outcome.receiverRss.map((x) => `${x.label} ${mb(x.rss)} MB`).join(', ')}`);
    out.push('');
  }
  for (const c of checks) out.push(`${c.pass ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}`);
  const pass = checks.every((c) => c.pass);
  out.push('', `${pass ? 'PASS' : 'FAIL'} (the soak took ${info.seconds.toFixed(1)} s)`);
  return `${out.join('\n')}\n`;
}
