// The installed package from strict TypeScript compiled to CommonJS (moduleResolution node16:
// the `require` condition's types). Sends through both entries, checks the datagrams arrived.
import * as dgram from 'node:dgram';
import { createSocket, type SendResult } from 'wsk-dgram';
import { IoAllocateIrp, IoAllocateMdl, NT_SUCCESS, WskSendMessages, wskBufList } from 'wsk-dgram/wsk';

function fail(message: string): never {
  console.error(`consumer.cts: ${message}`);
  process.exit(1);
}

async function main(): Promise<void> {
  const receiver = dgram.createSocket('udp4');
  const received: string[] = [];
  const expected = ['cts one', 'cts two', 'cts wsk'];
  const timeout = setTimeout(() => fail(`received ${received.length} of ${expected.length} in 5 s`), 5000);
  const all = new Promise<void>((resolve) => {
    receiver.on('message', (message: Buffer) => {
      received.push(message.toString());
      if (received.length === expected.length) resolve();
    });
  });
  await new Promise<void>((resolve) => receiver.bind(0, '127.0.0.1', resolve));
  const { port } = receiver.address();
  const socket = createSocket('udp4');
  const result: SendResult = await socket.sendBatch([Buffer.from('cts one'), Buffer.from('cts two')], port, '127.0.0.1');
  if (result.datagrams !== 2) fail(`sendBatch sent ${result.datagrams} of 2`);
  try {
    // @ts-expect-error: a batch is datagrams or a packed batch, not a string
    socket.trySendBatch('cts', port, '127.0.0.1');
    fail('a string batch was taken');
  } catch (error) {
    if (!(error instanceof TypeError)) throw error;
  }
  const irp = IoAllocateIrp();
  WskSendMessages(socket, wskBufList([{ Mdl: IoAllocateMdl(Buffer.from('cts wsk')), Offset: 0, Length: 7 }]), 0,
    { family: 'IPv4', address: '127.0.0.1', port }, 0, null, irp);
  if (!NT_SUCCESS((await irp.promise).Status)) fail('WskSendMessages failed');
  socket.close();
  await all;
  clearTimeout(timeout);
  receiver.close();
  if (JSON.stringify([...received].sort()) !== JSON.stringify([...expected].sort())) fail('datagrams differ');
  console.log(JSON.stringify({ entry: 'ts-cjs', datagrams: received.length }));
}

main().catch((error: unknown) => fail(String(error)));
