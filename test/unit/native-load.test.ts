import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadAddon, NATIVE_LOAD_ERROR_CODE } from '../../lib/binding';

// The error a user sees when no addon loads: a package directory of the test's own, with no
// build/ and a prebuilds/ that has nothing usable for this machine.
const target = `${process.platform}-${process.arch}`;
let root: string;

beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'wsk-native-load-'));
  fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'wsk-dgram', version: '0.0.0' }));
});
afterEach(() => {
  fs.rmSync(root, { recursive: true, force: true });
});

function loadError(): Error & { code?: string } {
  try {
    loadAddon(root);
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error('loadAddon loaded something from an empty package directory');
}

test('no addon anywhere: the platform, every place looked in, what to do, the cause', () => {
  fs.mkdirSync(path.join(root, 'prebuilds', 'sunos-sparc'), { recursive: true });
  const error = loadError();
  expect(error.code).toBe(NATIVE_LOAD_ERROR_CODE);
  expect(error.message).toContain('no native addon was found for this platform');
  expect(error.message).toContain(`(${target}`);
  if (process.platform === 'linux') expect(error.message).toMatch(/glibc \d+\.\d+|not glibc/);
  expect(error.message).toContain(`Node ${process.versions.node}`);
  expect(error.message).toContain(path.join(root, 'build', 'Release'));
  expect(error.message).toContain(path.join(root, 'prebuilds', target));
  expect(error.message).toContain('prebuilt binaries here: sunos-sparc');
  expect(error.message).toContain('npm rebuild wsk-dgram');
  expect(error.message).toContain('https://github.com/wsk-dgram/wsk-dgram/issues');
  expect(error.cause).toBeInstanceOf(Error);
  expect((error.cause as Error).message).toMatch(/^No native build was found for platform=/);
});

test('no prebuilds/ directory at all is said as such', () => {
  expect(loadError().message).toContain('prebuilt binaries here: none');
});

test('a prebuild that is found but does not load: its path and the loader\'s reason', () => {
  const dir = path.join(root, 'prebuilds', target);
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'wsk-dgram.napi.node');
  fs.writeFileSync(file, 'not a shared object');
  const error = loadError();
  expect(error.code).toBe(NATIVE_LOAD_ERROR_CODE);
  expect(error.message).toContain(`the addon found, ${file}, does not load here: `);
  expect(error.message).toContain('npm rebuild wsk-dgram');
  // jest runs the test in a vm context: the loader's Error is of another realm.
  expect(Object.prototype.toString.call(error.cause)).toBe('[object Error]');
  // The loader's own text (dlopen's "invalid ELF header", "file too short", ...) is kept.
  expect(error.message).toContain((error.cause as Error).message.split('\n')[0]);
});
