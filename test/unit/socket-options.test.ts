/**
 * The socket-option layer without the addon: NativeOption against the native enum's text, the
 * option-name checks, createSocket options and send controls read once, and the buffer-size and
 * membership calls against a recording fake of the native socket.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { NativeOption, type NativeUdpSocket } from '../../lib/binding';
import { nativeControls } from '../../lib/controls';
import { WskError } from '../../lib/errors';
import {
  checkOptionNames, RECEIVE_INFO_OPTION_NAMES, RECEIVE_OPTION_NAMES, SEND_OPTION_NAMES, SOCKET_OPTION_NAMES,
} from '../../lib/option-names';
import * as sockopts from '../../lib/socket-options';

test('NativeOption is native/socket_options.h enum SocketOption, name for name and number for number', () => {
  const header = fs.readFileSync(path.join(__dirname, '..', '..', 'native', 'socket_options.h'), 'utf8');
  const body = /enum class SocketOption : int \{([\s\S]*?)\};/.exec(header)?.[1] ?? '';
  const native = Object.fromEntries([...body.matchAll(/^\s*k(\w+) = (\d+),/gm)].map((m) => [m[1]!, Number(m[2])]));
  const ours = Object.fromEntries(Object.entries(NativeOption).map(([name, n]) => [name[0]!.toUpperCase() + name.slice(1), n]));
  expect(Object.keys(native).length).toBeGreaterThanOrEqual(11);
  expect(ours).toEqual(native);
  // Numbers below 20 are the dgram-parity options, 20 and up the error-queue / path-MTU ones.
  const { mtuDiscovery, dontFragment, mtu, recvErr, ...parity } = NativeOption;
  for (const n of Object.values(parity)) expect(n).toBeLessThan(20);
  for (const n of [mtuDiscovery, dontFragment, mtu, recvErr]) expect(n).toBeGreaterThanOrEqual(20);
});

describe('checkOptionNames', () => {
  test('names the first unknown option and lists the known ones', () => {
    expect(() => checkOptionNames({ gro: true, grow: 1 }, RECEIVE_INFO_OPTION_NAMES, 'enableReceiveInfo'))
      .toThrow(new TypeError('enableReceiveInfo: unknown option "grow"; the known options are gro'));
    expect(() => checkOptionNames({ ['x'.repeat(50)]: 1 }, SEND_OPTION_NAMES, 'send')).toThrow(/a name of 50 characters/);
    expect(() => checkOptionNames(null, SEND_OPTION_NAMES, 'send')).toThrow(new TypeError('send options must be an object'));
    expect(() => checkOptionNames(5, SEND_OPTION_NAMES, 'send')).toThrow(TypeError);
  });

  test('every known name passes, with any value (the value is checked where it is used)', () => {
    for (const known of [SOCKET_OPTION_NAMES, SEND_OPTION_NAMES, RECEIVE_OPTION_NAMES, RECEIVE_INFO_OPTION_NAMES]) {
      expect(() => checkOptionNames(Object.fromEntries(known.map((n) => [n, undefined])), known, 'x')).not.toThrow();
    }
  });

  test('inherited and symbol keys are not options', () => {
    const options = Object.create({ inherited: 1 }) as Record<string | symbol, unknown>;
    options[Symbol('s')] = 1;
    expect(() => checkOptionNames(options, SEND_OPTION_NAMES, 'send')).not.toThrow();
  });
});

describe('readSocketOptions', () => {
  test('reads each field once: a getter cannot pass the check and then answer differently', () => {
    const reads: Record<string, number> = {};
    const counted = (name: string, values: unknown[]): PropertyDescriptor => ({
      enumerable: true,
      get: () => values[Math.min((reads[name] = (reads[name] ?? 0) + 1) - 1, values.length - 1)],
    });
    const options = Object.defineProperties({}, {
      type: counted('type', ['udp4', 'udp7']),
      gso: counted('gso', [false, 'no']),
      reuseAddr: counted('reuseAddr', [true, 'x']),
      reusePort: counted('reusePort', [false, 1]),
      recvBufferSize: counted('recvBufferSize', [1000, -1]),
      sendBufferSize: counted('sendBufferSize', [2000, -1]),
      ipv6Only: counted('ipv6Only', [true, false]),
    });
    expect(sockopts.readSocketOptions(options)).toEqual({
      type: 'udp4', gso: false, reuseAddr: true, reusePort: false, recvBufferSize: 1000, sendBufferSize: 2000,
      ipv6Only: true, signal: undefined,
    });
    expect(Object.values(reads)).toEqual([1, 1, 1, 1, 1, 1, 1]);
  });

  test('types and ranges', () => {
    expect(sockopts.readSocketOptions('udp6')).toMatchObject({ type: 'udp6', reuseAddr: false, reusePort: false });
    expect(() => sockopts.readSocketOptions({ type: 'udp4', reusePort: 1 })).toThrow(/reusePort must be a boolean, got 1/);
    expect(() => sockopts.readSocketOptions({ type: 'udp4', reuseAddr: 'yes' })).toThrow(TypeError);
    expect(() => sockopts.readSocketOptions({ type: 'udp4', recvBufferSize: 0 })).toThrow(RangeError);
    expect(() => sockopts.readSocketOptions({ type: 'udp4', sendBufferSize: 2 ** 31 })).toThrow(RangeError);
    expect(() => sockopts.readSocketOptions({ type: 'tcp' })).toThrow(/got "tcp"/);
    expect(() => sockopts.readSocketOptions({ type: 'udp4', exclusive: true })).toThrow(/unknown option "exclusive"/);
  });
});

test('nativeControls reads each control once', () => {
  const reads: string[] = [];
  const controls = {};
  for (const [name, value] of [['sourceAddress', '127.0.0.1'], ['interfaceIndex', 1], ['tos', 0x10], ['ecn', 1],
    ['ttl', 7], ['segmentSize', 100]] as const) {
    Object.defineProperty(controls, name, { enumerable: true, get: () => (reads.push(name), reads.filter((r) => r === name).length === 1 ? value : 'bad') });
  }
  expect(nativeControls(controls, 4)).toEqual({ sourceAddress: '127.0.0.1', interfaceIndex: 1, tos: 0x11, ttl: 7, segmentSize: 100 });
  expect(reads.sort()).toEqual(['ecn', 'interfaceIndex', 'segmentSize', 'sourceAddress', 'tos', 'ttl']);
});

/** The option calls of a native socket, answered from `answers` (errno by option number; 0 when absent). */
function fakeNative(answers: Partial<Record<number, number>> = {}): { native: NativeUdpSocket; calls: unknown[][] } {
  const calls: unknown[][] = [];
  const native = {
    setOption: (option: number, value: number) => (calls.push(['setOption', option, value]), answers[option] ?? 0),
    getOption: (option: number) => (calls.push(['getOption', option]), answers[option] ?? { value: 42 }),
    membership: (...args: unknown[]) => (calls.push(['membership', ...args]), 0),
    setMulticastInterface: (via: string) => (calls.push(['setMulticastInterface', via]), 0),
    disconnect: () => (calls.push(['disconnect']), 0),
  } as unknown as NativeUdpSocket;
  return { native, calls };
}

