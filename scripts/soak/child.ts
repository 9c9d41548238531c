/**
 * A child process that talks in JSON lines, for the soak. Unlike the tests' JsonChild
 * (test/integration/netns.ts) it keeps no history: a soak's children print an acknowledgement
 * every few hundred datagrams, so every line goes to a handler and only waiters look at it.
 */
import type { ChildProcess } from 'node:child_process';
import * as readline from 'node:readline';

const STDERR_KEPT = 16 * 1024;

export class LineChild<Line extends { event: string }> {
  stderr = '';
  exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  readonly #waiters = new Set<(line: Line | null) => void>();
  readonly #exited: Promise<void>;

  constructor(readonly label: string, readonly child: ChildProcess, onLine: (line: Line) => void) {
    const lines = readline.createInterface({ input: child.stdout! });
    lines.on('line', (text) => {
      let line: Line;
      try {
        line = JSON.parse(text) as Line;
      } catch {
        this.#keep(`[stdout] ${text}\n`);
        return;
      }
      onLine(line);
      for (const waiter of [...this.#waiters]) waiter(line);
    });
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => this.#keep(chunk));
    child.stdin!.on('error', () => { /* the child went away; its exit says how */ });
    this.#exited = new Promise((resolve) => {
      const ended = (code: number | null, signal: NodeJS.Signals | null): void => {
        this.exit ??= { code, signal };
        for (const waiter of [...this.#waiters]) waiter(null);
        resolve();
      };
      child.once('exit', ended);
      child.once('error', (error) => {
        this.#keep(`[spawn error] ${error.message}\n`);
        ended(null, null);
      });
    });
  }

  #keep(text: string): void {
    this.stderr = (this.stderr + text).slice(-STDERR_KEPT);
  }

  send(message: object): void {
    if (this.exit === null && this.child.stdin?.writable) this.child.stdin.write(`${JSON.stringify(message)}\n`);
  }

  /** The next line matching `match`; rejects after `timeoutMs` or when the child ends first. */
  next(match: (line: Line) => boolean, timeoutMs: number, what: string): Promise<Line> {
    return new Promise((resolve, reject) => {
      const waiter = (line: Line | null): void => {
        if (line === null) {
          done();
          reject(new Error(`waiting for ${what}: ${this.describe()}`));
        } else if (match(line)) {
          done();
          resolve(line);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`waiting for ${what}: nothing within ${timeoutMs} ms; ${this.describe()}`));
      }, timeoutMs);
      const done = (): void => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
      };
      if (this.exit !== null) {
        waiter(null);
        return;
      }
      this.#waiters.add(waiter);
    });
  }

  /** Waits up to `timeoutMs` for the exit; then kills with SIGKILL (and waits 3 s more). */
  async waitForExit(timeoutMs: number): Promise<void> {
    const timeout = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());
    await Promise.race([this.#exited, timeout(timeoutMs)]);
    if (this.exit === null) {
      this.child.kill('SIGKILL');
      await Promise.race([this.#exited, timeout(3000)]);
    }
  }

  describe(): string {
    const how = this.exit === null ? 'still running'
      : this.exit.signal !== null ? `killed by ${this.exit.signal}` : `exit code ${String(this.exit.code)}`;
    const stderr = this.stderr.trim();
    return `${this.label}: ${how}${stderr === '' ? '' : `; stderr: ${stderr.slice(-2000)}`}`;
  }
}
