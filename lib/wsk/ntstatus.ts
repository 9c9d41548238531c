/**
 * NTSTATUS: the status type of the Windows kernel, with the values WSK functions complete
 * their IRPs with, the severity predicates of ntdef.h, and the one table that maps the
 * errno codes our native send reports to NTSTATUS.
 *
 * Values are those of MinGW-w64's ntstatus.h (Debian: mingw-w64-x86-64-dev);
 * test/unit/ntstatus.test.ts checks them against that header.
 */

import { constants as osConstants } from 'node:os';
import { getSystemErrorName } from 'node:util';

/**
 * Mirrors Windows' `NTSTATUS` (a LONG). Here it is always the UNSIGNED 32-bit value as written
 * in ntstatus.h, e.g. `0xC000000D`, so values compare with `===` against the constants below.
 */
export type NTSTATUS = number;

/** `STATUS_SUCCESS` (0x00000000): the operation completed successfully. */
export const STATUS_SUCCESS: NTSTATUS = 0x00000000;
/** `STATUS_PENDING` (0x00000103): the operation will complete later through the IRP. */
export const STATUS_PENDING: NTSTATUS = 0x00000103;
/**
 * `STATUS_BUFFER_OVERFLOW` (0x80000005): a WARNING (NT_SUCCESS is false, NT_ERROR is false);
 * on receive it means "datagram truncated". Not used for oversized sends.
 */
export const STATUS_BUFFER_OVERFLOW: NTSTATUS = 0x80000005;
/** `STATUS_UNSUCCESSFUL` (0xC0000001): generic failure; our mapping for an unknown errno. */
export const STATUS_UNSUCCESSFUL: NTSTATUS = 0xc0000001;
/** `STATUS_ACCESS_VIOLATION` (0xC0000005): bad memory reference (EFAULT). */
export const STATUS_ACCESS_VIOLATION: NTSTATUS = 0xc0000005;
/** `STATUS_INVALID_HANDLE` (0xC0000008): the socket is closed or not a socket. */
export const STATUS_INVALID_HANDLE: NTSTATUS = 0xc0000008;
/** `STATUS_INVALID_PARAMETER` (0xC000000D): a malformed argument. */
export const STATUS_INVALID_PARAMETER: NTSTATUS = 0xc000000d;
/** `STATUS_NO_MEMORY` (0xC0000017): out of memory (ENOMEM). */
export const STATUS_NO_MEMORY: NTSTATUS = 0xc0000017;
/** `STATUS_ACCESS_DENIED` (0xC0000022): e.g. broadcast without SO_BROADCAST (EACCES). */
export const STATUS_ACCESS_DENIED: NTSTATUS = 0xc0000022;
/** `STATUS_INSUFFICIENT_RESOURCES` (0xC000009A): the stack is out of buffers (ENOBUFS). */
export const STATUS_INSUFFICIENT_RESOURCES: NTSTATUS = 0xc000009a;
/** `STATUS_DEVICE_NOT_READY` (0xC00000A3): would block (EAGAIN). Never final in real WSK. */
export const STATUS_DEVICE_NOT_READY: NTSTATUS = 0xc00000a3;
/** `STATUS_IO_TIMEOUT` (0xC00000B5): the operation timed out (ETIMEDOUT). */
export const STATUS_IO_TIMEOUT: NTSTATUS = 0xc00000b5;
/** `STATUS_NOT_SUPPORTED` (0xC00000BB): the request is not supported. */
export const STATUS_NOT_SUPPORTED: NTSTATUS = 0xc00000bb;
/** `STATUS_NETWORK_BUSY` (0xC00000BF): the network is down or busy (ENETDOWN). */
export const STATUS_NETWORK_BUSY: NTSTATUS = 0xc00000bf;
/** `STATUS_INVALID_DEVICE_REQUEST` (0xC0000010): the request is not valid for this object. */
export const STATUS_INVALID_DEVICE_REQUEST: NTSTATUS = 0xc0000010;
/** `STATUS_CANCELLED` (0xC0000120): the IRP was cancelled. */
export const STATUS_CANCELLED: NTSTATUS = 0xc0000120;
/** `STATUS_INVALID_CONNECTION` (0xC0000140): no (fixed) remote address (ENOTCONN). */
export const STATUS_INVALID_CONNECTION: NTSTATUS = 0xc0000140;
/** `STATUS_INVALID_ADDRESS` (0xC0000141): the address is not valid. */
export const STATUS_INVALID_ADDRESS: NTSTATUS = 0xc0000141;
/** `STATUS_INVALID_BUFFER_SIZE` (0xC0000206): a datagram is too large to send (EMSGSIZE). */
export const STATUS_INVALID_BUFFER_SIZE: NTSTATUS = 0xc0000206;
/**
 * `STATUS_INVALID_ADDRESS_COMPONENT` (0xC0000207): an address that is well formed but does not
 * fit (other family than the socket, EADDRNOTAVAIL).
 */
