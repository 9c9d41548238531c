/**
 * ICMP errors and the path MTU options on loopback, in this process (whichever back-end it runs
 * with; the CI runs the suite on both). The loopback's ICMP is never rate-limited per
 * destination, and the few sent here stay far below the global budget. The namespace versions,
 * with routers and exact counts on both back-ends in one run, are in icmp.test.ts.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createSocket, nativeBackend, WskError, type IcmpError, type UdpSocket } from '../../lib';
import { binding, NativeOption, type NativeOptionNumber } from '../../lib/binding';

const { ECONNREFUSED } = os.constants.errno;
const open: UdpSocket[] = [];
afterEach(() => {
  for (const socket of open.splice(0)) socket.close();
});

function socket(type: 'udp4' | 'udp6'): UdpSocket {
  const s = createSocket(type);
  open.push(s);
  return s;
}

/** A port on `address` that nothing listens on (bound, then closed). */
function closedPort(type: 'udp4' | 'udp6', address: string): number {
  const probe = createSocket(type);
  const { port } = probe.bind(0, address);
  probe.close();
  return port;
}

/** The next 'icmp' event, or null after `ms`. */
function nextIcmp(s: UdpSocket, ms = 3000): Promise<IcmpError | null> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      s.off('icmp', onIcmp);
      resolve(null);
    }, ms);
    const onIcmp = (error: IcmpError): void => {
      clearTimeout(timer);
      s.off('icmp', onIcmp);
      resolve(error);
    };
    s.on('icmp', onIcmp);
  });
}

const ZERO = {
  received: 0, portUnreachable: 0, hostUnreachable: 0, netUnreachable: 0, fragmentationNeeded: 0, prohibited: 0,
  other: 0, local: 0, dropped: 0,
};

