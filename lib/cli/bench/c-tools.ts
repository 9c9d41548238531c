/**
 * The bench's two C programs (scripts/c/): building them with the system compiler into a cache
 * directory, the counting receiver as a child process, and one run of the C reference sender.
 */
import { execFile, execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';

/**
 * The package root: the nearest directory above this file with the package's package.json
 * (lib/cli/bench/ in the repo, dist/lib/cli/bench/ compiled, or the same inside node_modules).
 */
export const packageRoot = findPackageRoot(__dirname);

function findPackageRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    try {
      const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown };
      if (manifest.name === 'wsk-dgram') return dir;
    } catch {
      // no package.json here: look further up
    }
    if (path.dirname(dir) === dir) return path.resolve(from, '..', '..', '..');
  }
}

/** The C sources the bench builds; they ship with the package (scripts/c/). */
export const cSourceDir = path.join(packageRoot, 'scripts', 'c');

/**
 * Where built C programs are kept: $WSK_DGRAM_CACHE, else $XDG_CACHE_HOME/wsk-dgram or
 * ~/.cache/wsk-dgram, else the temporary directory. Never inside the package, which may be
 * read-only (a global install, npx's cache).
 */
export function cacheDir(): string {
  if (process.env.WSK_DGRAM_CACHE) return process.env.WSK_DGRAM_CACHE;
  const base = process.env.XDG_CACHE_HOME || (os.homedir() ? path.join(os.homedir(), '.cache') : '');
  return base ? path.join(base, 'wsk-dgram') : path.join(os.tmpdir(), `wsk-dgram-cache-${process.getuid?.() ?? 'user'}`);
}

/** Thrown when there is no C compiler (the bench then goes on without its C programs). */
export class NoCompilerError extends Error {
  override readonly name = 'NoCompilerError';
}

/**
 * Compiles scripts/c/NAME.c with `$CC -O2` (default `cc`) into the cache directory, once per
 * source content (the binary's name carries a hash of the source and the compiler), and
 * returns the binary's path. Throws NoCompilerError when the compiler is not there, an Error
 * with the compiler's output when it fails.
 */
export function buildCProgram(name: string): string {
  const source = path.join(cSourceDir, `${name}.c`);
  let text: Buffer;
  try {
    text = fs.readFileSync(source);
  } catch {
    throw new NoCompilerError(`the C source ${source} is not there (the package ships scripts/c/)`);
  }
  const compiler = process.env.CC || 'cc';
  const hash = crypto.createHash('sha256').update(text).update(`\0${compiler}`).digest('hex').slice(0, 16);
  const outputDir = cacheDir();
  const binary = path.join(outputDir, `${name}-${hash}`);
  if (fs.existsSync(binary)) return binary;
  fs.mkdirSync(outputDir, { recursive: true });
  // Build beside the target and rename: a concurrent bench never runs a half-written binary.
  const temporary = `${binary}.${process.pid}.tmp`;
  try {
    execFileSync(compiler, ['-O2', '-Wall', '-o', temporary, source], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stderr?: Buffer };
    if (failure.code === 'ENOENT') {
      throw new NoCompilerError(`no C compiler: '${compiler}' was not found (install gcc or clang, ` +
        'Debian: apt-get install gcc, or set CC)');
    }
    throw new Error(`${compiler} failed to compile ${source}:\n${failure.stderr?.toString() ?? failure.message}`);
  }
  fs.renameSync(temporary, binary);
  return binary;
}

/** The JavaScript counting receiver (js-counter.ts), for when there is no C compiler. */
export function jsCounterCommand(): string[] {
  return [process.execPath, path.join(__dirname, 'js-counter.js')];
}

/** What the counting receiver saw of one run (scripts/c/counter.c). */
export interface CountReport {
  run: number;
  datagrams: number;
  bytes: number;
  /** How many of the receiver's sockets got datagrams of the run (a fan-out reaches them all). */
  sockets: number;
  /** Datagrams the kernel dropped for lack of receive buffer since the previous report. */
  drops: number;
  /** Running totals: datagrams of runs already reported, and datagrams without a run id. */
  late: number;
  foreign: number;
  /** The receiver's own CPU time so far (user + system, microseconds). */
  cpu: number;
}

/** The receiver's first line: its ports and the receive buffer the kernel granted. */
interface CounterHello {
  port: number;
  ports: number[];
  rcvbuf: number;
}

/** Machine-wide CPU time from /proc/stat, in microseconds summed over all CPUs. */
export interface CpuTimes {
  /**
   * user + nice + system + irq + softirq. With tick-based accounting (no
   * CONFIG_IRQ_TIME_ACCOUNTING) a softirq tick is charged both to the interrupted task and to
   * the softirq column, so all five are needed to compare with the tasks' own CPU times.
   */
  busy: number;
  /** Time the hypervisor ran something else while this VM wanted to run. */
  steal: number;
}

let clockTicks: number | undefined;

