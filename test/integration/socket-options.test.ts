/**
 * The dgram-parity socket options on loopback, each next to node:dgram doing the same thing with
 * the same assertions: TTL and TOS seen by a receiver, reuseAddr / reusePort binds and the
 * spreading of flows, disconnect, receive and send buffer sizes (forced above the sysctl cap when
 * root, capped without CAP_NET_ADMIN), the multicast setters' errors, and unknown option names.
 * Multicast and broadcast delivery need a veth: test/integration/multicast-broadcast.test.ts.
 */
import { execFileSync } from 'node:child_process';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createSocket, type ReceivedDatagram, type UdpSocket } from '../../lib';
import { binding, NativeOption, type NativeUdpSocket } from '../../lib/binding';

const sockets: Array<UdpSocket | dgram.Socket> = [];
afterEach(async () => {
  for (const socket of sockets.splice(0)) {
    if (socket instanceof dgram.Socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
    else socket.close();
  }
});

function wsk(options: Parameters<typeof createSocket>[0]): UdpSocket {
  const socket = createSocket(options);
  sockets.push(socket);
  return socket;
}

async function node(options: dgram.SocketOptions, port = 0, address?: string): Promise<dgram.Socket> {
  const socket = dgram.createSocket(options);
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, address, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  return socket;
}

function codeOf(action: () => unknown): string | undefined {
  try {
    action();
  } catch (error) {
    return (error as { code?: string }).code;
  }
  return undefined;
}

/** Receives until `count` datagrams or 3 s; copies each (the arena is reused). */
async function receive(socket: UdpSocket, count: number, timeoutMs = 3000): Promise<ReceivedDatagram[]> {
  const received: ReceivedDatagram[] = [];
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 100 && received.length < count && Date.now() < deadline; i++) {
    const batch = await socket.receiveBatch({ timeoutMs: Math.max(1, deadline - Date.now()) });
    received.push(...batch.map((d) => ({ ...d, data: Uint8Array.from(d.data) })));
  }
  return received;
}

function dgramSend(socket: dgram.Socket, data: string, port: number, address: string): Promise<void> {
  return new Promise((resolve, reject) => socket.send(data, port, address, (error) => (error ? reject(error) : resolve())));
}

const loopback = { 4: '127.0.0.1', 6: '::1' } as const;
const typeOf = (family: 4 | 6): 'udp4' | 'udp6' => (family === 6 ? 'udp6' : 'udp4');

/**
 * The IPv4-level options of a descriptor of this process, read by python3 from a copy of it
 * (pidfd_getfd, Linux 5.6+; root may copy any process's descriptors).
 */
function ipLevelOptions(fd: number): { ttl: number; tos: number; multicastTtl: number; multicastLoop: number } {
  const script = [
    'import ctypes, json, os, socket, sys',
    'libc = ctypes.CDLL(None, use_errno=True)',
    'copy = libc.syscall(438, os.pidfd_open(int(sys.argv[1])), int(sys.argv[2]), 0)',
    'assert copy >= 0, os.strerror(ctypes.get_errno())',
    's = socket.socket(fileno=copy)',
    'get = lambda name: s.getsockopt(socket.IPPROTO_IP, name)',
    'print(json.dumps({"ttl": get(socket.IP_TTL), "tos": get(socket.IP_TOS), ' +
      '"multicastTtl": get(socket.IP_MULTICAST_TTL), "multicastLoop": get(socket.IP_MULTICAST_LOOP)}))',
  ].join('\n');
  return JSON.parse(execFileSync('python3', ['-c', script, String(process.pid), String(fd)], { encoding: 'utf8' })) as never;
}

