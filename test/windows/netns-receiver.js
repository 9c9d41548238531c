'use strict';
// The receiving side of the Windows pending-path test (scripts/windows/run-wine-pending.sh):
// the Linux node, run in namespace B with `ip netns exec`, receives what the Windows node.exe
// in namespace A sends through the addon over the slow veth link, and tells it, on request,
// exactly which datagrams arrived: runs of consecutive indices of one case (seed), in arrival
// order, each datagram's bytes checked against payload(seed, index, length). The Windows side
// compares those runs with what its results say went out.
//
//   node test/windows/netns-receiver.js <info.json> <IPv4 address> <IPv6 address>
// Writes { port4, port6, control } to info.json once listening (data sockets on both addresses,
// the control socket on the IPv4 one). Bounded in time: exits by itself after LIFETIME_MS.
//
// Control requests (JSON, one per datagram) from the Windows side:
//   { id, op: 'take', family, expect, quietMs, timeoutMs }
//     waits until `expect` datagrams arrived on `family` and then `quietMs` passed without
//     another (so that extra datagrams show too), or, short of `expect`, until none arrived for
//     a second, or until `timeoutMs`; replies
//     { id, count, runs: [[seed, firstIndex, lastIndex, length, intact], ...], truncated }
//     and forgets what it reported.
//   { id, op: 'quit' }
// The control requests travel the same veth (and the same tbf queue) as the data, behind it:
// a request arrives after every datagram queued before it was sent.
const dgram = require('node:dgram');
const fs = require('node:fs');
const { payload } = require('./payload');

const LIFETIME_MS = Number(process.env.WSK_WINE_RECEIVER_TIMEOUT_MS || 120000);
const MAX_RUNS = 64; // keeps a reply well inside one datagram
const GIVE_UP_QUIET_MS = 1000;
const [infoFile, address4, address6] = process.argv.slice(2);

/** Per family: the runs seen so far and their datagram count. */
const received = { 4: { runs: [], count: 0, lastAt: 0 }, 6: { runs: [], count: 0, lastAt: 0 } };

function onDatagram(family, message) {
  const state = received[family];
  state.count++;
  state.lastAt = Date.now();
  let seed = -1;
  let index = -1;
  let intact = false;
  if (message.length >= 8) {
    seed = message.readUInt32BE(0);
    index = message.readUInt32BE(4);
    intact = payload(seed, index, message.length).equals(message);
  }
  const last = state.runs[state.runs.length - 1];
  if (last && last[0] === seed && last[2] + 1 === index && last[3] === message.length && last[4] === intact) {
    last[2] = index;
  } else {
    state.runs.push([seed, index, index, message.length, intact]);
  }
}

function bind(type, address) {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket({ type, recvBufferSize: 16 * 1024 * 1024 });
    socket.once('error', reject);
    socket.bind(0, address, () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
  });
}

/** Resolves once `expect` datagrams arrived and `quietMs` passed without one, or none came for GIVE_UP_QUIET_MS, or at the deadline. */
function settle(family, expect, quietMs, timeoutMs) {
  const state = received[family];
  const asked = Date.now();
  const deadline = asked + timeoutMs;
  return new Promise((resolve) => {
    const poll = () => {
      const now = Date.now();
      if (now >= deadline) return resolve();
      const quiet = now - Math.max(state.lastAt, asked);
      // Short of the count, a longer silence says nothing more is coming: the link was drained
      // by the time this request, queued behind the data, arrived.
      if ((state.count >= expect && quiet >= quietMs) || quiet >= GIVE_UP_QUIET_MS) return resolve();
      setTimeout(poll, 10);
    };
    poll();
  });
}

async function main() {
  const data4 = await bind('udp4', address4);
  const data6 = await bind('udp6', address6);
  const control = await bind('udp4', address4);
  data4.on('message', (m) => onDatagram(4, m));
  data6.on('message', (m) => onDatagram(6, m));
  const lifetime = setTimeout(() => {
    console.error('netns-receiver: lifetime over, exiting');
    process.exit(2);
  }, LIFETIME_MS);

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
      clearTimeout(lifetime);
      setTimeout(() => process.exit(0), 50);
    } else if (request.op === 'take') {
      const family = request.family === 6 ? 6 : 4;
      await settle(family, Number(request.expect) || 0, Number(request.quietMs) || 200,
        Math.min(Number(request.timeoutMs) || 10000, 30000));
      const state = received[family];
      const runs = state.runs;
      reply({ count: state.count, runs: runs.slice(0, MAX_RUNS), truncated: runs.length > MAX_RUNS });
      received[family] = { runs: [], count: 0, lastAt: 0 };
    }
  });

  fs.writeFileSync(infoFile, JSON.stringify({
    port4: data4.address().port,
    port6: data6.address().port,
    control: control.address().port,
  }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
