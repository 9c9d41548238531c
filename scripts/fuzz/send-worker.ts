/**
 * Worker for the socket target: sends batches in a tight loop (most of its time inside the
 * native send) until the main thread terminates it. Tells the main thread once it is sending.
 * The destination has no listener; the loop is bounded in count and time.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createSocket } from '../../lib/socket';

const { address, port, lifetimeMs } = workerData as { address: string; port: number; lifetimeMs: number };
const socket = createSocket('udp4');
const datagrams = Array.from({ length: 64 }, (_, i) => new Uint8Array(64 + i));
const deadline = Date.now() + lifetimeMs;
let told = false;
for (let i = 0; i < 10_000_000 && Date.now() < deadline; i++) {
  socket.trySendBatch(datagrams, port, address);
  if (!told) {
    parentPort?.postMessage('running');
    told = true;
  }
}
socket.close();
