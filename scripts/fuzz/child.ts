/**
 * One fuzz target in its own process (started by run.ts, normally inside a private network
 * namespace made by `unshare --net`): sets up that namespace's loopback, runs the target under
 * the harness and reports over the IPC channel. A crash here ends only this process.
 */
import { collectUncaught, type TargetName } from './common';
import { runHarness, type ChildMessage, type HarnessOptions, type TargetDefinition } from './harness';
import { ipv6Available, qdiscDrops, setUpPrivateLoopback, udpErrorCounters } from './loopback';
import { nativeTarget } from './native-target';
import { optionsTarget } from './options-target';
import { socketTarget } from './socket-target';
import { wskTarget } from './wsk-target';

/** What run.ts passes a child: the harness's run options, plus where and what to run. */
export interface ChildConfig extends Pick<HarnessOptions,
  'seed' | 'path' | 'runs' | 'seconds' | 'shrinkSeconds' | 'maxFindings' | 'statusFile' | 'printCases'> {
  target: TargetName;
  /** The parent's network namespace when the child must run in a private one; null: not isolated. */
  parentNamespace: string | null;
  exclude: string[];
  /** Finding signatures already reported for this target. */
  known: string[];
}

function send(message: ChildMessage | { type: 'error'; message: string }): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined) {
      process.stdout.write(`${JSON.stringify(message)}\n`, () => resolve());
      return;
    }
    process.send(message, undefined, {}, () => resolve());
  });
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as ChildConfig;
  const notes: string[] = [];
  let isolated = false;
  if (config.parentNamespace !== null) {
    setUpPrivateLoopback(config.parentNamespace);
    isolated = true;
  }
  collectUncaught();
  const ipv6 = ipv6Available();
  if (!ipv6) notes.push('IPv6 loopback is not available here: IPv6 cases ran as IPv4');
  if (!isolated) {
    notes.push('not in a private network namespace: no slow lane (nothing goes pending) and no unroutable addresses');
  }
  const exclude = new Set(config.exclude);
  if (exclude.size > 0) notes.push(`EXPLORATION: case kinds excluded: ${[...exclude].join(', ')}`);
  const lifetimeMs = (config.seconds + config.maxFindings * config.shrinkSeconds + 120) * 1000;
  const options = { isolated, ipv6, lifetimeMs, exclude };
  let def: TargetDefinition<unknown>;
  switch (config.target) {
    case 'native': def = nativeTarget(options); break;
    case 'wsk': def = wskTarget(options); break;
    case 'socket': def = socketTarget(options); break;
    case 'options': def = optionsTarget(options); break;
  }
  const report = await runHarness(def, {
    seed: config.seed,
    path: config.path,
    runs: config.runs,
    seconds: config.seconds,
    shrinkSeconds: config.shrinkSeconds,
    maxFindings: config.maxFindings,
    statusFile: config.statusFile,
    printCases: config.printCases,
    known: config.known,
    send: (message) => void send(message),
    notes,
  });
  // The slow lane's queue must never drop: a drop would look like a datagram lost by the library.
  if (isolated) Object.assign(report.figures, { 'qdisc drops': qdiscDrops(), ...udpErrorCounters() });
  await send({ type: 'done', report });
}

main().then(
  () => process.exit(0),
  async (error: unknown) => {
    await send({ type: 'error', message: error instanceof Error ? `${error.stack ?? error.message}` : String(error) });
    process.exit(3);
  },
);
