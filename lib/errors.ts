/**
 * The one error class of wsk-dgram. An OS error from a send or a socket call becomes a
 * `WskError` carrying the NTSTATUS it maps to (lib/wsk/ntstatus.ts holds the one table), the
 * errno code name, the system call and, for sends, exactly what had gone out before it.
 * Bad arguments are reported as TypeError / RangeError instead, before anything is sent.
 */
import type { Batch } from './batch';
import type { Destination } from './transport';
import { ntStatusFromErrno, ntStatusName, type NTSTATUS } from './wsk/ntstatus';
import { osErrorName } from './wsk/wsa';

/** Where a failed send was going, and what caused a cancellation (see WskError). */
export interface WskErrorDetails {
  /** The destination IP literal of the datagram the send stopped at. */
  readonly address?: string;
  /** Its destination port. */
  readonly port?: number;
  /** The reason of an abort (`signal.reason`), kept as the error's `cause`. */
  readonly cause?: unknown;
}

/** `127.0.0.1:9`, `[::1]:9`: an endpoint as a message shows it. */
export function formatEndpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * The destination of datagram `index` of `batch` (the connected `remote` when the batch has
 * none), for a send error; empty when the index is past the batch.
 */
export function destinationAt(batch: Pick<Batch, 'count' | 'targets' | 'endpoints'>, index: number,
  remote: Destination | null): { address?: string; port?: number } {
  if (index < 0 || index >= batch.count) return {};
  const endpoint = batch.endpoints.length === 0 ? remote : batch.endpoints[batch.targets === null ? 0 : batch.targets[index]!];
  return endpoint === null || endpoint === undefined ? {} : { address: endpoint.address, port: endpoint.port };
}

export class WskError extends Error {
  override readonly name = 'WskError';
  /** The NTSTATUS this failure maps to, e.g. 0xC0000236 (STATUS_CONNECTION_REFUSED). */
  readonly status: NTSTATUS;
  /** The NTSTATUS's name, e.g. "STATUS_CONNECTION_REFUSED". */
  readonly statusName: string;
  /** The errno code name, e.g. "ECONNREFUSED". */
  readonly code: string;
  /** The positive OS error number. */
  readonly errno: number;
  /** The system call that failed, e.g. "sendmmsg". */
  readonly syscall: string;
  /** Datagrams the kernel accepted before the failure (sends only; 0 otherwise). */
  readonly datagramsSent: number;
  /** Bytes the kernel accepted before the failure (sends only; 0 otherwise). */
  readonly bytesSent: number;
  /**
   * Sends: the destination address of the datagram the send stopped at (on a connected socket,
   * the remote), as node:dgram's send errors carry it. Absent when there is none (other calls,
   * or nothing was left to send).
   */
  declare readonly address?: string;
  /** Sends: the destination port of that datagram (see `address`). */
  declare readonly port?: number;

  constructor(errno: number, syscall: string, sent: { datagrams: number; bytes: number } = {
    datagrams: 0,
    bytes: 0,
  }, details: WskErrorDetails = {}) {
    // An errno, or on Windows a WSA code named by its errno partner (lib/wsk/wsa.ts).
    const code = osErrorName(errno) ?? `E${errno}`;
    const status = ntStatusFromErrno(code);
    const statusName = ntStatusName(status);
    const { address, port } = details;
    const where = address !== undefined && port !== undefined ? ` to ${formatEndpoint(address, port)}` : '';
    super(`${syscall} ${code} (${statusName})${where}` +
      (sent.datagrams > 0 ? ` after ${sent.datagrams} datagrams, ${sent.bytes} bytes` : ''),
    'cause' in details ? { cause: details.cause } : undefined);
    this.status = status;
    this.statusName = statusName;
    this.code = code;
    this.errno = errno;
    this.syscall = syscall;
    this.datagramsSent = sent.datagrams;
    this.bytesSent = sent.bytes;
    if (where !== '') Object.assign(this, { address, port });
  }
}
