/**
 * The benchmark (`npm run bench`) runs end to end on a tiny count, so that it cannot rot: every
 * contender sends everything, the receiver counts, and the targets are evaluated.
 * Timings are not checked (that is the bench's job, not a test's).
 */
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const script = path.join(__dirname, '..', '..', 'dist', 'scripts', 'bench', 'bench.js');
const COUNT = 3000;
const CONTENDERS = [
  'dgram', 'dgram-connected', 'plain', 'packed-plain', 'gso', 'packed-gso', 'wsk',
  'c-sendto', 'c-sendmmsg', 'c-gso', 'dgram-fanout', 'fanout', 'c-fanout',
];
const FANOUT = ['dgram-fanout', 'fanout', 'c-fanout'];
const FANOUT_PEERS = 64;

interface Run {
  contender: string;
  size: number;
  sent: number;
  bytes: number;
  received: number;
  receivingPorts: number;
  lost: number;
  seconds: number;
  userUs: number;
  sysUs: number;
  datagramsPerSecond: number;
}

interface Report {
  meta: { count: number; family: number; sizes: number[]; contenders: string[]; gsoInEffect: boolean | null;
    fanoutPeers: number; fanoutPayloads: number };
  runs: Run[];
  summaries: { contender: string; size: number; datagramsPerSecond: number; vsDgram: number | null;
    matching: string | null; vsMatching: number | null; userUsPerDatagram: number; lossPercent: number;
    datagramsPerMessage: number | null }[];
  targets: { target: string; size: number; measured: number | null; unit: string; pass: boolean | null }[];
}

function runBench(args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [script, ...args], { encoding: 'utf8', timeout: 25000 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`bench failed: ${error.message}\n${stderr}`));
      else resolve({ stdout, stderr });
    });
  });
}

let directory: string;
beforeAll(() => {
  directory = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-smoke-'));
});
afterAll(() => {
  fs.rmSync(directory, { recursive: true, force: true });
});

test('IPv4: every contender sends every datagram and the report is complete', async () => {
  const file = path.join(directory, 'bench4.json');
  const { stdout } = await runBench(['--count', String(COUNT), '--reps', '1', '--sizes', '1200', '--json', file]);
  const report = JSON.parse(fs.readFileSync(file, 'utf8')) as Report;

  expect(report.meta).toMatchObject({ count: COUNT, sizes: [1200], contenders: CONTENDERS, family: 4 });
  expect(report.runs.map((r) => r.contender).sort()).toEqual([...CONTENDERS].sort());
  for (const run of report.runs) {
    // A few thousand datagrams fit the receiver's buffer many times over: all must be counted,
    // which shows that the receiver attributes datagrams to runs correctly.
    expect(run).toMatchObject({ size: 1200, sent: COUNT, bytes: COUNT * 1200, received: COUNT, lost: 0 });
    expect(run.seconds).toBeGreaterThan(0);
    expect(run.userUs).toBeGreaterThanOrEqual(0);
    expect(run.sysUs).toBeGreaterThanOrEqual(0);
    expect(Number.isFinite(run.datagramsPerSecond) && run.datagramsPerSecond > 0).toBe(true);
    // A fan-out reaches every peer port of the receiver; every other sender only the first.
    expect([run.contender, run.receivingPorts]).toEqual([run.contender, FANOUT.includes(run.contender) ? FANOUT_PEERS : 1]);
  }
  expect(report.meta).toMatchObject({ fanoutPeers: FANOUT_PEERS, fanoutPayloads: 1 });
  // "GSO in effect" agrees with what the GSO sockets did: super-packets, or one message each.
  expect(typeof report.meta.gsoInEffect).toBe('boolean');
  for (const id of ['gso', 'packed-gso']) {
    const perMessage = report.summaries.find((s) => s.contender === id)!.datagramsPerMessage!;
    expect([id, perMessage > 1]).toEqual([id, report.meta.gsoInEffect]);
  }

  expect(report.summaries).toHaveLength(CONTENDERS.length);
  for (const summary of report.summaries) {
    expect(Number.isFinite(summary.vsDgram) && summary.vsDgram! > 0).toBe(true);
    if (summary.matching !== null) expect(Number.isFinite(summary.vsMatching) && summary.vsMatching! > 0).toBe(true);
  }

  // Every target of issues 5 and 10 is evaluated at 1200 B, with a finite measure and a verdict.
  expect(report.targets.map((t) => t.target).sort()).toEqual([
    'GSO vs node:dgram',
    'WSK layer vs plain batch',
    'fan-out 64 vs C fan-out',
    'fan-out 64 vs node:dgram fan-out',
    'packed GSO user CPU per datagram',
    'packed GSO vs C UDP_SEGMENT',
    'packed plain vs C sendmmsg',
    'plain batch user CPU per datagram',
    'plain batch vs node:dgram',
  ]);
  for (const t of report.targets) {
    expect(t.measured).not.toBeNull();
    if (t.unit === 'x') expect(t.measured! > 0 && Number.isFinite(t.measured)).toBe(true);
    else expect(t.measured! >= 0 && Number.isFinite(t.measured)).toBe(true);
    expect(typeof t.pass).toBe('boolean');
  }

  // The printed report has the table and the targets section.
  expect(stdout).toContain('1200 B payload');
  for (const name of ['node:dgram', 'wsk-dgram plain batch', 'wsk-dgram packed plain', 'wsk-dgram GSO',
    'wsk-dgram packed GSO', 'WSK layer (MDL chains)', 'C sendto', 'C sendmmsg', 'C UDP_SEGMENT',
    'node:dgram fan-out 64', 'wsk-dgram fan-out 64', 'C sendmmsg fan-out 64']) {
    expect(stdout).toContain(name);
  }
  expect(stdout).toMatch(/^targets /m);
  expect(stdout).toMatch(/^ +1200 B {2}packed plain vs C sendmmsg >= 0\.97x +[\d.]+x {2}(PASS|MISS) /m);
  expect(stdout).toMatch(/^ +1200 B {2}fan-out 64 vs node:dgram fan-out >= 1\.5x +[\d.]+x {2}(PASS|MISS) /m);
}, 30000);