describe.each([['udp4', '127.0.0.1', 'IPv4', 'icmp', 3, 3], ['udp6', '::1', 'IPv6', 'icmp6', 1, 4]] as const)(
  '%s on loopback', (type, address, family, origin, icmpType, icmpCode) => {
    test('every socket hears its ICMP errors (IP_RECVERR / IPV6_RECVERR on at open); a new socket counts none', () => {
      const native = new (binding().UdpSocket)();
      expect(native.open(type === 'udp6' ? 6 : 4)).toBe(0);
      expect(native.getOption(23)).toEqual({ value: 1 });
      native.close();
      expect(socket(type).stats().icmp).toEqual(ZERO);
    });

    test('a send to a closed port gives an icmp port-unreachable event for that destination, with nothing sent or received after it', async () => {
      const s = socket(type);
      const port = closedPort(type, address);
      const waiting = nextIcmp(s);
      const payload = Buffer.from('to nobody, with a sequence number: 0042');
      expect(s.trySendBatch([payload], port, address)).toEqual({ datagrams: 1, bytes: payload.length, segments: 1, failures: [] });
      const error = await waiting;
      expect(error).toEqual({
        kind: 'port-unreachable', address, port, family, origin, icmpType, icmpCode, errno: ECONNREFUSED,
        code: 'ECONNREFUSED', status: 0xc0000236, offender: address, mtu: null, payload: expect.any(Uint8Array),
      });
      expect(Buffer.from(error!.payload)).toEqual(payload);
      expect(s.stats().icmp).toEqual({ ...ZERO, received: 1, portUnreachable: 1 });
    });

    test('icmpErrors() yields the same errors; breaking the loop ends it; close ends a waiting one', async () => {
      const s = socket(type);
      const port = closedPort(type, address);
      const iterator = s.icmpErrors();
      s.trySendBatch([Buffer.from('a'), Buffer.from('bb')], port, address, { gso: false });
      const seen: number[] = [];
      for await (const error of iterator) {
        expect({ kind: error.kind, port: error.port }).toEqual({ kind: 'port-unreachable', port });
        seen.push(error.payload.length);
        if (seen.length === 2) break;
      }
      expect(seen).toEqual([1, 2]);
      expect(await iterator.next()).toEqual({ value: undefined, done: true });
      const waiting = s.icmpErrors().next();
      s.close();
      expect(await waiting).toEqual({ value: undefined, done: true });
    });

    test('icmpErrors({ signal }): an abort ends a waiting loop with WskError ECANCELED; the socket goes on watching for others', async () => {
      const s = socket(type);
      const port = closedPort(type, address);
      const controller = new AbortController();
      const heard: IcmpError[] = [];
      const caught: unknown[] = [];
      const loop = (async () => {
        try {
          for await (const error of s.icmpErrors({ signal: controller.signal })) {
            heard.push(error);
            controller.abort(new Error('enough'));
          }
        } catch (error) {
          caught.push(error);
        }
      })();
      const other = s.icmpErrors();
      s.trySendBatch([Buffer.from('a'), Buffer.from('bb')], port, address, { gso: false });
      await loop;
      expect(heard.map((e) => e.payload.length)).toEqual([1]);
      expect(caught).toHaveLength(1);
      expect(caught[0]).toBeInstanceOf(WskError);
      expect(caught[0]).toMatchObject({ code: 'ECANCELED', cause: new Error('enough') });
      // The other iterator still gets both: an abort ends only its own iterator.
      expect((await other.next()).value?.payload.length).toBe(1);
      expect((await other.next()).value?.payload.length).toBe(2);
      await other.return!();
      expect(() => s.icmpErrors({ signal: 'no' } as never)).toThrow(TypeError);
      expect(() => s.icmpErrors({ singal: controller.signal } as never)).toThrow(/unknown option "singal"/);
    });

    test("an earlier peer's ICMP fails neither a later send to another peer nor a receive", async () => {
      const s = socket(type);
      s.bind(0, address);
      const live = socket(type);
      const livePort = live.bind(0, address).port;
      const dead = closedPort(type, address);
      for (let round = 0; round < 5; round++) {
        // No listener, nothing reads the error queue: each ICMP leaves its error on the socket.
        expect(s.trySendBatch([Buffer.from([round])], dead, address).datagrams).toBe(1);
        live.trySendBatch([Buffer.from([100 + round])], s.address().port, address);
        const received = await s.receiveBatch({ timeoutMs: 2000 });
        expect(received.map((d) => d.data[0])).toEqual([100 + round]);
        expect(s.trySendBatch([Buffer.from([round])], dead, address).datagrams).toBe(1);
        expect(await s.sendBatch([Buffer.from([200 + round])], livePort, address))
          .toEqual({ datagrams: 1, bytes: 1, segments: 1, failures: [] });
      }
      const got = await live.receiveBatch({ timeoutMs: 2000 });
      expect(got.map((d) => d.data[0])).toEqual([200, 201, 202, 203, 204]);
      expect(s.stats().icmp).toEqual({ ...ZERO, received: 10, portUnreachable: 10 });
    });

    test('a connected socket whose peer port is closed: the batch stops where the ICMP surfaced, at datagram 1, with ECONNREFUSED', async () => {
      const s = socket(type);
      s.connect(closedPort(type, address), address);
      const batch = Array.from({ length: 10 }, (_, i) => Buffer.alloc(100, i));
      const failed = await s.sendBatch(batch, undefined, undefined, { gso: false }).then(() => null, (e: unknown) => e);
      expect(failed).toBeInstanceOf(WskError);
      expect(failed).toMatchObject({ code: 'ECONNREFUSED', datagramsSent: 1, bytesSent: 100 });
      const stats = s.stats();
      expect({ syscalls: stats.syscalls, datagrams: stats.datagrams, icmp: stats.icmp })
        .toEqual({ syscalls: nativeBackend() === 'sendmmsg' ? 1 : 2, datagrams: 1, icmp: { ...ZERO, received: 1, portUnreachable: 1 } });
    });

    test('path MTU discovery modes, dont-fragment and getMtu() read back what was set; bad arguments are TypeErrors', () => {
      const s = socket(type);
      expect(s.getMtuDiscovery()).toBe('want');
      for (const mode of ['dont', 'do', 'probe', 'want'] as const) {
        s.setMtuDiscovery(mode);
        expect(s.getMtuDiscovery()).toBe(mode);
      }
      s.setDontFragment(true);
      expect(s.getDontFragment()).toBe(true);
      s.setDontFragment(false);
      expect(s.getDontFragment()).toBe(false);
      expect(() => s.getMtu()).toThrow(expect.objectContaining({ name: 'WskError', code: 'ENOTCONN' }));
      s.connect(9, address);
      // The loopback device's MTU; IPv4 caps a path MTU at 65535 (IP_MAX_MTU).
      const lo = Number(fs.readFileSync('/sys/class/net/lo/mtu', 'utf8'));
      expect(s.getMtu()).toBe(family === 'IPv4' ? Math.min(lo, 65535) : lo);
      expect(() => s.setMtuDiscovery('yes' as never)).toThrow(TypeError);
      expect(() => s.setMtuDiscovery(2 as never)).toThrow(TypeError);
      expect(() => s.setMtuDiscovery('toString' as never)).toThrow(TypeError);
      expect(() => s.setDontFragment(1 as never)).toThrow(TypeError);
      s.close();
      expect(() => s.setMtuDiscovery('do')).toThrow(expect.objectContaining({ code: 'EBADF' }));
      expect(() => s.getMtu()).toThrow(expect.objectContaining({ code: 'EBADF' }));
    });
  });

