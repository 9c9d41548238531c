/**
 * Target "options": the socket-option surface, on both layers.
 * - The raw binding (lib/binding.ts NativeUdpSocket): setOption / getOption with option numbers
 *   in and out of native/socket_options.h's table and values in and out of each option's range,
 *   membership, setMulticastInterface, disconnect, setRef, adopt and close, with odd arguments
 *   (NaN, -0, fractions, huge numbers, strings, bigints, symbols, strings too long in UTF-8
 *   bytes, NUL characters, wrong family literals, objects whose coercion hooks throw our own
 *   error or close the socket), on sockets that are open, dual-stack, connected, closed, never
 *   opened, or borrowed (adopt of another socket's descriptor).
 * - The socket API (lib/socket.ts UdpSocket): createSocket option bags with unknown, hidden,
 *   inherited and symbol keys, odd values and a getter per field; then setTTL, setTOS,
 *   setBroadcast, setMulticastTTL, setMulticastLoopback, setMulticastInterface, add/drop
 *   (source-specific) membership, set/getRecvBufferSize, setMtuDiscovery, setDontFragment,
 *   getMtu, connect, disconnect, ref / unref and close, with the same kinds of odd arguments.
 *
 * An independent model of the documented checks (the option table, each argument's type and
 * range, the order they are checked in; lib/socket-options.ts for the socket API) says per call
 * whether it must throw (and which of TypeError / RangeError) or return, and what a return may
 * be (0, EBADF on a socket that is not open, EOPNOTSUPP for a borrowed descriptor's options, an
 * errno the kernel chose where the model cannot know it). Property: each call returns what the
 * model allows or throws the error it names (or the error our own hook threw, or a WskError
 * with the method's syscall for an errno on the socket API); `fd` says whether the socket is
 * open; a value set is read back consistent with it (TTL, TOS, broadcast, multicast loop and
 * TTL, MTU discovery, don't-fragment, the error queue exactly; a buffer size as the kernel
 * doubles and caps it); a borrowed descriptor's options are its owner's, unchanged, and closing
 * the borrower leaves the owner working; after the case the socket sends a datagram that arrives
 * intact at a loopback receiver, or is closed and says so (EBADF).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import fc from 'fast-check';
import { binding, NativeOption, type NativeUdpSocket } from '../../lib/binding';
import { WskError } from '../../lib/errors';
import { describeValue as show } from '../../lib/describe';
import { createSocket, type UdpSocket } from '../../lib/socket';
import {
  compareDatagrams, EBADF, errnoName, errorName, errorText, fail, GetterError, isOwnError, ownError, takeUncaught,
  withCleanup,
} from './common';
import type { TargetDefinition } from './harness';
import { FAST_V4, FAST_V6, openNative, plainBatch, Receiver } from './loopback';

const { EOPNOTSUPP, ENOTCONN, EAFNOSUPPORT, EPERM } = os.constants.errno;
const INT_MAX = 0x7fffffff;
/** The largest size Linux sets a buffer to (val * 2 must fit an int; net/core/sock.c). */
const BUFFER_HALF_MAX = 0x3fffffff;

type ErrorKind = 'TypeError' | 'RangeError';

// ---------------------------------------------------------------------------------------------
// Arguments: a plain value, or an object made per case whose coercion hooks act

type Hostile = 'throwOwn' | 'close' | 'proxy';
type Arg = { v: unknown } | { hostile: Hostile };

const hostileArb: fc.Arbitrary<Arg> = fc.constantFrom<Hostile>('throwOwn', 'close', 'proxy').map((hostile) => ({ hostile }));
const oddScalars: unknown[] = [NaN, -0, 0.5, -1, Infinity, -Infinity, 2 ** 31, 2 ** 32, 2 ** 53, 1e300, '4', '', null,
  undefined, true, false, 4n, Symbol('odd'), {}, [], [4]];

/** Mostly `good`, sometimes one of `edges`, an odd scalar, or a hostile object. */
function argArb(good: fc.Arbitrary<unknown>, edges: unknown[]): fc.Arbitrary<Arg> {
  return fc.oneof(
    { weight: 12, arbitrary: good.map((v) => ({ v })) },
    { weight: 3, arbitrary: fc.constantFrom(...edges).map((v) => ({ v })) },
    { weight: 2, arbitrary: fc.constantFrom(...oddScalars).map((v) => ({ v })) },
    { weight: 1, arbitrary: hostileArb },
  );
}

const intArgArb = (min: number, max: number): fc.Arbitrary<Arg> =>
  argArb(fc.integer({ min, max }), [min - 1, max + 1, min, max, min + 0.5, -0]);
const boolArgArb: fc.Arbitrary<Arg> = argArb(fc.boolean(), [0, 1, 'true', null, undefined]);
const bufferSizeArgArb: fc.Arbitrary<Arg> = argArb(
  fc.oneof(fc.integer({ min: 1, max: 4096 }), fc.integer({ min: 4097, max: 1 << 22 })),
  [0, 1, INT_MAX, INT_MAX + 1, 2 ** 32 - 1, 1.5, '4096']);

/**
 * Addresses: the text, and whether inet_pton (the native side) and node:net (the library) take
 * it as an IPv4 / IPv6 literal without a zone; the two agree on every entry. Entries too long
 * or with a NUL are refused by the native length and NUL checks before any parse.
 */
const ADDRESSES: Array<[string, 4 | 6 | 0]> = [
  ['127.0.0.1', 4], ['224.0.0.1', 4], ['239.255.0.7', 4], ['232.1.2.3', 4], ['0.0.0.0', 4], ['255.255.255.255', 4],
  ['1.2.3.4', 4], ['::1', 6], ['ff02::1', 6], ['ff15::7', 6], ['ff3e::8000:1', 6], ['::', 6], ['::ffff:224.0.0.1', 6],
  ['fe80::1', 6], ['fe80::1%lo', 0], ['ff02::1%1', 0], ['', 0], ['x', 0], ['1.2.3', 0], ['1.2.3.4.5', 0],
  ['01.2.3.4', 0], ['256.1.1.1', 0], [':::1', 0], ['1.2.3.4 ', 0], [' ::1', 0], ['a'.repeat(64), 0],
  ['a'.repeat(65), 0], ['224.0.0.1\0', 0], ['ff02::1\0x', 0], ['\u00e9'.repeat(33), 0], ['\ud800', 0],
];
const addressFamily = new Map<string, 4 | 6 | 0>(ADDRESSES);
const addressArgArb: fc.Arbitrary<Arg> = fc.oneof(
  { weight: 14, arbitrary: fc.constantFrom(...ADDRESSES.map(([text]) => text)).map((v) => ({ v })) },
  { weight: 2, arbitrary: fc.constantFrom<unknown>(null, undefined, 4, {}, Symbol('group')).map((v) => ({ v })) },
  { weight: 1, arbitrary: hostileArb },
);

/**
 * Multicast interfaces: what the native side does with the text on an IPv4 / IPv6 socket
 * ('ok'; 'lookup': the zone is a name if_nametoindex does not know, an errno returned before
 * the socket is looked at; or the error it throws), and whether the library's own check takes it.
 */