describe('setTTL and setTOS', () => {
  test.each([4, 6] as const)('IPv%i: a receiver sees the TTL / hop limit and TOS / traffic class set on the socket', async (family) => {
    const receiver = wsk(typeOf(family));
    receiver.bind(0, loopback[family]);
    receiver.enableReceiveInfo();
    const { port } = receiver.address();

    const sender = wsk(typeOf(family));
    expect(sender.setTTL(9)).toBe(9);
    expect(sender.setTOS(0x28)).toBe(0x28);
    sender.trySendBatch([Buffer.from('wsk')], port, loopback[family]);
    // A send's own ttl/tos options still win for that send.
    sender.trySendBatch([Buffer.from('override')], port, loopback[family], { ttl: 3, tos: 0x10 });

    const peer = await node({ type: typeOf(family) });
    expect(peer.setTTL(9)).toBe(9); // dgram has no setTOS
    await dgramSend(peer, 'dgram', port, loopback[family]);

    const got = await receive(receiver, 3);
    const seen = Object.fromEntries(got.map((d) => [Buffer.from(d.data).toString(), { ttl: d.ttl, tos: d.tos }]));
    expect(seen).toEqual({
      wsk: { ttl: 9, tos: 0x28 },
      override: { ttl: 3, tos: 0x10 },
      dgram: { ttl: 9, tos: 0 },
    });
  });

  test('udp6 on Linux: the IPv4-level TTL, TOS and multicast options are set too (for dual-stack traffic)', () => {
    const socket = wsk('udp6');
    const before = ipLevelOptions(socket.fd);
    socket.setTTL(17);
    socket.setTOS(0x48);
    socket.setMulticastTTL(5);
    socket.setMulticastLoopback(false);
    expect(before).toEqual({ ttl: 64, tos: 0, multicastTtl: 1, multicastLoop: 1 });
    expect(ipLevelOptions(socket.fd)).toEqual({ ttl: 17, tos: 0x48, multicastTtl: 5, multicastLoop: 0 });
    expect(socket.fd).toBeGreaterThan(0);
  });

  test('ranges and return values as dgram: setTTL 1..255, setMulticastTTL 0..255; setTOS 0..255', async () => {
    const socket = wsk('udp4');
    const peer = await node({ type: 'udp4' }, 0, '127.0.0.1');
    for (const ttl of [1, 64, 255]) {
      expect(socket.setTTL(ttl)).toBe(peer.setTTL(ttl));
      expect(socket.setMulticastTTL(ttl)).toBe(peer.setMulticastTTL(ttl));
    }
    expect(socket.setMulticastTTL(0)).toBe(peer.setMulticastTTL(0));
    expect(socket.setMulticastLoopback(false)).toBe(peer.setMulticastLoopback(false));
    // dgram's bad values fail in libuv (EINVAL); here they are RangeErrors, before any system call.
    for (const bad of [0, 256]) {
      expect(codeOf(() => peer.setTTL(bad))).toBe('EINVAL');
      expect(() => socket.setTTL(bad)).toThrow(RangeError);
    }
    expect(codeOf(() => peer.setMulticastTTL(256))).toBe('EINVAL');
    expect(() => socket.setMulticastTTL(256)).toThrow(RangeError);
    expect(() => socket.setTTL(5.5)).toThrow(TypeError);
    expect(() => socket.setTTL('5' as never)).toThrow(/ttl must be an integer/);
    expect(() => socket.setTOS(256)).toThrow(RangeError);
    expect(() => socket.setTOS(-1)).toThrow(RangeError);
    expect(() => socket.setBroadcast(1 as never)).toThrow(TypeError);
    expect(() => socket.setMulticastLoopback('yes' as never)).toThrow(TypeError);
  });

  test('a closed socket refuses with EBADF', () => {
    const socket = wsk('udp4');
    socket.close();
    expect(() => socket.setTTL(5)).toThrow(expect.objectContaining({ name: 'WskError', code: 'EBADF', syscall: 'setTTL' }));
    expect(() => socket.addMembership('239.1.2.3')).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'addMembership' }));
    expect(() => socket.getRecvBufferSize()).toThrow(expect.objectContaining({ code: 'EBADF' }));
  });
});

