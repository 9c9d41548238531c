/**
 * Every ```js example in README.md and docs/*.md, and every program in examples/, runs exactly
 * as a user would paste or save it, against the built package: an example with an `import`
 * statement is saved as an ES module (.mjs, top-level await allowed), any other as CommonJS
 * (.cjs, no wrapper: top-level await there is a SyntaxError, as it would be for the user).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.join(__dirname, '..', '..');
const documents = ['README.md', ...fs.readdirSync(path.join(root, 'docs'))
  .filter((name) => name.endsWith('.md')).map((name) => path.join('docs', name))];
const snippets = documents.flatMap((file) => {
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  return [...text.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m, i) => [`${file} #${i + 1}`, m[1]!] as const);
});
const programs = fs.readdirSync(path.join(root, 'examples')).filter((name) => /\.m?js$/.test(name));

let sandbox: string;
beforeAll(() => {
  // A project that depends on wsk-dgram, as a user's would.
  sandbox = fs.mkdtempSync(path.join(os.tmpdir(), 'wsk-dgram-doc-'));
  fs.mkdirSync(path.join(sandbox, 'node_modules'));
  fs.symlinkSync(root, path.join(sandbox, 'node_modules', 'wsk-dgram'), 'dir');
});
afterAll(() => fs.rmSync(sandbox, { recursive: true, force: true }));

function run(file: string, args: string[] = []): void {
  try {
    execFileSync(process.execPath, [...args, file], { cwd: sandbox, stdio: 'pipe', timeout: 20000 });
  } catch (error) {
    const { stderr, stdout } = error as { stderr?: Buffer; stdout?: Buffer };
    throw new Error(`${path.basename(file)} failed:\n${String(stdout ?? '')}${String(stderr ?? '')}`);
  }
}

test('the documents and examples/ have examples', () => {
  expect(snippets.length).toBeGreaterThanOrEqual(10);
  expect(programs.length).toBeGreaterThanOrEqual(3);
});

test.each(snippets)('%s runs as pasted', (_name, code) => {
  const esm = /^import\s/m.test(code);
  const file = path.join(sandbox, `example-${Math.random().toString(36).slice(2)}.${esm ? 'mjs' : 'cjs'}`);
  fs.writeFileSync(file, code);
  run(file);
});

test.each(programs)('examples/%s runs as saved', (name) => {
  const file = path.join(sandbox, name);
  fs.copyFileSync(path.join(root, 'examples', name), file);
  // A node:test file is run the way its header says: node --test.
  run(file, name.includes('.test.') ? ['--test'] : []);
});

test('a CommonJS example with top-level await fails here as it would for a user', () => {
  const file = path.join(sandbox, 'top-level-await.cjs');
  fs.writeFileSync(file, "const { createSocket } = require('wsk-dgram');\nawait Promise.resolve();\n");
  expect(() => run(file)).toThrow(/failed/);
});
