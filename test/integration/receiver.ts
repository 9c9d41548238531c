/** A Node dgram receiver for the integration tests: collects datagrams, bounded in time. */
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';

export const RECEIVE_BUFFER = 8 * 1024 * 1024;

export interface Receiver {
  readonly port: number;
  readonly address: string;
  readonly received: Buffer[];
  /** Resolves with the first `count` datagrams; rejects after `timeoutMs` with what arrived. */
  waitFor(count: number, timeoutMs?: number): Promise<Buffer[]>;
  close(): Promise<void>;
}

export async function openReceiver(type: 'udp4' | 'udp6' = 'udp4'): Promise<Receiver> {
  const socket = dgram.createSocket({ type, recvBufferSize: RECEIVE_BUFFER });
  const received: Buffer[] = [];
  let notify: (() => void) | null = null;
  socket.on('message', (message) => {
    received.push(message);
    notify?.();
  });
  const address = type === 'udp6' ? '::1' : '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, address, () => resolve());
  });
  return {
    port: socket.address().port,
    address,
    received,
    waitFor(count, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          if (received.length < count) return false;
          clearTimeout(timer);
          notify = null;
          resolve(received.slice(0, count));
          return true;
        };
        const timer = setTimeout(() => {
          notify = null;
          reject(new Error(`received ${received.length} of ${count} datagrams in ${timeoutMs} ms ` +
            `(receive buffer ${socket.getRecvBufferSize()} B)`));
        }, timeoutMs);
        notify = check;
        check();
      });
    },
    close: () => new Promise((resolve) => socket.close(() => resolve())),
  };
}

/** A datagram whose bytes depend on its index and length, so any mix-up shows. */
export function patterned(index: number, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (index * 31 + i * 7 + (i >> 8)) & 0xff;
  if (length >= 4) new DataView(bytes.buffer).setUint32(0, index);
  return bytes;
}

/**
 * UDP sockets this process holds open (Linux), to check that nothing leaks. Counting every
 * descriptor would be noisy: jest opens and closes files of its own meanwhile.
 */
export function openUdpSocketCount(): number {
  const udpInodes = new Set<string>();
  for (const table of ['/proc/self/net/udp', '/proc/self/net/udp6']) {
    for (const line of fs.readFileSync(table, 'utf8').split('\n').slice(1)) {
      const inode = line.trim().split(/\s+/)[9];
      if (inode !== undefined) udpInodes.add(inode);
    }
  }
  let count = 0;
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/self/fd/${fd}`));
      if (match !== null && udpInodes.has(match[1]!)) count++;
    } catch {
      // closed while we looked
    }
  }
  return count;
}