describe('multicast setters on loopback: the same OS answers as dgram', () => {
  test.each([
    ['setMulticastInterface to an address no interface has', (s: UdpSocket | dgram.Socket) => s.setMulticastInterface('198.18.255.254'), 'EADDRNOTAVAIL'],
    ['setMulticastInterface to 127.0.0.1', (s: UdpSocket | dgram.Socket) => s.setMulticastInterface('127.0.0.1'), undefined],
    ['addMembership of a unicast address', (s: UdpSocket | dgram.Socket) => s.addMembership('198.18.0.1'), 'EINVAL'],
    ['dropMembership of a group not joined', (s: UdpSocket | dgram.Socket) => s.dropMembership('239.1.2.3', '127.0.0.1'), 'EADDRNOTAVAIL'],
    ['addMembership twice', (s: UdpSocket | dgram.Socket) => {
      s.addMembership('239.1.2.4', '127.0.0.1');
      s.addMembership('239.1.2.4', '127.0.0.1');
    }, 'EADDRINUSE'],
    ['addMembership, dropMembership', (s: UdpSocket | dgram.Socket) => {
      s.addMembership('239.1.2.5', '127.0.0.1');
      s.dropMembership('239.1.2.5', '127.0.0.1');
    }, undefined],
    ['a source-specific membership, and its drop twice', (s: UdpSocket | dgram.Socket) => {
      s.addSourceSpecificMembership('127.0.0.1', '232.1.1.1', '127.0.0.1');
      s.dropSourceSpecificMembership('127.0.0.1', '232.1.1.1', '127.0.0.1');
      s.dropSourceSpecificMembership('127.0.0.1', '232.1.1.1', '127.0.0.1');
    }, 'EINVAL'],
  ])('%s', async (_name, action, code) => {
    const peer = await node({ type: 'udp4' }, 0, '127.0.0.1');
    const socket = wsk('udp4');
    socket.bind(0, '127.0.0.1');
    expect(codeOf(() => action(peer))).toBe(code);
    expect(codeOf(() => action(socket))).toBe(code);
  });

  test('IPv6: the interface as a zone, by name or index; an unknown name is ENODEV (dgram silently takes the default)', async () => {
    const peer = await node({ type: 'udp6' }, 0, '::1');
    const socket = wsk('udp6');
    for (const via of ['::%lo', '::%1', '::']) {
      expect(codeOf(() => peer.setMulticastInterface(via))).toBeUndefined();
      expect(codeOf(() => socket.setMulticastInterface(via))).toBeUndefined();
    }
    expect(codeOf(() => peer.setMulticastInterface('::%wsk-no-such'))).toBeUndefined();
    expect(() => socket.setMulticastInterface('::%wsk-no-such')).toThrow(
      expect.objectContaining({ name: 'WskError', code: 'ENODEV', syscall: 'setMulticastInterface' }));
    socket.addMembership('ff05::1:3', '::%lo');
    peer.addMembership('ff05::1:3', '::%lo');
    expect(codeOf(() => socket.addMembership('ff05::1:3', '::%1'))).toBe('EADDRINUSE');
    expect(codeOf(() => peer.addMembership('ff05::1:3', '::%1'))).toBe('EADDRINUSE');
    socket.dropMembership('ff05::1:3', '::%lo');
    socket.addSourceSpecificMembership('fd00::1', 'ff35::1:3', '::%lo');
    socket.dropSourceSpecificMembership('fd00::1', 'ff35::1:3', '::%lo');
  });

  test('bad arguments are TypeErrors before any system call', () => {
    const v4 = wsk('udp4');
    const v6 = wsk('udp6');
    expect(() => v4.addMembership('ff05::1')).toThrow(/multicastAddress must be an IPv4 literal/);
    expect(() => v6.addMembership('239.1.2.3')).toThrow(/multicastAddress must be an IPv6 literal/);
    expect(() => v6.addMembership('ff02::1%1')).toThrow(/no zone/);
    expect(() => v4.addMembership(undefined as never)).toThrow(/multicastAddress must be a string/);
    expect(() => v4.addMembership('239.1.2.3', 'eth0')).toThrow(/multicastInterface must be an IPv4 address/);
    expect(() => v6.setMulticastInterface('%eth0')).toThrow(/IPv6 literal with the interface as its zone/);
    expect(() => v6.setMulticastInterface('::%')).toThrow(TypeError);
    expect(() => v4.setMulticastInterface(undefined as never)).toThrow(TypeError);
    expect(() => v4.addSourceSpecificMembership('x', '232.1.1.1')).toThrow(/sourceAddress must be an IPv4 literal/);
    // Found by the options fuzzer: an undefined source used to join the group for every source.
    expect(() => v4.addSourceSpecificMembership(undefined as never, '232.1.1.1')).toThrow(/sourceAddress must be a string/);
    expect(() => v6.dropSourceSpecificMembership(undefined as never, 'ff35::1')).toThrow(/sourceAddress must be a string/);
  });
});

