/**
 * A slow link for the integration tests: two fresh network namespaces joined by a veth pair,
 * with a token-bucket qdisc on the sender's side, so that a non-blocking sendmmsg with a small
 * SO_SNDBUF really meets a full socket buffer (partial counts, EAGAIN). Loopback never does.
 *
 *   namespace A (sender)                         namespace B (receiver)
 *   va 198.18.k.1/24, fd00:k::1/64  <== veth ==>  vb 198.18.k.2/24, fd00:k::2/64
 *   qdisc: tbf rate 10mbit burst 32kbit
 *
 * Needs root and iproute2 (`ip`, `tc`); `createSlowLink` THROWS when they are not usable, so a
 * test that needs the link fails instead of being skipped. Only the two namespaces it creates
 * (and the veth inside them) are ever touched: never the host's namespace, never an address
 * outside 198.18.0.0/15 and fd00::/8. Call `destroy()` in afterEach/finally.
 *
 * Children (sender and receiver) are node processes run with `ip netns exec NS node script`,
 * which execs node in place, so the child's pid and signals are node's own.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';

export const FIXTURES = path.join(__dirname, 'fixtures');
export const SENDER_SCRIPT = path.join(FIXTURES, 'slow-sender.js');
export const RECEIVER_SCRIPT = path.join(FIXTURES, 'slow-receiver.js');

/** Every namespace name made here starts with this, then `<pid>-<counter>-a|b`. */
export const NAMESPACE_PREFIX = 'wsk-sl-';

export interface SlowLinkOptions {
  /** tbf rate on the sender's veth (default '10mbit'). */
  rate?: string;
  /** tbf burst (default '32kbit'). */
  burst?: string;
  /** tbf queue limit in bytes (default 10,000,000: the qdisc itself never drops). */
  limit?: number;
}

export type Side = 'a' | 'b';

export interface ExecResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface SlowLink {
  /** Namespace names: `a` is the sender's side (with the qdisc), `b` the receiver's. */
  readonly names: { readonly a: string; readonly b: string };
  /** Interface names inside the namespaces. */
  readonly interfaces: { readonly a: string; readonly b: string };
  /** Addresses without prefix length. */
  readonly ipv4: { readonly a: string; readonly b: string };
  readonly ipv6: { readonly a: string; readonly b: string };
  readonly rate: string;
  /** The address of `side` for IPv`family`. */
  address(side: Side, family: 4 | 6): string;
  /** Runs `argv` inside namespace `ns` (a side or a namespace name), bounded by `timeoutMs`. */
  exec(ns: Side | string, argv: readonly string[], timeoutMs?: number): Promise<ExecResult>;
  /** Starts `node script ...args` inside namespace `ns`; the link kills it on destroy(). */
  spawnNode(ns: Side | string, script: string, args: readonly string[]): ChildProcess;
  /** Kills the link's children still running, then deletes both namespaces (and the veth). Idempotent. */
  destroy(): Promise<void>;
  readonly destroyed: boolean;
}

// -----------------------------------------------------------------------------------------------
// running commands

const COMMAND_TIMEOUT_MS = 10000;

/**
 * The environment of the system tools run here (ip, tc): without the sanitizer runtime that
 * scripts/run-asan.sh preloads for node, which would check iproute2 itself (and abort on its
 * own strncpy in `ip route show`). The node children of spawnNode keep it.
 */
function toolEnvironment(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.LD_PRELOAD;
  return env;
}

function run(file: string, argv: readonly string[], timeoutMs = COMMAND_TIMEOUT_MS): Promise<ExecResult> {
  return new Promise((resolve) => {
    execFile(file, [...argv], { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 16 << 20, env: toolEnvironment() },
      (error, stdout, stderr) => {
        if (error === null) {
          resolve({ code: 0, signal: null, stdout, stderr });
          return;
        }
        const e = error as NodeJS.ErrnoException & { code?: unknown; signal?: NodeJS.Signals | null };
        resolve({
          code: typeof e.code === 'number' ? e.code : null,
          signal: e.signal ?? null,
          stdout: String(stdout ?? ''),
          stderr: String(stderr ?? '') + (typeof e.code === 'string' ? `${e.code}: ${e.message}` : ''),
        });
      });
  });
}

