/** Every ```js example in README.md and docs/api.md runs as written against the built package. */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.join(__dirname, '..', '..');
const examples = ['README.md', path.join('docs', 'api.md')].flatMap((file) => {
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  return [...text.matchAll(/^```js\n([\s\S]*?)^```$/gm)].map((m, i) => [`${file} #${i + 1}`, m[1]!] as const);
});

let sandbox: string;
beforeAll(() => {
  // A project that depends on wsk-dgram, as a user's would.
  sandbox = fs.mkdtempSync(path.join(os.tmpdir(), 'wsk-dgram-doc-'));
  fs.mkdirSync(path.join(sandbox, 'node_modules'));
  fs.symlinkSync(root, path.join(sandbox, 'node_modules', 'wsk-dgram'), 'dir');
});
afterAll(() => fs.rmSync(sandbox, { recursive: true, force: true }));

test('the documents have examples', () => {
  expect(examples.length).toBeGreaterThanOrEqual(4);
});

test.each(examples)('%s runs without error', (_name, code) => {
  const file = path.join(sandbox, `example-${Math.random().toString(36).slice(2)}.js`);
  // Examples may use top-level await; CommonJS needs an async wrapper for that.
  fs.writeFileSync(file, `(async () => {\n${code}\n})().catch((e) => { console.error(e); process.exit(1); });\n`);
  execFileSync(process.execPath, [file], { cwd: sandbox, stdio: 'pipe', timeout: 20000 });
});