type IfaceNative = 'ok' | 'lookup' | ErrorKind;
const INTERFACES: Array<{ text: string; native: Record<4 | 6, IfaceNative>; lib: Record<4 | 6, boolean> }> = [
  { text: '127.0.0.1', native: { 4: 'ok', 6: 'TypeError' }, lib: { 4: true, 6: false } },
  { text: '0.0.0.0', native: { 4: 'ok', 6: 'TypeError' }, lib: { 4: true, 6: false } },
  { text: '1.2.3.4', native: { 4: 'ok', 6: 'TypeError' }, lib: { 4: true, 6: false } },
  { text: '::%lo', native: { 4: 'TypeError', 6: 'ok' }, lib: { 4: false, 6: true } },
  { text: '::%1', native: { 4: 'TypeError', 6: 'ok' }, lib: { 4: false, 6: true } },
  { text: '::%0', native: { 4: 'TypeError', 6: 'ok' }, lib: { 4: false, 6: true } },
  { text: '::', native: { 4: 'TypeError', 6: 'ok' }, lib: { 4: false, 6: true } },
  { text: '::1', native: { 4: 'TypeError', 6: 'ok' }, lib: { 4: false, 6: true } },
  { text: 'fe80::1%lo', native: { 4: 'TypeError', 6: 'ok' }, lib: { 4: false, 6: true } },
  { text: '::%4294967295', native: { 4: 'TypeError', 6: 'ok' }, lib: { 4: false, 6: true } },
  { text: '::%4294967296', native: { 4: 'TypeError', 6: 'RangeError' }, lib: { 4: false, 6: true } },
  { text: `::%${'9'.repeat(16)}`, native: { 4: 'TypeError', 6: 'RangeError' }, lib: { 4: false, 6: true } },
  { text: '::%nope0', native: { 4: 'TypeError', 6: 'lookup' }, lib: { 4: false, 6: true } },
  { text: '::%a b', native: { 4: 'TypeError', 6: 'lookup' }, lib: { 4: false, 6: true } },
  { text: '::%', native: { 4: 'TypeError', 6: 'TypeError' }, lib: { 4: false, 6: false } },
  { text: `::%${'a'.repeat(17)}`, native: { 4: 'TypeError', 6: 'TypeError' }, lib: { 4: false, 6: false } },
  { text: '::%lo\0', native: { 4: 'TypeError', 6: 'TypeError' }, lib: { 4: false, 6: false } },
  { text: '127.0.0.1\0', native: { 4: 'TypeError', 6: 'TypeError' }, lib: { 4: false, 6: false } },
  { text: ':::%1', native: { 4: 'TypeError', 6: 'TypeError' }, lib: { 4: false, 6: false } },
  { text: '', native: { 4: 'TypeError', 6: 'TypeError' }, lib: { 4: false, 6: false } },
  { text: 'lo', native: { 4: 'TypeError', 6: 'TypeError' }, lib: { 4: false, 6: false } },
  { text: 'x'.repeat(81), native: { 4: 'TypeError', 6: 'TypeError' }, lib: { 4: false, 6: false } },
  { text: 'x'.repeat(82), native: { 4: 'RangeError', 6: 'RangeError' }, lib: { 4: false, 6: false } },
  { text: `::%${'\u00e9'.repeat(40)}`, native: { 4: 'RangeError', 6: 'RangeError' }, lib: { 4: false, 6: false } },
];
const interfaceEntry = new Map(INTERFACES.map((e) => [e.text, e]));
/** null: the argument is left out (absent). */
const ifaceArgArb: fc.Arbitrary<Arg | null> = fc.oneof(
  { weight: 6, arbitrary: fc.constant(null) },
  { weight: 12, arbitrary: fc.constantFrom(...INTERFACES.map((e) => e.text)).map((v) => ({ v })) },
  { weight: 2, arbitrary: fc.constantFrom<unknown>(null, undefined, 1, {}).map((v) => ({ v })) },
  { weight: 1, arbitrary: hostileArb },
);

// ---------------------------------------------------------------------------------------------
// Native cases

/** native/socket_options.h's table, written out again: [min, max] per known option number. */
const OPTION_RANGES = new Map<number, [number, number]>([
  [1, [0, 1]], [2, [0, 1]], [3, [0, 1]], [4, [1, 255]], [5, [0, 255]], [6, [0, 255]], [7, [0, 1]],
  [8, [1, INT_MAX]], [9, [1, INT_MAX]], [10, [1, INT_MAX]], [11, [1, INT_MAX]],
  [20, [0, 3]], [21, [0, 1]], [22, [0, INT_MAX]], [23, [0, 1]],
]);
const KNOWN_OPTIONS = [...OPTION_RANGES.keys()];
const MTU_OPTION = NativeOption.mtu;

type NativeState = 'open' | 'dual' | 'connected' | 'closed' | 'unopened' | 'borrowed';
type FdKind = 'owner' | 'ownerOther' | 'self' | 'stale' | 'devnull' | 'stdout';
type NativeCall =
  | { op: 'setOption'; option: Arg; value: Arg; arity: number }
  | { op: 'getOption'; option: Arg }
  | { op: 'membership'; join: Arg; group: Arg; source: Arg | null; iface: Arg | null }
  | { op: 'setMulticastInterface'; iface: Arg }
  | { op: 'disconnect' }
  | { op: 'connect' }
  | { op: 'setRef'; ref: Arg }
  | { op: 'adopt'; fd: { kind: FdKind } | Arg; family: Arg }
  | { op: 'close' };

interface NativeCase {
  api: 'native';
  family: 4 | 6;
  state: NativeState;
  calls: NativeCall[];
}

const optionNumberArb: fc.Arbitrary<Arg> = argArb(fc.constantFrom(...KNOWN_OPTIONS),
  [0, 12, 19, 24, 999, 1000, 1001, 2 ** 32 + 4, 4.5]);
/** A value for setOption: mostly inside one option's range (or at its edges), whichever option it goes with. */
const optionValueArb: fc.Arbitrary<Arg> = argArb(
  fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 1, max: 1 << 21 })),
  [256, INT_MAX, INT_MAX + 1, -1, 2 ** 32, 1.5, NaN]);
const familyLiteralArb: fc.Arbitrary<Arg> = argArb(fc.constantFrom(4, 6),
  [0, 5, 7, -4, 4.5, '4', 2 ** 32 + 4, NaN, 6n]);
const fdArb: fc.Arbitrary<{ kind: FdKind } | Arg> = fc.oneof(
  { weight: 10, arbitrary: fc.constantFrom<FdKind>('owner', 'ownerOther').map((kind) => ({ kind })) },
  { weight: 4, arbitrary: fc.constantFrom<FdKind>('self', 'stale', 'devnull', 'stdout').map((kind) => ({ kind })) },
  { weight: 2, arbitrary: fc.constantFrom<unknown>(-1, INT_MAX, INT_MAX + 1, 2 ** 32, NaN, 1.5, '3', null).map((v) => ({ v })) },
  { weight: 1, arbitrary: hostileArb },
);

const nativeCallArb: fc.Arbitrary<NativeCall> = fc.oneof(
  { weight: 10, arbitrary: fc.record({ op: fc.constant('setOption' as const), option: optionNumberArb, value: optionValueArb,
    arity: fc.oneof({ weight: 20, arbitrary: fc.constant(2) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 1 }) }) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('getOption' as const), option: optionNumberArb }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('membership' as const), join: boolArgArb, group: addressArgArb,
    source: fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: addressArgArb }), iface: ifaceArgArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('setMulticastInterface' as const),
    iface: ifaceArgArb.map((a) => a ?? { v: undefined }) }) },
  { weight: 1, arbitrary: fc.constantFrom<NativeCall>({ op: 'disconnect' }, { op: 'connect' }, { op: 'close' }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('setRef' as const), ref: boolArgArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('adopt' as const), fd: fdArb, family: familyLiteralArb }) },
);

const nativeCaseArb: fc.Arbitrary<NativeCase> = fc.record({
  api: fc.constant('native' as const),
  family: fc.oneof({ weight: 3, arbitrary: fc.constant(4 as const) }, { weight: 2, arbitrary: fc.constant(6 as const) }),
  state: fc.oneof(
    { weight: 6, arbitrary: fc.constant('open' as const) },
    { weight: 2, arbitrary: fc.constantFrom('connected' as const, 'borrowed' as const) },
    { weight: 1, arbitrary: fc.constantFrom('dual' as const, 'closed' as const, 'unopened' as const) },
  ),
  calls: fc.array(nativeCallArb, { minLength: 1, maxLength: 6 }),
});

// ---------------------------------------------------------------------------------------------
// Socket API cases

