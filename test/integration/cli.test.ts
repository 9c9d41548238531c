/**
 * The `wsk-dgram` command (dist/lib/cli/main.js) as a user runs it: blast against sink inside
 * a fresh network namespace (so that the kernel's UDP counters count only them), the progress
 * bar under a pseudo-terminal (`script` from util-linux), --help and usage errors, NDJSON
 * records, and bench --chart. Loopback only. No timing is asserted beyond generous bounds.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createSlowLink, JsonChild, type SlowLink } from './netns';
import { useNamespaceSuite } from './namespace-suite';

const MAIN = path.join(__dirname, '..', '..', 'dist', 'lib', 'cli', 'main.js');
const { notes } = useNamespaceSuite('cli');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: readonly string[], timeoutMs = 20000, env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', env, maxBuffer: 16 << 20 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof (error as { code?: unknown }).code === 'number' ? (error as { code: number }).code : null;
        resolve({ code, stdout, stderr });
      });
  });
}

function ndjson(text: string): any[] {
  return text.trim().split('\n').map((line) => JSON.parse(line));
}

let link: SlowLink | null = null;
afterEach(async () => {
  await link?.destroy();
  link = null;
});

/** Starts `sink --json` in the namespace and waits for its start record. */
async function startSink(ns: SlowLink, port: number, extra: readonly string[]): Promise<JsonChild> {
  const child: ChildProcess = ns.spawnNode('a', MAIN, ['sink', '--port', String(port), '--bind', '127.0.0.1', '--json', ...extra]);
  const sink = new JsonChild(child, 'sink');
  await sink.nextLine((line) => (line as any).type === 'start', 10000, 'the sink start record');
  return sink;
}

async function sinkSummary(sink: JsonChild): Promise<any> {
  return sink.nextLine((line) => (line as any).type === 'summary', 15000, 'the sink summary');
}

describe('blast against sink in a network namespace of their own', () => {
  test('their counts agree with each other and with the kernel counters', async () => {
    link = await createSlowLink();
    const sink = await startSink(link, 9300, ['--idle', '1.5']);
    // 200 B datagrams at 20k/s: a few per millisecond, which the default receive buffer holds.
    const blast = await link.exec('a', [process.execPath, MAIN, 'blast', '--to', '127.0.0.1:9300', '--size', '200',
      '--count', '20000', '--rate', '20k', '--json'], 20000);
    expect([blast.code, blast.stderr]).toEqual([0, '']);
    const records = ndjson(blast.stdout);
    const start = records[0];
    const summary = records.at(-1);
    expect(start).toMatchObject({ type: 'start', to: '127.0.0.1:9300', size: 200, count: 20000, rate: 20000, threads: 1 });
    expect(summary).toMatchObject({ type: 'summary', datagrams: 20000, bytes: 20000 * 200, failed: 0, interrupted: false, error: null });
    // Only blast sent UDP in this namespace: the kernel's OutDatagrams is its message count.
    expect(summary.kernel).toEqual({ outDatagrams: summary.messages, sndbufErrors: 0, agrees: true });
    expect(summary.pacer.ticks).toBeGreaterThan(0);
    // Interval records add up to the summary (the last part-interval included).
    const intervals = records.filter((r) => r.type === 'interval');
    expect(intervals.length).toBeGreaterThanOrEqual(1);
    for (const interval of intervals) {
      expect(Object.keys(interval).sort()).toEqual(['bytes', 'datagrams', 'datagramsPerSecond', 'end', 'gbitPerSecond', 'kernel',
        'messages', 'start', 'syscalls', 'type']);
    }
    expect(intervals.reduce((sum, r) => sum + r.datagrams, 0)).toBe(summary.datagrams);

    const got = await sinkSummary(sink);
    // Every datagram blast sent was received or dropped by the kernel for want of buffer.
    expect(got.datagrams + got.kernel.rcvbufErrors).toBe(20000);
    expect(got.kernel.inDatagrams).toBe(got.datagrams);
    expect(got).toMatchObject({ foreign: 0, duplicates: 0, reordered: 0, truncated: 0, bytes: got.datagrams * 200 });
    expect(got.lost).toBeLessThanOrEqual(got.kernel.rcvbufErrors);
    expect(got.senders).toHaveLength(1);
    expect(got.senders[0]).toMatchObject({ session: start.session, thread: 0, received: got.datagrams,
      source: `127.0.0.1:${summary.sourcePorts[0]}` });
    notes.push(`1 thread: sent ${summary.datagrams} in ${summary.messages} messages (kernel ${summary.kernel.outDatagrams}); ` +
      `sink ${got.datagrams} received, ${got.kernel.rcvbufErrors} kernel drops, ${got.lost} lost by sequence`);
  }, 40000);

  test('--threads 2: two senders on two source ports, summed; plain text output', async () => {
    link = await createSlowLink();
    const sink = await startSink(link, 9301, ['--idle', '1.5']);
    const blast = await link.exec('a', [process.execPath, MAIN, 'blast', '--to', '127.0.0.1:9301', '--size', '300',
      '--count', '10001', '--rate', '20k', '--threads', '2', '--gso', 'off'], 20000);
    expect([blast.code, blast.stderr]).toEqual([0, '']);
    expect(blast.stdout).toMatch(/^blast: 127\.0\.0\.1:9301, 300 B datagrams, 10,001 datagrams, 20,000 dg\/s, .*GSO off, 2 threads/m);
    expect(blast.stdout).toMatch(/^summary: sent 10,001 datagrams \(3,000,300 B payload\)/m);
    // Without GSO every datagram is one kernel message, and the kernel agrees.
    expect(blast.stdout).toMatch(/^ {2}10,001 kernel messages|, 10,001 kernel messages/m);
    expect(blast.stdout).toMatch(/^ {2}kernel Udp OutDatagrams 10,001 SndbufErrors 0 \(agrees\)$/m);
    const threads = /^ {2}threads: #0 port (\d+) ([\d,]+) dg, #1 port (\d+) ([\d,]+) dg$/m.exec(blast.stdout);
    expect(threads).not.toBeNull();
    expect(threads![1]).not.toBe(threads![3]);
    expect([threads![2], threads![4]]).toEqual(['5,001', '5,000']);

    const got = await sinkSummary(sink);
    expect(got.datagrams + got.kernel.rcvbufErrors).toBe(10001);
    expect(got.senders.map((s: any) => s.thread).sort()).toEqual([0, 1]);
    expect(new Set(got.senders.map((s: any) => s.session)).size).toBe(1);
    expect(got.senders.map((s: any) => s.source).sort())
      .toEqual([`127.0.0.1:${threads![1]}`, `127.0.0.1:${threads![3]}`].sort());
    notes.push(`2 threads: sink ${got.datagrams} received + ${got.kernel.rcvbufErrors} kernel drops = 10001`);
  }, 40000);
});