export const STATUS_INVALID_ADDRESS_COMPONENT: NTSTATUS = 0xc0000207;
/** `STATUS_CONNECTION_RESET` (0xC000020D): reset by the peer (ECONNRESET, EPIPE). */
export const STATUS_CONNECTION_RESET: NTSTATUS = 0xc000020d;
/** `STATUS_CONNECTION_REFUSED` (0xC0000236): ICMP port unreachable seen (ECONNREFUSED). */
export const STATUS_CONNECTION_REFUSED: NTSTATUS = 0xc0000236;
/** `STATUS_ADDRESS_ALREADY_ASSOCIATED` (0xC0000238): address in use (EADDRINUSE). */
export const STATUS_ADDRESS_ALREADY_ASSOCIATED: NTSTATUS = 0xc0000238;
/** `STATUS_NETWORK_UNREACHABLE` (0xC000023C): no route to the network (ENETUNREACH). */
export const STATUS_NETWORK_UNREACHABLE: NTSTATUS = 0xc000023c;
/** `STATUS_HOST_UNREACHABLE` (0xC000023D): no route to the host (EHOSTUNREACH). */
export const STATUS_HOST_UNREACHABLE: NTSTATUS = 0xc000023d;
/** `STATUS_PORT_UNREACHABLE` (0xC000023F): ICMP port unreachable (Windows' UDP behaviour). */
export const STATUS_PORT_UNREACHABLE: NTSTATUS = 0xc000023f;
/** `STATUS_CONNECTION_ABORTED` (0xC0000241): the connection was aborted (ECONNABORTED). */
export const STATUS_CONNECTION_ABORTED: NTSTATUS = 0xc0000241;

/**
 * Every NTSTATUS constant of this module by its Windows name, frozen. Mirrors the `STATUS_*`
 * macros of ntstatus.h; also the source of {@link ntStatusName}.
 */
export const NtStatus = Object.freeze({
  STATUS_SUCCESS,
  STATUS_PENDING,
  STATUS_BUFFER_OVERFLOW,
  STATUS_UNSUCCESSFUL,
  STATUS_ACCESS_VIOLATION,
  STATUS_INVALID_HANDLE,
  STATUS_INVALID_PARAMETER,
  STATUS_INVALID_DEVICE_REQUEST,
  STATUS_NO_MEMORY,
  STATUS_ACCESS_DENIED,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_DEVICE_NOT_READY,
  STATUS_IO_TIMEOUT,
  STATUS_NOT_SUPPORTED,
  STATUS_NETWORK_BUSY,
  STATUS_CANCELLED,
  STATUS_INVALID_CONNECTION,
  STATUS_INVALID_ADDRESS,
  STATUS_INVALID_BUFFER_SIZE,
  STATUS_INVALID_ADDRESS_COMPONENT,
  STATUS_CONNECTION_RESET,
  STATUS_CONNECTION_REFUSED,
  STATUS_ADDRESS_ALREADY_ASSOCIATED,
  STATUS_NETWORK_UNREACHABLE,
  STATUS_HOST_UNREACHABLE,
  STATUS_PORT_UNREACHABLE,
  STATUS_CONNECTION_ABORTED,
} as const);

/** The name of one of the constants in {@link NtStatus}, e.g. `'STATUS_SUCCESS'`. */
export type NtStatusName = keyof typeof NtStatus;

/** Severity field of an NTSTATUS: bits 31..30 (ntdef.h: 0 success, 1 info, 2 warning, 3 error). */
function severity(Status: NTSTATUS): number {
  return Status >>> 30;
}

/**
 * Mirrors ntdef.h `NT_SUCCESS(Status)`: `((NTSTATUS)(Status)) >= 0`, i.e. the value read as a
 * signed 32-bit integer is not negative. True for success and informational codes
 * (STATUS_SUCCESS, STATUS_PENDING), false for warnings (STATUS_BUFFER_OVERFLOW) and errors.
 */
export function NT_SUCCESS(Status: NTSTATUS): boolean {
  return (Status | 0) >= 0;
}

