/**
 * Windows Sockets error codes (WSAGetLastError) and the one table that maps them to NTSTATUS.
 *
 * On Windows the native side reports WSA codes where Linux reports errno values. The table pairs
 * each code with the errno name that means the same (which becomes `WskError.code`, as Node
 * itself names Windows socket errors `ECONNREFUSED` and so on) and with its NTSTATUS, the same
 * one the errno table ({@link ERRNO_TO_NTSTATUS}) gives that errno name — a unit test holds the
 * two tables together. Values are those of MinGW-w64's winerror.h / winsock2.h, checked in
 * test/unit/wsa.test.ts.
 *
 * {@link osErrorName} and {@link ntStatusFromOsError} are the platform-aware entry points the
 * rest of the library uses (errors.ts, socket.ts, send-messages.ts): on `win32` a raw code is first looked up here; elsewhere, and
 * for the non-WSA codes of Windows (libuv codes, C runtime errno values), it is an errno and goes
 * to lib/wsk/ntstatus.ts unchanged.
 */

import {
  errnoName,
  ntStatusFromErrnoNumber,
  STATUS_ACCESS_DENIED,
  STATUS_ACCESS_VIOLATION,
  STATUS_ADDRESS_ALREADY_ASSOCIATED,
  STATUS_CANCELLED,
  STATUS_CONNECTION_ABORTED,
  STATUS_CONNECTION_REFUSED,
  STATUS_CONNECTION_RESET,
  STATUS_DEVICE_NOT_READY,
  STATUS_HOST_UNREACHABLE,
  STATUS_INSUFFICIENT_RESOURCES,
  STATUS_INVALID_ADDRESS_COMPONENT,
  STATUS_INVALID_BUFFER_SIZE,
  STATUS_INVALID_CONNECTION,
  STATUS_INVALID_HANDLE,
  STATUS_INVALID_PARAMETER,
  STATUS_IO_TIMEOUT,
  STATUS_NETWORK_BUSY,
  STATUS_NETWORK_UNREACHABLE,
  STATUS_NOT_SUPPORTED,
  STATUS_SUCCESS,
  STATUS_UNSUCCESSFUL,
  type NTSTATUS,
} from './ntstatus';

/** One Windows Sockets error: its winerror.h name and value, errno partner and NTSTATUS. */
export interface WsaError {
  /** The winerror.h / winsock2.h name, e.g. `'WSAECONNREFUSED'`. */
  readonly name: string;
  /** The WSAGetLastError() value, e.g. 10061. */
  readonly code: number;
  /** The errno name with the same meaning (Node's spelling on Windows), e.g. `'ECONNREFUSED'`. */
  readonly errno: string;
  /** The NTSTATUS a WSK caller sees for it. */
  readonly status: NTSTATUS;
}

function row(name: string, code: number, errno: string, status: NTSTATUS): WsaError {
  return Object.freeze({ name, code, errno, status });
}

/**
 * The one WSA code -> NTSTATUS table (Wine pairs them the same way: NtStatusToWSAError in its
 * dlls/ws2_32/socket.c). Where Wine maps several NTSTATUS values to one WSA code, the one the
 * errno table gives the errno partner wins, so that a failure has the same NTSTATUS on every
 * platform.
 *
 * | WSA code | value | errno | NTSTATUS |
 * |---|---|---|---|
 * | WSA_OPERATION_ABORTED | 995 | ECANCELED | STATUS_CANCELLED |
 * | WSAEBADF | 10009 | EBADF | STATUS_INVALID_HANDLE |
 * | WSAEACCES | 10013 | EACCES | STATUS_ACCESS_DENIED |
 * | WSAEFAULT | 10014 | EFAULT | STATUS_ACCESS_VIOLATION |
 * | WSAEINVAL | 10022 | EINVAL | STATUS_INVALID_PARAMETER |
 * | WSAEWOULDBLOCK | 10035 | EWOULDBLOCK | STATUS_DEVICE_NOT_READY (never final in WSK) |
 * | WSAENOTSOCK | 10038 | ENOTSOCK | STATUS_INVALID_HANDLE (the addon's "socket closed") |
 * | WSAEDESTADDRREQ | 10039 | EDESTADDRREQ | STATUS_INVALID_PARAMETER |
 * | WSAEMSGSIZE | 10040 | EMSGSIZE | STATUS_INVALID_BUFFER_SIZE |
 * | WSAENOPROTOOPT | 10042 | ENOPROTOOPT | STATUS_INVALID_PARAMETER |
 * | WSAEOPNOTSUPP | 10045 | EOPNOTSUPP | STATUS_NOT_SUPPORTED |
 * | WSAEAFNOSUPPORT | 10047 | EAFNOSUPPORT | STATUS_NOT_SUPPORTED |
 * | WSAEADDRINUSE | 10048 | EADDRINUSE | STATUS_ADDRESS_ALREADY_ASSOCIATED |
 * | WSAEADDRNOTAVAIL | 10049 | EADDRNOTAVAIL | STATUS_INVALID_ADDRESS_COMPONENT |
 * | WSAENETDOWN | 10050 | ENETDOWN | STATUS_NETWORK_BUSY |
 * | WSAENETUNREACH | 10051 | ENETUNREACH | STATUS_NETWORK_UNREACHABLE |
 * | WSAECONNABORTED | 10053 | ECONNABORTED | STATUS_CONNECTION_ABORTED |
 * | WSAECONNRESET | 10054 | ECONNRESET | STATUS_CONNECTION_RESET (also a UDP port unreachable) |
 * | WSAENOBUFS | 10055 | ENOBUFS | STATUS_INSUFFICIENT_RESOURCES |
 * | WSAENOTCONN | 10057 | ENOTCONN | STATUS_INVALID_CONNECTION |
 * | WSAETIMEDOUT | 10060 | ETIMEDOUT | STATUS_IO_TIMEOUT |
 * | WSAECONNREFUSED | 10061 | ECONNREFUSED | STATUS_CONNECTION_REFUSED |
 * | WSAEHOSTUNREACH | 10065 | EHOSTUNREACH | STATUS_HOST_UNREACHABLE |
 * | any other | | its Node name, if any | STATUS_UNSUCCESSFUL |
 */