const { EPERM, EINVAL, ENOBUFS } = os.constants.errno;
const ENOPROTOOPT = os.constants.errno.ENOPROTOOPT;

describe('setBufferSize: the forced form first, the plain one when it is refused or missing', () => {
  test('forced accepted: one call', () => {
    const { native, calls } = fakeNative();
    sockopts.setBufferSize(native, 'receive', 5000, 'setRecvBufferSize');
    expect(calls).toEqual([['setOption', NativeOption.receiveBufferForce, 5000]]);
  });

  test.each([['EPERM (no CAP_NET_ADMIN)', EPERM], ['ENOPROTOOPT (not this OS)', ENOPROTOOPT]])('forced refused with %s: plain', (_n, errno) => {
    const { native, calls } = fakeNative({ [NativeOption.sendBufferForce]: errno });
    sockopts.setBufferSize(native, 'send', 7000, 'setsockopt');
    expect(calls).toEqual([['setOption', NativeOption.sendBufferForce, 7000], ['setOption', NativeOption.sendBufferSize, 7000]]);
  });

  test('any other refusal is a WskError, and so is the plain form\'s', () => {
    expect(() => sockopts.setBufferSize(fakeNative({ [NativeOption.receiveBufferForce]: ENOBUFS }).native, 'receive', 1, 'setRecvBufferSize'))
      .toThrow(expect.objectContaining({ name: 'WskError', code: 'ENOBUFS', syscall: 'setRecvBufferSize' }));
    const both = fakeNative({ [NativeOption.receiveBufferForce]: EPERM, [NativeOption.receiveBufferSize]: EINVAL });
    expect(() => sockopts.setBufferSize(both.native, 'receive', 1, 'setRecvBufferSize')).toThrow(WskError);
  });

  test('bad sizes never reach the native socket', () => {
    const { native, calls } = fakeNative();
    for (const bad of [0, -1, 1.5, 2 ** 31, '100', Number.NaN]) {
      expect(() => sockopts.setBufferSize(native, 'receive', bad, 'x')).toThrow(RangeError);
    }
    expect(calls).toEqual([]);
  });
});

