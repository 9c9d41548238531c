'use strict';
// The Linux side of the Wine test: run by the Linux node (scripts/windows/run-wine-test.sh).
// Receives on 127.0.0.1 (and ::1) what the Windows node sends through the addon, and answers
// check requests on a control socket: were exactly the expected datagrams received, in order,
// with the expected bytes? Bounded in time: it exits by itself after TIMEOUT_MS.
//
//   node test/windows/linux-receiver.js <info.json>
// writes { port4, port6, control } to info.json once listening.
const dgram = require('node:dgram');
const fs = require('node:fs');
const { payload } = require('./payload');

const TIMEOUT_MS = Number(process.env.WSK_WINE_RECEIVER_TIMEOUT_MS || 300000);
const RECEIVE_BUFFER = 8 * 1024 * 1024;
const infoFile = process.argv[2];

const received = { 4: [], 6: [] };
const sockets = {};

function bind(type, address) {
  return new Promise((resolve) => {
    const socket = dgram.createSocket({ type, recvBufferSize: RECEIVE_BUFFER });
    socket.once('error', () => resolve(null));
    socket.bind(0, address, () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
  });
}

function waitForCount(family, count, timeoutMs) {
  return new Promise((resolve) => {
    const deadline = Date.now() + timeoutMs;
    const poll = () => {
      // A little longer after the count is reached, so that extra datagrams show too.
      if (received[family].length >= count) return setTimeout(resolve, 50);
      if (Date.now() > deadline) return resolve();
      setTimeout(poll, 10);
    };
    poll();
  });
}

function check(request) {
  const got = received[request.family];
  const lengths = request.lengths;
  if (got.length !== lengths.length) {
    return `received ${got.length} datagrams, expected ${lengths.length}` +
      ` (lengths seen: ${got.slice(0, 8).map((b) => b.length).join(',')}${got.length > 8 ? ',...' : ''})`;
  }
  for (let i = 0; i < lengths.length; i++) {
    const expected = payload(request.seed, i, lengths[i]);
    if (!expected.equals(got[i])) {
      return `datagram ${i}: ${got[i].length} B differ from the expected ${lengths[i]} B ` +
        '(wrong bytes or order)';
    }
  }
  return null;
}

async function main() {
  const control = await bind('udp4', '127.0.0.1');
  sockets[4] = await bind('udp4', '127.0.0.1');
  sockets[6] = await bind('udp6', '::1');
  for (const family of [4, 6]) {
    if (sockets[family]) sockets[family].on('message', (m) => received[family].push(m));
  }
  const timer = setTimeout(() => {
    console.error('linux-receiver: timed out, exiting');
    process.exit(2);
  }, TIMEOUT_MS);

  control.on('message', async (message, rinfo) => {
    let request;
    try {
      request = JSON.parse(message.toString('utf8'));
    } catch {
      return;
    }
    const reply = (body) => control.send(JSON.stringify({ id: request.id, ...body }), rinfo.port, rinfo.address);
    if (request.op === 'quit') {
      reply({ ok: true });
      clearTimeout(timer);
      setTimeout(() => process.exit(0), 50);
    } else if (request.op === 'check') {
      await waitForCount(request.family, request.lengths.length, request.timeoutMs ?? 5000);
      const problem = check(request);
      reply({ ok: problem === null, detail: problem ?? `${request.lengths.length} datagrams intact, in order` });
      received[request.family] = [];
    } else if (request.op === 'peek') {
      // What arrived, without expectations (for fallback cases whose outcome may vary).
      await waitForCount(request.family, request.atLeast ?? 1, request.timeoutMs ?? 1000);
      reply({ ok: true, lengths: received[request.family].map((b) => b.length) });
      received[request.family] = [];
    }
  });

  fs.writeFileSync(infoFile, JSON.stringify({
    control: control.address().port,
    port4: sockets[4] ? sockets[4].address().port : 0,
    port6: sockets[6] ? sockets[6].address().port : 0,
  }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
