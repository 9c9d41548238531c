// The installed package from strict TypeScript, ESM (scripts/package/pack-test.sh compiles it
// with the project's tsc twice: moduleResolution node16 and bundler). The types must be real:
// every @ts-expect-error below fails the compile if the type it expects to catch is gone (an
// `any` would let the call through).
import * as dgram from 'node:dgram';
import { createSocket, WskError, type SendResult, type UdpSocket } from 'wsk-dgram';
import {
  IoAllocateIrp, IoAllocateMdl, NT_SUCCESS, STATUS_SUCCESS, WskSendMessages, wskBufList,
  type IO_STATUS_BLOCK, type NTSTATUS, type WSK_BUF_LIST,
} from 'wsk-dgram/wsk';

function fail(message: string): never {
  console.error(`consumer.mts: ${message}`);
  process.exit(1);
}

const receiver = dgram.createSocket('udp4');
const received: string[] = [];
const expected = ['ts one', 'ts two', 'ts three', 'ts wsk'];
const timeout = setTimeout(() => fail(`received ${received.length} of ${expected.length} in 5 s`), 5000);
const all = new Promise<void>((resolve) => {
  receiver.on('message', (message: Buffer) => {
    received.push(message.toString());
    if (received.length === expected.length) resolve();
  });
});
await new Promise<void>((resolve) => receiver.bind(0, '127.0.0.1', resolve));
const { port } = receiver.address();

const socket: UdpSocket = createSocket('udp4');
const result: SendResult = await socket.sendBatch(expected.slice(0, 3).map((text) => Buffer.from(text)), port, '127.0.0.1');
const sent: number = result.datagrams;
if (sent !== 3) fail(`sendBatch sent ${sent} of 3`);
// What the types refuse, the library refuses at run time too.
try {
  // @ts-expect-error: a port is a number
  socket.trySendBatch([Buffer.from('x')], 'not a port', '127.0.0.1');
  fail('a string port was taken');
} catch (error) {
  if (!(error instanceof RangeError)) throw error;
}

const list: WSK_BUF_LIST = wskBufList([{ Mdl: IoAllocateMdl(Buffer.from('ts wsk')), Offset: 0, Length: 6 }]);
const irp = IoAllocateIrp();
const status: NTSTATUS = WskSendMessages(socket, list, 0, { family: 'IPv4', address: '127.0.0.1', port }, 0, null, irp);
const block: IO_STATUS_BLOCK = await irp.promise;
if (!NT_SUCCESS(block.Status) || block.Information !== 6) fail(`WskSendMessages: ${status}, ${block.Status}`);
// @ts-expect-error: an NTSTATUS is a number, not a string
const wrong: NTSTATUS = 'STATUS_SUCCESS';
void wrong;
socket.close();
// The typed error class, from the root: errno 111 is Linux's ECONNREFUSED.
const refused = new WskError(111, 'sendmmsg');
const statusName: string = refused.statusName;
if (!(refused instanceof Error) || statusName !== 'STATUS_CONNECTION_REFUSED' || STATUS_SUCCESS !== 0) {
  fail(`WskError: ${statusName}`);
}

await all;
clearTimeout(timeout);
receiver.close();
if (JSON.stringify([...received].sort()) !== JSON.stringify([...expected].sort())) fail('datagrams differ');
console.log(JSON.stringify({ entry: 'ts-esm', datagrams: received.length }));
