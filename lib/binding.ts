/**
 * Loads the native addon and describes it: the one typed interface to C++.
 *
 * One convention for "value or OS error": a method that only acts returns 0 or a positive OS
 * error code; a method that gives a value returns it (an object) or a positive OS error code;
 * `send` always returns its result object, the error inside it. lib/errors.ts gives codes
 * meaning.
 *
 * The addon is node-gyp-build's pick (build/Release, or prebuilds/) unless the environment
 * variable WSK_DGRAM_ADDON names a .node file, which is then loaded instead: that is how CI runs
 * the integration suite on the sanitizer build (build-asan/, through scripts/run-asan.sh).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import nodeGypBuild = require('node-gyp-build');
import type { NativeBatch, NativeSendResult } from './batch';
import type { IcmpStats, NativeIcmpEntry } from './icmp';

/** An address as the native side reports it. */
export interface NativeAddress {
  family: 4 | 6;
  address: string;
  port: number;
  scopeId: number;
}

/** Controls as the native send takes them: the ECN bits are already inside `tos`. */
export interface NativeControls {
  sourceAddress?: string;
  interfaceIndex?: number;
  tos?: number;
  ttl?: number;
  segmentSize?: number;
}

/** One received datagram as the native side reports it. */
export interface NativeReceived {
  offset: number;
  length: number;
  truncated: boolean;
  source: NativeAddress | number;
  destination?: string;
  interfaceIndex: number;
  /** -1 when not reported. */
  tos: number;
  /** -1 when not reported. */
  ttl: number;
  segmentSize: number;
}

/** What a socket has sent over its life. */
export interface SocketStats {
  /** Batching system calls made (sendmmsg), EINTR retries included. */
  syscalls: number;
  /** Messages the kernel accepted: a GSO super-packet is one message of several datagrams. */
  messages: number;
  datagrams: number;
  bytes: number;
  /** Datagrams on the wire: one cut by an explicit segmentSize counts each segment. */
  segments: number;
  /** ICMP errors the socket's datagrams caused (Linux; all 0 elsewhere): lib/icmp.ts. */
  icmp: IcmpStats;
}

/**
 * Socket options by number, as native/socket_options.h numbers them (test/unit/socket-options
 * checks the two agree). 1..19: dgram parity; 20 and up: error queue and path MTU.
 */
export const NativeOption = {
  reuseAddress: 1,
  reusePort: 2,
  broadcast: 3,
  ttl: 4,
  tos: 5,
  multicastTtl: 6,
  multicastLoopback: 7,
  receiveBufferSize: 8,
  receiveBufferForce: 9,
  sendBufferForce: 10,
  sendBufferSize: 11,
  mtuDiscovery: 20,
  dontFragment: 21,
  mtu: 22,
  recvErr: 23,
} as const;

export type NativeOptionNumber = (typeof NativeOption)[keyof typeof NativeOption];