/** Reads the aggregate line of /proc/stat; null where there is none (not Linux). */
export function readCpuTimes(): CpuTimes | null {
  let line: string | undefined;
  try {
    line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  } catch {
    return null;
  }
  if (line === undefined || !line.startsWith('cpu ')) return null;
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100; // USER_HZ on every Linux architecture Node runs on
    }
  }
  const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] =
    line.trim().split(/\s+/).slice(1).map(Number);
  const us = 1e6 / clockTicks;
  return { busy: (user + nice + system + irq + softirq) * us, steal: steal * us };
}

/**
 * The counting receiver: a child process with one or more sockets on the loopback address of
 * `family`, counting what arrives on all of them.
 */
export class Counter {
  /** The first socket's port: where single-destination senders send. */
  readonly port: number;
  /** Every socket's port, the first included: a fan-out's destinations. */
  readonly ports: readonly number[];
  readonly receiveBuffer: number;
  /** Running totals of the last report: datagrams that arrived after their run's report, or
   * without a run id. Both should stay 0. */
  late = 0;
  foreign = 0;
  /** The receiver's CPU time (user + system, microseconds) at its last report. */
  cpu = 0;
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: AsyncIterator<string>;
  /** Rejects when the child ends or cannot start: raced against every wait for a line. */
  readonly #exited: Promise<never>;

  private constructor(child: ChildProcessWithoutNullStreams, lines: AsyncIterator<string>,
    exited: Promise<never>, hello: CounterHello) {
    this.#child = child;
    this.#lines = lines;
    this.#exited = exited;
    this.port = hello.port;
    this.ports = hello.ports;
    this.receiveBuffer = hello.rcvbuf;
  }

  /**
   * Starts the receiver with `sockets` sockets, each asking for `receiveBuffer` bytes:
   * `command` is the C binary, or node and the JavaScript counter (jsCounterCommand()).
   */
  static async start(command: string | readonly string[], family: 4 | 6, receiveBuffer: number, sockets = 1): Promise<Counter> {
    const [program, ...prefix] = typeof command === 'string' ? [command] : command;
    const child = spawn(program!, [...prefix, String(family), String(receiveBuffer), String(sockets)],
      { stdio: ['pipe', 'pipe', 'pipe'] });
    child.stderr.on('data', (chunk: Buffer) => process.stderr.write(chunk));
    const lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
    const exited = new Promise<never>((_, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`the counting receiver exited (status ${code})`)));
    });
    exited.catch(() => undefined); // only observed while waiting for a line
    const first = await Promise.race([lines.next(), exited]);
    if (first.done) throw new Error('the counting receiver printed nothing');
    const hello = JSON.parse(first.value) as CounterHello;
    if (hello.ports.length !== sockets || new Set(hello.ports).size !== sockets) {
      throw new Error(`the counting receiver opened ports ${hello.ports.join(',')}, not ${sockets} distinct ones`);
    }
    return new Counter(child, lines, exited, hello);
  }

  /** Waits until the socket is quiet, then returns what arrived for `run`. */
  async report(run: number): Promise<CountReport> {
    this.#child.stdin.write(`R ${run}\n`);
    const line = await Promise.race([this.#lines.next(), this.#exited]);
    if (line.done) throw new Error('the counting receiver stopped answering');
    const report = JSON.parse(line.value) as CountReport;
    if (report.run !== run) throw new Error(`the counting receiver answered for run ${report.run}, not ${run}`);
    this.late = report.late;
    this.foreign = report.foreign;
    this.cpu = report.cpu;
    return report;
  }

  /** Ends the receiver (closing its stdin) and waits for it. */
  async close(): Promise<void> {
    if (this.#child.exitCode !== null) return;
    const done = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    this.#child.stdin.end();
    await done;
  }
}

/** The C reference sender's modes (scripts/c/ref_sender.c). */
export type RefMode = 'sendto' | 'sendmmsg' | 'gso' | 'fanout';

/** What ref_sender prints: its own send-loop time and getrusage deltas (microseconds). */
export interface RefResult {
  mode: RefMode;
  datagrams: number;
  bytes: number;
  seconds: number;
  user: number;
  sys: number;
  calls: number;
  /** Segments per UDP_SEGMENT super-packet (gso mode), 0 otherwise. */
  segments: number;
}

/**
 * Runs the C reference sender once and returns its report. `ports` is one port, or for fanout
 * every destination's; `batch` is datagrams per call, or for fanout datagrams per destination
 * per call.
 */
export function runRefSender(binary: string, mode: RefMode, host: string, ports: readonly number[],
  size: number, count: number, batch: number, run: number): Promise<RefResult> {
  const args = [mode, host, ports.join(','), String(size), String(count), String(batch), String(run)];
  return new Promise((resolve, reject) => {
    execFile(binary, args, { encoding: 'utf8', timeout: 600_000 }, (error, stdout, stderr) => {
      if (error) {
        reject(new Error(`ref_sender ${args.join(' ')} failed: ${stderr.trim() || error.message}`));
        return;
      }
      try {
        resolve(JSON.parse(stdout) as RefResult);
      } catch {
        reject(new Error(`ref_sender printed no JSON: ${stdout}`));
      }
    });
  });
}
