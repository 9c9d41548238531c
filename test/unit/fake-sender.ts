/**
 * A BatchSender for unit tests: records every submit call (copying what it was given) and
 * answers with scripted results, so the WSK layer is tested without the addon. A scripted
 * `'pending'` makes the call wait; the test then ends it with `completeNext()`.
 */
import type {
  BatchLayout, BatchSender, Destination, PendingSend, RawSendResult, SendCompletion, SendControls,
} from '../../lib/transport';

export interface RecordedSend {
  buffers: readonly Uint8Array[];
  layout: BatchLayout;
  datagramCount: number;
  totalBytes: number;
  destination: Destination | null;
  controls: SendControls | undefined;
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
  ) {}

  submit(
    buffers: readonly Uint8Array[],
    layout: BatchLayout,
    datagramCount: number,
    totalBytes: number,
    destination: Destination | null,
    onComplete: (completion: SendCompletion) => void,
    controls?: SendControls,
  ): RawSendResult | PendingSend {
    this.calls.push({ buffers: [...buffers], layout, datagramCount, totalBytes, destination, controls });
    const next = this.script.shift();
    if (next instanceof Error) throw next;
    if (next === 'pending') {
      let done = false;
      const finish = (completion: SendCompletion): void => {
        if (done) return;
        done = true;
        onComplete(completion);
      };
      this.waiting.push(finish);
      return {
        pending: true,
        cancel: () => {
          if (done) return false;
          finish({ datagrams: 1, bytes: 7, errno: 0, syscall: '', cancelled: true });
          return true;
        },
      };
    }
    if (next !== undefined) return next;
    return { datagrams: datagramCount, bytes: totalBytes, errno: 0, syscall: 'sendmmsg' };
  }

  /** Ends the oldest pending call with `completion`. */
  completeNext(completion: SendCompletion): void {
    const finish = this.waiting.shift();
    if (finish === undefined) throw new Error('no call is pending');
    finish(completion);
  }
}

/** Sum of the range lengths of a layout, read word by word (independent of buildBatch). */
export function totalBytes(layout: BatchLayout): number {
  if (layout === null) return 0;
  let sum = 0;
  let i = 0;
  while (i < layout.length) {
    const n = layout[i++] as number;
    for (let k = 0; k < n; k++) {
      sum += layout[i + 2] as number;
      i += 3;
    }
  }
  return sum;
}

/** The datagrams a layout describes, each gathered into one Uint8Array. */
export function gather(buffers: readonly Uint8Array[], layout: Uint32Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  let i = 0;
  while (i < layout.length) {
    const n = layout[i++] as number;
    const parts: Uint8Array[] = [];
    for (let k = 0; k < n; k++) {
      const buffer = buffers[layout[i] as number] as Uint8Array;
      const offset = layout[i + 1] as number;
      const length = layout[i + 2] as number;
      if (offset + length > buffer.byteLength) throw new RangeError('layout range past its buffer');
      parts.push(buffer.subarray(offset, offset + length));
      i += 3;
    }
    out.push(new Uint8Array(Buffer.concat(parts)));
  }
  return out;
}