async function must(file: string, argv: readonly string[]): Promise<string> {
  const result = await run(file, argv);
  if (result.code !== 0) {
    throw new Error(`\`${file} ${argv.join(' ')}\` failed (${result.signal ?? `exit ${String(result.code)}`}): ` +
      result.stderr.trim());
  }
  return result.stdout;
}

// -----------------------------------------------------------------------------------------------
// bookkeeping: every link of this process, so that nothing survives the process

let counter = 0;
let staleSwept = false;

/**
 * If this process dies without destroy() (SIGKILL, a crash, jest killing its worker: jest's
 * sandbox never sees the process's 'exit' event), a detached janitor deletes the namespaces
 * once it is gone. It ends by itself, within a second, once both namespaces are gone.
 */
function startJanitor(names: { a: string; b: string }): void {
  const exists = (name: string): string => `[ -e /run/netns/${name} ]`;
  const script = `while kill -0 ${process.pid} 2>/dev/null && { ${exists(names.a)} || ${exists(names.b)}; }; ` +
    `do sleep 1; done; ip netns del ${names.a} 2>/dev/null; ip netns del ${names.b} 2>/dev/null; exit 0`;
  try {
    spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' }).unref();
  } catch {
    // best effort: sweepStale() also removes what a dead process left
  }
}

/** Deletes namespaces of ours left behind by a process that no longer exists. */
async function sweepStale(): Promise<void> {
  if (staleSwept) return;
  staleSwept = true;
  const listing = await run('ip', ['netns', 'list']);
  if (listing.code !== 0) return;
  for (const line of listing.stdout.split('\n')) {
    const match = new RegExp(`^(${NAMESPACE_PREFIX}(\\d+)-\\d+-[ab])\\b`).exec(line.trim());
    if (match === null) continue;
    const pid = Number(match[2]);
    let alive = true;
    try {
      process.kill(pid, 0);
    } catch (e) {
      alive = (e as NodeJS.ErrnoException).code !== 'ESRCH';
    }
    if (!alive) await run('ip', ['netns', 'del', match[1] as string]);
  }
}

/** Throws, saying why, unless namespaces can be made here (root, ip, tc). */
export async function checkUsable(): Promise<void> {
  const problems: string[] = [];
  if (process.platform !== 'linux') problems.push(`platform is ${process.platform}, not linux`);
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    problems.push(`not root (uid ${process.getuid()})`);
  }
  const ip = await run('ip', ['netns', 'list']);
  if (ip.code !== 0) problems.push(`\`ip netns list\` failed: ${ip.stderr.trim() || `exit ${String(ip.code)}`}`);
  const tc = await run('tc', ['-V']);
  if (tc.code !== 0) problems.push(`\`tc -V\` failed: ${tc.stderr.trim() || `exit ${String(tc.code)}`}`);
  if (problems.length > 0) {
    throw new Error('createSlowLink: network namespaces are not usable here (' + problems.join('; ') +
      '). The slow-link tests need root and iproute2 (ip, tc) with netns and tbf support; ' +
      'they are never skipped.');
  }
}

// -----------------------------------------------------------------------------------------------
// the link

/**
 * Creates two new namespaces `wsk-sl-<pid>-<n>-a` and `...-b`, a veth pair `va` (in a) / `vb`
 * (in b) created directly between them, IPv4 198.18.k.1/.2 (/24) and IPv6 fd00:k::1/::2 (/64,
 * nodad), lo and the veth up on both sides, permanent neighbour entries (so that no datagram
 * waits in, or is dropped from, an ARP/ND queue), and on va: `tbf rate <rate> burst <burst>
 * limit <limit>`. Throws, after undoing what it made, if anything fails.
 */