/** Mirrors ntdef.h `NT_INFORMATION(Status)`: severity bits are 01. */
export function NT_INFORMATION(Status: NTSTATUS): boolean {
  return severity(Status) === 1;
}

/** Mirrors ntdef.h `NT_WARNING(Status)`: severity bits are 10. */
export function NT_WARNING(Status: NTSTATUS): boolean {
  return severity(Status) === 2;
}

/** Mirrors ntdef.h `NT_ERROR(Status)`: severity bits are 11. */
export function NT_ERROR(Status: NTSTATUS): boolean {
  return severity(Status) === 3;
}

const NAME_BY_VALUE: ReadonlyMap<number, string> = new Map(
  Object.entries(NtStatus).map(([name, value]): [number, string] => [value, name]),
);

/**
 * The ntstatus.h name of a status (`'STATUS_CONNECTION_REFUSED'`), or for a value this module
 * does not name its hex spelling as Windows tools print it (`'0xC0001234'`, 8 upper-case
 * digits). A negative (signed) input is read as its unsigned 32-bit value.
 */
export function ntStatusName(Status: NTSTATUS): string {
  const value = Status >>> 0;
  const name = NAME_BY_VALUE.get(value);
  if (name !== undefined) return name;
  return `0x${value.toString(16).toUpperCase().padStart(8, '0')}`;
}

/**
 * The one errno -> NTSTATUS table. Keys are errno code names as Node spells them
 * (`util.getSystemErrorName`, `os.constants.errno`); the pairs follow Wine's socket tables
 * where Wine has one (sock_errno_to_status in Wine's dlls/ntdll/unix/socket.c).
 *
 * | errno | NTSTATUS | note |
 * |---|---|---|
 * | EPERM, EACCES | STATUS_ACCESS_DENIED | |
 * | EFAULT | STATUS_ACCESS_VIOLATION | |
 * | EBADF, ENOTSOCK | STATUS_INVALID_HANDLE | |
 * | EINVAL, ENOPROTOOPT, EDESTADDRREQ | STATUS_INVALID_PARAMETER | |
 * | ENOMEM | STATUS_NO_MEMORY | |
 * | ENOBUFS | STATUS_INSUFFICIENT_RESOURCES | |
 * | EAGAIN, EWOULDBLOCK | STATUS_DEVICE_NOT_READY | never final in WSK (see below) |
 * | EOPNOTSUPP, ENOTSUP, EAFNOSUPPORT | STATUS_NOT_SUPPORTED | Linux: Node names errno 95 `ENOTSUP` |
 * | ENETDOWN | STATUS_NETWORK_BUSY | |
 * | ECANCELED | STATUS_CANCELLED | |
 * | ENOTCONN | STATUS_INVALID_CONNECTION | |
 * | EMSGSIZE | STATUS_INVALID_BUFFER_SIZE | not STATUS_BUFFER_OVERFLOW (see below) |
 * | EADDRNOTAVAIL | STATUS_INVALID_ADDRESS_COMPONENT | |
 * | ECONNRESET, EPIPE | STATUS_CONNECTION_RESET | |
 * | ECONNREFUSED | STATUS_CONNECTION_REFUSED | |
 * | EADDRINUSE | STATUS_ADDRESS_ALREADY_ASSOCIATED | |
 * | ENETUNREACH | STATUS_NETWORK_UNREACHABLE | |
 * | EHOSTUNREACH | STATUS_HOST_UNREACHABLE | |
 * | ECONNABORTED | STATUS_CONNECTION_ABORTED | |
 * | ETIMEDOUT | STATUS_IO_TIMEOUT | |
 * | anything else | STATUS_UNSUCCESSFUL | via {@link ntStatusFromErrno} (Wine's default) |
 */
