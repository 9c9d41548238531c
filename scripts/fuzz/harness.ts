/**
 * Runs one target's property with fast-check inside a child process (see run.ts), counts the
 * outcomes, bounds discovery and each shrink in time, and keeps going after a property failure
 * (fast-check stops at the first one): the next check resumes at the case after the failing
 * one, through fast-check's replay path, so one run can report several findings.
 *
 * Before each case it writes "<phase> <case index> <kind>" to a status file: when the process
 * dies (a crash in native code) or stops answering (a loop), the parent reads there which case
 * it was, and can replay it with `--seed S --path <index>`.
 */
import * as fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import fc from 'fast-check';
import { errorText, type TargetName } from './common';

/** One target, as the harness runs it. */
export interface TargetDefinition<T> {
  readonly name: TargetName;
  readonly arbitrary: fc.Arbitrary<T>;
  /** True when `run` returns a promise. */
  readonly async: boolean;
  /** A short tag of a case (status file, crash grouping). */
  kindOf(value: T): string;
  /** Runs one case; returns the outcome kind; throws on a property failure. */
  run(value: T): string | Promise<string>;
  /** Extra figures for the report. */
  figures?(): Record<string, number>;
  close?(): Promise<void> | void;
}

export interface Finding {
  type: 'property' | 'crash' | 'hang';
  target: TargetName;
  seed: number;
  /** Index of the failing case in the seed's stream (`--path <index>` runs it first). */
  index: number;
  /** fast-check's path to the shrunk counterexample (replay with `--seed S --path P`). */
  path: string;
  caseKind: string;
  message: string;
  /** The message of the first, unshrunk failure (its signature names repeats). */
  firstMessage?: string;
  counterexample: string;
  /** Shrinking stopped at its time bound. */
  shrinkInterrupted?: boolean;
  shrinkRuns?: number;
  signal?: string | null;
  exitCode?: number | null;
  stderrTail?: string;
  occurrences?: number;
  reproduced?: string;
}

export interface TargetReport {
  target: TargetName;
  seed: number;
  cases: number;
  shrinkRuns: number;
  seconds: number;
  stoppedBy: 'runs' | 'time' | 'findings' | 'crash' | 'restarts';
  outcomes: Record<string, number>;
  figures: Record<string, number>;
  findings: Finding[];
  notes: string[];
}

/** Messages from a child to run.ts. */
export type ChildMessage =
  | { type: 'progress'; cases: number; outcomes: Record<string, number>; figures: Record<string, number> }
  /** A new failure, before shrinking ('failing') and shrunk ('finding'). */
  | { type: 'failing' | 'finding'; finding: Finding }
  /** A failure with a signature already reported (not shrunk again). */
  | { type: 'repeat'; signature: string }
  | { type: 'case'; index: number; text: string }
  | { type: 'done'; report: TargetReport };

export interface HarnessOptions {
  seed: number;
  /** First case index ("" or "K"), or a full replay path "K:a:b" (then only that case runs). */
  path: string;
  runs: number;
  seconds: number;
  shrinkSeconds: number;
  maxFindings: number;
  statusFile: string | null;
  printCases: boolean;
  /** Signatures already reported (by earlier children of the same target): repeats, not findings. */
  known: readonly string[];
  send(message: ChildMessage): void;
  notes: string[];
}

// fast-check recognises a precondition failure by this shared footprint; with
// `interruptExecution` it ends the run (or the shrink) and reports what it had.
const INTERRUPT = { footprint: Symbol.for('fast-check/PreconditionFailure'), interruptExecution: true };

/** A failure message with its numbers taken out: repeats of one defect share it. */
export function signatureOf(message: string): string {
  return message.replace(/0x[0-9a-f]+|\d+/gi, 'N').replace(/receiver [^ ]+/g, 'receiver').slice(0, 100);
}

