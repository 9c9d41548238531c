/**
 * Every back-end puts the same datagrams on the wire (bufferutil style): the sendmmsg back-end
 * and the portable sendmsg loop, each with GSO on and off, send one mixed batch; the receiver
 * must see identical bytes in identical order from all four.
 */
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { openReceiver } from './receiver';

const sender = path.join(__dirname, 'fixtures', 'backend-sender.js');

interface Report {
  backend: string;
  plain: { datagrams: number; bytes: number };
  offloaded: { datagrams: number; bytes: number };
  stats: { syscalls: number; messages: number; datagrams: number };
}

describe.each([
  ['udp4', '127.0.0.1', 4],
  ['udp6', '::1', 6],
] as const)('%s', (type, host, family) => {
  test('sendmmsg and the sendmsg loop, GSO on and off, deliver the same datagrams', async () => {
    const runs: { report: Report; received: Buffer[] }[] = [];
    for (const backend of ['sendmmsg', 'sendmsg']) {
      const receiver = await openReceiver(type);
      try {
        const output = execFileSync(process.execPath, [sender, String(receiver.port), host, String(family)], {
          encoding: 'utf8', timeout: 20000, env: { ...process.env, WSK_DGRAM_BACKEND: backend },
        });
        const report = JSON.parse(output) as Report;
        expect(report.backend).toBe(backend);
        expect(report.plain.datagrams).toBe(388);
        expect(report.offloaded).toEqual(report.plain);
        runs.push({ report, received: await receiver.waitFor(2 * 388) });
      } finally {
        await receiver.close();
      }
    }
    const [mmsg, msg] = runs;
    // Within a run, the GSO pass equals the plain pass; across back-ends, everything is equal.
    for (const run of runs) {
      const plain = run.received.slice(0, 388);
      const offloaded = run.received.slice(388);
      offloaded.forEach((d, i) => {
        if (!d.equals(plain[i]!)) throw new Error(`${run.report.backend}: GSO datagram ${i} differs`);
      });
    }
    mmsg!.received.forEach((d, i) => {
      if (!d.equals(msg!.received[i]!)) throw new Error(`datagram ${i} differs between sendmmsg and sendmsg`);
    });
    // The portable loop makes one call per message, sendmmsg one per up to 1024.
    expect(msg!.report.stats.syscalls).toBe(msg!.report.stats.messages);
    expect(mmsg!.report.stats.syscalls).toBeLessThan(mmsg!.report.stats.messages);
  });
});