describe('membership, multicast interface and disconnect calls', () => {
  test('the strings reach the native socket as given; absent ones as null', () => {
    const { native, calls } = fakeNative();
    sockopts.setMembership(native, 4, true, '239.1.2.3', null, undefined, 'addMembership');
    sockopts.setMembership(native, 6, false, 'ff35::1', { address: 'fd00::1' }, '::%eth0', 'dropSourceSpecificMembership');
    sockopts.setMulticastInterface(native, 6, '::%3');
    sockopts.disconnect(native, true);
    expect(calls).toEqual([
      ['membership', true, '239.1.2.3', null, null],
      ['membership', false, 'ff35::1', 'fd00::1', '::%eth0'],
      ['setMulticastInterface', '::%3'],
      ['disconnect'],
    ]);
  });

  test('a source-specific membership without a source is a TypeError, not a join of every source', () => {
    const { native, calls } = fakeNative();
    for (const source of [undefined, null, 5]) {
      expect(() => sockopts.setMembership(native, 4, true, '232.1.1.1', { address: source }, undefined,
        'addSourceSpecificMembership')).toThrow(/sourceAddress must be a string/);
    }
    expect(calls).toEqual([]);
  });

  test('disconnect of a socket that is not connected: TypeError with dgram\'s code, no native call', () => {
    const { native, calls } = fakeNative();
    expect(() => sockopts.disconnect(native, false)).toThrow(
      expect.objectContaining({ name: 'TypeError', code: 'ERR_SOCKET_DGRAM_NOT_CONNECTED' }));
    expect(calls).toEqual([]);
  });

  test('setInteger and setFlag return what dgram returns and check first', () => {
    const { native, calls } = fakeNative();
    expect(sockopts.setInteger(native, NativeOption.ttl, 64, 'ttl', 1, 255, 'setTTL')).toBe(64);
    expect(sockopts.setFlag(native, NativeOption.multicastLoopback, false, 'setMulticastLoopback')).toBe(false);
    expect(() => sockopts.setInteger(native, NativeOption.ttl, 0, 'ttl', 1, 255, 'setTTL')).toThrow(RangeError);
    expect(() => sockopts.setFlag(native, NativeOption.broadcast, 'true', 'setBroadcast')).toThrow(TypeError);
    expect(calls).toEqual([['setOption', NativeOption.ttl, 64], ['setOption', NativeOption.multicastLoopback, 0]]);
    expect(sockopts.getOption(native, NativeOption.tos, 'x')).toBe(42);
  });
});
