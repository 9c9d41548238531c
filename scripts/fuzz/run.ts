/**
 * `npm run fuzz`: property-based fuzzing of the native binding, the WSK layer, the idiomatic
 * socket API and the socket options of both with fast-check. Each target runs in a child
 * process (dist/scripts/fuzz/child.js), inside a private network namespace of its own
 * (`unshare --net`), so that:
 * - a crash in native code (SIGSEGV, SIGABRT) is reported with the case that caused it, and the
 *   target goes on from the next case;
 * - a case that never ends is noticed (the child writes each case's index to a status file;
 *   a file unchanged for --hang-seconds means a hang), killed, reported and skipped;
 * - fuzzed addresses have no route out of the machine.
 *
 * Exit status: 0 when no target found anything, 1 when any did (property failure, crash or
 * hang), 2 for a usage error, 3 when the fuzzer itself could not run.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import type { ChildConfig } from './child';
import { TARGETS, type TargetName } from './common';
import { signatureOf, type ChildMessage, type Finding, type TargetReport } from './harness';
import { currentNamespace } from './loopback';

const DEFAULTS = { runs: 2000, seconds: 20, shrinkSeconds: 5, maxFindings: 8, hangSeconds: 20, maxRestarts: 50 };
/** Case kinds that --exclude can switch off, for exploration only (never in a default run). */
const EXCLUDABLE = ['huge', 'racy', 'terminate', 'lying'];

interface Options {
  targets: TargetName[];
  runs: number;
  seconds: number;
  seed: number;
  path: string;
  json: boolean;
  shrinkSeconds: number;
  maxFindings: number;
  hangSeconds: number;
  maxRestarts: number;
  netns: boolean;
  exclude: string[];
  printCases: boolean;
  verbose: boolean;
}

function usage(status: number): never {
  (status === 0 ? process.stdout : process.stderr).write(
    'usage: npm run fuzz -- [options]\n' +
      '  --target T          native | wsk | socket | options | all (default all)\n' +
      `  --runs N            cases per target (default ${DEFAULTS.runs})\n` +
      `  --seconds S         time bound per target; stops at whichever of runs/seconds comes first (default ${DEFAULTS.seconds})\n` +
      '  --seed N            fast-check seed (default: random, printed)\n' +
      '  --path P            with one --target: start at case P ("K"), or replay a counterexample ("K:a:b")\n' +
      '  --json              print the report as JSON on stdout (human lines go to stderr)\n' +
      `  --shrink-seconds S  time bound for shrinking each failure (default ${DEFAULTS.shrinkSeconds})\n` +
      `  --max-findings N    stop a target after N findings (default ${DEFAULTS.maxFindings})\n` +
      `  --hang-seconds S    a case running this long is a hang (default ${DEFAULTS.hangSeconds})\n` +
      `  --max-restarts N    restarts of a target after crashes/hangs (default ${DEFAULTS.maxRestarts})\n` +
      '  --no-netns          run in this network namespace (no slow lane, no unroutable addresses)\n' +
      `  --exclude L         EXPLORATION ONLY: switch off case kinds (${EXCLUDABLE.join(',')})\n` +
      '  --print-cases       print every case before running it (with --path, to see a crashing case)\n' +
      '  --verbose           forward the children\'s stderr\n',
  );
  process.exit(status);
}

function usageError(message: string): never {
  process.stderr.write(`fuzz: ${message}\n`);
  usage(2);
}

