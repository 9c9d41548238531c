/**
 * The soak's receiver (a child process, run inside a network namespace by scripts/soak.ts):
 *
 *   node receiver.js '<ReceiverConfig as JSON>'
 *
 * One node:dgram socket per path (independent of the library under test), bound to the path's
 * host on a free port. Every datagram is checked: its length, its path tag, its sequence number
 * (the next one expected, else out of order) and its payload against the pool the sender
 * stamped it in (makePool from the bench). It acknowledges on stdout how many datagrams of a
 * path arrived, every `ackEvery` datagrams and on a 10 ms timer for the rest; that is what paces
 * the sender. Ends when stdin closes (the soak went away), on {"cmd":"exit"}, or after its
 * lifetime, whichever comes first.
 */
import * as dgram from 'node:dgram';
import * as readline from 'node:readline';
import { makePool } from '../../lib/cli/bench/contenders';
import {
  MAX_CALLS,
  PATH_TAGS,
  STAMP_BYTES,
  type PathId,
  type ReceiverCommand,
  type ReceiverConfig,
  type ReceiverLine,
  type ReceiverPathReport,
} from './protocol';

const ACK_TIMER_MS = 10;
const SURPRISES_KEPT = 8;

function emit(line: ReceiverLine): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

interface PathState {
  readonly id: PathId;
  readonly socket: dgram.Socket;
  readonly report: ReceiverPathReport;
  acked: number;
}

async function main(): Promise<void> {
  const config = JSON.parse(process.argv[2] ?? '{}') as ReceiverConfig;
  const states: PathState[] = [];

  for (const plan of config.paths) {
    const tag = PATH_TAGS[plan.id];
    const size = plan.size;
    const batch = plan.batch;
    // The bytes each index must carry after its stamp, and where they start in the datagram.
    const split = plan.layout === 'split';
    const reference = split ? makePool(size - STAMP_BYTES, batch) : makePool(size, batch);
    const referenceStart = split ? 0 : STAMP_BYTES;
    const socket = dgram.createSocket({ type: 'udp4', recvBufferSize: config.receiveBuffer });
    const report: ReceiverPathReport = {
      received: 0, bytes: 0, outOfOrder: 0, backwards: 0, corrupt: 0, next: 0, firstSurprises: [],
    };
    const state: PathState = { id: plan.id, socket, report, acked: 0 };
    socket.on('message', (message: Buffer) => {
      report.received++;
      report.bytes += message.length;
      if (message.length !== size) {
        report.corrupt++;
        if (report.firstSurprises.length < SURPRISES_KEPT) report.firstSurprises.push([report.next, -1]);
      } else {
        const run = message.readUInt32BE(0);
        const index = message.readUInt32BE(4);
        const call = run & (MAX_CALLS - 1);
        const expected = reference[index];
        if (run >>> 28 !== tag || expected === undefined ||
          message.compare(expected, referenceStart, referenceStart + size - STAMP_BYTES, STAMP_BYTES, size) !== 0) {
          report.corrupt++;
          if (report.firstSurprises.length < SURPRISES_KEPT) report.firstSurprises.push([report.next, -1]);
        } else {
          const sequence = call * batch + index;
          if (sequence !== report.next) {
            report.outOfOrder++;
            if (sequence < report.next) report.backwards++;
            if (report.firstSurprises.length < SURPRISES_KEPT) report.firstSurprises.push([report.next, sequence]);
          }
          report.next = sequence + 1;
        }
      }
      if (report.received - state.acked >= config.ackEvery) ack(state);
    });
    socket.on('error', (error) => {
      process.stderr.write(`receiver ${plan.id}: ${error.message}\n`);
      process.exit(1);
    });
    await new Promise<void>((resolve) => socket.bind(0, plan.host, resolve));
    states.push(state);
  }

  function ack(state: PathState): void {
    state.acked = state.report.received;
    emit({ event: 'ack', path: state.id, received: state.acked });
  }

  const timer = setInterval(() => {
    for (const state of states) if (state.report.received !== state.acked) ack(state);
  }, ACK_TIMER_MS);

  const ports: Record<string, number> = {};
  const receiveBuffers: Record<string, number> = {};
  for (const state of states) {
    ports[state.id] = state.socket.address().port;
    receiveBuffers[state.id] = state.socket.getRecvBufferSize();
  }
  emit({ event: 'ready', ports, receiveBuffers });

  let ended = false;
  const end = (): void => {
    if (ended) return;
    ended = true;
    clearInterval(timer);
    clearTimeout(lifetime);
    lines.close();
    let open = states.length;
    // stdout is a pipe, written synchronously on Linux: exiting loses no line.
    if (open === 0) process.exit(0);
    for (const state of states) {
      state.socket.close(() => {
        if (--open === 0) process.exit(0);
      });
    }
  };
  const lifetime = setTimeout(() => {
    process.stderr.write(`receiver: lifetime of ${config.lifetimeMs} ms over, ending\n`);
    end();
  }, config.lifetimeMs);

  const lines = readline.createInterface({ input: process.stdin });
  lines.on('line', (text) => {
    let command: ReceiverCommand;
    try {
      command = JSON.parse(text) as ReceiverCommand;
    } catch {
      process.stderr.write(`receiver: not a command: ${text}\n`);
      return;
    }
    if (command.cmd === 'report') {
      const paths: Record<string, ReceiverPathReport> = {};
      for (const state of states) paths[state.id] = { ...state.report, firstSurprises: [...state.report.firstSurprises] };
      emit({ event: 'report', id: command.id, paths, rss: process.memoryUsage.rss() });
    } else if (command.cmd === 'exit') {
      end();
    }
  });
  lines.on('close', end);
}

main().catch((error: unknown) => {
  process.stderr.write(`receiver failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
