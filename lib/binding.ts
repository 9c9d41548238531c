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

/** The native socket object (native/socket_methods.cc; its send reads the batch in native/batch_reader.cc). */
export interface NativeUdpSocket {
  /** Opens a non-blocking UDP socket of `family`; returns 0 or errno. */
  open(family: 4 | 6): number;
  bind(address: string, port: number, scopeId: number): number;
  connect(address: string, port: number, scopeId: number): number;
  /** The address, or an errno. */
  localAddress(): NativeAddress | number;
  remoteAddress(): NativeAddress | number;
  setSendBufferSize(bytes: number): number;
  /** `{ bytes }`, or an errno. */
  getSendBufferSize(): { bytes: number } | number;
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
  /** Sets an option of native/socket_options.h (lib/icmp.ts SOCKET_OPTION); 0 or errno. */
  setOption(option: number, value: number): number;
  /** `{ value }` of an option of native/socket_options.h, or an errno. */
  getOption(option: number): { value: number } | number;
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
  loaded ??= (file ? require(path.resolve(file)) : nodeGypBuild(packageRoot)) as NativeBinding;
  return loaded;
}
