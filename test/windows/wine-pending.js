'use strict';
// The Windows pending path, for real: run by the Windows node.exe under Wine inside network
// namespace A (scripts/windows/run-wine-pending.sh), whose only way out is a veth behind
// `tbf rate 10mbit`. With SO_SNDBUF 4096 the socket buffer fills after a few datagrams, so
// WSASendMsg fails with WSAEWOULDBLOCK, the queue waits on uv_poll for the SOCKET, and
// sendBatch / WskSendMessages go pending (STATUS_PENDING) and complete later, or are cancelled
// by close() and IoCancelIrp. Loopback never blocks, so wine-send.js cannot reach any of this.
//
// What arrived is for the receiver in namespace B to say (test/windows/netns-receiver.js): every
// check compares its runs of (case, index) with what the results here say went out. Datagrams
// handed to the kernel before a cancel still leave (the tbf queue does not drop), so after a
// cancel the receiver must see exactly the `datagramsSent` the cancelled request reports.
//
//   node.exe wine-pending.js <repo root> <receiver info.json> <results file> <config json>
// config: { local4, remote4, local6, remote6 } (the veth addresses of A and B).
// Results: one JSON object per line { name, status: 'pass' | 'fail' | 'skip', detail }.
// stdout/stderr must be files: node.exe dies with EBADF when they are Linux pipes.
const dgram = require('node:dgram');
const fs = require('node:fs');
const path = require('node:path');
const { payload } = require('./payload');

const [root, infoFile, resultsFile, configText] = process.argv.slice(2);
const info = JSON.parse(fs.readFileSync(infoFile, 'utf8'));
const config = JSON.parse(configText);
fs.writeFileSync(resultsFile, '');

/** Small enough that a few datagrams fill it (Linux, under Wine's socket, doubles it). */
const SEND_BUFFER = 4096;
const SIZE = 1200;
/** Datagrams that must leave while a request waits before the test cancels it. */
const PROGRESS_BEFORE_CANCEL = 100;

function record(name, status, detail) {
  fs.appendFileSync(resultsFile, JSON.stringify({ name, status, detail: String(detail ?? '') }) + '\n');
}

/** Runs one check and records it; true when it passed. */
async function test(name, body) {
  try {
    record(name, 'pass', await body());
    return true;
  } catch (error) {
    record(name, 'fail', error && error.stack ? error.stack.split('\n').slice(0, 3).join(' | ') : error);
    return false;
  }
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

// ---- the control channel to the receiver in namespace B (Node's own dgram) ----
const control = dgram.createSocket('udp4');
let nextId = 1;
const waiting = new Map();
control.on('message', (message) => {
  const reply = JSON.parse(message.toString('utf8'));
  const resolve = waiting.get(reply.id);
  if (resolve) {
    waiting.delete(reply.id);
    resolve(reply);
  }
});

/** Set once the sockets are known to live in namespace A: nothing is sent before. */
let sendingAllowed = false;

function ask(request, timeoutMs) {
  if (!sendingAllowed) return Promise.reject(new Error('not asking: the sockets are not known to be in namespace A'));
  const id = nextId++;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      waiting.delete(id);
      reject(new Error(`the receiver did not answer ${request.op} in ${timeoutMs} ms`));
    }, timeoutMs);
    waiting.set(id, (reply) => {
      clearTimeout(timer);
      resolve(reply);
    });
    control.send(JSON.stringify({ id, ...request }), info.control, config.remote4);
  });
}

/** One run the receiver reports: datagrams first..last of case `seed`, `length` bytes, intact. */
function run(seed, first, last, length) {
  return [seed, first, last, length, true];
}

/**
 * Asks the receiver which datagrams arrived on `family` since the last question, and checks
 * they are exactly `expected` (runs, in arrival order).
 */
async function expectArrived(family, expected) {
  const count = expected.reduce((n, r) => n + r[2] - r[1] + 1, 0);
  const reply = await ask({ op: 'take', family, expect: count, quietMs: 250, timeoutMs: 15000 }, 20000);
  const seen = JSON.stringify(reply.runs) + (reply.truncated ? '...' : '');
  assert(seen === JSON.stringify(expected),
    `receiver saw ${reply.count} datagrams as runs [seed, first, last, bytes, intact] ${seen}; expected ${JSON.stringify(expected)}`);
  return `receiver: ${reply.count} datagrams intact, in order`;
}

function datagrams(seed, count, size = SIZE) {
  return Array.from({ length: count }, (_, i) => payload(seed, i, size));
}