const BAG_FIELDS = ['gso', 'sendBufferSize', 'recvBufferSize', 'reuseAddr', 'reusePort', 'ipv6Only'] as const;
type BagField = (typeof BAG_FIELDS)[number];
type BagExtra = 'none' | 'unknownKey' | 'longKey' | 'protoKey' | 'symbolKey' | 'hiddenKey' | 'inherited';
interface BagSpec {
  form: 'string' | 'object';
  type: unknown;
  fields: Partial<Record<BagField, unknown>>;
  extra: BagExtra;
  unknownKey: string;
  /** A getter on this field (or on `type`) that throws our own error. */
  throwing: BagField | 'type' | null;
}

const MTU_MODES = ['dont', 'want', 'do', 'probe'];
type ApiCall =
  | { op: 'setTTL' | 'setTOS' | 'setMulticastTTL' | 'setBroadcast' | 'setMulticastLoopback' | 'setDontFragment' |
      'setRecvBufferSize' | 'setMtuDiscovery' | 'setMulticastInterface'; arg: Arg }
  | { op: 'addMembership' | 'dropMembership'; group: Arg; iface: Arg | null }
  | { op: 'addSourceSpecificMembership' | 'dropSourceSpecificMembership'; source: Arg; group: Arg; iface: Arg | null }
  | { op: 'getRecvBufferSize' | 'getMtu' | 'connect' | 'disconnect' | 'ref' | 'unref' | 'close' };

interface ApiCase {
  api: 'socket';
  bag: BagSpec;
  connect: boolean;
  calls: ApiCall[];
}

/** Mostly well-formed (a bag of one odd value is refused whatever the rest holds). */
const bagValueArb = (field: BagField): fc.Arbitrary<unknown> => {
  const odd = fc.constantFrom<unknown>(null, 0, 1, 'yes', NaN, {});
  switch (field) {
    case 'gso':
    case 'reuseAddr':
    case 'reusePort':
    case 'ipv6Only':
      return fc.oneof({ weight: 30, arbitrary: fc.boolean() }, { weight: 1, arbitrary: odd });
    case 'sendBufferSize':
    case 'recvBufferSize':
      return fc.oneof({ weight: 30, arbitrary: fc.integer({ min: 1, max: 1 << 20 }) },
        { weight: 1, arbitrary: fc.constantFrom<unknown>(0, -1, INT_MAX, INT_MAX + 1, 1.5, '4096', null, NaN) });
  }
};
const bagArb: fc.Arbitrary<BagSpec> = fc.record({
  form: fc.oneof({ weight: 1, arbitrary: fc.constant('string' as const) }, { weight: 6, arbitrary: fc.constant('object' as const) }),
  type: fc.oneof({ weight: 20, arbitrary: fc.constantFrom('udp4', 'udp6') },
    { weight: 1, arbitrary: fc.constantFrom<unknown>('udp5', 'UDP4', undefined, 4, null) }),
  fields: fc.record({
    gso: bagValueArb('gso'), sendBufferSize: bagValueArb('sendBufferSize'), recvBufferSize: bagValueArb('recvBufferSize'),
    reuseAddr: bagValueArb('reuseAddr'), reusePort: bagValueArb('reusePort'), ipv6Only: bagValueArb('ipv6Only'),
  }, { requiredKeys: [] }),
  extra: fc.oneof({ weight: 12, arbitrary: fc.constant('none' as const) },
    { weight: 1, arbitrary: fc.constantFrom<BagExtra>('unknownKey', 'longKey', 'protoKey', 'symbolKey', 'hiddenKey', 'inherited') }),
  unknownKey: fc.constantFrom('lookup', 'reuseaddr', 'recvBufferSize ', 'Type', '', 'constructor', 'toString', 'sendbuffersize'),
  throwing: fc.oneof({ weight: 15, arbitrary: fc.constant(null) },
    { weight: 1, arbitrary: fc.constantFrom<BagField | 'type'>('type', ...BAG_FIELDS) }),
});

const apiCallArb: fc.Arbitrary<ApiCall> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('setTTL' as const), arg: intArgArb(1, 255) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constantFrom('setTOS' as const, 'setMulticastTTL' as const), arg: intArgArb(0, 255) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constantFrom('setBroadcast' as const, 'setMulticastLoopback' as const,
    'setDontFragment' as const), arg: boolArgArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('setRecvBufferSize' as const), arg: bufferSizeArgArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('setMtuDiscovery' as const),
    arg: argArb(fc.constantFrom(...MTU_MODES), ['DO', '', 'toString', '__proto__', 'hasOwnProperty', 2]) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('setMulticastInterface' as const),
    arg: ifaceArgArb.map((a) => a ?? { v: undefined }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom('addMembership' as const, 'dropMembership' as const),
    group: addressArgArb, iface: ifaceArgArb }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constantFrom('addSourceSpecificMembership' as const,
    'dropSourceSpecificMembership' as const), source: addressArgArb, group: addressArgArb, iface: ifaceArgArb }) },
  { weight: 3, arbitrary: fc.constantFrom<ApiCall>({ op: 'getRecvBufferSize' }, { op: 'getMtu' }, { op: 'connect' },
    { op: 'disconnect' }, { op: 'ref' }, { op: 'unref' }) },
  { weight: 1, arbitrary: fc.constant<ApiCall>({ op: 'close' }) },
);

