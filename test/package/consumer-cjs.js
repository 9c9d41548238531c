// The installed package from CommonJS, as a user's program would use it (copied into the pack
// test's project as consumer.cjs; scripts/package/pack-test.sh). Sends through the root entry and
// the wsk-dgram/wsk subpath to a node:dgram receiver on loopback, checks every datagram arrived
// with its bytes, and prints one JSON line; exits 1 on any mismatch.
'use strict';
const dgram = require('node:dgram');
const path = require('node:path');
const root = require('wsk-dgram');
const wsk = require('wsk-dgram/wsk');
const nodeGypBuild = require('node-gyp-build');

const expected = [];
for (let i = 0; i < 32; i++) expected.push(`cjs root ${i}`);
for (let i = 0; i < 4; i++) expected.push(`cjs packed ${i}`.padEnd(1200, '.'));
expected.push('cjs wsk HDR:payload', 'cjs wsk second');

function fail(message) {
  console.error(`consumer.cjs: ${message}`);
  process.exit(1);
}

let stats;
const receiver = dgram.createSocket('udp4');
const received = [];
const timeout = setTimeout(() => fail(`received ${received.length} of ${expected.length} datagrams in 5 s`), 5000);
receiver.on('message', (message) => {
  received.push(message.toString());
  if (received.length === expected.length) finish();
});

receiver.bind(0, '127.0.0.1', () => {
  send(receiver.address().port).catch((error) => fail(error.stack));
});

async function send(port) {
  const socket = root.createSocket('udp4');
  const plain = await socket.sendBatch(expected.slice(0, 32).map((text) => Buffer.from(text)), port, '127.0.0.1');
  if (plain.datagrams !== 32) fail(`sendBatch sent ${plain.datagrams} of 32`);
  const packed = await socket.sendBatch({ buffer: Buffer.from(expected.slice(32, 36).join('')), segmentSize: 1200 },
    port, '127.0.0.1');
  if (packed.datagrams !== 4) fail(`the packed sendBatch sent ${packed.datagrams} of 4`);

  const header = wsk.IoAllocateMdl(Buffer.from('cjs wsk HDR:'));
  const body = wsk.IoAllocateMdl(Buffer.from('payload'));
  header.Next = body;
  const second = wsk.IoAllocateMdl(Buffer.from('cjs wsk second'));
  const list = wsk.wskBufList([
    { Mdl: header, Offset: 0, Length: 19 },
    { Mdl: second, Offset: 0, Length: 14 },
  ]);
  const irp = wsk.IoAllocateIrp();
  wsk.WskSendMessages(socket, list, 0, { family: 'IPv4', address: '127.0.0.1', port }, 0, null, irp);
  const { Status, Information } = await irp.promise;
  if (!wsk.NT_SUCCESS(Status) || Information !== 33) {
    fail(`WskSendMessages: ${wsk.ntStatusName(Status)}, ${Information} bytes`);
  }
  // Shown, not asserted: how the sends went to the kernel (a packed run is one GSO message where
  // UDP_SEGMENT works, also under qemu-user).
  stats = socket.stats();
  socket.close();
}

function finish() {
  clearTimeout(timeout);
  receiver.close();
  const want = [...expected].sort();
  const got = [...received].sort();
  if (JSON.stringify(want) !== JSON.stringify(got)) fail(`datagrams differ: ${JSON.stringify(got)}`);
  const packageDir = path.dirname(require.resolve('wsk-dgram/package.json'));
  console.log(JSON.stringify({
    entry: 'cjs',
    arch: process.arch,
    datagrams: received.length,
    backend: root.nativeBackend(),
    addon: path.relative(packageDir, nodeGypBuild.resolve(packageDir)),
    // The WSK names stay reachable from the root, as the same objects.
    syscalls: stats?.syscalls,
    messages: stats?.messages,
    rootKeepsWsk: root.WskSendMessages === wsk.WskSendMessages && root.STATUS_SUCCESS === wsk.STATUS_SUCCESS,
  }));
}
