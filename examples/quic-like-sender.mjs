// A QUIC-like sender: a burst of packets of mixed sizes written back to back into one buffer
// (full-size packets, then a short ACK-sized one, as a QUIC stack coalesces them), sent with
// one call marked ECT(0), as QUIC does to learn of congestion. The receiver checks every
// packet's size, order and ECN codepoint.
//
// Run: node examples/quic-like-sender.mjs
import { createSocket } from 'wsk-dgram';

const receiver = createSocket('udp4');
const { port } = receiver.bind(0, '127.0.0.1');
receiver.enableReceiveInfo(); // report TOS (and so ECN) per datagram

// 3 bursts of 20 full packets and one 60-byte one, each burst one packed buffer.
const sizes = [...Array(20).fill(1200), 60];
const lengths = new Uint32Array(sizes);
const buffer = Buffer.alloc(sizes.reduce((a, b) => a + b, 0));
const sender = createSocket('udp4');
let sent = 0;
for (let burst = 0; burst < 3; burst++) {
  let offset = 0;
  sizes.forEach((size, i) => {
    buffer.writeUInt32BE(burst * sizes.length + i, offset); // a packet number
    offset += size;
  });
  const result = await sender.sendBatch({ buffer, lengths }, port, '127.0.0.1', { ecn: 0b10 });
  sent += result.datagrams;
}

let received = 0;
while (received < sent) {
  const batch = await receiver.receiveBatch({ timeoutMs: 2000 });
  if (batch.length === 0) throw new Error(`only ${received} of ${sent} packets arrived`);
  for (const packet of batch) {
    const number = Buffer.from(packet.data.buffer, packet.data.byteOffset, 4).readUInt32BE(0);
    if (number !== received) throw new Error(`packet ${number} arrived in place of ${received}`);
    if (packet.data.length !== sizes[number % sizes.length]) throw new Error(`packet ${number} has ${packet.data.length} bytes`);
    if (packet.ecn !== 0b10) throw new Error(`packet ${number} arrived with ECN ${packet.ecn}`);
    received++;
  }
}
const stats = sender.stats();
console.log(`${sent} packets sent in ${stats.syscalls} system calls (${stats.messages} messages on the way to the kernel), all received in order with ECT(0)`);
sender.close();
receiver.close();