export const WSA_ERRORS: readonly WsaError[] = Object.freeze([
  row('WSA_OPERATION_ABORTED', 995, 'ECANCELED', STATUS_CANCELLED),
  row('WSAEBADF', 10009, 'EBADF', STATUS_INVALID_HANDLE),
  row('WSAEACCES', 10013, 'EACCES', STATUS_ACCESS_DENIED),
  row('WSAEFAULT', 10014, 'EFAULT', STATUS_ACCESS_VIOLATION),
  row('WSAEINVAL', 10022, 'EINVAL', STATUS_INVALID_PARAMETER),
  row('WSAEWOULDBLOCK', 10035, 'EWOULDBLOCK', STATUS_DEVICE_NOT_READY),
  row('WSAENOTSOCK', 10038, 'ENOTSOCK', STATUS_INVALID_HANDLE),
  row('WSAEDESTADDRREQ', 10039, 'EDESTADDRREQ', STATUS_INVALID_PARAMETER),
  row('WSAEMSGSIZE', 10040, 'EMSGSIZE', STATUS_INVALID_BUFFER_SIZE),
  row('WSAENOPROTOOPT', 10042, 'ENOPROTOOPT', STATUS_INVALID_PARAMETER),
  row('WSAEOPNOTSUPP', 10045, 'EOPNOTSUPP', STATUS_NOT_SUPPORTED),
  row('WSAEAFNOSUPPORT', 10047, 'EAFNOSUPPORT', STATUS_NOT_SUPPORTED),
  row('WSAEADDRINUSE', 10048, 'EADDRINUSE', STATUS_ADDRESS_ALREADY_ASSOCIATED),
  row('WSAEADDRNOTAVAIL', 10049, 'EADDRNOTAVAIL', STATUS_INVALID_ADDRESS_COMPONENT),
  row('WSAENETDOWN', 10050, 'ENETDOWN', STATUS_NETWORK_BUSY),
  row('WSAENETUNREACH', 10051, 'ENETUNREACH', STATUS_NETWORK_UNREACHABLE),
  row('WSAECONNABORTED', 10053, 'ECONNABORTED', STATUS_CONNECTION_ABORTED),
  row('WSAECONNRESET', 10054, 'ECONNRESET', STATUS_CONNECTION_RESET),
  row('WSAENOBUFS', 10055, 'ENOBUFS', STATUS_INSUFFICIENT_RESOURCES),
  row('WSAENOTCONN', 10057, 'ENOTCONN', STATUS_INVALID_CONNECTION),
  row('WSAETIMEDOUT', 10060, 'ETIMEDOUT', STATUS_IO_TIMEOUT),
  row('WSAECONNREFUSED', 10061, 'ECONNREFUSED', STATUS_CONNECTION_REFUSED),
  row('WSAEHOSTUNREACH', 10065, 'EHOSTUNREACH', STATUS_HOST_UNREACHABLE),
]);

const BY_CODE: ReadonlyMap<number, WsaError> = new Map(WSA_ERRORS.map((e) => [e.code, e]));

/** WSAEWOULDBLOCK (10035): the socket buffer is full. */
export const WSAEWOULDBLOCK = 10035;
/** WSAENOBUFS (10055): no buffer space; treated as "would block", like ENOBUFS on Linux. */
export const WSAENOBUFS = 10055;

/** The table's entry for a WSA code, or undefined when it is not in {@link WSA_ERRORS}. */
export function wsaError(code: number): WsaError | undefined {
  return BY_CODE.get(Math.abs(code));
}

/** The NTSTATUS of a WSA code: its table entry's, or STATUS_UNSUCCESSFUL (0 gives 0). */
export function ntStatusFromWsaCode(code: number): NTSTATUS {
  if (code === 0) return STATUS_SUCCESS;
  return wsaError(code)?.status ?? STATUS_UNSUCCESSFUL;
}

/**
 * The errno-style name (`WskError.code`) of a raw OS error code the native side reported:
 * on win32 a WSA code's errno partner (10061 -> `'ECONNREFUSED'`); anything else as
 * {@link errnoName} names it.
 */
export function osErrorName(code: number, platform: NodeJS.Platform = process.platform): string | undefined {
  if (platform === 'win32') {
    const entry = wsaError(code);
    if (entry !== undefined) return entry.errno;
  }
  return errnoName(code);
}

/** The NTSTATUS of a raw OS error code (see {@link osErrorName}); 0 gives STATUS_SUCCESS. */
export function ntStatusFromOsError(code: number, platform: NodeJS.Platform = process.platform): NTSTATUS {
  if (platform === 'win32') {
    const entry = wsaError(code);
    if (entry !== undefined) return entry.status;
  }
  return ntStatusFromErrnoNumber(code);
}
