// A game-server tick: the same state update to every connected player, 30 times, with one
// system call per tick whatever the number of players. The players here are 32 sockets on
// loopback; each must receive every tick once, in order.
//
// Run: node examples/fan-out.mjs
import { createSocket } from 'wsk-dgram';

const players = Array.from({ length: 32 }, () => {
  const socket = createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  return socket;
});
const server = createSocket('udp4');
// Parsed and encoded once; every tick reuses it.
const everyone = server.prepareDestinations(players.map((p) => ({ port: p.address().port, address: '127.0.0.1' })));

const ticks = 30;
const update = Buffer.alloc(200);
for (let tick = 0; tick < ticks; tick++) {
  update.writeUInt32BE(tick, 0);
  const result = await server.sendToMany([update], everyone);
  if (result.failures.length > 0) throw new Error(`tick ${tick}: ${JSON.stringify(result.failures)}`);
}

for (const [i, player] of players.entries()) {
  let expected = 0;
  while (expected < ticks) {
    const batch = await player.receiveBatch({ timeoutMs: 2000 });
    if (batch.length === 0) throw new Error(`player ${i} got ${expected} of ${ticks} ticks`);
    for (const datagram of batch) {
      const tick = Buffer.from(datagram.data.buffer, datagram.data.byteOffset, 4).readUInt32BE(0);
      if (tick !== expected) throw new Error(`player ${i} got tick ${tick} in place of ${expected}`);
      expected++;
    }
  }
}
const { syscalls, datagrams } = server.stats();
console.log(`${ticks} ticks to ${players.length} players: ${datagrams} datagrams in ${syscalls} system calls, every player got every tick in order`);
server.close();
for (const player of players) player.close();