export const ERRNO_TO_NTSTATUS: Readonly<Record<string, NTSTATUS>> = Object.freeze({
  EPERM: STATUS_ACCESS_DENIED,
  EACCES: STATUS_ACCESS_DENIED,
  EFAULT: STATUS_ACCESS_VIOLATION,
  EBADF: STATUS_INVALID_HANDLE,
  ENOTSOCK: STATUS_INVALID_HANDLE,
  EINVAL: STATUS_INVALID_PARAMETER,
  ENOPROTOOPT: STATUS_INVALID_PARAMETER,
  EDESTADDRREQ: STATUS_INVALID_PARAMETER,
  ENOMEM: STATUS_NO_MEMORY,
  ENOBUFS: STATUS_INSUFFICIENT_RESOURCES,
  // A WSK send never reports would-block: the send queue turns it into STATUS_PENDING and a
  // later completion. The entry names the code for anything else that meets a raw EAGAIN.
  EAGAIN: STATUS_DEVICE_NOT_READY,
  EWOULDBLOCK: STATUS_DEVICE_NOT_READY,
  // On Linux EOPNOTSUPP == ENOTSUP == 95 and util.getSystemErrorName(-95) says 'ENOTSUP'.
  EOPNOTSUPP: STATUS_NOT_SUPPORTED,
  ENOTSUP: STATUS_NOT_SUPPORTED,
  EAFNOSUPPORT: STATUS_NOT_SUPPORTED,
  ENETDOWN: STATUS_NETWORK_BUSY,
  ECANCELED: STATUS_CANCELLED,
  ENOTCONN: STATUS_INVALID_CONNECTION,
  // Not STATUS_BUFFER_OVERFLOW: that is a receive-side truncation WARNING (NT_SUCCESS false but
  // NT_ERROR false, data was delivered). An oversized send delivered nothing: it is an error.
  EMSGSIZE: STATUS_INVALID_BUFFER_SIZE,
  EADDRNOTAVAIL: STATUS_INVALID_ADDRESS_COMPONENT,
  ECONNRESET: STATUS_CONNECTION_RESET,
  EPIPE: STATUS_CONNECTION_RESET,
  ECONNREFUSED: STATUS_CONNECTION_REFUSED,
  EADDRINUSE: STATUS_ADDRESS_ALREADY_ASSOCIATED,
  ENETUNREACH: STATUS_NETWORK_UNREACHABLE,
  EHOSTUNREACH: STATUS_HOST_UNREACHABLE,
  ECONNABORTED: STATUS_CONNECTION_ABORTED,
  ETIMEDOUT: STATUS_IO_TIMEOUT,
});

function hasOwn(record: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(record, key);
}

/**
 * Maps an errno code NAME (`'ECONNREFUSED'`) to NTSTATUS through {@link ERRNO_TO_NTSTATUS};
 * any name not in the table (including non-strings) gives STATUS_UNSUCCESSFUL, as Wine does.
 */
export function ntStatusFromErrno(code: string): NTSTATUS {
  if (typeof code !== 'string' || !hasOwn(ERRNO_TO_NTSTATUS, code)) return STATUS_UNSUCCESSFUL;
  return ERRNO_TO_NTSTATUS[code] ?? STATUS_UNSUCCESSFUL;
}

/**
 * The errno code name of an OS error number as reported by a `RawSendResult`
 * `errno` (positive POSIX value of the running platform, i.e. an `os.constants.errno` value;
 * a negative libuv-style value is accepted too). Returns `undefined` for 0, non-integers and
 * numbers the platform does not name.
 *
 * Node's own name (`util.getSystemErrorName`) is preferred; when that is unknown or not in
 * {@link ERRNO_TO_NTSTATUS}, a name from `os.constants.errno` with the same value that IS in the
 * table is used instead (aliases such as EWOULDBLOCK/EAGAIN, and platforms where libuv's
 * numbering differs from the C runtime's).
 */
export function errnoName(errno: number): string | undefined {
  if (!Number.isSafeInteger(errno) || errno === 0) return undefined;
  const magnitude = Math.abs(errno);
  let nodeName: string | undefined;
  try {
    nodeName = getSystemErrorName(-magnitude);
  } catch {
    // getSystemErrorName throws ERR_OUT_OF_RANGE for values it cannot take; fall through.
    nodeName = undefined;
  }
  if (nodeName !== undefined && nodeName.startsWith('Unknown system error')) nodeName = undefined;
  if (nodeName !== undefined && hasOwn(ERRNO_TO_NTSTATUS, nodeName)) return nodeName;
  const table: Readonly<Record<string, number>> = osConstants.errno;
  let anyName: string | undefined;
  for (const name of Object.keys(table)) {
    if (table[name] !== magnitude) continue;
    if (hasOwn(ERRNO_TO_NTSTATUS, name)) return name;
    anyName ??= name;
  }
  return nodeName ?? anyName;
}

/**
 * Maps an OS error number (see {@link errnoName}) to NTSTATUS: 0 gives STATUS_SUCCESS, an
 * unnamed or unmapped number STATUS_UNSUCCESSFUL.
 */
export function ntStatusFromErrnoNumber(errno: number): NTSTATUS {
  if (errno === 0) return STATUS_SUCCESS;
  const name = errnoName(errno);
  return name === undefined ? STATUS_UNSUCCESSFUL : ntStatusFromErrno(name);
}