const apiCaseArb: fc.Arbitrary<ApiCase> = fc.record({
  api: fc.constant('socket' as const),
  bag: bagArb,
  connect: fc.oneof({ weight: 3, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
  calls: fc.array(apiCallArb, { minLength: 1, maxLength: 6 }),
});

type OptionsCase = NativeCase | ApiCase;

// ---------------------------------------------------------------------------------------------
// Shared checks

/** Turns argument specs into values; the hostile ones record that they ran. */
class Hooks {
  acted = false;
  constructor(private readonly closeSocket: () => void) {}

  make(arg: Arg): unknown {
    if ('v' in arg) return arg.v;
    const act = (closeValue: unknown): unknown => {
      this.acted = true;
      if (arg.hostile === 'close') {
        this.closeSocket();
        return closeValue;
      }
      throw ownError(new GetterError('thrown by a fuzz hook'));
    };
    if (arg.hostile === 'proxy') {
      const trap = (): never => act(undefined) as never;
      return new Proxy({}, { get: trap, has: trap, ownKeys: trap, getPrototypeOf: trap, getOwnPropertyDescriptor: trap });
    }
    return { valueOf: () => act(4), toString: () => act('127.0.0.1'), [Symbol.toPrimitive]: () => act(4) };
  }
}

type Attempt = { threw: false; result: unknown } | { threw: true; thrown: unknown };

function attempt(call: () => unknown): Attempt {
  try {
    return { threw: false, result: call() };
  } catch (thrown) {
    return { threw: true, thrown };
  }
}

/**
 * The call threw: fine when it is the error the model names (any of `allowed`), or our hook's
 * own error after a hook ran. Returns the outcome's name.
 */
function checkThrown(what: string, a: Attempt & { threw: true }, expected: ErrorKind | null, hooks: Hooks,
  allowed: readonly string[] = []): string {
  if (isOwnError(a.thrown)) {
    if (!hooks.acted) fail(`${what} threw our hook's error, but no hook ran`);
    return 'own error';
  }
  const name = errorName(a.thrown);
  if (name === 'WskError' && allowed.includes('WskError')) return name;
  if (name !== 'TypeError' && name !== 'RangeError') fail(`${what} threw ${errorText(a.thrown)} (only TypeError/RangeError)`);
  if (expected === null && !allowed.includes(name)) fail(`${what} threw ${errorText(a.thrown)} for arguments the checks take`);
  if (expected !== null && expected !== name && !allowed.includes(name)) {
    fail(`${what} threw ${errorText(a.thrown)}; the checks name a ${expected}`);
  }
  return name;
}

function uintError(value: unknown, max: number): ErrorKind | null {
  if (typeof value !== 'number') return 'TypeError';
  if (!(value >= 0) || value > max || Math.floor(value) !== value) return 'RangeError';
  return null;
}

/** native/socket_methods.cc TextArgument: a string of at most `maxBytes` UTF-8 bytes, without NUL. */
function textError(value: unknown, maxBytes: number): ErrorKind | null {
  if (typeof value !== 'string') return 'TypeError';
  if (Buffer.byteLength(value, 'utf8') > maxBytes) return 'RangeError';
  if (value.includes('\0')) return 'TypeError';
  return null;
}

const absent = (value: unknown): boolean => value === undefined || value === null;

/** A group or source literal for the native side: text checks, then inet_pton of the socket's family. */
function nativeAddressError(value: unknown, family: 4 | 6): ErrorKind | null {
  const text = textError(value, 64);
  if (text !== null) return text;
  return addressFamily.get(value as string) === family ? null : 'TypeError';
}

/** native InterfaceArgument; 'lookup': returns an errno (the zone names no interface). */
function nativeInterfaceOutcome(value: unknown, family: 4 | 6): IfaceNative {
  if (absent(value)) return 'ok';
  const text = textError(value, 64 + 1 + 16);
  if (text !== null) return text;
  return interfaceEntry.get(value as string)?.native[family] ?? fail(`no model for interface ${JSON.stringify(value)}`);
}

/** The buffer-size bounds Linux keeps: doubled, at least its minimum, capped (net.core.*mem_max) unless forced. */
function readLimit(file: string): number {
  try {
    const value = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isSafeInteger(value) && value > 0 ? value : 1;
  } catch {
    return 1;
  }
}

interface Limits { rmemMax: number; wmemMax: number }

function bufferProblem(which: 'receive' | 'send', set: number, got: number, limits: Limits): string | null {
  const cap = which === 'receive' ? limits.rmemMax : limits.wmemMax;
  const lower = Math.min(set, cap, BUFFER_HALF_MAX);
  const upper = Math.max(2 * Math.min(set, BUFFER_HALF_MAX), 8192);
  if (!Number.isInteger(got) || got < lower || got > upper) {
    return `the ${which} buffer reads ${got} after setting ${set} (expected ${lower}..${upper})`;
  }
  return null;
}

/** Why option `option` set to `value` does not read back as `got` (option 9 reads as 8, 10 as 11). */
function readBackProblem(option: number, value: number, got: number, limits: Limits): string | null {
  switch (option) {
    case 1: case 2: case 3: case 7: case 21: case 23:
      return (got !== 0) === (value !== 0) ? null : `option ${option} reads ${got} after setting ${value}`;
    case 4: case 5: case 6: case 20:
      return got === value ? null : `option ${option} reads ${got} after setting ${value}`;
    case 8: case 9:
      return bufferProblem('receive', value, got, limits);
    case 10: case 11:
      return bufferProblem('send', value, got, limits);
  }
  return null;
}

function isErrno(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

/** A call's outcome for the report: ok, the error's name, or 'errno' / 'WskError' (many codes). */
function outcomeClass(outcome: string): string {
  if (outcome.startsWith('WskError')) return 'WskError';
  return ['ok', 'value', 'TypeError', 'RangeError', 'own error', 'skipped'].includes(outcome) ? outcome : 'errno';
}

let markerCount = 0;

/** A datagram no other case sends. */
function marker(tag: number): Uint8Array {
  markerCount = (markerCount + 1) >>> 0;
  const bytes = new Uint8Array(12);
  bytes.set([0x4f, 0x50, 0x54, tag]);
  new DataView(bytes.buffer).setUint32(4, markerCount);
  new DataView(bytes.buffer).setUint32(8, process.pid);
  return bytes;
}

interface Env {
  rx: { 4: Receiver; 6: Receiver | null };
  ipv6: boolean;
  devnull: number;
  limits: Limits;
  bump: (key: string, by?: number) => void;
}

/** Checks each receiver got exactly `want` (by receiver), byte for byte. */
function checkArrivals(env: Env, want: Map<Receiver, Uint8Array[]>): void {
  for (const receiver of [env.rx[4], env.rx[6]]) {
    if (receiver === null) continue;
    const expected = want.get(receiver) ?? [];
    if (expected.length > 0 && !receiver.waitSync(expected.length, 0)) receiver.waitSync(expected.length, 500);
    const got = receiver.take();
    const problem = compareDatagrams(got, expected, `receiver ${receiver.address}:${receiver.port}`);
    if (problem !== null) fail(problem);
    env.bump('datagrams verified', got.length);
  }
}

// ---------------------------------------------------------------------------------------------
// Native runs

interface Model {
  open: boolean;
  borrowed: boolean;
  connected: boolean;
  family: 4 | 6;
  /** The owner whose descriptor this socket borrows. */
  owner: NativeUdpSocket | null;
}

/** The options a borrower must never change on its owner's descriptor. */
const SNAPSHOT_OPTIONS = [1, 3, 4, 5, 6, 7, 8, 11, 20, 21, 23];

function snapshot(socket: NativeUdpSocket): string {
  return JSON.stringify(SNAPSHOT_OPTIONS.map((o) => socket.getOption(o as never)));
}

function closeModel(model: Model): void {
  Object.assign(model, { open: false, borrowed: false, connected: false, owner: null });
}

function runNative(c: NativeCase, env: Env): string {
  const sut = new (binding().UdpSocket)();
  const owners: Partial<Record<4 | 6, NativeUdpSocket>> = {};
  const ownerOf = (family: 4 | 6): NativeUdpSocket => (owners[family] ??= openNative(family));
  const model: Model = { open: false, borrowed: false, connected: false, family: 4, owner: null };
  const rxOf = (family: 4 | 6): Receiver => env.rx[family] ?? fail('no IPv6 receiver');
  const hooks = new Hooks(() => {
    sut.close();
    closeModel(model);
  });
  const snapshots = new Map<NativeUdpSocket, string>();

  const setUp = (): void => {
    const family = c.family;
    if (c.state === 'unopened') return;
    if (c.state === 'borrowed') {
      const owner = ownerOf(family);
      snapshots.set(owner, snapshot(owner));
      const adopted = sut.adopt(owner.fd, family);
      if (adopted !== 0) fail(`adopt of an open IPv${family} socket's descriptor returned ${errnoName(adopted)}`);
      Object.assign(model, { open: true, borrowed: true, family, owner });
      return;
    }
    const opened = sut.open(family, c.state !== 'dual');
    if (opened !== 0) throw new Error(`open failed: ${errnoName(opened)}`);
    Object.assign(model, { open: true, family });
    if (c.state === 'closed') {
      sut.close();
      model.open = false;
    }
    if (c.state === 'connected') {
      const rx = rxOf(family);
      const connected = sut.connect(rx.address, rx.port, 0);
      if (connected !== 0) throw new Error(`connect failed: ${errnoName(connected)}`);
      model.connected = true;
    }
  };

  let outcome = '';
  try {
    setUp();
    for (const call of c.calls) {
      hooks.acted = false;
      outcome = nativeCall(call, sut, model, hooks, env, ownerOf, snapshots);
      env.bump(`native calls ${outcomeClass(outcome)}`);
      const fd = sut.fd;
      if ((fd >= 0) !== model.open) fail(`after ${call.op}, fd is ${fd} on a socket that is ${model.open ? 'open' : 'not open'}`);
      if (model.borrowed && model.owner !== null && fd !== model.owner.fd) fail(`a borrowed socket reports fd ${fd}, its owner's is ${model.owner.fd}`);
    }

    // The socket still sends, or says it is closed; a borrowed descriptor's options are its owner's, unchanged.
    const want = new Map<Receiver, Uint8Array[]>();
    const rx = rxOf(model.family);
    const datagram = marker(1);
    const sent = sut.send(plainBatch([datagram], model.family, rx.address, rx.port), 0, 1);
    if (model.open) {
      if (sent.errno !== 0 || sent.datagrams !== 1) fail(`after the case, a send on the open socket returned ${JSON.stringify(sent)}`);
      want.set(rx, [datagram]);
    } else if (sent.errno !== EBADF || sent.datagrams !== 0) {
      fail(`after the case, a send on a socket that is not open returned ${JSON.stringify(sent)}, not EBADF`);
    }
    for (const [owner, before] of snapshots) {
      const after = snapshot(owner);
      if (after !== before) fail(`a borrower changed its owner's options: ${before} became ${after}`);
    }
    checkArrivals(env, want);
    // Closing a borrower forgets the descriptor: the owner still sends on it.
    sut.close();
    for (const family of [4, 6] as const) {
      const owner = owners[family];
      if (owner === undefined) continue;
      const ownerDatagram = marker(2);
      const ownerSent = owner.send(plainBatch([ownerDatagram], family, rxOf(family).address, rxOf(family).port), 0, 1);
      if (ownerSent.errno !== 0 || ownerSent.datagrams !== 1) {
        fail(`after its borrower closed, the owner's send returned ${JSON.stringify(ownerSent)}`);
      }
      checkArrivals(env, new Map([[rxOf(family), [ownerDatagram]]]));
    }
    if (model.borrowed) env.bump('borrowed sends verified');
  } finally {
    sut.close();
    for (const owner of Object.values(owners)) owner.close();
  }
  return `native ${model.borrowed ? 'borrowed' : model.open ? (model.connected ? 'connected' : 'open') : 'closed'}`;
}

/** What a call that passed its argument checks must return on this socket: EBADF, EOPNOTSUPP, or null (the OS decides). */
function stateErrno(model: Model, refusesBorrowed: boolean): number | null {
  if (!model.open) return EBADF;
  if (refusesBorrowed && model.borrowed) return EOPNOTSUPP;
  return null;
}

function nativeCall(call: NativeCall, sut: NativeUdpSocket, model: Model, hooks: Hooks, env: Env,
  ownerOf: (family: 4 | 6) => NativeUdpSocket, snapshots: Map<NativeUdpSocket, string>): string {
  const what = `native ${call.op}`;
  const returned = (a: Attempt, expected: ErrorKind | null): { result: unknown } | string => {
    if (a.threw) return checkThrown(what, a, expected, hooks);
    if (expected !== null && !hooks.acted) fail(`${what} returned ${show(a.result)} for arguments the checks refuse (${expected})`);
    return { result: a.result };
  };
  /** An errno result: exactly `want` when the model knows it, else any errno (0 included). */
  const errnoOutcome = (result: unknown, want: number | null): string => {
    if (!isErrno(result)) fail(`${what} returned ${show(result)}, not an errno`);
    if (want !== null && result !== want && !hooks.acted) fail(`${what} returned ${errnoName(result)}, expected ${errnoName(want)}`);
    return result === 0 ? 'ok' : errnoName(result);
  };

  switch (call.op) {
    case 'setOption': {
      const option = call.arity >= 1 ? hooks.make(call.option) : undefined;
      const value = call.arity >= 2 ? hooks.make(call.value) : undefined;
      const range = typeof option === 'number' ? OPTION_RANGES.get(option) : undefined;
      let expected = uintError(option, 1000) ?? (range === undefined ? 'RangeError' : null);
      if (expected === null && range !== undefined) {
        if (typeof value !== 'number') expected = 'TypeError';
        else if (!(value >= range[0]) || value > range[1] || Math.floor(value) !== value) expected = 'RangeError';
        else if (option === MTU_OPTION) expected = 'RangeError';
      }
      const args = [option, value].slice(0, call.arity);
      const r = returned(attempt(() => (sut.setOption as (...x: unknown[]) => unknown)(...args)), expected);
      if (typeof r === 'string') return r;
      const o = option as number;
      const v = value as number;
      const known = stateErrno(model, true);
      // Without CAP_NET_ADMIN the forced buffer sizes are refused.
      if (known === null && r.result === EPERM && (o === 9 || o === 10)) return 'EPERM';
      const result = errnoOutcome(r.result, known ?? 0);
      if (r.result === 0 && model.open && !hooks.acted) {
        const readAs = o === 9 ? 8 : o === 10 ? 11 : o;
        const got = sut.getOption(readAs as never);
        if (typeof got === 'number') fail(`getOption(${readAs}) after setOption(${o}, ${v}) returned ${errnoName(got)}`);
        const problem = readBackProblem(o, v, got.value, env.limits);
        if (problem !== null) fail(`on an IPv${model.family} socket: ${problem}`);
        env.bump('read-backs verified');
      }
      return result;
    }
    case 'getOption': {
      const option = hooks.make(call.option);
      const expected = uintError(option, 1000) ?? (OPTION_RANGES.has(option as number) ? null : 'RangeError');
      const r = returned(attempt(() => (sut.getOption as (x: unknown) => unknown)(option)), expected);
      if (typeof r === 'string') return r;
      if (!model.open) return errnoOutcome(r.result, EBADF);
      // The path MTU is known only for a connected remote (a borrowed descriptor's owner is not
      // connected), and only while the kernel keeps its route: setting the TOS drops it until the
      // next send, and IP_MTU says ENOTCONN meanwhile.
      if (option === MTU_OPTION && (!model.connected || r.result === ENOTCONN)) return errnoOutcome(r.result, ENOTCONN);
      const got = r.result as { value?: unknown };
      if (typeof got !== 'object' || got === null || !Number.isInteger(got.value)) {
        fail(`getOption(${show(option)}) on an open socket returned ${JSON.stringify(r.result)}`);
      }
      if (option === MTU_OPTION && !((got.value as number) > 0)) fail(`the path MTU of a connected socket reads ${show(got.value)}`);
      return 'value';
    }
    case 'membership': {
      const join = hooks.make(call.join);
      const group = hooks.make(call.group);
      const source = call.source === null ? null : hooks.make(call.source);
      const iface = call.iface === null ? null : hooks.make(call.iface);
      let expected: ErrorKind | null = typeof join === 'boolean' ? null : 'TypeError';
      expected ??= nativeAddressError(group, model.family);
      if (expected === null && !absent(source)) expected = nativeAddressError(source, model.family);
      const via = expected === null ? nativeInterfaceOutcome(iface, model.family) : 'ok';
      if (via === 'TypeError' || via === 'RangeError') expected = via;
      const r = returned(attempt(() => (sut.membership as (...x: unknown[]) => unknown)(join, group, source, iface)), expected);
      if (typeof r === 'string') return r;
      if (via === 'lookup') {
        if (!isErrno(r.result) || r.result === 0) fail(`membership on an unknown interface zone returned ${show(r.result)}`);
        return errnoName(r.result);
      }
      return errnoOutcome(r.result, stateErrno(model, true));
    }
    case 'setMulticastInterface': {
      const iface = hooks.make(call.iface);
      const via = typeof iface === 'string' ? nativeInterfaceOutcome(iface, model.family) : 'TypeError';
      const expected = via === 'TypeError' || via === 'RangeError' ? via : null;
      const r = returned(attempt(() => (sut.setMulticastInterface as (x: unknown) => unknown)(iface)), expected);
      if (typeof r === 'string') return r;
      if (via === 'lookup') {
        if (!isErrno(r.result) || r.result === 0) fail(`setMulticastInterface on an unknown zone returned ${show(r.result)}`);
        return errnoName(r.result);
      }
      return errnoOutcome(r.result, stateErrno(model, true));
    }
    case 'disconnect': {
      const r = returned(attempt(() => sut.disconnect()), null);
      if (typeof r === 'string') return r;
      const outcome = errnoOutcome(r.result, stateErrno(model, true) ?? 0);
      if (r.result === 0) model.connected = false;
      return outcome;
    }
    case 'connect': {
      const rx = env.rx[model.family];
      if (rx === null) return 'skipped';
      const r = returned(attempt(() => sut.connect(rx.address, rx.port, 0)), null);
      if (typeof r === 'string') return r;
      const outcome = errnoOutcome(r.result, stateErrno(model, true) ?? 0);
      if (r.result === 0) model.connected = true;
      return outcome;
    }
    case 'setRef': {
      const ref = hooks.make(call.ref);
      const r = returned(attempt(() => (sut.setRef as (x: unknown) => unknown)(ref)), typeof ref === 'boolean' ? null : 'TypeError');
      if (typeof r === 'string') return r;
      if (r.result !== undefined) fail(`setRef returned ${show(r.result)}`);
      return 'ok';
    }
    case 'close': {
      const r = returned(attempt(() => sut.close()), null);
      if (typeof r === 'string') return r;
      const outcome = errnoOutcome(r.result, 0);
      closeModel(model);
      return outcome;
    }
    case 'adopt': {
      const familyArg = hooks.make(call.family);
      // The descriptor: of a socket made for the case, of this socket, of no socket, or a number.
      let fd: unknown;
      let fdOwner: NativeUdpSocket | null = null;
      let fdFamily: 4 | 6 | 0 = 0;
      /** The errno adopt must return for this descriptor; null: a non-zero one the model cannot name. */
      let want: number | null = 0;
      if ('kind' in call.fd) {
        switch (call.fd.kind) {
          case 'owner':
          case 'ownerOther': {
            const family = call.fd.kind === 'owner' ? model.family : model.family === 4 && env.ipv6 ? 6 : 4;
            fdOwner = ownerOf(family);
            fdFamily = family;
            fd = fdOwner.fd;
            want = familyArg === family ? 0 : EAFNOSUPPORT;
            break;
          }
          case 'self':
            fd = sut.fd;
            want = EBADF;
            break;
          case 'stale': {
            const gone = openNative(4);
            fd = gone.fd;
            gone.close();
            want = EBADF;
            break;
          }
          case 'devnull':
            fd = env.devnull;
            want = null;
            break;
          case 'stdout':
            fd = 1;
            want = null;
            break;
        }
      } else {
        fd = hooks.make(call.fd);
        want = EBADF;
      }
      let expected = uintError(fd, INT_MAX) ?? uintError(familyArg, 6);
      if (expected === null && familyArg !== 4 && familyArg !== 6) expected = 'RangeError';
      if (expected === null && model.open) expected = 'TypeError';
      if (fdOwner !== null && !snapshots.has(fdOwner)) snapshots.set(fdOwner, snapshot(fdOwner));
      const r = returned(attempt(() => (sut.adopt as (...x: unknown[]) => unknown)(fd, familyArg)), expected);
      if (typeof r === 'string') return r;
      if (!isErrno(r.result)) fail(`adopt returned ${show(r.result)}`);
      if (want === null ? r.result === 0 : r.result !== want) {
        fail(`adopt of ${'kind' in call.fd ? call.fd.kind : show(fd)} as IPv${show(familyArg)} returned ` +
          `${errnoName(r.result)}, expected ${want === null ? 'an errno' : errnoName(want)}`);
      }
      if (r.result === 0) {
        Object.assign(model, { open: true, borrowed: true, connected: false, family: fdFamily || model.family, owner: fdOwner });
      }
      return r.result === 0 ? 'ok' : errnoName(r.result);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Socket API runs

const WSK_SYSCALL: Record<string, string> = {
  setTTL: 'setTTL', setTOS: 'setTOS', setMulticastTTL: 'setMulticastTTL', setBroadcast: 'setBroadcast',
  setMulticastLoopback: 'setMulticastLoopback', setMulticastInterface: 'setMulticastInterface',
  addMembership: 'addMembership', dropMembership: 'dropMembership',
  addSourceSpecificMembership: 'addSourceSpecificMembership', dropSourceSpecificMembership: 'dropSourceSpecificMembership',
  setRecvBufferSize: 'setRecvBufferSize', getRecvBufferSize: 'getRecvBufferSize', setMtuDiscovery: 'setsockopt',
  setDontFragment: 'setsockopt', getMtu: 'getsockopt', disconnect: 'disconnect', connect: 'connect',
};

/** A WskError as documented: its code names its errno, its syscall the method. */
function checkWskError(what: string, error: unknown, syscall: string, code: string | null): string {
  if (!(error instanceof WskError)) fail(`${what} threw ${errorText(error)}, not a WskError`);
  if (!Number.isInteger(error.errno) || error.errno <= 0 || error.code !== errnoName(error.errno)) {
    fail(`${what}: WskError with errno ${error.errno} and code ${error.code}`);
  }
  if (error.syscall !== syscall) fail(`${what}: WskError names syscall ${error.syscall}, expected ${syscall}`);
  if (code !== null && error.code !== code) fail(`${what}: WskError ${error.code}, expected ${code}`);
  return `WskError ${error.code}`;
}

/** The createSocket option bag of a case, with the read count of each field. */
function makeBag(spec: BagSpec, reads: Map<string, number>): unknown {
  if (spec.form === 'string') return spec.type;
  const values: Record<string, unknown> = { type: spec.type, ...spec.fields };
  const bag: Record<string, unknown> = spec.extra === 'inherited'
    ? Object.create({ [spec.unknownKey]: () => 'inherited' }) as Record<string, unknown> : {};
  for (const [key, value] of Object.entries(values)) {
    reads.set(key, 0);
    Object.defineProperty(bag, key, {
      get() {
        reads.set(key, (reads.get(key) ?? 0) + 1);
        if (spec.throwing === key) throw ownError(new GetterError(`thrown by the ${key} getter`));
        return value;
      },
      enumerable: true,
      configurable: true,
    });
  }
  if (spec.throwing !== null && !(spec.throwing in values)) {
    Object.defineProperty(bag, spec.throwing, {
      get() {
        reads.set('thrower', (reads.get('thrower') ?? 0) + 1);
        throw ownError(new GetterError('thrown by a getter of an unset option'));
      },
      enumerable: true,
      configurable: true,
    });
  }
  switch (spec.extra) {
    case 'unknownKey': bag[spec.unknownKey] = true; break;
    case 'longKey': bag['k'.repeat(1000)] = 1; break;
    case 'protoKey': Object.defineProperty(bag, '__proto__', { value: {}, enumerable: true }); break;
    case 'symbolKey': bag[Symbol('extra') as unknown as string] = 1; break;
    case 'hiddenKey': Object.defineProperty(bag, 'lookup', { value: () => 0, enumerable: false }); break;
    default: break;
  }
  return bag;
}

/** lib/socket-options.ts readSocketOptions and the UdpSocket constructor's checks, in their order; null: valid. */
function bagError(spec: BagSpec): ErrorKind | 'own' | null {
  if (spec.form === 'string') return spec.type === 'udp4' || spec.type === 'udp6' ? null : 'TypeError';
  if (spec.extra === 'unknownKey' || spec.extra === 'longKey' || spec.extra === 'protoKey') return 'TypeError';
  if (spec.throwing !== null) return 'own';
  if (spec.type !== 'udp4' && spec.type !== 'udp6') return 'TypeError';
  const f = spec.fields;
  const bool = (v: unknown): boolean => v === undefined || typeof v === 'boolean';
  const size = (v: unknown): boolean => v === undefined || (Number.isInteger(v) && (v as number) >= 1 && (v as number) <= INT_MAX);
  if (!bool(f.gso)) return 'TypeError';
  if (!size(f.sendBufferSize) || !size(f.recvBufferSize)) return 'RangeError';
  if (!bool(f.reuseAddr) || !bool(f.reusePort)) return 'TypeError';
  if (f.ipv6Only !== undefined && (spec.type !== 'udp6' || typeof f.ipv6Only !== 'boolean')) return 'TypeError';
  return null;
}

/** lib/socket-options.ts groupLiteral. */
const libAddressValid = (value: unknown, family: 4 | 6): boolean =>
  typeof value === 'string' && addressFamily.get(value) === family;

/** lib/socket-options.ts interfaceText, then the native side; 'absent' for undefined. */
function libInterface(value: unknown, family: 4 | 6): IfaceNative | 'absent' {
  if (value === undefined) return 'absent';
  if (typeof value !== 'string') return 'TypeError';
  const entry = interfaceEntry.get(value) ?? fail(`no model for interface ${JSON.stringify(value)}`);
  return entry.lib[family] ? entry.native[family] : 'TypeError';
}

interface ApiModel { closed: boolean; connected: boolean; family: 4 | 6 }

async function runApi(c: ApiCase, env: Env): Promise<string> {
  takeUncaught();
  let socket: UdpSocket | null = null;
  /** A borrower of the socket's descriptor, to read back what the API sets (it has no getters for most). */
  let peek: NativeUdpSocket | null = null;
  const releasePeek = (): void => {
    peek?.close();
    peek = null;
  };
  const closeAll = (): void => {
    // The borrower goes first: its owner's descriptor must outlive it.
    releasePeek();
    socket?.close();
  };
  return withCleanup(async () => {
    const reads = new Map<string, number>();
    const bag = makeBag(c.bag, reads);
    const expected = bagError(c.bag);
    const made = attempt(() => createSocket(bag as never));
    for (const [key, count] of reads) if (count > 1) fail(`createSocket read option ${key} ${count} times`);
    if (made.threw) {
      if (expected === 'own') {
        if (!isOwnError(made.thrown)) fail(`createSocket threw ${errorText(made.thrown)}, not our getter's error`);
        return 'createSocket getter error';
      }
      const hooks = new Hooks(() => undefined);
      return `createSocket ${checkThrown('createSocket', made, expected, hooks)}`;
    }
    if (expected !== null) fail(`createSocket accepted a bag its checks refuse (${expected}): ${fc.stringify(c.bag)}`);
    socket = made.result as UdpSocket;
    const s = socket;
    const model: ApiModel = { closed: false, connected: false, family: s.family };
    if (c.bag.form === 'object' && typeof c.bag.fields.recvBufferSize === 'number') {
      const problem = bufferProblem('receive', c.bag.fields.recvBufferSize, s.getRecvBufferSize(), env.limits);
      if (problem !== null) fail(`createSocket({ recvBufferSize }): ${problem}`);
      env.bump('read-backs verified');
    }
    if (c.bag.form === 'object' && typeof c.bag.fields.sendBufferSize === 'number') {
      const problem = bufferProblem('send', c.bag.fields.sendBufferSize, s.getSendBufferSize(), env.limits);
      if (problem !== null) fail(`createSocket({ sendBufferSize }): ${problem}`);
      env.bump('read-backs verified');
    }
    const rx = env.rx[model.family] ?? fail('no IPv6 receiver');
    if (c.connect) {
      s.connect(rx.port, rx.address);
      model.connected = true;
    }
    const borrower = new (binding().UdpSocket)();
    const adopted = borrower.adopt(s.fd, model.family);
    if (adopted !== 0) fail(`adopt of a UdpSocket's descriptor returned ${errnoName(adopted)}`);
    peek = borrower;
    const hooks = new Hooks(() => {
      closeAll();
      model.closed = true;
    });
    let outcome = '';
    for (const call of c.calls) {
      hooks.acted = false;
      outcome = apiCall(call, s, model, hooks, () => peek, closeAll, env);
      env.bump(`socket calls ${outcomeClass(outcome)}`);
      if (s.closed !== model.closed) fail(`after ${call.op}, closed reads ${String(s.closed)}`);
      if ((s.fd >= 0) === model.closed) fail(`after ${call.op}, fd is ${s.fd} on a socket that is ${model.closed ? 'closed' : 'open'}`);
    }
    // The borrower lets go first (without closing the descriptor); then the socket still sends, or says it is closed.
    releasePeek();
    const datagram = marker(3);
    const sent = attempt(() => (model.connected ? s.trySendBatch([datagram]) : s.trySendBatch([datagram], rx.port, rx.address)));
    if (model.closed) {
      if (!sent.threw) fail(`a send on a closed socket returned ${JSON.stringify(sent.result)}`);
      if (errorName(sent.thrown) !== 'WskError' || (sent.thrown as WskError).code !== 'EBADF') {
        fail(`a send on a closed socket threw ${errorText(sent.thrown)}, not WskError EBADF`);
      }
      checkArrivals(env, new Map());
      return 'socket closed';
    }
    if (sent.threw) fail(`after the case, a send threw ${errorText(sent.thrown)}`);
    const result = sent.result as { datagrams: number };
    if (result.datagrams !== 1) fail(`after the case, a send returned ${JSON.stringify(sent.result)}`);
    checkArrivals(env, new Map([[rx, [datagram]]]));
    return model.connected ? 'socket connected' : 'socket open';
  }, () => {
    peek?.close();
    socket?.close();
  });
}

function apiCall(call: ApiCall, s: UdpSocket, model: ApiModel, hooks: Hooks, peek: () => NativeUdpSocket | null,
  closeAll: () => void, env: Env): string {
  const what = `socket.${call.op}`;
  const syscall = WSK_SYSCALL[call.op] ?? call.op;
  /**
   * Runs the call: `expected` the error the argument checks throw (null: none); `ok` checks a
   * return. Past the checks, a closed socket throws WskError EBADF; `osMayRefuse`: an open one
   * may throw a WskError the kernel chose.
   */
  const run = (invoke: () => unknown, expected: ErrorKind | null, ok: (result: unknown) => void,
    osMayRefuse = false, thrownAllowed: readonly string[] = []): string => {
    const a = attempt(invoke);
    if (a.threw) {
      if (errorName(a.thrown) === 'WskError' && !isOwnError(a.thrown)) {
        if (expected !== null && !hooks.acted) fail(`${what} threw ${errorText(a.thrown)}; the checks name a ${expected}`);
        if (!model.closed && !osMayRefuse && !hooks.acted) fail(`${what} on an open socket threw ${errorText(a.thrown)}`);
        return checkWskError(what, a.thrown, syscall, model.closed && !osMayRefuse ? 'EBADF' : null);
      }
      return checkThrown(what, a, expected, hooks, thrownAllowed);
    }
    if (expected !== null && !hooks.acted) fail(`${what} returned for arguments its checks refuse (${expected})`);
    if (model.closed && !hooks.acted) fail(`${what} returned on a closed socket`);
    if (!hooks.acted) ok(a.result);
    return 'ok';
  };
  /** Reads option `option` through the borrower and checks it against `value`. */
  const readBack = (option: number, value: number): void => {
    const p = peek();
    if (p === null) return;
    const got = p.getOption(option as never);
    if (typeof got === 'number') fail(`${what}: reading option ${option} back returned ${errnoName(got)}`);
    const problem = readBackProblem(option, value, got.value, env.limits);
    if (problem !== null) fail(`${what}(${value}) on udp${model.family}: ${problem}`);
    env.bump('read-backs verified');
  };
  const intError = (v: unknown, min: number, max: number): ErrorKind | null =>
    typeof v !== 'number' || !Number.isInteger(v) ? 'TypeError' : v < min || v > max ? 'RangeError' : null;

  switch (call.op) {
    case 'setTTL':
    case 'setTOS':
    case 'setMulticastTTL': {
      const v = hooks.make(call.arg);
      const [option, min] = call.op === 'setTTL' ? [4, 1] : call.op === 'setTOS' ? [5, 0] : [6, 0];
      const set = (x: number): number => (call.op === 'setTTL' ? s.setTTL(x) : call.op === 'setTOS' ? s.setTOS(x) : s.setMulticastTTL(x));
      return run(() => set(v as number), intError(v, min, 255), (result) => {
        if (result !== v) fail(`${what}(${show(v)}) returned ${show(result)}`);
        readBack(option, v as number);
      });
    }
    case 'setBroadcast':
    case 'setMulticastLoopback': {
      const v = hooks.make(call.arg);
      const set = (x: boolean): unknown => (call.op === 'setBroadcast' ? s.setBroadcast(x) : s.setMulticastLoopback(x));
      return run(() => set(v as boolean), typeof v === 'boolean' ? null : 'TypeError', (result) => {
        if (result !== (call.op === 'setBroadcast' ? undefined : v)) fail(`${what}(${show(v)}) returned ${show(result)}`);
        readBack(call.op === 'setBroadcast' ? 3 : 7, v ? 1 : 0);
      });
    }
    case 'setDontFragment': {
      const v = hooks.make(call.arg);
      return run(() => s.setDontFragment(v as boolean), typeof v === 'boolean' ? null : 'TypeError', () => {
        if (s.getDontFragment() !== v) fail(`getDontFragment() after setDontFragment(${show(v)}) reads ${String(s.getDontFragment())}`);
        env.bump('read-backs verified');
      });
    }
    case 'setRecvBufferSize': {
      const v = hooks.make(call.arg);
      const valid = Number.isInteger(v) && (v as number) >= 1 && (v as number) <= INT_MAX;
      return run(() => s.setRecvBufferSize(v as number), valid ? null : 'RangeError', () => {
        const problem = bufferProblem('receive', v as number, s.getRecvBufferSize(), env.limits);
        if (problem !== null) fail(`setRecvBufferSize(${show(v)}): ${problem}`);
        env.bump('read-backs verified');
      });
    }
    case 'getRecvBufferSize':
      return run(() => s.getRecvBufferSize(), null, (result) => {
        if (!Number.isInteger(result) || (result as number) <= 0) fail(`getRecvBufferSize() returned ${show(result)}`);
      });
    case 'setMtuDiscovery': {
      const v = hooks.make(call.arg);
      const valid = typeof v === 'string' && MTU_MODES.includes(v);
      return run(() => s.setMtuDiscovery(v as never), valid ? null : 'TypeError', () => {
        if (s.getMtuDiscovery() !== v) fail(`getMtuDiscovery() after setMtuDiscovery(${show(v)}) reads ${s.getMtuDiscovery()}`);
        env.bump('read-backs verified');
      });
    }
    case 'getMtu': {
      // Unconnected: ENOTCONN, which the kernel chooses on an open socket.
      const a = attempt(() => s.getMtu());
      if (!a.threw) {
        if (model.closed || !model.connected) fail(`getMtu() returned ${show(a.result)} on a socket ${model.closed ? 'closed' : 'not connected'}`);
        if (!Number.isInteger(a.result) || (a.result as number) <= 0) fail(`getMtu() returned ${show(a.result)}`);
        return 'ok';
      }
      // Connected too: ENOTCONN while the kernel has dropped its route (a TOS change does, until the next send).
      return checkWskError(what, a.thrown, syscall, model.closed ? 'EBADF' : 'ENOTCONN');
    }
    case 'setMulticastInterface': {
      const v = hooks.make(call.arg);
      const via = libInterface(v, model.family);
      const expected = via === 'absent' ? 'TypeError' : via === 'TypeError' || via === 'RangeError' ? via : null;
      return run(() => s.setMulticastInterface(v as string), expected, () => undefined, true);
    }
    case 'addMembership':
    case 'dropMembership':
    case 'addSourceSpecificMembership':
    case 'dropSourceSpecificMembership': {
      const group = hooks.make(call.group);
      const source = 'source' in call ? hooks.make(call.source) : undefined;
      const iface = call.iface === null ? undefined : hooks.make(call.iface);
      let expected: ErrorKind | null = null;
      // The source-specific forms take a source: undefined is a TypeError as for any non-string.
      if ('source' in call && !libAddressValid(source, model.family)) expected = 'TypeError';
      if (!libAddressValid(group, model.family)) expected = 'TypeError';
      const via = libInterface(iface, model.family);
      if (expected === null && (via === 'TypeError' || via === 'RangeError')) expected = via;
      const invoke = (): unknown => ('source' in call
        ? s[call.op as 'addSourceSpecificMembership'](source as string, group as string, iface as string)
        : s[call.op as 'addMembership'](group as string, iface as string));
      return run(invoke, expected, () => undefined, true);
    }
    case 'connect': {
      const rx = env.rx[model.family];
      if (rx === null) return 'skipped';
      const a = attempt(() => s.connect(rx.port, rx.address));
      if (a.threw) {
        const name = errorName(a.thrown);
        if (name === 'WskError') return checkWskError(what, a.thrown, 'connect', model.closed ? 'EBADF' : null);
        fail(`connect threw ${errorText(a.thrown)}`);
      }
      if (model.closed) fail('connect returned on a closed socket');
      model.connected = true;
      return 'ok';
    }
    case 'disconnect': {
      const a = attempt(() => s.disconnect());
      if (!model.connected) {
        if (!a.threw || errorName(a.thrown) !== 'TypeError' || (a.thrown as { code?: unknown }).code !== 'ERR_SOCKET_DGRAM_NOT_CONNECTED') {
          fail(`disconnect() on a socket that is not connected ${a.threw ? `threw ${errorText(a.thrown)}` : 'returned'}`);
        }
        return 'TypeError';
      }
      if (model.closed) {
        if (!a.threw) fail('disconnect() returned on a closed socket');
        return checkWskError(what, a.thrown, 'disconnect', 'EBADF');
      }
      if (a.threw) fail(`disconnect() on a connected socket threw ${errorText(a.thrown)}`);
      model.connected = false;
      const remote = attempt(() => s.remoteAddress());
      if (!remote.threw) fail(`remoteAddress() after disconnect returned ${JSON.stringify(remote.result)}`);
      return 'ok';
    }
    case 'ref':
    case 'unref': {
      const a = attempt(() => (call.op === 'ref' ? s.ref() : s.unref()));
      if (a.threw) fail(`${call.op}() threw ${errorText(a.thrown)}`);
      if (a.result !== s) fail(`${call.op}() did not return the socket`);
      return 'ok';
    }
    case 'close':
      closeAll();
      model.closed = true;
      return 'ok';
  }
}

// ---------------------------------------------------------------------------------------------
// The target

export interface OptionsTargetOptions {
  isolated: boolean;
  ipv6: boolean;
}

export function optionsTarget(options: OptionsTargetOptions): TargetDefinition<OptionsCase> {
  const figures: Record<string, number> = { 'read-backs verified': 0, 'datagrams verified': 0, 'borrowed sends verified': 0 };
  const env: Env = {
    rx: { 4: new Receiver(FAST_V4, 4), 6: options.ipv6 ? new Receiver(FAST_V6, 6) : null },
    ipv6: options.ipv6,
    devnull: fs.openSync('/dev/null', 'r'),
    limits: { rmemMax: readLimit('/proc/sys/net/core/rmem_max'), wmemMax: readLimit('/proc/sys/net/core/wmem_max') },
    bump: (key, by = 1) => {
      figures[key] = (figures[key] ?? 0) + by;
    },
  };
  const sanitize = (c: OptionsCase): OptionsCase => {
    if (options.ipv6) return c;
    if (c.api === 'native') {
      return { ...c, family: 4, state: c.state === 'dual' ? 'open' : c.state,
        calls: c.calls.map((call) => (call.op === 'adopt' && 'kind' in call.fd && call.fd.kind === 'ownerOther'
          ? { ...call, fd: { kind: 'owner' as const } } : call)) };
    }
    return c.bag.type === 'udp6' ? { ...c, bag: { ...c.bag, type: 'udp4' } } : c;
  };
  const shape = (c: OptionsCase): OptionsCase => {
    // A dual-stack socket is an IPv6 one; ipv6Only on udp4 is refused (now and then kept, to check that).
    if (c.api === 'native') return c.family === 4 && c.state === 'dual' ? { ...c, state: 'open' } : c;
    const { ipv6Only, ...rest } = c.bag.fields;
    if (ipv6Only === undefined || c.bag.type === 'udp6' || c.calls.length % 4 === 0) return c;
    return { ...c, bag: { ...c.bag, fields: rest } };
  };
  return {
    name: 'options',
    arbitrary: fc.oneof({ weight: 3, arbitrary: nativeCaseArb }, { weight: 2, arbitrary: apiCaseArb }).map((c) => sanitize(shape(c))),
    async: true,
    kindOf: (c) => (c.api === 'native' ? (c.state === 'borrowed' ? 'native-borrowed' : 'native') : 'socket'),
    run: async (c) => {
      try {
        return c.api === 'native' ? runNative(c, env) : await runApi(c, env);
      } catch (error) {
        // A failed case may leave datagrams behind: they must not count against the next one.
        env.rx[4].take();
        env.rx[6]?.take();
        throw error;
      }
    },
    figures: () => ({ ...figures }),
    close: () => {
      env.rx[4].close();
      env.rx[6]?.close();
      fs.closeSync(env.devnull);
    },
  };
}