/** The native socket object (native/socket_methods.cc; its send reads the batch in native/batch_reader.cc). */
export interface NativeUdpSocket {
  /**
   * Opens a non-blocking UDP socket of `family`; returns 0 or errno. An IPv6 socket is
   * IPv6-only unless `ipv6Only` is false (dual-stack; a TypeError for IPv4).
   */
  open(family: 4 | 6, ipv6Only?: boolean): number;
  /**
   * Sends on `fd`, an open non-blocking UDP socket of `family` that another owner keeps (a
   * node:dgram socket's libuv descriptor); returns 0 or errno. The descriptor is borrowed:
   * close() forgets it without closing it; whatever would poll, read or change it (startPolling,
   * startReading, receive, bind, connect, setSendBufferSize, enableReceiveInfo, setOption,
   * membership, setMulticastInterface, disconnect, watchErrors) returns EOPNOTSUPP. POSIX only
   * (Windows: WSAEOPNOTSUPP).
   */
  adopt(fd: number, family: 4 | 6): number;
  bind(address: string, port: number, scopeId: number): number;
  connect(address: string, port: number, scopeId: number): number;
  /** The address, or an errno. */
  localAddress(): NativeAddress | number;
  remoteAddress(): NativeAddress | number;
  setSendBufferSize(bytes: number): number;
  /** `{ bytes }`, or an errno. */
  getSendBufferSize(): { bytes: number } | number;
  /** Sets a socket option (native/socket_options.h); 0 or errno (ENOPROTOOPT: not on this OS). */
  setOption(option: NativeOptionNumber, value: number): number;
  /** Reads a socket option (the IPv6 level on an IPv6 socket), or an errno. */
  getOption(option: NativeOptionNumber): { value: number } | number;
  /**
   * Joins or leaves a multicast group (with `source`: a source-specific membership) on
   * `multicastInterface` (an IPv4 literal; for IPv6 "<literal>%<zone>", the zone an index or a
   * name), null letting the OS pick; 0 or errno.
   */
  membership(join: boolean, group: string, source: string | null, multicastInterface: string | null): number;
  /** The interface outgoing multicast leaves by, in membership()'s form; 0 or errno. */
  setMulticastInterface(multicastInterface: string): number;
  /** Dissolves connect()'s association (connect with AF_UNSPEC); 0 or errno. */
  disconnect(): number;
  close(): number;
  /**
   * Sends datagrams [first, first + count) of `batch` (lib/batch.ts: ranges, spans, targets,
   * destinations) and returns at the first error or when the socket buffer is full (`wouldBlock`);
   * with `batch.continueOnError`, an error that belongs to a datagram's destination (EACCES,
   * EPERM, ENETUNREACH, EHOSTUNREACH, EHOSTDOWN, ENETDOWN, ECONNREFUSED, EMSGSIZE, EADDRNOTAVAIL,
   * EAFNOSUPPORT; on Windows their WSA codes and WSAECONNRESET, WSAENETRESET) goes into `failures`
   * and the send goes on. Only what the window uses is read and checked. Each field of
   * `batch`, each word of its typed arrays in the window and each buffer it uses is read once,
   * then checked, then used from the native copy. A malformed batch (a span or range outside its
   * array or buffer, a target outside the table, a record that is not a destination of the
   * socket's family, memory that is gone) is a TypeError/RangeError and nothing is sent.
   */
  send(batch: NativeBatch, first: number, count: number): NativeSendResult;
  /** Calls `onWritable(errno)` from the event loop while the socket is writable; 0 or errno. */
  startPolling(onWritable: (errno: number) => void): number;
  stopPolling(): void;
  /** Calls `onReadable(errno)` from the event loop while datagrams wait; 0 or errno. */
  startReading(onReadable: (errno: number) => void): number;
  stopReading(): void;
  /** Whether a waiting send or receive keeps the event loop alive (uv_ref / uv_unref). */
  setRef(ref: boolean): void;
  /** Turns on packet information (and UDP_GRO when `gro`) for received datagrams; 0 or errno. */
  enableReceiveInfo(gro: boolean): number;
  /** Reads up to `maxDatagrams` into `slotSize` slots of `arena` without blocking, or an errno. */
  receive(arena: Uint8Array, slotSize: number, maxDatagrams: number): NativeReceived[] | number;
  /** The OS descriptor, -1 once closed (diagnostics and tests). */
  readonly fd: number;
  /** Segments per super-packet the socket may send (UDP_SEGMENT); 0 when that is off. */
  readonly segmentLimit: number;
  stats(): SocketStats;
  /**
   * Keeps ICMP errors for takeErrors() and polls for POLLERR alone (without keeping the loop
   * alive), calling `onErrors()` when some were read; 0, or EOPNOTSUPP without an error queue.
   */
  watchErrors(onErrors: () => void): number;
  unwatchErrors(): void;
  /** Reads the kernel's error queue out and hands over the ICMP errors kept, oldest first. */
  takeErrors(): NativeIcmpEntry[];
  /** ICMP errors kept and not yet taken. */
  readonly errorsPending: number;
}

