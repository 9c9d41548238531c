/**
 * The main job (`npm start`): sends the same datagrams to a local receiver with Node's dgram
 * and with wsk-dgram, checks that every one arrived intact and in order, and prints a table of
 * rates and their ratio.
 *
 * The receiver lives in this process, so a synchronous batch send cannot be drained while it
 * runs: the contenders take turns sending one round (sized to fit the receive buffer), the
 * receiver drains and checks it, and only the sending is timed. Rounds alternate between the
 * contenders so that neither gets the machine's quiet moments alone.
 */
import * as dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createSocket, MAX_UDP_PAYLOAD } from '../lib';

const HEADER = 5; // u32 sequence number + one byte naming the contender

interface Contender {
  readonly name: string;
  readonly tag: number;
  /** Sends `datagrams`; resolves when the sender is done with them. */
  send(datagrams: Uint8Array[]): Promise<void>;
  close(): void;
  seconds: number;
  sent: number;
  bytes: number;
}

function usage(): never {
  process.stderr.write(
    'usage: npm start -- [--count N] [--size BYTES] [--family 4|6] [--round N] [--json]\n' +
      '  --count   datagrams per contender (default 200000)\n' +
      '  --size    payload bytes per datagram (default 1200)\n' +
      '  --family  4 (127.0.0.1, default) or 6 (::1)\n' +
      '  --round   datagrams per round, at most what the receive buffer holds (default: fitted)\n' +
      '  --json    print the result as JSON instead of a table\n',
  );
  process.exit(2);
}

