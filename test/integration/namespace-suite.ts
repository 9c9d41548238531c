/**
 * What every namespace suite does around its tests: refuses to start without dist/ (the child
 * fixtures load it), times each test, checks at the end that none of this process's namespaces
 * is left (failed tests included), and prints the timings and what the tests observed.
 * Suite-specific cleanup stays in the suite's own afterEach.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { ourNamespaces } from './netns';

/** Registers the hooks; returns the list the tests push their observations to. */
export function useNamespaceSuite(name: string): { notes: string[] } {
  const notes: string[] = [];
  const timings: Array<[string, number]> = [];
  let testStarted = 0;

  beforeAll(() => {
    if (!fs.existsSync(path.join(__dirname, '..', '..', 'dist', 'lib', 'index.js'))) {
      throw new Error('dist/ is missing: run `npm run build:ts` (npm test does it first)');
    }
  });
  beforeEach(() => {
    testStarted = performance.now();
  });
  afterEach(() => {
    timings.push([expect.getState().currentTestName ?? '?', Math.round(performance.now() - testStarted)]);
  });
  afterAll(async () => {
    expect(await ourNamespaces()).toEqual([]);
    // eslint-disable-next-line no-console
    console.log(`${name} timings (ms):\n` + timings.map(([test, ms]) => `  ${String(ms).padStart(6)}  ${test}`).join('\n') +
      '\nobserved:\n' + notes.map((n) => `  ${n}`).join('\n'));
  });
  return { notes };
}
