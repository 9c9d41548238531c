/** The main job (`npm start`) runs end to end on a small count and reports every datagram. */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

const script = path.join(__dirname, '..', '..', 'dist', 'scripts', 'main.js');

interface Report {
  count: number;
  size: number;
  allReceived: boolean;
  ratio: number;
  rows: { contender: string; sent: number; received: number; lost: number; corrupt: number; outOfOrder: number }[];
}

function run(args: string[]): Report {
  const output = execFileSync(process.execPath, [script, ...args], { encoding: 'utf8', timeout: 60000 });
  return JSON.parse(output) as Report;
}

test.each(['4', '6'])('IPv%s: both contenders deliver every datagram intact', (family) => {
  const report = run(['--count', '3000', '--size', '300', '--family', family, '--json']);
  expect(report.rows.map((r) => r.contender)).toEqual(['node:dgram send', 'wsk-dgram trySendBatch']);
  for (const row of report.rows) {
    expect(row).toMatchObject({ sent: 3000, received: 3000, lost: 0, corrupt: 0, outOfOrder: 0 });
  }
  expect(report.allReceived).toBe(true);
  expect(report.ratio).toBeGreaterThan(0);
});

test('bad options are refused with usage and exit code 2', () => {
  expect(() => execFileSync(process.execPath, [script, '--size', '2'], { stdio: 'pipe', timeout: 10000 }))
    .toThrow(expect.objectContaining({ status: 2 }));
  expect(() => execFileSync(process.execPath, [script, '--bogus'], { stdio: 'pipe', timeout: 10000 }))
    .toThrow(expect.objectContaining({ status: 2 }));
});
