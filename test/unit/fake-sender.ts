/**
 * A BatchSender for unit tests: records every submit call (copying what it was given) and
 * answers with scripted results, so the WSK layer is tested without the addon. A scripted
 * `'pending'` makes the call wait; the test then ends it with `completeNext()`.
 */
import type { Batch } from '../../lib/batch';
import type { NativeControls } from '../../lib/binding';
import type {
  BatchSender, Destination, PendingSend, RawSendResult, SendCompletion,
} from '../../lib/transport';

export interface RecordedSend {
  /** The batch as submitted (its arrays are the sender's own, see lib/batch.ts). */
  batch: Batch;
  /** A copy of `batch.buffers` at the time of the call. */
  buffers: readonly Uint8Array[];
  /** The one destination of the batch, or null for the connected remote. */
  destination: Destination | null;
  controls: NativeControls | undefined;
}

/** A RawSendResult with the fields a test does not care about filled in. */
export function sendResult(fields: Partial<RawSendResult> & { datagrams: number; bytes: number }): RawSendResult {
  return {
    segments: fields.datagrams, errno: 0, syscall: 'sendmmsg', wouldBlock: false, failures: [], ...fields,
  };
}

/** A SendCompletion, likewise. */
export function completion(fields: Partial<SendCompletion> & { datagrams: number; bytes: number }): SendCompletion {
  return { ...sendResult(fields), cancelled: false, ...fields };
}

export class FakeSender implements BatchSender {
  readonly calls: RecordedSend[] = [];
  /** Results returned in order; when empty, a full success for the batch is made up. */
  readonly script: Array<RawSendResult | Error | 'pending'> = [];
  /** Completions of the calls that went pending, oldest first. */
  readonly waiting: Array<(completion: SendCompletion) => void> = [];

  constructor(
    public family: 4 | 6 = 4,
    public remote: Destination | null = null,
    public closed = false,
    public gso = false,
  ) {}

  submit(batch: Batch, onComplete: (completion: SendCompletion) => void): RawSendResult | PendingSend {
    const destination = batch.destinations === null ? null : (batch.endpoints[0] ?? null);
    this.calls.push({ batch, buffers: [...batch.buffers], destination, controls: batch.controls });
    const next = this.script.shift();
    if (next instanceof Error) throw next;
    if (next === 'pending') {
      let done = false;
      const finish = (result: SendCompletion): void => {
        if (done) return;
        done = true;
        onComplete(result);
      };
      this.waiting.push(finish);
      return {
        pending: true,
        cancel: () => {
          if (done) return false;
          finish(completion({ datagrams: 1, bytes: 7, syscall: '', cancelled: true }));
          return true;
        },
      };
    }
    if (next !== undefined) return next;
    return sendResult({ datagrams: batch.count, bytes: batch.totalBytes });
  }

  /** Ends the oldest pending call with `result`. */
  completeNext(result: SendCompletion): void {
    const finish = this.waiting.shift();
    if (finish === undefined) throw new Error('no call is pending');
    finish(result);
  }
}

/**
 * The datagrams `ranges` and `spans` describe (lib/batch.ts), each gathered into one
 * Uint8Array, read word by word (independent of buildBatch). Throws for a word out of range.
 */
export function gather(buffers: readonly Uint8Array[], ranges: Uint32Array, spans: Uint32Array): Uint8Array[] {
  if (ranges.length % 3 !== 0 || spans.length % 2 !== 0) throw new RangeError('ranges or spans of a wrong length');
  const out: Uint8Array[] = [];
  for (let d = 0; d < spans.length / 2; d++) {
    const first = spans[d * 2] as number;
    const n = spans[d * 2 + 1] as number;
    if (first + n > ranges.length / 3) throw new RangeError(`datagram ${d}: span past the ranges`);
    const parts: Uint8Array[] = [];
    for (let r = first; r < first + n; r++) {
      const buffer = buffers[ranges[r * 3] as number];
      if (buffer === undefined) throw new RangeError(`range ${r}: no such buffer`);
      const offset = ranges[r * 3 + 1] as number;
      const length = ranges[r * 3 + 2] as number;
      if (offset + length > buffer.byteLength) throw new RangeError(`range ${r}: past its buffer`);
      parts.push(buffer.subarray(offset, offset + length));
    }
    out.push(new Uint8Array(Buffer.concat(parts)));
  }
  return out;
}