describe('reuseAddr and reusePort', () => {
  test('reuseAddr: two sockets that both ask share a port, with dgram too; without it the second bind is EADDRINUSE', async () => {
    const first = await node({ type: 'udp4', reuseAddr: true }, 0, '127.0.0.1');
    const { port } = first.address();
    const shared = wsk({ type: 'udp4', reuseAddr: true });
    expect(shared.bind(port, '127.0.0.1').port).toBe(port);
    const refused = wsk('udp4');
    expect(() => refused.bind(port, '127.0.0.1')).toThrow(expect.objectContaining({ code: 'EADDRINUSE' }));
    const dgramRefused = dgram.createSocket('udp4');
    sockets.push(dgramRefused);
    const dgramError = await new Promise<NodeJS.ErrnoException>((resolve) => {
      dgramRefused.once('error', resolve);
      dgramRefused.bind(port, '127.0.0.1');
    });
    expect(dgramError.code).toBe('EADDRINUSE');
    const dgramShared = await node({ type: 'udp4', reuseAddr: true }, port, '127.0.0.1');
    expect(dgramShared.address().port).toBe(port);
  });

  test('reusePort (Linux): both receivers bind, and many flows spread over the two', async () => {
    const first = wsk({ type: 'udp4', reusePort: true });
    const { port } = first.bind(0, '127.0.0.1');
    const second = wsk({ type: 'udp4', reusePort: true });
    expect(second.bind(port, '127.0.0.1').port).toBe(port);
    expect(() => wsk('udp4').bind(port, '127.0.0.1')).toThrow(expect.objectContaining({ code: 'EADDRINUSE' }));
    // node:dgram 20 has no reusePort (22.12+ has): its socket cannot join the group either.
    const dgramError = await node({ type: 'udp4' }, port, '127.0.0.1').then(() => null, (e: NodeJS.ErrnoException) => e.code);
    expect(dgramError).toBe('EADDRINUSE');

    // Linux picks the socket by a hash of the 4-tuple: 32 source ports make 32 flows; the chance
    // that all land on one socket is 2^-31.
    const flows = 32;
    for (let i = 0; i < flows; i++) {
      const sender = wsk('udp4');
      sender.trySendBatch([Buffer.from(`flow ${i}`)], port, '127.0.0.1');
    }
    const [a, b] = await Promise.all([receive(first, flows, 1000), receive(second, flows, 1000)]);
    expect(a.length + b.length).toBe(flows);
    expect(a.length).toBeGreaterThan(0);
    expect(b.length).toBeGreaterThan(0);
  });
});

