// A CI-style integration test of a UDP sender, with node:test: the code under test sends a
// batch, a receiver on loopback checks what reached the wire. Nothing leaves the machine.
//
// Run: node --test examples/ci-integration.test.mjs
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, nativeBackend } from 'wsk-dgram';

// The code under test: frames telemetry records and sends them in one batch.
async function sendTelemetry(socket, port, records) {
  const datagrams = records.map((record) => Buffer.from(JSON.stringify(record)));
  return socket.sendBatch(datagrams, port, '127.0.0.1');
}

test('every record reaches the receiver once, in order, as sent', async (t) => {
  const receiver = createSocket('udp4');
  const sender = createSocket('udp4');
  t.after(() => { sender.close(); receiver.close(); });
  const { port } = receiver.bind(0, '127.0.0.1');
  // 200 small datagrams fit the default receive buffer (about 250 do on Linux).
  const records = Array.from({ length: 200 }, (_, i) => ({ i, value: Math.sin(i) }));

  const result = await sendTelemetry(sender, port, records);
  assert.equal(result.datagrams, records.length);
  assert.deepEqual(result.failures, []);

  const seen = [];
  while (seen.length < records.length) {
    const batch = await receiver.receiveBatch({ maxDatagrams: 256, timeoutMs: 2000 });
    assert.notEqual(batch.length, 0, `only ${seen.length} records arrived`);
    for (const datagram of batch) seen.push(JSON.parse(Buffer.from(datagram.data).toString()));
  }
  assert.deepEqual(seen, records);
  assert.equal(seen.length, records.length);
  // With sendmmsg (Linux) the batch is one system call; the portable sendmsg loop makes one per
  // message (equal-size runs leave as one GSO message).
  assert.equal(sender.stats().datagrams, records.length);
  assert.ok(sender.stats().syscalls <= (nativeBackend() === 'sendmmsg' ? 1 : records.length));
});
