/**
 * A blast sender thread (`blast --threads N`): runs one Sender with the config it was given,
 * posts its counts every PROGRESS_MS and at the end, and stops when told.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Sender, type SenderConfig, type SenderCounts } from './sender';

/** Messages a sender thread posts. */
export type WorkerMessage =
  | { type: 'progress'; counts: SenderCounts }
  | { type: 'done'; counts: SenderCounts }
  | { type: 'error'; message: string };

const PROGRESS_MS = 100;

if (parentPort !== null) {
  const port = parentPort;
  const sender = new Sender(workerData as SenderConfig);
  const timer = setInterval(() => port.postMessage({ type: 'progress', counts: sender.counts() } satisfies WorkerMessage), PROGRESS_MS);
  port.on('message', (message: { type: string }) => {
    if (message.type === 'stop') sender.stop();
  });
  sender.run().then((counts) => {
    port.postMessage({ type: 'done', counts } satisfies WorkerMessage);
  }, (error: unknown) => {
    port.postMessage({ type: 'error', message: error instanceof Error ? error.message : String(error) } satisfies WorkerMessage);
  }).finally(() => {
    clearInterval(timer);
    port.close();
  });
}