export interface NativeBinding {
  UdpSocket: new () => NativeUdpSocket;
  /** The batching system call of this build: "sendmmsg" on Linux. */
  backend: string;
}

// The package root is one level above lib/ when running from source (ts-jest) and two above
// dist/lib/ when compiled.
const packageRoot = path.basename(path.dirname(__dirname)) === 'dist'
  ? path.resolve(__dirname, '..', '..')
  : path.resolve(__dirname, '..');

let loaded: NativeBinding | undefined;

/** The addon, loaded on first use so that pure modules never need it. */
export function binding(): NativeBinding {
  const file = process.env.WSK_DGRAM_ADDON;
  // A path known only at run time: require is the way to load a .node file from it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded ??= (file ? require(path.resolve(file)) : loadAddon(packageRoot)) as NativeBinding;
  return loaded;
}

/** The `code` of the Error thrown when no native addon loads (see {@link loadAddon}). */
export const NATIVE_LOAD_ERROR_CODE = 'ERR_WSK_DGRAM_NATIVE_LOAD';

/**
 * Loads the addon of the package rooted at `root` the way node-gyp-build picks it (build/Release,
 * build/Debug, then prebuilds/<platform>-<arch>/, or the directory WSK_DGRAM_PREBUILD names).
 * When none is found, or the one found does not load (another libc, an older glibc, another
 * architecture), throws an Error with code {@link NATIVE_LOAD_ERROR_CODE} whose message names
 * the platform, what was looked for and what to do, with node-gyp-build's or the loader's error
 * as `cause`. Exported for the tests, which point it at a package directory of their own.
 */
export function loadAddon(root: string): unknown {
  // node-gyp-build's own override, honoured here too so the message names the right place.
  const searched = process.env.WSK_DGRAM_PREBUILD ? path.resolve(process.env.WSK_DGRAM_PREBUILD) : root;
  let found: string;
  try {
    found = nodeGypBuild.resolve(root);
  } catch (cause) {
    throw nativeLoadError(searched, undefined, cause);
  }
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(found) as unknown;
  } catch (cause) {
    throw nativeLoadError(searched, found, cause);
  }
}

function nativeLoadError(searched: string, found: string | undefined, cause: unknown): Error {
  const target = `${process.platform}-${process.arch}`;
  // Node's diagnostic report names the glibc it runs on (absent on musl).
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  const header = report?.header;
  const libc = process.platform !== 'linux' ? ''
    : header?.glibcVersionRuntime ? `, glibc ${header.glibcVersionRuntime}` : ', not glibc (musl?)';
  let shipped: string[] = [];
  try {
    shipped = fs.readdirSync(path.join(searched, 'prebuilds')).sort();
  } catch {
    // no prebuilds/ directory at all: said below
  }
  // Not `instanceof Error`: an error of another realm (a vm context, jest) is still one.
  const message = (cause as { message?: unknown } | null)?.message;
  const causeText = (typeof message === 'string' ? message : String(cause)).split('\n')[0];
  const what = found
    ? `the addon found, ${found}, does not load here: ${causeText}`
    : 'no native addon was found for this platform';
  const lines = [
    `wsk-dgram: ${what} (${target}${libc}, Node ${process.versions.node}, N-API ${process.versions.napi}).`,
    `Looked for: ${path.join(searched, 'build', 'Release')}/*.node, ${path.join(searched, 'build', 'Debug')}/*.node, ` +
      `${path.join(searched, 'prebuilds', target)}/*.node (prebuilt binaries here: ` +
      `${shipped.length > 0 ? shipped.join(', ') : 'none'}).`,
    'To fix: install a C++17 compiler, make and Python 3, then run `npm rebuild wsk-dgram` to build it ' +
      'from the shipped sources (docs/install.md); or report the platform at ' +
      'https://github.com/wsk-dgram/wsk-dgram/issues.',
  ];
  return Object.assign(new Error(lines.join('\n'), { cause }), { code: NATIVE_LOAD_ERROR_CODE });
}
