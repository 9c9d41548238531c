/**
 * `npm run bench`: the benchmark, which lives in lib/cli/bench/ so that the installed package
 * runs it too (`wsk-dgram bench`). Flags: `npm run bench -- --help`.
 */
import { runBench } from '../../lib/cli/bench/bench';

runBench(process.argv.slice(2)).catch((error: unknown) => {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
