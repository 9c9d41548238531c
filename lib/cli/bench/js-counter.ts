/**
 * The bench's counting receiver in JavaScript, for machines without a C compiler: the same
 * command line and stdin/stdout protocol as scripts/c/counter.c (see there), over wsk-dgram's
 * own batched receiver. It is slower than the C one and, without a way to set SO_RCVBUF in
 * this build, has the kernel's default receive buffer: loss figures are higher; the send rates
 * (what the bench measures) are not affected. `drops` comes from the namespace's
 * Udp RcvbufErrors counter (/proc/net/snmp) instead of SO_RXQ_OVFL.
 *
 *   node js-counter.js 4|6 RCVBUF_BYTES [SOCKETS]
 */
import * as readline from 'node:readline';
import { performance } from 'node:perf_hooks';
import { createSocket, type UdpSocket } from '../..';
import { readUdpCounters } from '../kernel';

const QUIET_MS = 40;
const MAX_DATAGRAMS = 1024;
const SLOT = 2048;

interface RunCount {
  datagrams: number;
  bytes: number;
  sockets: Set<number>;
  reported: boolean;
}

function main(): void {
  const family = process.argv[2] === '6' ? 6 : 4;
  const receiveBuffer = Number(process.argv[3]);
  const count = Number(process.argv[4] ?? '1');
  const host = family === 6 ? '::1' : '127.0.0.1';
  const sockets: UdpSocket[] = [];
  let granted = 0;
  for (let i = 0; i < count; i++) {
    const socket = createSocket(family === 6 ? 'udp6' : 'udp4');
    const withBuffer = socket as unknown as { setRecvBufferSize?: (n: number) => void; getRecvBufferSize?: () => number };
    if (typeof withBuffer.setRecvBufferSize === 'function') {
      try {
        withBuffer.setRecvBufferSize(receiveBuffer);
      } catch {
        // keep the default
      }
    }
    if (i === 0 && typeof withBuffer.getRecvBufferSize === 'function') granted = withBuffer.getRecvBufferSize();
    socket.bind(0, host);
    sockets.push(socket);
  }
  const ports = sockets.map((s) => s.address().port);
  process.stdout.write(`${JSON.stringify({ port: ports[0], ports, rcvbuf: granted })}\n`);

  const runs = new Map<number, RunCount>();
  let late = 0;
  let foreign = 0;
  let lastArrival = performance.now();
  let closed = false;
  const dropsAt = (): number => readUdpCounters(family)?.rcvbufErrors ?? 0;
  let dropsReported = dropsAt();

  sockets.forEach((socket, index) => {
    const arena = new Uint8Array(MAX_DATAGRAMS * SLOT);
    const loop = async (): Promise<void> => {
      while (!closed) {
        const batch = await socket.receiveBatch({ maxDatagrams: MAX_DATAGRAMS, slotSize: SLOT, arena });
        if (batch.length === 0) return;
        lastArrival = performance.now();
        for (const d of batch) {
          if (d.data.length < 4) {
            foreign++;
            continue;
          }
          const id = ((d.data[0]! << 24) | (d.data[1]! << 16) | (d.data[2]! << 8) | d.data[3]!) >>> 0;
          let run = runs.get(id);
          if (run === undefined) runs.set(id, run = { datagrams: 0, bytes: 0, sockets: new Set(), reported: false });
          if (run.reported) {
            late++;
            continue;
          }
          run.datagrams++;
          // A truncated datagram's length is unknown past the slot; the bench's are smaller.
          run.bytes += d.data.length;
          run.sockets.add(index);
        }
      }
    };
    loop().catch((error: unknown) => {
      process.stderr.write(`js-counter: ${(error as Error).message}\n`);
      process.exit(1);
    });
  });

  const report = async (id: number): Promise<void> => {
    // Quiet for QUIET_MS on every socket: the run is over (see counter.c).
    while (performance.now() - lastArrival < QUIET_MS) {
      await new Promise((resolve) => setTimeout(resolve, QUIET_MS - (performance.now() - lastArrival) + 1));
    }
    const run = runs.get(id) ?? { datagrams: 0, bytes: 0, sockets: new Set<number>(), reported: false };
    run.reported = true;
    runs.set(id, run);
    const drops = dropsAt();
    const cpu = process.cpuUsage();
    process.stdout.write(`${JSON.stringify({ run: id, datagrams: run.datagrams, bytes: run.bytes, sockets: run.sockets.size,
      drops: drops - dropsReported, late, foreign, cpu: cpu.user + cpu.system })}\n`);
    dropsReported = drops;
  };

  let queue = Promise.resolve();
  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    const match = /^R (\d+)$/.exec(line.trim());
    if (match === null) {
      process.stderr.write(`js-counter: unknown command: ${line}\n`);
      return;
    }
    queue = queue.then(() => report(Number(match[1])));
  });
  lines.on('close', () => {
    void queue.then(() => {
      closed = true;
      for (const socket of sockets) socket.close();
    });
  });
}

main();