test('IPv6: every contender sends to ::1 and the receiver counts there', async () => {
  const file = path.join(directory, 'bench6.json');
  await runBench(['--count', '2000', '--reps', '1', '--sizes', '64', '--family', '6', '--json', file]);
  const report = JSON.parse(fs.readFileSync(file, 'utf8')) as Report;
  expect(report.meta).toMatchObject({ family: 6, sizes: [64], contenders: CONTENDERS });
  expect(report.runs).toHaveLength(CONTENDERS.length);
  for (const run of report.runs) {
    expect(run).toMatchObject({ size: 64, sent: 2000, bytes: 2000 * 64, received: 2000, lost: 0 });
    expect([run.contender, run.receivingPorts]).toEqual([run.contender, FANOUT.includes(run.contender) ? FANOUT_PEERS : 1]);
  }
  // 64 B is not 1200 B, nor one of the packed-GSO-vs-C sizes: those targets are not evaluated.
  const targets = report.targets.map((t) => t.target);
  expect(targets).not.toContain('GSO vs node:dgram');
  expect(targets).not.toContain('packed GSO vs C UDP_SEGMENT');
  expect(targets).toContain('fan-out 64 vs C fan-out');
}, 30000);

test('fan-out with several payloads per peer, and a last round that ends inside a peer\'s share', async () => {
  // 3 payloads to each of 64 peers: 192 per round; 1000 = 5 rounds and 40 datagrams, which end
  // inside peer 13's share.
  const file = path.join(directory, 'fanout.json');
  await runBench(['--count', '1000', '--reps', '1', '--sizes', '512', '--fanout-payloads', '3',
    '--contenders', FANOUT.join(','), '--json', file]);
  const report = JSON.parse(fs.readFileSync(file, 'utf8')) as Report;
  expect(report.meta).toMatchObject({ contenders: FANOUT, fanoutPeers: FANOUT_PEERS, fanoutPayloads: 3 });
  expect(report.runs.map((r) => r.contender)).toEqual(expect.arrayContaining(FANOUT));
  expect(report.runs).toHaveLength(FANOUT.length);
  for (const run of report.runs) {
    expect(run).toMatchObject({ size: 512, sent: 1000, bytes: 1000 * 512, received: 1000, lost: 0, receivingPorts: FANOUT_PEERS });
  }
}, 30000);

test('bad options are refused with usage and exit code 2', () => {
  for (const args of [['--sizes', '4'], ['--contenders', 'nope'], ['--family', '5'], ['--bogus'],
    ['--fanout-payloads', '0'], ['--fanout-payloads', '17']]) {
    expect(() => execFileSync(process.execPath, [script, ...args], { stdio: 'pipe', timeout: 10000 }))
      .toThrow(expect.objectContaining({ status: 2 }));
  }
});
