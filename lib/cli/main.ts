#!/usr/bin/env node
/**
 * The `wsk-dgram` command: `blast` (a UDP load generator), `sink` (the batched receiver as a
 * tool) and `bench` (the benchmark). Linux is where they are meant to run (the kernel counters
 * they show come from /proc/net); elsewhere those columns say "not available".
 */
import { UsageError } from './args';
import { runBlast } from './blast';
import { runSink } from './sink';

export const MAIN_USAGE = `usage: wsk-dgram <command> [options]

Commands:
  blast    send UDP datagrams at a rate (or as fast as possible), with a live progress bar
           and the kernel's counters beside the tool's own
  sink     receive them in batches and count loss, duplicates and reordering
  bench    the benchmark: wsk-dgram against node:dgram and C, per payload size

Run \`wsk-dgram <command> --help\` for a command's options. Example on one machine:
  wsk-dgram sink --port 9000 --idle 2 &
  wsk-dgram blast --to 127.0.0.1:9000 --size 1200 --duration 3 --rate 100k
`;

async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'blast':
      return runBlast(rest);
    case 'sink':
      return runSink(rest);
    case 'bench': {
      // Loaded only here: the bench pulls in its contenders and the chart code.
      const { runBench } = await import('./bench/bench');
      await runBench(rest, 'wsk-dgram bench');
      return 0;
    }
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      (command === undefined ? process.stderr : process.stdout).write(MAIN_USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  }
}

main(process.argv.slice(2)).then((status) => {
  process.exitCode = status;
}, (error: unknown) => {
  if (error instanceof UsageError) {
    const command = ['blast', 'sink', 'bench'].includes(process.argv[2] ?? '') ? ` ${process.argv[2]}` : '';
    process.stderr.write(`wsk-dgram${command}: ${error.message}\nRun 'wsk-dgram${command} --help' for usage.\n`);
    process.exitCode = 2;
    return;
  }
  process.stderr.write(`wsk-dgram: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
