/** The addon keeps its state per environment: it loads and sends in worker threads. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { binding } from '../../lib/binding';
import { openUdpSocketCount, openReceiver } from './receiver';

const entry = path.join(__dirname, 'fixtures', 'worker-send.js');

interface WorkerReport {
  result: { datagrams: number; bytes: number };
  backend: string;
  fd: number;
}

function runWorker(workerData: object): Promise<WorkerReport> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(entry, { workerData });
    let report: WorkerReport | undefined;
    worker.once('message', (message: WorkerReport) => { report = message; });
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0 || report === undefined) reject(new Error(`worker exited with ${code}`));
      else resolve(report);
    });
  });
}

describe('worker threads', () => {
  beforeAll(() => {
    if (!fs.existsSync(path.join(__dirname, '..', '..', 'dist', 'lib', 'index.js'))) {
      throw new Error('dist/ is missing: run `npm run build:ts` (npm test does it first)');
    }
  });

  test('two workers send at once, each through its own addon instance', async () => {
    const receiver = await openReceiver('udp4');
    try {
      const [a, b] = await Promise.all([
        runWorker({ port: receiver.port, count: 300, size: 100, tag: 0xaa, leaveOpen: false }),
        runWorker({ port: receiver.port, count: 200, size: 50, tag: 0xbb, leaveOpen: false }),
      ]);
      expect(a.result).toEqual({ datagrams: 300, bytes: 30000, segments: 300, failures: [] });
      expect(b.result).toEqual({ datagrams: 200, bytes: 10000, segments: 200, failures: [] });
      // Each worker loads the same back-end as this thread (sendmmsg, or the portable loop).
      expect(a.backend).toBe(binding().backend);
      expect(b.backend).toBe(binding().backend);
      const received = await receiver.waitFor(500);
      // Each worker's datagrams arrive in its own order.
      for (const [tag, count] of [[0xaa, 300], [0xbb, 200]] as const) {
        const mine = received.filter((d) => d[4] === tag);
        expect(mine.map((d) => d.readUInt32BE(0))).toEqual(Array.from({ length: count }, (_, i) => i));
      }
    } finally {
      await receiver.close();
    }
  });

  test('a worker that exits with its socket open does not leak the descriptor', async () => {
    const receiver = await openReceiver('udp4');
    const before = openUdpSocketCount();
    try {
      const report = await runWorker({ port: receiver.port, count: 10, size: 20, tag: 1, leaveOpen: true });
      expect(report.result.datagrams).toBe(10);
      expect(report.fd).toBeGreaterThan(2);
      // The worker's environment is gone; its teardown closed the socket it left open.
      expect(openUdpSocketCount()).toBe(before);
    } finally {
      await receiver.close();
    }
  });
});