describe('disconnect', () => {
  test('after it a send needs a destination again, one with a destination goes there, remoteAddress fails; as dgram', async () => {
    const target = wsk('udp4');
    const { port } = target.bind(0, '127.0.0.1');
    const other = wsk('udp4');
    const otherPort = other.bind(0, '127.0.0.1').port;

    const socket = wsk('udp4');
    socket.bind(0, '127.0.0.1');
    socket.connect(port, '127.0.0.1');
    expect(socket.remoteAddress().port).toBe(port);
    socket.disconnect();
    expect(socket.remote).toBeNull();
    // Linux gives back the port it picked for bind(0): unbound until the next send.
    expect(socket.address().port).toBe(0);
    expect(() => socket.trySendBatch([Buffer.from('x')])).toThrow(/destination port is required/);
    expect(() => socket.remoteAddress()).toThrow(expect.objectContaining({ name: 'WskError', code: 'ENOTCONN' }));
    expect(() => socket.disconnect()).toThrow(expect.objectContaining({ name: 'TypeError', code: 'ERR_SOCKET_DGRAM_NOT_CONNECTED' }));
    expect(socket.trySendBatch([Buffer.from('wsk')], otherPort, '127.0.0.1').datagrams).toBe(1);

    const peer = await node({ type: 'udp4' }, 0, '127.0.0.1');
    await new Promise<void>((resolve, reject) => peer.connect(port, '127.0.0.1', (e?: Error) => (e ? reject(e) : resolve())));
    expect(peer.remoteAddress().port).toBe(port);
    peer.disconnect();
    expect(peer.address().port).toBe(0);
    expect(() => peer.send('x')).toThrow(); // dgram: ERR_SOCKET_BAD_PORT
    expect(codeOf(() => peer.remoteAddress())).toBe('ERR_SOCKET_DGRAM_NOT_CONNECTED');
    expect(codeOf(() => peer.disconnect())).toBe('ERR_SOCKET_DGRAM_NOT_CONNECTED');
    await dgramSend(peer, 'dgram', otherPort, '127.0.0.1');

    const got = await receive(other, 2);
    expect(got.map((d) => Buffer.from(d.data).toString()).sort()).toEqual(['dgram', 'wsk']);
    // Nothing reached the old remote after the disconnect.
    expect(await target.receiveBatch({ timeoutMs: 100 })).toEqual([]);
  });

  test('a socket never connected: TypeError with ERR_SOCKET_DGRAM_NOT_CONNECTED, as dgram codes it', async () => {
    const peer = await node({ type: 'udp6' }, 0, '::1');
    expect(codeOf(() => peer.disconnect())).toBe('ERR_SOCKET_DGRAM_NOT_CONNECTED');
    expect(codeOf(() => wsk('udp6').disconnect())).toBe('ERR_SOCKET_DGRAM_NOT_CONNECTED');
  });
});

