// A paced RTP-like sender: a 2 Mbit/s media stream of 1200-byte packets with RTP headers
// (version 2, a sequence number, a 90 kHz timestamp, one SSRC), sent by the library's Pacer a
// tick's worth per system call instead of one timer per packet, marked DSCP AF41 as video
// usually is. The receiver checks every packet's sequence number, order and TOS byte, and the
// achieved bitrate.
//
// Run: node examples/paced-rtp-sender.mjs
import { createSocket, Pacer } from 'wsk-dgram';

const PACKET = 1200;
const BITRATE = 2_000_000; // bits per second of payload
const SECONDS = 1;
const TOTAL = Math.floor((BITRATE / 8 / PACKET) * SECONDS); // packets in the run
const SSRC = 0x5eed1234;
const AF41 = 34 << 2; // DSCP 34 in the TOS byte

const receiver = createSocket({ type: 'udp4', recvBufferSize: 4 << 20 });
const { port } = receiver.bind(0, '127.0.0.1');
receiver.enableReceiveInfo();

const socket = createSocket('udp4');
const buffer = Buffer.alloc(PACKET * 64);
let sequence = 0;
const started = performance.now();
const pacer = new Pacer(socket, {
  bitrate: BITRATE,
  port,
  address: '127.0.0.1',
  sendOptions: { tos: AF41 },
  // Each tick offers a budget in bytes (a bitrate): the packets that cover it, written back to
  // back into one buffer (the last may overdraw the credit; the pacer then waits it off).
  next: ({ bytes }) => {
    if (sequence === TOTAL) return null;
    const count = Math.min(Math.ceil(bytes / PACKET), TOTAL - sequence, 64);
    for (let i = 0; i < count; i++, sequence++) {
      const packet = buffer.subarray(i * PACKET, (i + 1) * PACKET);
      packet[0] = 0x80; // RTP version 2
      packet[1] = 96; // a dynamic payload type
      packet.writeUInt16BE(sequence & 0xffff, 2);
      packet.writeUInt32BE(Math.round((performance.now() - started) * 90) >>> 0, 4);
      packet.writeUInt32BE(SSRC, 8);
    }
    return { buffer: buffer.subarray(0, count * PACKET), segmentSize: PACKET };
  },
});

let received = 0;
const receiving = (async () => {
  while (received < TOTAL) {
    const batch = await receiver.receiveBatch({ timeoutMs: 3000 });
    if (batch.length === 0) throw new Error(`only ${received} of ${TOTAL} packets arrived`);
    for (const packet of batch) {
      const view = Buffer.from(packet.data.buffer, packet.data.byteOffset, packet.data.length);
      if (view.readUInt16BE(2) !== (received & 0xffff)) throw new Error(`packet ${view.readUInt16BE(2)} in place of ${received}`);
      if (view.readUInt32BE(8) !== SSRC || packet.tos !== AF41) throw new Error(`packet ${received}: SSRC or TOS wrong`);
      received++;
    }
  }
})();

const stats = await pacer.done;
await receiving;
const seconds = stats.elapsedMs / 1000;
const achieved = (stats.bytes * 8) / seconds;
console.log(`${stats.datagrams} RTP packets in ${stats.calls} send calls over ${seconds.toFixed(2)} s: ` +
  `${(achieved / 1e6).toFixed(2)} Mbit/s for a target of ${BITRATE / 1e6} Mbit/s; all received in order, marked AF41`);
if (Math.abs(achieved - BITRATE) / BITRATE > 0.2) throw new Error('the pacer missed the bitrate by more than 20 %');
// Paced, not bursted: about one send call per packet interval (4.8 ms at this rate), never all at once.
if (stats.calls < TOTAL / 4) throw new Error(`${stats.calls} send calls for ${TOTAL} packets: bursts, not pacing`);
socket.close();
receiver.close();