function integer(text: string, name: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < min || value > max) {
    usageError(`--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return value;
}

function parseOptions(): Options {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        target: { type: 'string', default: 'all' },
        runs: { type: 'string', default: String(DEFAULTS.runs) },
        seconds: { type: 'string', default: String(DEFAULTS.seconds) },
        seed: { type: 'string' },
        path: { type: 'string', default: '' },
        json: { type: 'boolean', default: false },
        'shrink-seconds': { type: 'string', default: String(DEFAULTS.shrinkSeconds) },
        'max-findings': { type: 'string', default: String(DEFAULTS.maxFindings) },
        'hang-seconds': { type: 'string', default: String(DEFAULTS.hangSeconds) },
        'max-restarts': { type: 'string', default: String(DEFAULTS.maxRestarts) },
        'no-netns': { type: 'boolean', default: false },
        exclude: { type: 'string', default: '' },
        'print-cases': { type: 'boolean', default: false },
        verbose: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    usageError((error as Error).message);
  }
  if (values.help) usage(0);
  const targets: TargetName[] = values.target === 'all' ? [...TARGETS]
    : (TARGETS as readonly string[]).includes(values.target) ? [values.target as TargetName]
      : usageError(`--target must be native, wsk, socket, options or all, got ${JSON.stringify(values.target)}`);
  if (values.path !== '' && !/^\d+(:\d+)*$/.test(values.path)) usageError(`--path must look like 12 or 12:0:3, got ${values.path}`);
  if (values.path !== '' && targets.length !== 1) usageError('--path needs one --target');
  const exclude = values.exclude.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const kind of exclude) if (!EXCLUDABLE.includes(kind)) usageError(`--exclude: unknown kind ${kind}`);
  const seed = values.seed === undefined ? (Date.now() ^ Math.floor(Math.random() * 0x7fffffff)) | 0
    : Number(values.seed);
  if (!Number.isSafeInteger(seed)) usageError(`--seed must be an integer, got ${String(values.seed)}`);
  return {
    targets,
    runs: integer(values.runs, 'runs', 1, 100_000_000),
    seconds: integer(values.seconds, 'seconds', 1, 7 * 24 * 3600),
    seed: seed | 0,
    path: values.path,
    json: values.json,
    shrinkSeconds: integer(values['shrink-seconds'], 'shrink-seconds', 0, 3600),
    maxFindings: integer(values['max-findings'], 'max-findings', 1, 1000),
    hangSeconds: integer(values['hang-seconds'], 'hang-seconds', 2, 3600),
    maxRestarts: integer(values['max-restarts'], 'max-restarts', 0, 10000),
    netns: !values['no-netns'],
    exclude,
    printCases: values['print-cases'],
    verbose: values.verbose,
  };
}

// ---------------------------------------------------------------------------------------------
// One child

interface ChildRun {
  report: TargetReport | null;
  error: string | null;
  progress: Extract<ChildMessage, { type: 'progress' }> | null;
  /** Findings the child told of, by the index of the case that first failed. */
  failing: Map<number, Finding>;
  /** Signatures of failures the child saw again. */
  repeats: string[];
  cases: Array<{ index: number; text: string }>;
  code: number | null;
  signal: NodeJS.Signals | null;
  hung: boolean;
  timedOut: boolean;
  stderrTail: string;
  status: { phase: string; index: number; kind: string } | null;
}

const CHILD_SCRIPT = path.join(__dirname, 'child.js');

function readStatus(file: string): ChildRun['status'] {
  try {
    const text = fs.readFileSync(file, 'utf8').trim();
    const [phase, index, kind] = text.split(/\s+/);
    if (phase === undefined || index === undefined || !/^\d+$/.test(index)) return null;
    return { phase, index: Number(index), kind: kind ?? '' };
  } catch {
    return null;
  }
}

function runChild(config: ChildConfig, options: Options, hardLimitMs: number): Promise<ChildRun> {
  const argv = [CHILD_SCRIPT, JSON.stringify(config)];
  const child = config.parentNamespace !== null
    ? spawn('unshare', ['--net', process.execPath, ...argv], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
    : spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const run: ChildRun = {
    report: null, error: null, progress: null, failing: new Map(), repeats: [], cases: [], code: null, signal: null,
    hung: false, timedOut: false, stderrTail: '', status: null,
  };
  const keep = (chunk: Buffer): void => {
    run.stderrTail = (run.stderrTail + chunk.toString('utf8')).slice(-16384);
    if (options.verbose) process.stderr.write(chunk);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('message', (message: ChildMessage | { type: 'error'; message: string }) => {
    switch (message.type) {
      case 'progress': run.progress = message; break;
      case 'failing':
      case 'finding': run.failing.set(message.finding.index, message.finding); break;
      case 'repeat': run.repeats.push(message.signature); break;
      case 'case': run.cases.push({ index: message.index, text: message.text }); break;
      case 'done': run.report = message.report; break;
      case 'error': run.error = message.message; break;
    }
  });
  const started = performance.now();
  let lastStatus = '';
  let lastChange = started;
  const watchdog = setInterval(() => {
    const now = performance.now();
    if (config.statusFile !== null) {
      let text = '';
      try {
        text = fs.readFileSync(config.statusFile, 'utf8');
      } catch {
        // not written yet
      }
      if (text !== lastStatus) {
        lastStatus = text;
        lastChange = now;
      }
    }
    if (now - lastChange > options.hangSeconds * 1000) {
      run.hung = true;
      child.kill('SIGKILL');
    } else if (now - started > hardLimitMs) {
      run.timedOut = true;
      child.kill('SIGKILL');
    }
  }, 250);
  // Messages still in the IPC pipe arrive before 'disconnect', possibly after 'close'.
  const disconnected = new Promise<void>((resolve) => {
    if (!child.connected) resolve();
    child.once('disconnect', () => resolve());
  });
  return new Promise((resolve) => {
    let exited = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (exited) return;
      exited = true;
      clearInterval(watchdog);
      run.code = code;
      run.signal = signal;
      if (config.statusFile !== null) run.status = readStatus(config.statusFile);
      const bound = new Promise<void>((r) => setTimeout(r, 3000));
      void Promise.race([disconnected, bound]).then(() => resolve(run));
    };
    child.once('close', finish);
    child.once('error', (error) => {
      run.error = `could not start the child: ${error.message}`;
      finish(null, null);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// One target: children until the runs, the time or the findings are used up

/** Names of a finding: for a property failure, its first and its shrunk message, numbers taken out. */
function signatures(finding: Finding): string[] {
  if (finding.type === 'property') {
    return [...new Set([signatureOf(finding.firstMessage ?? finding.message), signatureOf(finding.message)])];
  }
  return [`${finding.type}:${finding.signal ?? finding.exitCode ?? ''}:${finding.caseKind}`];
}

function mergeCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [key, value] of Object.entries(from)) into[key] = (into[key] ?? 0) + value;
}

function log(options: Options, line: string): void {
  (options.json ? process.stderr : process.stdout).write(`${line}\n`);
}

async function superviseTarget(target: TargetName, options: Options, parentNamespace: string | null,
  statusDir: string): Promise<TargetReport> {
  const started = performance.now();
  const report: TargetReport = {
    target, seed: options.seed, cases: 0, shrinkRuns: 0, seconds: 0, stoppedBy: 'runs', outcomes: {},
    figures: {}, findings: [], notes: [],
  };
  const seen = new Map<string, Finding>();
  const addFinding = (finding: Finding): boolean => {
    const keys = signatures(finding);
    const earlier = keys.map((key) => seen.get(key)).find((f) => f !== undefined);
    if (earlier !== undefined) {
      earlier.occurrences = (earlier.occurrences ?? 1) + 1;
      return false;
    }
    finding.occurrences = 1;
    for (const key of keys) seen.set(key, finding);
    report.findings.push(finding);
    return true;
  };
  const addRepeats = (run: ChildRun): void => {
    for (const key of run.repeats) {
      const earlier = seen.get(key);
      if (earlier !== undefined) earlier.occurrences = (earlier.occurrences ?? 1) + 1;
    }
  };
  const replay = options.path.includes(':');
  let nextPath = options.path;
  let restarts = 0;
  const statusFile = path.join(statusDir, `${target}.status`);
  for (;;) {
    const elapsed = (performance.now() - started) / 1000;
    const runs = options.runs - report.cases;
    const seconds = Math.ceil(options.seconds - elapsed);
    if (runs <= 0) { report.stoppedBy = 'runs'; break; }
    if (seconds <= 0) { report.stoppedBy = 'time'; break; }
    if (report.findings.length >= options.maxFindings) { report.stoppedBy = 'findings'; break; }
    const config: ChildConfig = {
      target, seed: options.seed, path: nextPath, runs, seconds, shrinkSeconds: options.shrinkSeconds,
      maxFindings: options.maxFindings - report.findings.length, statusFile, printCases: options.printCases,
      parentNamespace, exclude: options.exclude, known: [...seen.keys()],
    };
    const hardLimit = (seconds + 60) * 1000;
    const run = await runChild(config, options, hardLimit);
    for (const c of run.cases) log(options, `  case ${c.index}: ${c.text}`);
    if (run.report !== null) {
      report.cases += run.report.cases;
      report.shrinkRuns += run.report.shrinkRuns;
      mergeCounts(report.outcomes, run.report.outcomes);
      mergeCounts(report.figures, run.report.figures);
      for (const f of run.failing.values()) addFinding(f);
      addRepeats(run);
      for (const n of run.report.notes) if (!report.notes.includes(n)) report.notes.push(n);
      report.stoppedBy = run.report.stoppedBy;
      break;
    }
    if ((run.error !== null || run.status === null) && run.signal === null && !run.hung && !run.timedOut) {
      throw new Error(`the ${target} child failed before its first case: ${run.error ?? `exit ${String(run.code)}`}\n` +
        run.stderrTail.slice(-4000));
    }
    // Died or was killed: find the case from the status file, report it, go on after it.
    const first = nextPath === '' ? 0 : Number(nextPath.split(':')[0]);
    const status = run.status;
    const index = status?.index ?? first + (run.progress?.cases ?? 0);
    const phase = status?.phase ?? 'run';
    report.cases += Math.max(1, index - first + 1);
    if (run.progress !== null) {
      mergeCounts(report.outcomes, run.progress.outcomes);
      mergeCounts(report.figures, run.progress.figures);
    }
    const kind = run.hung ? 'hang' : 'crash';
    report.outcomes[kind] = (report.outcomes[kind] ?? 0) + 1;
    const what = run.hung ? `no progress for ${options.hangSeconds} s (killed)`
      : run.timedOut ? 'ran past its time bound (killed)'
        : run.signal !== null ? `killed by ${run.signal}` : `exited with code ${String(run.code)} without a report`;
    for (const f of run.failing.values()) {
      if (phase === 'shrink' && f.index === index) f.message += ` [shrinking was cut short: the process ${what}]`;
      addFinding(f);
    }
    addRepeats(run);
    const finding: Finding = {
      type: run.hung ? 'hang' : 'crash', target, seed: options.seed, index, path: String(index),
      caseKind: status?.kind ?? '', message: `${phase === 'shrink' ? 'while shrinking: ' : ''}the process ${what}`,
      counterexample: '', signal: run.signal, exitCode: run.code,
      stderrTail: run.stderrTail.split('\n').slice(-30).join('\n'),
    };
    if (phase !== 'shrink' && addFinding(finding) && !replay) {
      // Replay the case alone to print it and to see whether it reproduces.
      const again = await runChild({ ...config, path: String(index), runs: 1, seconds: options.hangSeconds + 5,
        maxFindings: 1, printCases: true, statusFile: `${statusFile}.replay` }, options, (options.hangSeconds + 30) * 1000);
      finding.counterexample = again.cases[0]?.text ?? '';
      finding.reproduced = again.hung ? 'hung again' : again.signal !== null ? `killed by ${again.signal} again`
        : again.report !== null ? `did not reproduce (${again.report.findings.length} findings on replay)`
          : `exit ${String(again.code)}`;
    }
    if (replay) break;
    if (++restarts > options.maxRestarts) { report.stoppedBy = 'restarts'; break; }
    nextPath = String(index + 1);
  }
  report.seconds = (performance.now() - started) / 1000;
  return report;
}

// ---------------------------------------------------------------------------------------------
// Report

function formatReport(report: TargetReport, options: Options): string {
  const lines: string[] = [];
  const rate = report.cases / Math.max(report.seconds, 1e-6);
  const stop = { runs: 'all runs done', time: 'time bound reached', findings: 'finding limit reached',
    crash: 'crashed', restarts: 'restart limit reached' }[report.stoppedBy];
  lines.push(`target ${report.target}: ${report.cases} cases in ${report.seconds.toFixed(1)} s ` +
    `(${rate.toFixed(0)} cases/s; stopped: ${stop}); shrink runs ${report.shrinkRuns}; seed ${report.seed}`);
  const outcomes = Object.entries(report.outcomes).sort((a, b) => b[1] - a[1]);
  lines.push(`  outcomes: ${outcomes.map(([k, v]) => `${k} ${v}`).join(', ') || 'none'}`);
  const figures = Object.entries(report.figures).filter(([, v]) => v !== 0);
  if (figures.length > 0) lines.push(`  figures: ${figures.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  for (const note of report.notes) lines.push(`  note: ${note}`);
  if (report.findings.length === 0) lines.push('  findings: none');
  report.findings.forEach((f, i) => {
    const times = (f.occurrences ?? 1) > 1 ? ` (seen ${f.occurrences} times)` : '';
    lines.push(`  finding ${i + 1} [${f.type}]${times}: ${f.message}`);
    lines.push(`    case ${f.index} (${f.caseKind}); replay: npm run fuzz -- --target ${f.target} --seed ${f.seed} --path ${f.path}` +
      (f.type === 'property' ? '' : ' --runs 1 --print-cases'));
    if (f.shrinkInterrupted === true) lines.push(`    shrinking stopped at its time bound after ${f.shrinkRuns ?? 0} runs`);
    if (f.reproduced !== undefined) lines.push(`    replayed alone: ${f.reproduced}`);
    if (f.counterexample !== '') {
      const text = f.counterexample.length > 4000 ? `${f.counterexample.slice(0, 4000)}...` : f.counterexample;
      lines.push(`    counterexample: ${text}`);
    }
    if (f.stderrTail !== undefined && f.stderrTail.trim() !== '') {
      lines.push('    stderr (tail):');
      for (const l of f.stderrTail.trim().split('\n').slice(-12)) lines.push(`      ${l}`);
    }
  });
  void options;
  return lines.join('\n');
}

async function main(): Promise<number> {
  const options = parseOptions();
  let parentNamespace: string | null = null;
  if (options.netns) {
    const probe = spawnSync('unshare', ['--net', 'true'], { stdio: 'ignore', timeout: 10000 });
    if (probe.status !== 0) {
      process.stderr.write('fuzz: `unshare --net` does not work here (root and util-linux are needed); ' +
        'run with --no-netns to fuzz in this namespace, without the slow lane\n');
      return 3;
    }
    parentNamespace = currentNamespace();
  }
  const statusDir = fs.mkdtempSync(path.join(os.tmpdir(), 'wsk-fuzz-'));
  log(options, `fuzz: seed ${options.seed}, targets ${options.targets.join(', ')}, ${options.runs} runs / ` +
    `${options.seconds} s per target${options.netns ? '' : ', in this namespace'}` +
    (options.exclude.length > 0 ? `, EXPLORATION: excluding ${options.exclude.join(',')}` : ''));
  const reports: TargetReport[] = [];
  try {
    for (const target of options.targets) {
      const report = await superviseTarget(target, options, parentNamespace, statusDir);
      reports.push(report);
      log(options, formatReport(report, options));
    }
  } finally {
    fs.rmSync(statusDir, { recursive: true, force: true });
  }
  const findings = reports.reduce((n, r) => n + r.findings.length, 0);
  log(options, findings === 0 ? 'fuzz: no findings' : `fuzz: ${findings} finding(s)`);
  if (options.json) process.stdout.write(`${JSON.stringify({ seed: options.seed, ok: findings === 0, targets: reports }, null, 2)}\n`);
  return findings === 0 ? 0 : 1;
}

main().then(
  (status) => process.exit(status),
  (error: unknown) => {
    process.stderr.write(`fuzz: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    process.exit(3);
  },
);