describe('the progress bar under a pseudo-terminal', () => {
  test('draws, updates and ends with the cursor restored, a summary and exit 0', async () => {
    const command = `${process.execPath} ${MAIN} blast --to 127.0.0.1:9 --size 200 --count 30000 --rate 30k`;
    const result = await new Promise<Run>((resolve) => {
      execFile('script', ['-q', '-e', '-c', command, '/dev/null'], { encoding: 'utf8', timeout: 20000, killSignal: 'SIGKILL' },
        (error, stdout, stderr) => resolve({ code: error === null ? 0 : (error as { code?: number }).code ?? null, stdout, stderr }));
    });
    expect([result.code, result.stderr]).toEqual([0, '']);
    const out = result.stdout;
    expect(out).toContain('\u001b[?25l'); // cursor hidden while the bar draws
    expect(out).toContain('\u2588'); // bar characters
    expect(out).toContain('\u2591');
    expect(out).toMatch(/\d+% \| [\d,]+ dg \| [\d,]+ dg\/s \| [\d.]+ Gbit\/s \| kernel out [\d,]+ \| [\d.]+s \/ [\d.?]+s left/);
    expect(out).toContain('100% | 30,000 dg');
    // The cursor is shown again after the last bar, before the summary.
    const restored = out.lastIndexOf('\u001b[?25h');
    expect(restored).toBeGreaterThan(out.lastIndexOf('\u2588'));
    expect(out.indexOf('summary: sent 30,000 datagrams', restored)).toBeGreaterThan(restored);
    notes.push(`pty: ${out.split('\u001b[1G').length - 1} bar redraws`);
  });

  test('without a terminal, interval lines instead of a bar', async () => {
    const result = await runCli(['blast', '--to', '127.0.0.1:9', '--size', '100', '--duration', '1.3', '--rate', '5k']);
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain('\u001b[');
    expect(result.stdout).toMatch(/^\[ +0\.0- +1\.0 s\] sent +[\d,]+ dg +[\d,]+ dg\/s +[\d.]+ Gbit\/s in [\d,]+ messages \| kernel Udp OutDatagrams/m);
    expect(result.stdout).toMatch(/^summary: sent [\d,]+ datagrams/m);
  });
});