function positiveInteger(text: string, name: string, min: number, max: number): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    process.stderr.write(`--${name} must be an integer from ${min} to ${max}\n`);
    usage();
  }
  return value;
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        count: { type: 'string', default: '200000' },
        size: { type: 'string', default: '1200' },
        family: { type: 'string', default: '4' },
        round: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n`);
    usage();
  }
  if (values.help) usage();
  const family = values.family === '6' ? 6 : values.family === '4' ? 4 : usage();
  const count = positiveInteger(values.count, 'count', 1, 100_000_000);
  const size = positiveInteger(values.size, 'size', HEADER, MAX_UDP_PAYLOAD[family]);
  const type = family === 6 ? 'udp6' : 'udp4';
  const host = family === 6 ? '::1' : '127.0.0.1';

  // --- the receiver ---------------------------------------------------------------------
  const receiver = dgram.createSocket({ type, recvBufferSize: 64 * 1024 * 1024 });
  await new Promise<void>((resolve) => receiver.bind(0, host, resolve));
  const port = receiver.address().port;
  const receiveBuffer = receiver.getRecvBufferSize();
  // Each queued datagram costs its payload plus about 1 KiB of kernel bookkeeping (skb
  // truesize); fill at most half the buffer per round.
  const fitted = Math.max(1, Math.min(1024, Math.floor(receiveBuffer / 2 / (size + 1024))));
  const round = values.round === undefined ? fitted : positiveInteger(values.round, 'round', 1, 1 << 20);

  const template = new Uint8Array(size);
  for (let i = HEADER; i < size; i++) template[i] = (i * 7 + 3) & 0xff;
  const body = Buffer.from(template.subarray(HEADER));

  const expected = new Map<number, number>(); // tag -> next sequence number
  const stats = new Map<number, { received: number; corrupt: number; outOfOrder: number }>();
  let roundArrived = 0;
  let wake: (() => void) | null = null;
  receiver.on('message', (message) => {
    const tag = message.length >= HEADER ? message[4]! : -1;
    const entry = stats.get(tag);
    if (entry === undefined) return;
    entry.received++;
    const sequence = message.readUInt32BE(0);
    if (sequence !== expected.get(tag)) entry.outOfOrder++;
    expected.set(tag, sequence + 1);
    if (message.length !== size || !message.subarray(HEADER).equals(body)) entry.corrupt++;
    roundArrived++;
    wake?.();
  });
  async function drain(want: number): Promise<number> {
    // Bounded: a datagram that has not arrived 2 s after its round is lost.
    const deadline = Date.now() + 2000;
    while (roundArrived < want && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 50);
      });
      wake = null;
    }
    return roundArrived;
  }

  // --- the contenders -------------------------------------------------------------------
  const nodeSocket = dgram.createSocket(type);
  const wskSocket = createSocket(type);
  const contenders: Contender[] = [
    {
      name: 'node:dgram send',
      tag: 1,
      send: (datagrams) => new Promise((resolve, reject) => {
        // Node's best case: no callback per datagram, one on the last (they complete in order).
        for (let i = 0; i < datagrams.length - 1; i++) nodeSocket.send(datagrams[i]!, port, host);
        nodeSocket.send(datagrams[datagrams.length - 1]!, port, host, (error) => (error ? reject(error) : resolve()));
      }),
      close: () => nodeSocket.close(),
      seconds: 0, sent: 0, bytes: 0,
    },
    {
      name: 'wsk-dgram trySendBatch',
      tag: 2,
      send: async (datagrams) => {
        const result = wskSocket.trySendBatch(datagrams, port, host);
        if (result.datagrams !== datagrams.length) {
          throw new Error(`wsk-dgram sent ${result.datagrams} of ${datagrams.length} (socket buffer full)`);
        }
      },
      close: () => wskSocket.close(),
      seconds: 0, sent: 0, bytes: 0,
    },
  ];
  for (const contender of contenders) {
    expected.set(contender.tag, 0);
    stats.set(contender.tag, { received: 0, corrupt: 0, outOfOrder: 0 });
  }

  const pool = Array.from({ length: round }, () => Uint8Array.from(template));
  const progressEvery = Math.max(1, Math.floor(count / round / 10));
  let roundNumber = 0;
  for (let first = 0; first < count; first += round) {
    const n = Math.min(round, count - first);
    const datagrams = pool.slice(0, n);
    for (const contender of contenders) {
      for (let i = 0; i < n; i++) {
        const view = new DataView(datagrams[i]!.buffer);
        view.setUint32(0, first + i);
        view.setUint8(4, contender.tag);
      }
      roundArrived = 0;
      const start = performance.now();
      await contender.send(datagrams);
      contender.seconds += (performance.now() - start) / 1000;
      contender.sent += n;
      contender.bytes += n * size;
      await drain(n);
    }
    if (++roundNumber % progressEvery === 0 && process.stderr.isTTY && !values.json) {
      process.stderr.write(`\r  ${Math.round(((first + n) / count) * 100)}% sent`);
    }
  }
  if (process.stderr.isTTY && !values.json) process.stderr.write('\r');
  for (const contender of contenders) contender.close();
  receiver.close();

  // --- the report -----------------------------------------------------------------------
  const rows = contenders.map((c) => {
    const s = stats.get(c.tag)!;
    return {
      contender: c.name,
      sent: c.sent,
      received: s.received,
      lost: c.sent - s.received,
      corrupt: s.corrupt,
      outOfOrder: s.outOfOrder,
      seconds: c.seconds,
      datagramsPerSecond: c.sent / c.seconds,
      gbitPerSecond: (c.bytes * 8) / c.seconds / 1e9,
    };
  });
  const ratio = rows[1]!.datagramsPerSecond / rows[0]!.datagramsPerSecond;
  const allReceived = rows.every((r) => r.lost === 0 && r.corrupt === 0 && r.outOfOrder === 0);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ family, size, count, round, receiveBuffer, rows, ratio, allReceived }, null, 2)}\n`);
  } else {
    const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(24) : c.padStart(11))).join(' ');
    process.stdout.write(`wsk-dgram main job: ${count} datagrams of ${size} B per contender to ${host}:${port}, ` +
      `rounds of ${round} (receive buffer ${receiveBuffer} B)\n\n`);
    process.stdout.write(`${line(['contender', 'sent', 'received', 'lost', 'corrupt', 'send s', 'datagrams/s', 'Gbit/s'])}\n`);
    for (const r of rows) {
      process.stdout.write(`${line([r.contender, String(r.sent), String(r.received), String(r.lost),
        String(r.corrupt + r.outOfOrder), r.seconds.toFixed(3), Math.round(r.datagramsPerSecond).toLocaleString('en-US'),
        r.gbitPerSecond.toFixed(2)])}\n`);
    }
    process.stdout.write(`\nwsk-dgram / node:dgram: ${ratio.toFixed(2)}x datagrams per second of send time\n`);
    process.stdout.write(allReceived
      ? 'all datagrams received intact and in order\n'
      : 'NOT all datagrams were received intact and in order\n');
  }
  if (!allReceived) process.exitCode = 1;
}

main().catch((error: unknown) => {
  process.stderr.write(`main job failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
