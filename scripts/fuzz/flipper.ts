/**
 * Worker for the native target: while told to, flips one word of a batch's typed array in a
 * SharedArrayBuffer (a buffer index of `ranges`, a first range of `spans`, a `targets` entry)
 * between its valid value and a huge one, so that a send reading the word twice (check, then
 * use) sees two different values. Control words (Int32Array over `control`):
 * [0] state 0 idle / 1 flip / 2 stop, [1] word position, [2] valid value, [3] invalid value,
 * [4] flip rounds done, [5] 1 while flipping.
 */
import { workerData } from 'node:worker_threads';

const { control, words, lifetimeMs } = workerData as {
  control: SharedArrayBuffer; words: SharedArrayBuffer; lifetimeMs: number;
};
const ctl = new Int32Array(control);
const data = new Uint32Array(words);
const deadline = Date.now() + lifetimeMs;

for (let round = 0; round < 1e9 && Date.now() < deadline; round++) {
  const state = Atomics.load(ctl, 0);
  if (state === 2) break;
  if (state !== 1) {
    Atomics.store(ctl, 5, 0);
    Atomics.notify(ctl, 5);
    Atomics.wait(ctl, 0, state, 20);
    continue;
  }
  Atomics.store(ctl, 5, 1);
  const at = Atomics.load(ctl, 1);
  const valid = Atomics.load(ctl, 2) >>> 0;
  const invalid = Atomics.load(ctl, 3) >>> 0;
  // Plain stores: the addon reads the words without atomics, as any caller's memory. Each pair
  // ends on the valid value, so the word is valid whenever the flipping stops.
  for (let i = 0; i < 2048; i++) {
    data[at] = invalid;
    data[at] = valid;
  }
  Atomics.add(ctl, 4, 1);
}
Atomics.store(ctl, 5, 0);
Atomics.notify(ctl, 5);