export async function createSlowLink(options: SlowLinkOptions = {}): Promise<SlowLink> {
  await checkUsable();
  await sweepStale();

  const n = ++counter;
  const base = `${NAMESPACE_PREFIX}${process.pid}-${n}`;
  const names = { a: `${base}-a`, b: `${base}-b` };
  // The namespaces are private, so addresses may repeat across links; k only varies them.
  const k = ((process.pid + n) % 254) + 1;
  const ipv4 = { a: `198.18.${k}.1`, b: `198.18.${k}.2` };
  const ipv6 = { a: `fd00:${k.toString(16)}::1`, b: `fd00:${k.toString(16)}::2` };
  const mac = { a: '02:00:5e:00:00:0a', b: '02:00:5e:00:00:0b' };
  const rate = options.rate ?? '10mbit';
  const burst = options.burst ?? '32kbit';
  const limit = options.limit ?? 10000000;
  const children = new Set<ChildProcess>();

  const deleteNamespaces = async (): Promise<string[]> => {
    const errors: string[] = [];
    for (const name of [names.a, names.b]) {
      const result = await run('ip', ['netns', 'del', name]);
      if (result.code !== 0 && !/No such file|does not exist/i.test(result.stderr)) {
        errors.push(`ip netns del ${name}: ${result.stderr.trim()}`);
      }
    }
    return errors;
  };

  try {
    await must('ip', ['netns', 'add', names.a]);
    await must('ip', ['netns', 'add', names.b]);
    startJanitor(names);
    await must('ip', ['-n', names.a, 'link', 'add', 'va', 'address', mac.a, 'type', 'veth',
      'peer', 'name', 'vb', 'address', mac.b, 'netns', names.b]);
    await must('ip', ['-n', names.a, 'addr', 'add', `${ipv4.a}/24`, 'dev', 'va']);
    await must('ip', ['-n', names.b, 'addr', 'add', `${ipv4.b}/24`, 'dev', 'vb']);
    await must('ip', ['-n', names.a, '-6', 'addr', 'add', `${ipv6.a}/64`, 'dev', 'va', 'nodad']);
    await must('ip', ['-n', names.b, '-6', 'addr', 'add', `${ipv6.b}/64`, 'dev', 'vb', 'nodad']);
    for (const [ns, dev] of [[names.a, 'va'], [names.b, 'vb']] as const) {
      await must('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
      await must('ip', ['-n', ns, 'link', 'set', dev, 'up']);
    }
    await must('ip', ['-n', names.a, 'neigh', 'replace', ipv4.b, 'lladdr', mac.b, 'dev', 'va', 'nud', 'permanent']);
    await must('ip', ['-n', names.a, 'neigh', 'replace', ipv6.b, 'lladdr', mac.b, 'dev', 'va', 'nud', 'permanent']);
    await must('ip', ['-n', names.b, 'neigh', 'replace', ipv4.a, 'lladdr', mac.a, 'dev', 'vb', 'nud', 'permanent']);
    await must('ip', ['-n', names.b, 'neigh', 'replace', ipv6.a, 'lladdr', mac.a, 'dev', 'vb', 'nud', 'permanent']);
    await must('tc', ['-n', names.a, 'qdisc', 'add', 'dev', 'va', 'root', 'tbf', 'rate', rate,
      'burst', burst, 'limit', String(limit)]);
    // tbf releases packets from whichever CPU runs it, and veth hands each to that CPU's
    // backlog: two backlogs can deliver out of order. Steering vb's packets to one CPU (RPS)
    // keeps the wire order, so the tests' order checks check the library, not the veth.
    await must('ip', ['netns', 'exec', names.b, 'sh', '-c', 'echo 1 > /sys/class/net/vb/queues/rx-0/rps_cpus']);
  } catch (error) {
    const cleanup = await deleteNamespaces();
    throw new Error(`createSlowLink: setting up ${base} failed: ${(error as Error).message}` +
      (cleanup.length > 0 ? ` (and cleanup failed: ${cleanup.join('; ')})` : ''));
  }

  const resolveNs = (ns: Side | string): string => {
    if (ns === 'a' || ns === names.a) return names.a;
    if (ns === 'b' || ns === names.b) return names.b;
    throw new Error(`not a namespace of this link: ${ns}`);
  };
  let destroyed = false;

  return {
    names,
    interfaces: { a: 'va', b: 'vb' },
    ipv4,
    ipv6,
    rate,
    get destroyed() {
      return destroyed;
    },
    address(side, family) {
      return family === 6 ? ipv6[side] : ipv4[side];
    },
    exec(ns, argv, timeoutMs) {
      if (destroyed) return Promise.reject(new Error('the slow link was destroyed'));
      // A node child keeps the sanitizer runtime the tools go without (toolEnvironment).
      const preload = process.env.LD_PRELOAD;
      const command = argv[0] === process.execPath && preload ? ['env', `LD_PRELOAD=${preload}`, ...argv] : argv;
      return run('ip', ['netns', 'exec', resolveNs(ns), ...command], timeoutMs);
    },
    spawnNode(ns, script, args) {
      if (destroyed) throw new Error('the slow link was destroyed');
      const child = spawn('ip', ['netns', 'exec', resolveNs(ns), process.execPath, script, ...args], {
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      children.add(child);
      child.once('exit', () => children.delete(child));
      child.once('error', () => children.delete(child));
      return child;
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      const running = [...children].filter((c) => c.exitCode === null && c.signalCode === null);
      await Promise.all(running.map((child) => new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 3000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGKILL');
      })));
      const errors = await deleteNamespaces();
      if (errors.length > 0) throw new Error(`SlowLink.destroy: ${errors.join('; ')}`);
    },
  };
}

export interface QdiscStats {
  bytes: number;
  packets: number;
  dropped: number;
  overlimits: number;
  /** The raw `tc -s qdisc show` output. */
  text: string;
}

/** Counters of the tbf qdisc on the sender's veth (`tc -s qdisc show dev va` in namespace a). */
export async function qdiscStats(link: SlowLink): Promise<QdiscStats> {
  const result = await link.exec('a', ['tc', '-s', 'qdisc', 'show', 'dev', link.interfaces.a]);
  const match = /Sent (\d+) bytes (\d+) pkt \(dropped (\d+), overlimits (\d+)/.exec(result.stdout);
  if (result.code !== 0 || match === null) {
    throw new Error(`tc -s qdisc show failed or was not understood: ${result.stderr}${result.stdout}`);
  }
  return {
    bytes: Number(match[1]),
    packets: Number(match[2]),
    dropped: Number(match[3]),
    overlimits: Number(match[4]),
    text: result.stdout,
  };
}

/** Names of this process's namespaces that still exist (for a leak check). */
export async function ourNamespaces(): Promise<string[]> {
  const listing = await run('ip', ['netns', 'list']);
  const prefix = `${NAMESPACE_PREFIX}${process.pid}-`;
  return listing.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter((n) => n.startsWith(prefix));
}

// -----------------------------------------------------------------------------------------------
// children that talk in JSON lines

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the child did not exit in time and was killed with SIGKILL. */
  timedOut: boolean;
  /** Milliseconds from the start of the wait (waitForExit) to the exit. */
  ms: number;
}

export type JsonLine = Record<string, unknown> & { event?: string };

/** A child process whose stdout is JSON lines; every wait is bounded. */
export class JsonChild {
  readonly lines: JsonLine[] = [];
  /** stdout lines that were not JSON. */
  readonly otherOutput: string[] = [];
  stderr = '';
  exit: { code: number | null; signal: NodeJS.Signals | null; at: number } | null = null;
  readonly #listeners = new Set<() => void>();
  #closed: Promise<void>;

  constructor(readonly child: ChildProcess, readonly label: string) {
    let buffered = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      buffered += chunk;
      let newline: number;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const text = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (text.trim() === '') continue;
        try {
          this.lines.push(JSON.parse(text) as JsonLine);
        } catch {
          this.otherOutput.push(text);
        }
      }
      this.#notify();
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      if (this.stderr.length < 64 * 1024) this.stderr += chunk;
    });
    child.stdin?.on('error', () => { /* the child went away; reported through exit */ });
    child.once('exit', (code, signal) => {
      this.exit = { code, signal, at: performance.now() };
      this.#notify();
    });
    child.once('error', (error) => {
      this.stderr += `\n[spawn error] ${error.message}`;
      this.exit ??= { code: null, signal: null, at: performance.now() };
      this.#notify();
    });
    this.#closed = new Promise((resolve) => {
      child.once('close', () => resolve());
      child.once('error', () => resolve());
    });
  }

  #notify(): void {
    for (const listener of [...this.#listeners]) listener();
  }

  /** Writes one JSON line to the child's stdin. */
  send(message: object): void {
    this.child.stdin?.write(JSON.stringify(message) + '\n');
  }

  /** What the child said and how it ended, for failure messages. */
  describe(): string {
    const exit = this.exit === null ? 'still running' :
      this.exit.signal !== null ? `killed by ${this.exit.signal}` : `exit code ${String(this.exit.code)}`;
    const last = this.lines.slice(-3).map((l) => JSON.stringify(l)).join('\n  ');
    const other = this.otherOutput.slice(-5).join('\n  ');
    return `${this.label}: ${exit}` + (last ? `\n  last lines:\n  ${last}` : '') +
      (other ? `\n  other stdout:\n  ${other}` : '') +
      (this.stderr.trim() ? `\n  stderr:\n  ${this.stderr.trim().slice(-3000)}` : '');
  }

  /**
   * The first line (already received or to come) matching `match`. Rejects, with what the child
   * said, after `timeoutMs` or when the child exits without such a line.
   */
  nextLine(match: (line: JsonLine) => boolean, timeoutMs: number, what: string): Promise<JsonLine> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = this.lines.find(match);
        if (found !== undefined) {
          done();
          resolve(found);
        } else if (this.exit !== null) {
          done();
          reject(new Error(`waiting for ${what}: the child ended without it\n${this.describe()}`));
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`waiting for ${what}: nothing within ${timeoutMs} ms\n${this.describe()}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.#listeners.delete(check);
      };
      this.#listeners.add(check);
      check();
    });
  }

  /**
   * Waits up to `timeoutMs` for the child to exit; if it does not, kills it with SIGKILL and
   * reports `timedOut: true`. Also waits (briefly) for its output to be read to the end.
   */
  async waitForExit(timeoutMs: number): Promise<ExitInfo> {
    const started = performance.now();
    let timedOut = false;
    if (this.exit === null) {
      await new Promise<void>((resolve) => {
        const check = (): void => {
          if (this.exit === null) return;
          clearTimeout(timer);
          this.#listeners.delete(check);
          resolve();
        };
        const timer = setTimeout(() => {
          timedOut = true;
          this.child.kill('SIGKILL');
          // After SIGKILL the exit comes at once; bound it anyway.
          setTimeout(() => {
            this.#listeners.delete(check);
            resolve();
          }, 3000);
        }, timeoutMs);
        this.#listeners.add(check);
        check();
      });
    }
    await Promise.race([this.#closed, new Promise((r) => setTimeout(r, 1000))]);
    const exit = this.exit;
    return {
      code: exit?.code ?? null,
      signal: exit?.signal ?? null,
      timedOut,
      ms: Math.max(0, (exit?.at ?? performance.now()) - started),
    };
  }
}

// -----------------------------------------------------------------------------------------------
// the receiver (in namespace b) and the sender (in namespace a)

export interface ReceiverReport {
  reached: boolean;
  waitedMs: number;
  /** Datagrams received, with duplicates. */
  count: number;
  bytes: number;
  /** Distinct sequence numbers. */
  distinct: number;
  duplicates: number;
  /** Sequence numbers missing between the lowest and the highest received. */
  gaps: number;
  /** Datagrams that arrived after one with a higher sequence number. */
  outOfOrder: number;
  /** Datagrams whose payload after the sequence number is not the sender's pattern. */
  corrupt: number;
  /** Datagrams shorter than 4 bytes. */
  short: number;
  /** Payload size -> datagrams. */
  sizes: Record<string, number>;
  /** Runs [first, last] of consecutive sequence numbers in arrival order (middle elided past 64). */
  runs: Array<[number, number]>;
  runCount: number;
  minSeq: number;
  maxSeq: number;
  /** First to last arrival. */
  spanMs: number;
  /** The kernel's drop counter for the receiving socket (-1: unknown). */
  drops: number;
}

export interface SlowReceiver {
  readonly port: number;
  readonly address: string;
  readonly family: 4 | 6;
  readonly recvBufferSize: number;
  readonly process: JsonChild;
  /**
   * Resolves once `count` datagrams arrived and then `quietMs` passed without another (so that
   * extra datagrams show), or after `timeoutMs` with `reached: false` and what arrived.
   */
  waitFor(count: number, options?: { timeoutMs?: number; quietMs?: number }): Promise<ReceiverReport>;
  /** Resolves once no datagram arrived for `quietMs` (the link drained), or after `timeoutMs`. */
  settle(options?: { timeoutMs?: number; quietMs?: number }): Promise<ReceiverReport>;
  /** Stops the receiver and reaps it (bounded). */
  close(): Promise<void>;
}

let commandId = 0;

/** Starts slow-receiver.js in namespace b, bound to b's address of `family`. */
export async function startReceiver(link: SlowLink, family: 4 | 6 = 4, lifetimeMs = 60000): Promise<SlowReceiver> {
  const address = link.address('b', family);
  const child = new JsonChild(
    link.spawnNode('b', RECEIVER_SCRIPT, [JSON.stringify({ family, address, lifetimeMs })]),
    `receiver in ${link.names.b}`,
  );
  let ready: JsonLine;
  try {
    ready = await child.nextLine((l) => l.event === 'ready', 5000, 'the receiver to bind');
  } catch (error) {
    child.child.kill('SIGKILL');
    await child.waitForExit(3000);
    throw error;
  }
  const ask = async (command: Record<string, unknown>, timeoutMs: number): Promise<ReceiverReport> => {
    const id = ++commandId;
    child.send({ ...command, id, timeoutMs });
    const line = await child.nextLine((l) => l.event === 'report' && l.id === id, timeoutMs + 5000,
      `the receiver's report on ${JSON.stringify(command)}`);
    return line as unknown as ReceiverReport;
  };
  return {
    port: ready.port as number,
    address,
    family,
    recvBufferSize: ready.recvBufferSize as number,
    process: child,
    waitFor(count, options = {}) {
      return ask({ cmd: 'wait', count, quietMs: options.quietMs ?? 300 }, options.timeoutMs ?? 10000);
    },
    settle(options = {}) {
      return ask({ cmd: 'settle', quietMs: options.quietMs ?? 300 }, options.timeoutMs ?? 10000);
    },
    async close() {
      if (child.exit !== null) return;
      child.send({ cmd: 'exit' });
      child.child.stdin?.end();
      await child.waitForExit(3000);
    },
  };
}

/** Starts slow-sender.js `scenario` in namespace a; `params` is passed as JSON. */
export function startSender(link: SlowLink, scenario: string, params: Record<string, unknown>): JsonChild {
  return new JsonChild(link.spawnNode('a', SENDER_SCRIPT, [scenario, JSON.stringify(params)]),
    `sender "${scenario}" in ${link.names.a}`);
}

export interface SenderRun {
  /** The {"event":"result"} line, or null if there was none. */
  result: JsonLine | null;
  exit: ExitInfo;
  child: JsonChild;
  /** Wall time of the whole run. */
  ms: number;
}

/** Runs a sender scenario to its end (killed after `timeoutMs`). */
export async function runSender(link: SlowLink, scenario: string, params: Record<string, unknown>,
  timeoutMs = 20000): Promise<SenderRun> {
  const started = performance.now();
  const child = startSender(link, scenario, params);
  const exit = await child.waitForExit(timeoutMs);
  const result = child.lines.find((l) => l.event === 'result') ?? null;
  return { result, exit, child, ms: performance.now() - started };
}
