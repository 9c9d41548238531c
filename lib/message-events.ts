/**
 * node:dgram's receive shape over the batched receiver: while a socket has 'message'
 * listeners, a loop reads batches (recvmmsg) and emits ('message', msg, rinfo) per datagram,
 * `msg` a copy of its bytes (the loop's arena is reused for the next batch). A receive error
 * is emitted as 'error', as dgram does, and the loop goes on from the next event-loop turn.
 */
import type { EventEmitter } from 'node:events';
import type { UdpSocketEvents } from './events';
import type { ReceivedDatagram, ReceiveOptions } from './receive';

/** Datagrams per batch of the loop; its arena is this many 64 KiB slots. */
export const MESSAGE_BATCH = 32;
const SLOT_SIZE = 65535;

/** What the loop needs of the socket. */
export interface MessageSource extends EventEmitter<UdpSocketEvents> {
  readonly closed: boolean;
  receiveBatch(options: ReceiveOptions): Promise<ReceivedDatagram[]>;
}

/** Reports an exception thrown by a listener the way an event-loop callback's would be. */
function rethrowLater(error: unknown): void {
  process.nextTick(() => {
    throw error;
  });
}

export class MessageEvents {
  readonly #socket: MessageSource;
  /** Aborts the running loop's receive; null while no loop runs. */
  #controller: AbortController | null = null;
  #arena: Uint8Array | null = null;
  readonly #onNewListener = (name: string | symbol): void => {
    if (name === 'message') this.#start();
  };
  readonly #onRemoveListener = (name: string | symbol): void => {
    if (name === 'message' && this.#socket.listenerCount('message') === 0) this.stop();
  };

  constructor(socket: MessageSource) {
    this.#socket = socket;
    this.install();
  }

  /** Watches the socket's 'message' listeners (again, after removeAllListeners()). */
  install(): void {
    const socket = this.#socket;
    if (!socket.listeners('newListener').includes(this.#onNewListener)) socket.on('newListener', this.#onNewListener);
    if (!socket.listeners('removeListener').includes(this.#onRemoveListener)) {
      socket.on('removeListener', this.#onRemoveListener);
    }
  }

  /** Ends the loop (last listener gone, or the socket closed); it reads nothing more. */
  stop(): void {
    this.#controller?.abort();
    this.#controller = null;
  }

  #start(): void {
    if (this.#controller !== null) return;
    const controller = new AbortController();
    this.#controller = controller;
    void this.#run(controller.signal);
  }

  async #run(signal: AbortSignal): Promise<void> {
    this.#arena ??= new Uint8Array(MESSAGE_BATCH * SLOT_SIZE);
    const options: ReceiveOptions = { maxDatagrams: MESSAGE_BATCH, slotSize: SLOT_SIZE, arena: this.#arena, signal };
    while (!signal.aborted) {
      let batch: ReceivedDatagram[];
      try {
        batch = await this.#socket.receiveBatch(options);
      } catch (error) {
        if (signal.aborted) return;
        this.#emit('error', error as Error);
        // A lasting error must not spin: try again from the next event-loop turn.
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      if (batch.length === 0) break; // the socket closed
      // Delivered while anyone listens, even if the loop was stopped and restarted inside a
      // listener (once(), then on()): the restarted loop reads after this batch, so order holds.
      // With no listener left, the rest of the batch is dropped, as dgram drops what no one
      // hears; after close() nothing more is emitted.
      for (const datagram of batch) {
        if (this.#socket.closed || this.#socket.listenerCount('message') === 0) break;
        this.#deliver(datagram);
      }
    }
    if (this.#controller?.signal === signal) this.#controller = null;
  }

  /** One 'message' per datagram; a GRO batch entry is split back into its datagrams. */
  #deliver(datagram: ReceivedDatagram): void {
    const { data, source, segmentSize } = datagram;
    const step = segmentSize > 0 ? segmentSize : Math.max(data.length, 1);
    for (let offset = 0; offset < data.length || offset === 0; offset += step) {
      const msg = Buffer.from(data.subarray(offset, Math.min(offset + step, data.length)));
      this.#emit('message', msg, { address: source.address, family: source.family, port: source.port, size: msg.length });
      if (data.length === 0) break;
    }
  }

  #emit<K extends 'message' | 'error'>(name: K, ...args: UdpSocketEvents[K]): void {
    try {
      (this.#socket.emit as (name: K, ...args: UdpSocketEvents[K]) => boolean)(name, ...args);
    } catch (error) {
      rethrowLater(error);
    }
  }
}