describe('usage', () => {
  test('--help on the command and on every subcommand', async () => {
    for (const [args, expected] of [
      [['--help'], /^usage: wsk-dgram <command>/],
      [['blast', '--help'], /^usage: wsk-dgram blast --to HOST:PORT --size N \(--count N \| --duration S\)/],
      [['sink', '-h'], /^usage: wsk-dgram sink --port N/],
      [['bench', '--help'], /^usage: wsk-dgram bench \[options\]/],
    ] as const) {
      const result = await runCli(args);
      expect([args, result.code]).toEqual([args, 0]);
      expect(result.stdout).toMatch(expected);
    }
  });

  test('unknown flags, commands and bad values are usage errors with exit status 2', async () => {
    for (const args of [
      [], ['nope'], ['blast', '--bogus'], ['blast', '--to', '127.0.0.1:9', '--size', '100'], ['blast', '--to', 'x', '--size', '100', '--count', '1'],
      ['blast', '--to', '127.0.0.1:9', '--size', '10', '--count', '1'], ['blast', '--to', '127.0.0.1:9', '--size', '100', '--count', '1', '--gso', 'maybe'],
      ['blast', '--to', '127.0.0.1:9', '--size', '100', '--count', '5', '--rate', '1k', '--bitrate', '1M'],
      ['sink'], ['sink', '--port', '0'], ['sink', '--port', '9', '--what'], ['bench', '--bogus'], ['bench', '--chart', 'x.gif'],
    ]) {
      const result = await runCli(args);
      expect([args, result.code]).toEqual([args, 2]);
      expect(result.stderr).toMatch(/usage|--help/);
    }
  });
});

test('sink ends after --count; its NDJSON summary has the documented fields; --batch bounds the calls', async () => {
  link = await createSlowLink();
  const sink = await startSink(link, 9302, ['--count', '300']);
  const blast = await link.exec('a', [process.execPath, MAIN, 'blast', '--to', '127.0.0.1:9302', '--size', '64',
    '--count', '500', '--batch', '50', '--rate', '10k', '--json'], 20000);
  expect(blast.code).toBe(0);
  const sent = ndjson(blast.stdout).at(-1);
  expect(sent.datagrams).toBe(500);
  // At most 50 datagrams per call: at least 10 calls.
  expect(sent.syscalls).toBeGreaterThanOrEqual(10);
  const summary = await sinkSummary(sink);
  expect(Object.keys(summary).sort()).toEqual(['activeSeconds', 'bytes', 'chunks', 'datagrams', 'datagramsPerSecond', 'duplicates', 'foreign',
    'gbitPerSecond', 'kernel', 'lossPercent', 'lost', 'rcvbuf', 'receiveCalls', 'reordered', 'seconds', 'senders', 'tooLate', 'truncated', 'type']);
  expect(summary.datagrams).toBeGreaterThanOrEqual(300);
  expect(summary.datagrams).toBeLessThanOrEqual(500);
  expect(summary).toMatchObject({ duplicates: 0, foreign: 0 });
  expect(summary.senders[0]).toMatchObject({ session: ndjson(blast.stdout)[0].session, thread: 0 });
  const exit = await new Promise<number | null>((resolve) => {
    if (sink.exit !== null) resolve(sink.exit.code);
    else sink.child.once('exit', (code) => resolve(code));
  });
  expect(exit).toBe(0);
});

test('bench --chart draws an SVG; --json to stdout parses', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-bench-'));
  try {
    const chart = path.join(dir, 'chart.svg');
    const result = await runCli(['bench', '--count', '2000', '--reps', '1', '--sizes', '64,512', '--contenders', 'dgram,plain,packed-gso',
      '--chart', chart, '--json'], 60000);
    expect([result.code, result.stderr.includes('bench failed')]).toEqual([0, false]);
    const report = JSON.parse(result.stdout);
    expect(report.summaries).toHaveLength(6);
    const svg = fs.readFileSync(chart, 'utf8');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    for (const text of ['datagrams/s', 'node:dgram', 'wsk-dgram plain batch', 'wsk-dgram packed GSO', '64 B', '512 B']) expect(svg).toContain(text);
    // One bar per contender and size: vega draws each as a path of the rect mark.
    const bars = svg.match(/<path [^>]*aria-roledescription="bar"/g) ?? [];
    expect(bars).toHaveLength(6);
    expect(result.stderr).toContain(`chart: ${chart}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 70000);

test('bench without a C compiler skips the C contenders with a clear line and counts with the JavaScript receiver', async () => {
  const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'cli-cache-'));
  try {
    const result = await runCli(['bench', '--count', '300', '--reps', '1', '--sizes', '64', '--contenders', 'plain,c-sendmmsg', '--json'],
      60000, { ...process.env, CC: '/nonexistent/cc', WSK_DGRAM_CACHE: cache });
    expect(result.code).toBe(0);
    expect(result.stderr).toContain("no C compiler: '/nonexistent/cc' was not found");
    expect(result.stderr).toContain('skipping the C reference sender (c-sendmmsg)');
    const report = JSON.parse(result.stdout);
    expect(report.meta.contenders).toEqual(['plain']);
    expect(report.meta.noCompiler).toMatch(/no C compiler/);
    expect(report.runs).toHaveLength(1);
    expect(report.runs[0]).toMatchObject({ sent: 300 });
    expect(report.runs[0].received).toBeGreaterThan(0);
    expect(report.runs[0].received).toBeLessThanOrEqual(300);
  } finally {
    fs.rmSync(cache, { recursive: true, force: true });
  }
}, 70000);