describe('receive and send buffer sizes', () => {
  const rmemMax = Number(fs.readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
  const wmemMax = Number(fs.readFileSync('/proc/sys/net/core/wmem_max', 'utf8'));

  test('set / get round trip: Linux keeps and reports twice the size, as dgram shows', async () => {
    const size = Math.min(100_000, Math.floor(rmemMax / 2));
    const peer = await node({ type: 'udp4', recvBufferSize: size }, 0, '127.0.0.1');
    const socket = wsk({ type: 'udp4', recvBufferSize: size });
    expect(socket.getRecvBufferSize()).toBe(2 * size);
    expect(peer.getRecvBufferSize()).toBe(2 * size);
    socket.setRecvBufferSize(size + 4096);
    peer.setRecvBufferSize(size + 4096);
    expect(socket.getRecvBufferSize()).toBe(peer.getRecvBufferSize());
    expect(() => socket.setRecvBufferSize(0)).toThrow(RangeError);
    expect(() => socket.setRecvBufferSize(2 ** 31)).toThrow(RangeError);
    expect(() => createSocket({ type: 'udp4', recvBufferSize: -1 })).toThrow(/recvBufferSize must be an integer/);
  });

  test('above net.core.rmem_max / wmem_max as root: forced (SO_RCVBUFFORCE / SO_SNDBUFFORCE); dgram is capped', async () => {
    expect(process.getuid?.()).toBe(0);
    const peer = await node({ type: 'udp4' }, 0, '127.0.0.1');
    const socket = wsk('udp4');
    socket.setRecvBufferSize(2 * rmemMax);
    peer.setRecvBufferSize(2 * rmemMax);
    expect(socket.getRecvBufferSize()).toBe(4 * rmemMax);
    expect(peer.getRecvBufferSize()).toBe(2 * rmemMax);
    socket.setSendBufferSize(2 * wmemMax);
    peer.setSendBufferSize(2 * wmemMax);
    expect(socket.getSendBufferSize()).toBe(4 * wmemMax);
    expect(peer.getSendBufferSize()).toBe(2 * wmemMax);
  });

  test('without CAP_NET_ADMIN the request is capped as with plain SO_RCVBUF / SO_SNDBUF, no error', () => {
    const dist = path.join(__dirname, '..', '..', 'dist', 'lib', 'index.js');
    const script = `const s = require(${JSON.stringify(dist)}).createSocket("udp4");` +
      `s.setRecvBufferSize(${2 * rmemMax}); s.setSendBufferSize(${2 * wmemMax});` +
      'console.log(JSON.stringify([s.getRecvBufferSize(), s.getSendBufferSize()]));';
    // capsh drops the capability from the bounding set; the exec'd node has it nowhere.
    const out = execFileSync('capsh', ['--drop=cap_net_admin', '--', '-c', `"${process.execPath}" -e '${script}'`],
      { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual([2 * rmemMax, 2 * wmemMax]);
  });
});

describe('unknown option names are a TypeError naming the option and the known ones', () => {
  test('createSocket', () => {
    expect(() => createSocket({ type: 'udp4', reuseaddr: true } as never)).toThrow(
      new TypeError('createSocket: unknown option "reuseaddr"; the known options are type, sendBufferSize, ' +
        'recvBufferSize, gso, reuseAddr, reusePort, ipv6Only, signal'));
    expect(() => createSocket({ type: 'udp4', lookup: () => undefined } as never)).toThrow(/unknown option "lookup"/);
  });

  test('send options, on every send call', async () => {
    const socket = wsk('udp4');
    const bad = { ttl: 5, tll: 5 } as never;
    const message = /^send: unknown option "tll"; the known options are sourceAddress, interfaceIndex, tos, ecn, ttl, segmentSize, gso, continueOnError, signal$/;
    expect(() => socket.trySendBatch([Buffer.from('x')], 9, '127.0.0.1', bad)).toThrow(message);
    expect(() => socket.sendBatch([Buffer.from('x')], 9, '127.0.0.1', bad)).toThrow(message);
    expect(() => socket.trySendTo([{ data: Buffer.from('x'), port: 9 }], bad)).toThrow(message);
    expect(() => socket.sendTo([{ data: Buffer.from('x'), port: 9 }], bad)).toThrow(message);
    expect(() => socket.trySendToMany([Buffer.from('x')], [{ port: 9 }], bad)).toThrow(message);
    expect(() => socket.sendToMany([Buffer.from('x')], [{ port: 9 }], bad)).toThrow(message);
    expect(socket.stats().datagrams).toBe(0);
  });

  test('receive options and enableReceiveInfo options', async () => {
    const socket = wsk('udp4');
    await expect(socket.receiveBatch({ timeout: 5 } as never)).rejects.toThrow(
      new TypeError('receive: unknown option "timeout"; the known options are maxDatagrams, slotSize, arena, timeoutMs, signal'));
    await expect(socket.datagrams({ maxDatagram: 1 } as never).next()).rejects.toThrow(/unknown option "maxDatagram"/);
    expect(() => socket.enableReceiveInfo({ gro: false, pktinfo: true } as never)).toThrow(
      new TypeError('enableReceiveInfo: unknown option "pktinfo"; the known options are gro'));
  });

  test('a getter is read once: it cannot pass the check with one answer and reach the socket with another', () => {
    let reads = 0;
    const options = {
      type: 'udp4' as const,
      get recvBufferSize(): number {
        reads++;
        return reads === 1 ? 65536 : -1;
      },
    };
    const socket = wsk(options);
    expect(reads).toBe(1);
    expect(socket.getRecvBufferSize()).toBe(131072);
  });
});

describe('the native methods check their own arguments', () => {
  function raw(family: 4 | 6): NativeUdpSocket {
    const native = new (binding().UdpSocket)();
    expect(native.open(family)).toBe(0);
    opened.push(native);
    return native;
  }
  const opened: NativeUdpSocket[] = [];
  afterEach(() => opened.splice(0).forEach((n) => n.close()));

  test('every NativeOption reads back; unknown numbers and out-of-range values are RangeErrors', () => {
    const native = raw(6);
    for (const option of Object.values(NativeOption)) {
      const read = native.getOption(option);
      // The path MTU is known only for a connected remote: ENOTCONN here.
      if (option === NativeOption.mtu) expect(read).toBe(os.constants.errno.ENOTCONN);
      else expect(typeof read === 'object' ? typeof read.value : read).toBe('number');
    }
    expect(native.setOption(NativeOption.ttl, 200)).toBe(0);
    expect(native.getOption(NativeOption.ttl)).toEqual({ value: 200 });
    expect(() => native.setOption(0 as never, 1)).toThrow(/unknown socket option 0/);
    expect(() => native.setOption(12 as never, 1)).toThrow(/unknown socket option 12/);
    expect(() => native.getOption(999 as never)).toThrow(/unknown socket option 999/);
    expect(() => native.setOption(NativeOption.ttl, 0)).toThrow(/from 1 to 255/);
    expect(() => native.setOption(NativeOption.broadcast, 2)).toThrow(/from 0 to 1/);
    expect(() => native.setOption(NativeOption.tos, 1.5)).toThrow(/integer from 0 to 255/);
    expect(() => native.setOption(NativeOption.receiveBufferSize, 0)).toThrow(/from 1 to 2147483647/);
    expect(() => native.setOption(NativeOption.tos, '5' as never)).toThrow(/option value must be a number/);
  });

  test('membership and setMulticastInterface parse their strings themselves', () => {
    const v4 = raw(4);
    const v6 = raw(6);
    expect(() => v4.membership('yes' as never, '239.1.2.3', null, null)).toThrow(/join must be a boolean/);
    expect(() => v4.membership(true, 'ff05::1', null, null)).toThrow(/group is not an IP literal/);
    expect(() => v4.membership(true, '239.1.2.3', '::1', null)).toThrow(/source is not an IP literal/);
    expect(() => v4.membership(true, '239.1.2.3', null, 'lo')).toThrow(/interface is not an IPv4 literal/);
    expect(() => v4.membership(true, 'x'.repeat(100), null, null)).toThrow(/group is too long/);
    expect(() => v4.membership(true, '239.1.2.3\0', null, null)).toThrow(/NUL/);
    expect(() => v6.setMulticastInterface('::%')).toThrow(/zone must be 1 to 16/);
    expect(() => v6.setMulticastInterface('::%4294967296')).toThrow(/at most 2\^32-1/);
    expect(() => v6.setMulticastInterface('lo')).toThrow(/IPv6 literal/);
    expect(() => v6.setMulticastInterface(5 as never)).toThrow(/must be a string/);
    expect(v6.setMulticastInterface('::%1')).toBe(0);
    expect(v4.membership(true, '239.1.2.3', null, '127.0.0.1')).toBe(0);
    expect(v4.membership(false, '239.1.2.3', null, '127.0.0.1')).toBe(0);
    v4.close();
    expect(v4.membership(true, '239.1.2.3', null, null)).toBe(9); // EBADF
    expect(v4.disconnect()).toBe(9);
  });
});