/** Polls `condition` every 2 ms until it holds, for at most `timeoutMs`. */
async function waitUntil(condition, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Settles to { value } or { error }, and records whether that happened yet. */
function track(promise) {
  const tracked = { settled: false, outcome: null };
  tracked.done = promise.then((value) => { tracked.outcome = { value }; }, (error) => { tracked.outcome = { error }; })
    .finally(() => { tracked.settled = true; });
  return tracked;
}

function describeError(error) {
  return `${error.name} ${error.code} errno ${error.errno} ${error.statusName} sent ${error.datagramsSent}/${error.bytesSent} B`;
}

/** A NativeBatch (lib/batch.ts) of whole buffers to one IPv4 destination. */
function rawBatch(buffers, address, port) {
  const destinations = new Uint8Array(24);
  destinations[0] = 4;
  destinations[2] = port >> 8;
  destinations[3] = port & 0xff;
  address.split('.').forEach((part, i) => { destinations[8 + i] = Number(part); });
  return {
    buffers,
    ranges: Uint32Array.from(buffers.flatMap((b, i) => [i, 0, b.byteLength])),
    spans: Uint32Array.from(buffers.flatMap((_, i) => [i, 1])),
    targets: null, destinations, segment: false, continueOnError: false, controls: undefined,
  };
}

async function main() {
  const lib = require(path.join(root, 'dist', 'lib'));
  const { binding } = require(path.join(root, 'dist', 'lib', 'binding'));
  await new Promise((resolve) => control.bind(0, config.local4, resolve));
  const wskBuffers = (list) => lib.wskBufList(list.map((d) => ({ Mdl: lib.IoAllocateMdl(d), Offset: 0, Length: d.length })));
  const to4 = { family: 'IPv4', address: config.remote4, port: info.port4 };

  /** A udp4 socket with the small send buffer. */
  function slowSocket(type = 'udp4') {
    const socket = lib.createSocket(type);
    socket.setSendBufferSize(SEND_BUFFER);
    return socket;
  }

  let seed = 1000;

  const inNamespace = await test('the sockets live in namespace A, behind the slow link', () => {
    assert(lib.nativeBackend() === 'WSASendMsg', `backend ${lib.nativeBackend()}`);
    const socket = slowSocket();
    try {
      socket.connect(info.port4, config.remote4);
      const local = socket.address();
      // Wine's sockets are made by the wineserver: one outside the namespace would not have A's address.
      assert(local.address === config.local4, `local address ${JSON.stringify(local)}, expected ${config.local4}`);
      return `local ${local.address}:${local.port}, SO_SNDBUF ${socket.getSendBufferSize()} B (set ${SEND_BUFFER})`;
    } finally {
      socket.close();
    }
  });

  if (!inNamespace) {
    // A wineserver outside namespace A makes the sockets there, where the veth addresses lead
    // nowhere of ours: send nothing at all.
    throw new Error('stopped before sending anything: the sockets are not in namespace A');
  }
  sendingAllowed = true;

  const rawSeed = seed++;
  await test('the raw native send on a full socket buffer stops with WSAEWOULDBLOCK (10035); uv_poll on the SOCKET wakes it until all is sent', async () => {
    const raw = new (binding().UdpSocket)();
    assert(raw.open(4) === 0, 'open');
    try {
      assert(raw.setSendBufferSize(SEND_BUFFER) === 0, 'setSendBufferSize');
      const count = 200;
      const batch = rawBatch(datagrams(rawSeed, count), config.remote4, info.port4);
      const first = raw.send(batch, 0, count);
      assert(first.errno === 10035 && first.wouldBlock === true && first.syscall === 'WSASendMsg' &&
        first.datagrams > 0 && first.datagrams < count && first.bytes === first.datagrams * SIZE,
        `first send: ${JSON.stringify(first)}`);
      // The rest goes out as the poll says the socket is writable: the queue's loop, by hand.
      let sent = first.datagrams;
      let wakes = 0;
      let wouldBlocks = 1;
      const deadline = Date.now() + 10000;
      while (sent < count) {
        assert(Date.now() < deadline, `only ${sent} of ${count} sent in 10 s`);
        const errno = await new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no writable event in 5 s (sent ${sent})`)), 5000);
          const error = raw.startPolling((status) => {
            clearTimeout(timer);
            raw.stopPolling();
            resolve(status);
          });
          if (error !== 0) reject(new Error(`startPolling: ${error}`));
        });
        assert(errno === 0, `writable callback status ${errno}`);
        wakes++;
        const next = raw.send(batch, sent, count - sent);
        assert(next.errno === 0 || (next.errno === 10035 && next.wouldBlock), `send after a wake: ${JSON.stringify(next)}`);
        if (next.wouldBlock) wouldBlocks++;
        sent += next.datagrams;
      }
      const arrived = await expectArrived(4, [run(rawSeed, 0, count - 1, SIZE)]);
      return `first call took ${first.datagrams} of ${count}, then WSAEWOULDBLOCK; ${wakes} writable wakes, ` +
        `${wouldBlocks} WSAEWOULDBLOCK in all; ${arrived}`;
    } finally {
      raw.close();
    }
  });

  const trySeed = seed++;
  await test('trySendBatch on a full socket buffer takes what fits and says which were not sent', async () => {
    const socket = slowSocket();
    try {
      const result = socket.trySendBatch(datagrams(trySeed, 200), info.port4, config.remote4);
      assert(result.datagrams > 0 && result.datagrams < 200 && result.bytes === result.datagrams * SIZE &&
        result.failures.length === 0, `trySendBatch said ${JSON.stringify(result)}`);
      return `took ${result.datagrams} of 200 datagrams of ${SIZE} B; ` +
        await expectArrived(4, [run(trySeed, 0, result.datagrams - 1, SIZE)]);
    } finally {
      socket.close();
    }
  });

  const pendingSeed = seed++;
  await test('sendBatch of 3000 goes pending and resolves with all 3000, in order', async () => {
    const socket = slowSocket();
    try {
      const count = 3000;
      const started = Date.now();
      const send = track(socket.sendBatch(datagrams(pendingSeed, count), info.port4, config.remote4));
      const waitingNow = socket.pendingDatagrams;
      assert(socket.pendingRequests === 1 && waitingNow > 0 && waitingNow < count,
        `after the call: ${socket.pendingRequests} requests, ${waitingNow} datagrams waiting`);
      await null;
      assert(!send.settled, 'the pending send settled inside the call');
      await send.done;
      const ms = Date.now() - started;
      assert(send.outcome.value, `rejected: ${send.outcome.error && describeError(send.outcome.error)}`);
      const result = send.outcome.value;
      assert(result.datagrams === count && result.bytes === count * SIZE && result.failures.length === 0,
        `sendBatch said ${JSON.stringify(result)}`);
      assert(socket.pendingRequests === 0 && socket.pendingDatagrams === 0, 'something still pending after it resolved');
      const stats = socket.stats();
      return `${waitingNow} of ${count} waiting after the call; resolved after ${(ms / 1000).toFixed(1)} s with all ` +
        `${count} sent in ${stats.syscalls} WSASendMsg calls; ` + await expectArrived(4, [run(pendingSeed, 0, count - 1, SIZE)]);
    } finally {
      socket.close();
    }
  });

  const wskSeed = seed++;
  await test('WskSendMessages on a full socket buffer returns STATUS_PENDING; the IRP completes later with STATUS_SUCCESS and every byte', async () => {
    const socket = slowSocket();
    try {
      const count = 1000;
      const size = 1000;
      const irp = lib.IoAllocateIrp();
      let routineRuns = 0;
      let returned = false;
      let ranAfterReturn = false;
      lib.IoSetCompletionRoutine(irp, () => {
        routineRuns++;
        ranAfterReturn = returned;
      }, null);
      const status = lib.WskSendMessages(socket, wskBuffers(datagrams(wskSeed, count, size)), 0, to4, 0, null, irp);
      returned = true;
      assert(status === lib.STATUS_PENDING, `returned ${lib.ntStatusName(status)}`);
      assert(!irp.completed && irp.IoStatus.Status === lib.STATUS_PENDING && socket.pendingRequests === 1,
        `after STATUS_PENDING: completed ${irp.completed}, IoStatus ${lib.ntStatusName(irp.IoStatus.Status)}`);
      const waitingNow = socket.pendingDatagrams;
      const { Status, Information } = await irp.promise;
      assert(Status === lib.STATUS_SUCCESS && Information === count * size && irp.FailureInfo === null,
        `IRP ${lib.ntStatusName(Status)} Information ${Information}, FailureInfo ${JSON.stringify(irp.FailureInfo)}`);
      assert(routineRuns === 1 && ranAfterReturn, `completion routine ran ${routineRuns} times, after return: ${ranAfterReturn}`);
      return `STATUS_PENDING with ${waitingNow} of ${count} waiting; IRP STATUS_SUCCESS, Information ${Information}; ` +
        await expectArrived(4, [run(wskSeed, 0, count - 1, size)]);
    } finally {
      socket.close();
    }
  });

  const [orderA, orderB, orderC, orderD] = [seed++, seed++, seed++, seed++];
  await test('waiting requests complete in call order, and trySendBatch never jumps the queue', async () => {
    const socket = slowSocket();
    try {
      // The order the queue completes them in, each seen one promise step after it: a
      // completion routine would run inside the queue's flush, ahead of promises settled there.
      const order = [];
      const note = (promise, name) => promise.then(() => order.push(name), () => order.push(`${name} (rejected)`));
      const sendA = socket.sendBatch(datagrams(orderA, 400, 1200), info.port4, config.remote4);
      const sendB = socket.sendBatch(datagrams(orderB, 300, 800), info.port4, config.remote4);
      note(sendA, 'sendBatch A');
      note(sendB, 'sendBatch B');
      const a = track(sendA);
      const b = track(sendB);
      const irp = lib.IoAllocateIrp();
      const status = lib.WskSendMessages(socket, wskBuffers(datagrams(orderC, 200, 500)), 0, to4, 0, null, irp);
      note(irp.promise, 'WskSendMessages C');
      assert(status === lib.STATUS_PENDING, `C returned ${lib.ntStatusName(status)}`);
      const jumped = socket.trySendBatch(datagrams(orderD, 10), info.port4, config.remote4);
      assert(jumped.datagrams === 0, `trySendBatch sent ${jumped.datagrams} while requests waited`);
      assert(socket.pendingRequests === 3, `${socket.pendingRequests} requests waiting`);
      await Promise.all([a.done, b.done, irp.promise]);
      await null;
      assert(order.join() === 'sendBatch A,sendBatch B,WskSendMessages C', `completed in the order ${order.join(', ')}`);
      assert(a.outcome.value && a.outcome.value.datagrams === 400 && a.outcome.value.bytes === 400 * 1200, `A: ${JSON.stringify(a.outcome)}`);
      assert(b.outcome.value && b.outcome.value.datagrams === 300 && b.outcome.value.bytes === 300 * 800, `B: ${JSON.stringify(b.outcome)}`);
      assert(irp.IoStatus.Status === lib.STATUS_SUCCESS && irp.IoStatus.Information === 200 * 500,
        `C: ${lib.ntStatusName(irp.IoStatus.Status)} ${irp.IoStatus.Information}`);
      return `${order.join(' -> ')}; ` + await expectArrived(4,
        [run(orderA, 0, 399, 1200), run(orderB, 0, 299, 800), run(orderC, 0, 199, 500)]);
    } finally {
      socket.close();
    }
  });

  const [closeX, closeY, closeZ] = [seed++, seed++, seed++];
  await test('close() cancels what waits: ECANCELED / STATUS_CANCELLED with exact counts, and the receiver saw exactly those', async () => {
    const socket = slowSocket();
    let closed = false;
    try {
      const count = 2000;
      const x = track(socket.sendBatch(datagrams(closeX, count), info.port4, config.remote4));
      const y = track(socket.sendBatch(datagrams(closeY, 100), info.port4, config.remote4));
      const irp = lib.IoAllocateIrp();
      const status = lib.WskSendMessages(socket, wskBuffers(datagrams(closeZ, 50)), 0, to4, 0, null, irp);
      assert(status === lib.STATUS_PENDING, `the IRP returned ${lib.ntStatusName(status)}`);
      const before = socket.pendingDatagrams;
      await waitUntil(() => socket.pendingDatagrams <= before - PROGRESS_BEFORE_CANCEL, 10000,
        `${PROGRESS_BEFORE_CANCEL} datagrams to leave`);
      socket.close();
      closed = true;
      assert(socket.pendingRequests === 0 && socket.pendingDatagrams === 0, 'requests still waiting after close');
      await Promise.all([x.done, y.done, irp.promise]);
      const ex = x.outcome.error;
      const ey = y.outcome.error;
      assert(ex && ex.name === 'WskError' && ex.code === 'ECANCELED' && ex.statusName === 'STATUS_CANCELLED',
        `X: ${ex ? describeError(ex) : JSON.stringify(x.outcome.value)}`);
      const sent = ex.datagramsSent;
      assert(sent >= PROGRESS_BEFORE_CANCEL && sent < count && ex.bytesSent === sent * SIZE, `X: ${describeError(ex)}`);
      assert(ey && ey.code === 'ECANCELED' && ey.statusName === 'STATUS_CANCELLED' && ey.datagramsSent === 0 && ey.bytesSent === 0,
        `Y: ${ey ? describeError(ey) : JSON.stringify(y.outcome.value)}`);
      assert(irp.IoStatus.Status === lib.STATUS_CANCELLED && irp.IoStatus.Information === 0,
        `Z: ${lib.ntStatusName(irp.IoStatus.Status)} ${irp.IoStatus.Information}`);
      return `X: ECANCELED (errno ${ex.errno}) / STATUS_CANCELLED after ${sent} of ${count}; Y: ECANCELED after 0 of 100; ` +
        `IRP Z: STATUS_CANCELLED, Information 0; ` + await expectArrived(4, [run(closeX, 0, sent - 1, SIZE)]);
    } finally {
      if (!closed) socket.close();
    }
  });

  const [cancelZ, cancelW] = [seed++, seed++];
  await test('IoCancelIrp cancels a pending WskSendMessages: STATUS_CANCELLED with the bytes sent before, the receiver agrees, the socket goes on', async () => {
    const socket = slowSocket();
    try {
      const count = 2000;
      const size = 1000;
      const irp = lib.IoAllocateIrp();
      const status = lib.WskSendMessages(socket, wskBuffers(datagrams(cancelZ, count, size)), 0, to4, 0, null, irp);
      assert(status === lib.STATUS_PENDING, `returned ${lib.ntStatusName(status)}`);
      const before = socket.pendingDatagrams;
      await waitUntil(() => socket.pendingDatagrams <= before - PROGRESS_BEFORE_CANCEL, 10000,
        `${PROGRESS_BEFORE_CANCEL} datagrams to leave`);
      assert(lib.IoCancelIrp(irp) === true && irp.Cancel === true, 'IoCancelIrp did not cancel');
      const { Status, Information } = await irp.promise;
      const sent = irp.FailureInfo && irp.FailureInfo.datagramsSent;
      assert(Status === lib.STATUS_CANCELLED && sent >= PROGRESS_BEFORE_CANCEL && sent < count && Information === sent * size,
        `IRP ${lib.ntStatusName(Status)} Information ${Information}, FailureInfo ${JSON.stringify(irp.FailureInfo)}`);
      assert(lib.IoCancelIrp(irp) === false, 'a second IoCancelIrp on the completed IRP returned true');
      assert(socket.pendingRequests === 0 && socket.pendingDatagrams === 0, 'still pending after the cancel');
      const after = await socket.sendBatch(datagrams(cancelW, 50), info.port4, config.remote4);
      assert(after.datagrams === 50, `the next sendBatch said ${JSON.stringify(after)}`);
      return `STATUS_CANCELLED after ${sent} of ${count} (Information ${Information}); the next sendBatch sent 50; ` +
        await expectArrived(4, [run(cancelZ, 0, sent - 1, size), run(cancelW, 0, 49, SIZE)]);
    } finally {
      socket.close();
    }
  });

  const v6Seed = seed++;
  await test('IPv6: sendBatch of 1000 goes pending and resolves with all 1000, in order', async () => {
    const socket = slowSocket('udp6');
    try {
      const count = 1000;
      const send = track(socket.sendBatch(datagrams(v6Seed, count), info.port6, config.remote6));
      const waitingNow = socket.pendingDatagrams;
      assert(socket.pendingRequests === 1 && waitingNow > 0 && waitingNow < count,
        `after the call: ${socket.pendingRequests} requests, ${waitingNow} datagrams waiting`);
      await send.done;
      const result = send.outcome.value;
      assert(result && result.datagrams === count && result.bytes === count * SIZE,
        `sendBatch: ${send.outcome.error ? describeError(send.outcome.error) : JSON.stringify(result)}`);
      return `${waitingNow} of ${count} waiting after the call; all ${count} sent; ` +
        await expectArrived(6, [run(v6Seed, 0, count - 1, SIZE)]);
    } finally {
      socket.close();
    }
  });

}

main()
  .catch((error) => record('wine-pending.js', 'fail', error && error.stack))
  .finally(async () => {
    try {
      await ask({ op: 'quit' }, 2000);
    } catch {
      // the receiver exits by itself at the end of its lifetime
    }
    control.close();
  });
