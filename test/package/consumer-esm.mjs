// The installed package from ESM (the pack test's consumer.mjs; scripts/package/pack-test.sh):
// named imports from the root and the wsk-dgram/wsk subpath, the default import, and the same
// names as the CommonJS entries. Sends to a node:dgram receiver on loopback, checks every
// datagram, prints one JSON line; exits 1 on any mismatch.
import * as dgram from 'node:dgram';
import { createRequire } from 'node:module';
import { createSocket, nativeBackend, WskSendMessages as rootWskSendMessages } from 'wsk-dgram';
import wskDgram from 'wsk-dgram';
import * as rootNamespace from 'wsk-dgram';
import * as wskNamespace from 'wsk-dgram/wsk';
import { IoAllocateIrp, IoAllocateMdl, NT_SUCCESS, ntStatusName, WskSendMessages, wskBufList } from 'wsk-dgram/wsk';

const require = createRequire(import.meta.url);

function fail(message) {
  console.error(`consumer.mjs: ${message}`);
  process.exit(1);
}

// Every CommonJS name is an ESM name, and no other.
for (const [specifier, namespace] of [['wsk-dgram', rootNamespace], ['wsk-dgram/wsk', wskNamespace]]) {
  const cjsNames = Object.keys(require(specifier)).sort();
  const esmNames = Object.keys(namespace).filter((name) => name !== 'default').sort();
  if (JSON.stringify(cjsNames) !== JSON.stringify(esmNames)) {
    fail(`${specifier}: ESM names differ from CommonJS names`);
  }
}
if (wskDgram.createSocket !== createSocket) fail('the default export is not the CommonJS module');
if (rootWskSendMessages !== WskSendMessages) fail('the root and wsk-dgram/wsk give different WskSendMessages');

const expected = [];
for (let i = 0; i < 32; i++) expected.push(`esm root ${i}`);
expected.push('esm wsk one', 'esm wsk two');

const receiver = dgram.createSocket('udp6');
const received = [];
const timeout = setTimeout(() => fail(`received ${received.length} of ${expected.length} datagrams in 5 s`), 5000);
const all = new Promise((resolve) => {
  receiver.on('message', (message) => {
    received.push(message.toString());
    if (received.length === expected.length) resolve();
  });
});
await new Promise((resolve) => receiver.bind(0, '::1', resolve));
const port = receiver.address().port;

const socket = createSocket('udp6');
const result = await socket.sendBatch(expected.slice(0, 32).map((text) => Buffer.from(text)), port, '::1');
if (result.datagrams !== 32) fail(`sendBatch sent ${result.datagrams} of 32`);
const irp = IoAllocateIrp();
WskSendMessages(socket, wskBufList([
  { Mdl: IoAllocateMdl(Buffer.from('esm wsk one')), Offset: 0, Length: 11 },
  { Mdl: IoAllocateMdl(Buffer.from('esm wsk two')), Offset: 0, Length: 11 },
]), 0, { family: 'IPv6', address: '::1', port }, 0, null, irp);
const { Status } = await irp.promise;
if (!NT_SUCCESS(Status)) fail(`WskSendMessages: ${ntStatusName(Status)}`);
socket.close();

await all;
clearTimeout(timeout);
receiver.close();
if (JSON.stringify([...received].sort()) !== JSON.stringify([...expected].sort())) fail('datagrams differ');
console.log(JSON.stringify({ entry: 'esm', arch: process.arch, datagrams: received.length, backend: nativeBackend() }));