test('the native option methods refuse unknown options and values', () => {
  const native = new (binding().UdpSocket)();
  native.open(4);
  // (The addon's errors come from the main realm, not jest's: matched by message.)
  // Numbers outside NativeOption are what the native side must refuse: cast past the type.
  expect(() => native.setOption(19 as NativeOptionNumber, 1)).toThrow(/unknown socket option 19/);
  expect(() => native.setOption(NativeOption.mtuDiscovery, 4)).toThrow(/option value must be an integer from 0 to 3/);
  expect(() => native.setOption(NativeOption.mtu, 1000)).toThrow(/read-only/);
  expect(() => native.getOption(-1 as NativeOptionNumber)).toThrow(/option must be an integer/);
  expect(() => native.setOption(NativeOption.mtuDiscovery, -1)).toThrow(/value must be an integer/);
  native.close();
  expect(native.takeErrors()).toEqual([]);
  expect(native.watchErrors(() => undefined)).toBe(os.constants.errno.EBADF);
});

/** Runs `code` in a child node; resolves with its exit code, or 'still running' after `ms`. */
function runChild(code: string, ms: number): Promise<number | 'still running'> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', code], {
      cwd: path.join(__dirname, '..', '..'), stdio: 'ignore', env: { ...process.env },
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      resolve('still running');
    }, ms);
    child.once('exit', (exitCode) => {
      clearTimeout(timer);
      resolve(exitCode ?? -1);
    });
  });
}

test("watching for ICMP errors never keeps the process alive; a waiting receive does", async () => {
  const prologue = "const { createSocket } = require('./dist/lib/index.js');" +
    "const s = createSocket('udp4'); s.bind(0, '127.0.0.1');" +
    "const p = createSocket('udp4'); const port = p.bind(0, '127.0.0.1').port; p.close();";
  const [watching, receiving] = await Promise.all([
    runChild(prologue + "s.on('icmp', () => {}); s.icmpErrors().next(); s.trySendBatch([Buffer.from('x')], port, '127.0.0.1');", 8000),
    runChild(prologue + 's.receiveBatch();', 1500),
  ]);
  expect({ watching, receiving }).toEqual({ watching: 0, receiving: 'still running' });
}, 15000);
