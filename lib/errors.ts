/**
 * The one error class of wsk-dgram. An OS error from a send or a socket call becomes a
 * `WskError` carrying the NTSTATUS it maps to (lib/wsk/ntstatus.ts holds the one table), the
 * errno code name, the system call and, for sends, exactly what had gone out before it.
 * Bad arguments are reported as TypeError / RangeError instead, before anything is sent.
 */
import { ntStatusFromErrno, ntStatusName, type NTSTATUS } from './wsk/ntstatus';
import { osErrorName } from './wsk/wsa';

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

  constructor(errno: number, syscall: string, sent: { datagrams: number; bytes: number } = {
    datagrams: 0,
    bytes: 0,
  }) {
    // An errno, or on Windows a WSA code named by its errno partner (lib/wsk/wsa.ts).
    const code = osErrorName(errno) ?? `E${errno}`;
    const status = ntStatusFromErrno(code);
    const statusName = ntStatusName(status);
    super(`${syscall} ${code} (${statusName})` +
      (sent.datagrams > 0 ? ` after ${sent.datagrams} datagrams, ${sent.bytes} bytes` : ''));
    this.status = status;
    this.statusName = statusName;
    this.code = code;
    this.errno = errno;
    this.syscall = syscall;
    this.datagramsSent = sent.datagrams;
    this.bytesSent = sent.bytes;
  }
}