export async function runHarness<T>(def: TargetDefinition<T>, options: HarnessOptions): Promise<TargetReport> {
  const started = performance.now();
  const deadline = started + options.seconds * 1000;
  const outcomes: Record<string, number> = {};
  const findings: Finding[] = [];
  const status = options.statusFile === null ? null : fs.openSync(options.statusFile, 'w');
  const statusLine = Buffer.alloc(96);
  const writeStatus = (phase: string, index: number, kind: string): void => {
    if (status === null) return;
    statusLine.fill(0x20);
    statusLine.write(`${phase} ${index} ${kind}`.slice(0, 94));
    statusLine[95] = 0x0a;
    fs.writeSync(status, statusLine, 0, statusLine.length, 0);
  };

  const replay = options.path.includes(':');
  const first = options.path === '' ? 0 : Number(options.path.split(':')[0]);
  let nextIndex = first;
  let cases = 0;
  let shrinkRuns = 0;
  let stoppedBy: TargetReport['stoppedBy'] = 'runs';
  let lastProgress = performance.now();
  // Failures already reported, by message with the numbers taken out: a repeat is counted, not shrunk.
  const bySignature = new Set<string>(options.known);

  const progress = (force: boolean): void => {
    const now = performance.now();
    if (!force && now - lastProgress < 250) return;
    lastProgress = now;
    options.send({ type: 'progress', cases, outcomes: { ...outcomes }, figures: def.figures?.() ?? {} });
  };

  while (cases < options.runs && findings.length < options.maxFindings) {
    if (performance.now() >= deadline) {
      stoppedBy = 'time';
      break;
    }
    let phase: 'discover' | 'shrink' = 'discover';
    let index = nextIndex - 1;
    let failedAt = -1;
    let failureMessage = '';
    let shrinkDeadline = Infinity;
    let shrinkCount = 0;
    let caseKind = '';
    let duplicate = false;
    let shrinkable = true;
    const startedAt = nextIndex;

    const before = (value: T): void => {
      caseKind = def.kindOf(value);
      if (phase === 'discover') {
        index++;
        cases++;
        writeStatus('run', index, caseKind);
        if (options.printCases) {
          options.send({ type: 'case', index, text: fc.stringify(value) });
        }
      } else {
        shrinkCount++;
        // The count makes every shrink run change the file, so that the watchdog sees progress.
        writeStatus('shrink', failedAt, `${caseKind} ${shrinkCount}`);
      }
    };
    const after = (kind: string): void => {
      if (phase === 'discover') outcomes[kind] = (outcomes[kind] ?? 0) + 1;
      progress(false);
    };
    const failed = (error: unknown, value: T): void => {
      if (phase !== 'discover') return;
      phase = 'shrink';
      failedAt = index;
      failureMessage = errorText(error);
      outcomes['property failure'] = (outcomes['property failure'] ?? 0) + 1;
      duplicate = bySignature.has(signatureOf(failureMessage));
      // Shrinking counts against the target's time bound too.
      shrinkable = (error as { shrink?: unknown } | null)?.shrink !== false;
      shrinkDeadline = duplicate || !shrinkable ? 0
        : Math.min(performance.now() + options.shrinkSeconds * 1000, deadline);
      if (duplicate) return;
      // Told before shrinking, which may itself crash the process.
      options.send({ type: 'failing', finding: {
        type: 'property', target: def.name, seed: options.seed, index, path: String(index), caseKind,
        message: failureMessage, firstMessage: failureMessage, counterexample: fc.stringify(value),
      } });
    };

    const limiter: fc.Plugin<unknown> = () => ({
      decorateRun: (nested) => (value) => {
        const now = performance.now();
        // A replay runs the one counterexample it names, nothing after it.
        if ((phase === 'discover' && (now >= deadline || (replay && index >= startedAt))) ||
          (phase === 'shrink' && now >= shrinkDeadline)) {
          return INTERRUPT as unknown as ReturnType<typeof nested>;
        }
        return nested(value);
      },
    });
    const parameters = {
      seed: options.seed,
      numRuns: replay ? 1 : options.runs - cases,
      plugins: [limiter],
      endOnFailure: replay,
      ...(replay ? { path: options.path } : startedAt > 0 ? { path: String(startedAt) } : {}),
    };

    let details: fc.RunDetails<unknown>;
    if (def.async) {
      const property = fc.asyncProperty(def.arbitrary, async (value) => {
        before(value);
        try {
          after(await def.run(value));
        } catch (error) {
          failed(error, value);
          throw error;
        }
      });
      details = await fc.check(property, parameters);
    } else {
      const property = fc.property(def.arbitrary, (value) => {
        before(value);
        try {
          after(def.run(value) as string);
        } catch (error) {
          failed(error, value);
          throw error;
        }
      });
      details = fc.check(property, parameters);
    }
    shrinkRuns += shrinkCount;

    if (details.failed && failedAt >= 0 && duplicate) {
      options.send({ type: 'repeat', signature: signatureOf(failureMessage) });
      nextIndex = failedAt + 1;
      if (replay) break;
      continue;
    }
    if (details.failed && failedAt >= 0) {
      const example = details.counterexample as [T] | null;
      const counterexample = example === null ? '' : fc.stringify(example[0]);
      const message = details.errorInstance !== null ? errorText(details.errorInstance) : failureMessage;
      const finding: Finding = {
        type: 'property', target: def.name, seed: options.seed, index: failedAt,
        path: details.counterexamplePath ?? String(failedAt), caseKind, message: message || failureMessage,
        firstMessage: failureMessage, counterexample, shrinkInterrupted: details.interrupted && shrinkable, shrinkRuns: shrinkCount,
        occurrences: 1,
      };
      findings.push(finding);
      bySignature.add(signatureOf(failureMessage));
      bySignature.add(signatureOf(finding.message));
      options.send({ type: 'finding', finding });
      progress(true);
      if (replay) break;
      nextIndex = failedAt + 1;
      continue;
    }
    if (details.failed) {
      // Failed without our predicate failing: fast-check itself refused (e.g. a bad path).
      throw new Error(`fast-check: ${fc.defaultReportMessage(details)}`);
    }
    if (details.interrupted) stoppedBy = 'time';
    break;
  }
  if (findings.length >= options.maxFindings) stoppedBy = 'findings';
  if (status !== null) {
    writeStatus('done', nextIndex, '');
    fs.closeSync(status);
  }
  await def.close?.();
  const report: TargetReport = {
    target: def.name,
    seed: options.seed,
    cases,
    shrinkRuns,
    seconds: (performance.now() - started) / 1000,
    stoppedBy,
    outcomes,
    figures: def.figures?.() ?? {},
    findings,
    notes: options.notes,
  };
  return report;
}
