/**
 * The 'message' loop (lib/message-events.ts) over a scripted socket: it starts with the first
 * listener, stops (aborting its receive) with the last, copies every datagram, splits GRO
 * batches, reports errors as 'error' and goes on.
 */
import { EventEmitter } from 'node:events';
import type { UdpSocketEvents, RemoteInfo } from '../../lib/events';
import { MessageEvents, MESSAGE_BATCH } from '../../lib/message-events';
import type { ReceivedDatagram, ReceiveOptions } from '../../lib/receive';

interface Call {
  options: ReceiveOptions;
  resolve(batch: ReceivedDatagram[]): void;
  reject(error: unknown): void;
}

/** A socket whose receiveBatch calls wait until the test answers them. */
class ScriptedSocket extends EventEmitter<UdpSocketEvents> {
  closed = false;
  readonly calls: Call[] = [];
  readonly messages: MessageEvents;

  constructor() {
    super();
    this.messages = new MessageEvents(this);
  }

  receiveBatch(options: ReceiveOptions): Promise<ReceivedDatagram[]> {
    return new Promise((resolve, reject) => {
      const call = { options, resolve, reject };
      this.calls.push(call);
      options.signal?.addEventListener('abort', () => reject(new Error('aborted')), { once: true });
    });
  }

  get last(): Call {
    return this.calls[this.calls.length - 1]!;
  }
}

function datagram(text: string, segmentSize = 0, port = 4000): ReceivedDatagram {
  return {
    data: new Uint8Array(Buffer.from(text)), truncated: false,
    source: { address: '198.18.0.1', family: 'IPv4', port }, destination: null, interfaceIndex: 0,
    tos: null, ecn: null, ttl: null, segmentSize,
  };
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

test('no listener, no receive; the first listener starts one loop, a second adds none', async () => {
  const socket = new ScriptedSocket();
  await turn();
  expect(socket.calls).toHaveLength(0);
  socket.on('message', () => undefined);
  socket.on('message', () => undefined);
  await turn();
  expect(socket.calls).toHaveLength(1);
  expect(socket.last.options).toMatchObject({ maxDatagrams: MESSAGE_BATCH, slotSize: 65535 });
});

test('each datagram is one message with a copy of its bytes and dgram\'s rinfo, in order', async () => {
  const socket = new ScriptedSocket();
  const got: Array<[string, RemoteInfo]> = [];
  socket.on('message', (msg, rinfo) => got.push([msg.toString(), rinfo]));
  await turn();
  const batch = [datagram('one'), datagram('', 0, 4001), datagram('three')];
  socket.last.resolve(batch);
  await turn();
  batch[0]!.data.fill(0); // the arena is reused: the messages must not change
  expect(got).toEqual([
    ['one', { address: '198.18.0.1', family: 'IPv4', port: 4000, size: 3 }],
    ['', { address: '198.18.0.1', family: 'IPv4', port: 4001, size: 0 }],
    ['three', { address: '198.18.0.1', family: 'IPv4', port: 4000, size: 5 }],
  ]);
  expect(socket.calls).toHaveLength(2); // reading on
});

test('a GRO entry (segmentSize) is split back into its datagrams', async () => {
  const socket = new ScriptedSocket();
  const got: string[] = [];
  socket.on('message', (msg, rinfo) => got.push(`${msg.toString()}:${rinfo.size}`));
  await turn();
  socket.last.resolve([datagram('aaabbbcc', 3)]);
  await turn();
  expect(got).toEqual(['aaa:3', 'bbb:3', 'cc:2']);
});

test('the last listener removed aborts the waiting receive and reads no more; a new one restarts', async () => {
  const socket = new ScriptedSocket();
  const listener = (): void => undefined;
  socket.on('message', listener);
  await turn();
  const first = socket.last;
  socket.off('message', listener);
  expect(first.options.signal?.aborted).toBe(true);
  await turn();
  expect(socket.calls).toHaveLength(1);
  socket.once('message', listener);
  await turn();
  expect(socket.calls).toHaveLength(2);
  expect(socket.last.options.signal?.aborted).toBe(false);
});

test('with no listener left mid-batch the rest is dropped; a listener added in a listener gets the rest', async () => {
  const socket = new ScriptedSocket();
  const got: string[] = [];
  socket.once('message', (msg) => got.push(`once ${msg.toString()}`));
  await turn();
  socket.last.resolve([datagram('1'), datagram('2')]);
  await turn();
  expect(got).toEqual(['once 1']);

  socket.once('message', (msg) => {
    got.push(`again ${msg.toString()}`);
    socket.on('message', (m) => got.push(`on ${m.toString()}`));
  });
  await turn();
  socket.last.resolve([datagram('3'), datagram('4'), datagram('5')]);
  await turn();
  expect(got).toEqual(['once 1', 'again 3', 'on 4', 'on 5']);
});

test("a receive error is an 'error' event, and the loop reads again from the next turn", async () => {
  const socket = new ScriptedSocket();
  const errors: Error[] = [];
  socket.on('error', (e) => errors.push(e));
  socket.on('message', () => undefined);
  await turn();
  const failure = new Error('recvmmsg ECONNREFUSED');
  socket.last.reject(failure);
  await turn();
  await turn();
  expect(errors).toEqual([failure]);
  expect(socket.calls).toHaveLength(2);
});

test('closed: the batch in hand is not delivered and the loop ends', async () => {
  const socket = new ScriptedSocket();
  const got: string[] = [];
  socket.on('message', (m) => got.push(m.toString()));
  await turn();
  socket.closed = true;
  socket.messages.stop();
  socket.calls[0]!.resolve([datagram('late')]);
  await turn();
  expect(got).toEqual([]);
  expect(socket.calls).toHaveLength(1);
});

test('install() again after removeAllListeners() watches the listeners once more, never twice', async () => {
  const socket = new ScriptedSocket();
  socket.removeAllListeners();
  socket.messages.install();
  socket.messages.install();
  expect(socket.listenerCount('newListener')).toBe(1);
  socket.on('message', () => undefined);
  await turn();
  expect(socket.calls).toHaveLength(1);
});
