/**
 * One sender of the bench's pacing section, in a process of its own (so that `perf stat` can
 * count its system calls): `node pacing-sender.js pacer|interval RATE SECONDS SIZE HOST PORT RUN`.
 * - pacer: wsk-dgram's Pacer over sendBatch, one packed buffer per tick (1 ms ticks).
 * - interval: node:dgram paced as a user would write it: setInterval(1 ms) sending rate/1000
 *   datagrams per callback, one send() each.
 * Prints one JSON line: {"sent","bytes","seconds","syscalls","ticks","forfeited"} (syscalls
 * from socket.stats() for the pacer, null for node:dgram).
 */
import * as dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { createSocket, Pacer } from '../..';

async function main(): Promise<void> {
  const [mode, rateText, secondsText, sizeText, host, portText, runText] = process.argv.slice(2);
  const rate = Number(rateText);
  const durationMs = Number(secondsText) * 1000;
  const size = Number(sizeText);
  const port = Number(portText);
  const run = Number(runText);
  const family = host!.includes(':') ? 6 : 4;
  const pool = Buffer.alloc(1024 * size, 0x5a);
  for (let i = 0; i < 1024; i++) pool.writeUInt32BE(run, i * size);

  if (mode === 'pacer') {
    const socket = createSocket({ type: family === 6 ? 'udp6' : 'udp4' });
    const start = performance.now();
    const pacer = new Pacer(socket, {
      rate, port, address: host, maxBatch: 1024,
      next: ({ datagrams }) => (performance.now() - start >= durationMs ? null
        : { buffer: pool.subarray(0, Math.min(datagrams, 1024) * size), segmentSize: size }),
    });
    const stats = await pacer.done;
    const seconds = stats.elapsedMs / 1000;
    const { syscalls } = socket.stats();
    socket.close();
    process.stdout.write(`${JSON.stringify({ sent: stats.datagrams, bytes: stats.bytes, seconds, syscalls, ticks: stats.ticks, forfeited: stats.forfeited })}\n`);
    return;
  }

  const socket = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
  const perTick = Math.max(1, Math.round(rate / 1000));
  const datagram = pool.subarray(0, size);
  let sent = 0;
  let offered = 0;
  let ticks = 0;
  let failed: Error | null = null;
  const start = performance.now();
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      ticks++;
      if (performance.now() - start >= durationMs) {
        clearInterval(timer);
        resolve();
        return;
      }
      for (let i = 0; i < perTick; i++) {
        offered++;
        socket.send(datagram, port, host, (error) => {
          if (error) failed ??= error;
          else sent++;
        });
      }
    }, 1);
  });
  const seconds = (performance.now() - start) / 1000;
  // Let the last callbacks run before counting.
  while (sent + (failed === null ? 0 : 1) < offered && performance.now() - start < durationMs + 2000) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  socket.close();
  if (failed !== null) throw failed;
  process.stdout.write(`${JSON.stringify({ sent, bytes: sent * size, seconds, syscalls: null, ticks, forfeited: 0 })}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`pacing-sender: ${(error as Error).message}\n`);
  process.exitCode = 1;
});
