/**
 * WskSendMessages over a BatchSender: validates the WSK arguments, translates the
 * WSK_BUF_LIST, sends, and completes the IRP with the NTSTATUS of the outcome.
 */

import { batchOf, type Batch } from '../batch';
import type { NativeControls } from '../binding';
import { nativeControls } from '../controls';
import type { BatchSender, Destination, RawSendResult, SendCompletion } from '../transport';
import { buildBatch, type WSK_BUF_LIST } from './buf';
import { parseControlInfo, translateControls, type CMSGHDR } from './cmsg';
import { IRP, IoCompleteRequest, IoSetCancelRoutine, type WSK_FAILURE_INFO } from './irp';
import {
  STATUS_CANCELLED,
  STATUS_INVALID_CONNECTION,
  STATUS_INVALID_HANDLE,
  STATUS_INVALID_PARAMETER,
  STATUS_PENDING,
  STATUS_SUCCESS,
  STATUS_UNSUCCESSFUL,
  type NTSTATUS,
} from './ntstatus';
import { parseRemoteAddress, type SOCKADDR } from './sockaddr';
import { ntStatusFromOsError, osErrorName } from './wsa';
import { describeError, describeValue } from '../describe';

/** How a call ends: the status to complete the IRP with and return. */
interface Outcome {
  status: NTSTATUS;
  information: number;
  failure: WSK_FAILURE_INFO | null;
}

function failed(status: NTSTATUS, reason: string): Outcome {
  return {
    status,
    information: 0,
    failure: { reason, errno: 0, code: '', syscall: '', datagramsSent: 0 },
  };
}

function isUsableIrp(Irp: unknown): Irp is IRP {
  try {
    return Irp instanceof IRP && !Irp.completed;
  } catch {
    return false; // an object made from IRP.prototype without the constructor
  }
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/**
 * Mirrors Windows' `WskSendMessages(Socket, BufferList, Flags, RemoteAddress,
 * ControlInfoLength, ControlInfo, Irp)` (wsk.h, Windows 10+): sends each WSK_BUF_LIST entry as
 * one datagram to `RemoteAddress` (or, when it is null, to the socket's connected remote), in
 * as few system calls as the platform allows (sendmmsg on Linux; with the socket's `gso` on,
 * runs of equal-size datagrams also leave as one segmented send, which changes nothing the
 * receiver sees).
 *
 * Like WSK, the IRP ALWAYS completes. When the outcome is known at once, its completion routine
 * has run before this function returns. When the socket cannot take everything now, the rest
 * waits in the socket's queue, the call returns STATUS_PENDING, and the IRP completes later
 * from the event loop (never inside this call) with the final status and the bytes sent;
 * IoCancelIrp on it completes it with STATUS_CANCELLED and the bytes already sent. The MDLs'
 * bytes must stay unchanged until the IRP completes.
 * - `Irp` not an IRP from IoAllocateIrp, or already completed: returns
 *   STATUS_INVALID_PARAMETER WITHOUT touching it (there is nothing valid to complete).
 * - Otherwise the returned status is the one the IRP completed with, checked in this order:
 *   `Flags` not exactly 0 (reserved): STATUS_INVALID_PARAMETER. `ControlInfo` null/undefined
 *   with `ControlInfoLength` not 0, or a malformed CMSGHDR block: STATUS_INVALID_PARAMETER
 *   (see `parseControlInfo`). `Socket` closed or not a BatchSender: STATUS_INVALID_HANDLE
 *   (nothing is sent). A control the socket cannot apply: STATUS_NOT_SUPPORTED, a control
 *   value out of range: STATUS_INVALID_PARAMETER (see `translateControls`). `RemoteAddress`
 *   null with no connected remote: STATUS_INVALID_CONNECTION; a bad `RemoteAddress`: see
 *   `parseRemoteAddress`. A bad `BufferList`: see `buildBatch`. `submit` throwing:
 *   STATUS_INVALID_PARAMETER.
 * - Control information (IP_PKTINFO, IP_TOS, IP_TTL, IP_ECN, their IPv6 equivalents and
 *   UDP_SEND_MSG_SIZE) applies to every datagram of the call.
 * - All datagrams sent: STATUS_SUCCESS, `IoStatus.Information` = bytes sent.
 * - The OS refused a datagram: the errno's NTSTATUS (`ERRNO_TO_NTSTATUS`; on Windows the WSA
 *   code's, `WSA_ERRORS` in wsa.ts), with
 *   `IoStatus.Information` = the bytes of the datagrams sent before it (never more), and
 *   `Irp.FailureInfo` saying which call failed, with which errno, after how many datagrams.
 *
 * Every failure also sets `Irp.FailureInfo` before completion. Nothing is copied.
 */
export function WskSendMessages(
  Socket: BatchSender,
  BufferList: WSK_BUF_LIST | null,
  Flags: number,
  RemoteAddress: SOCKADDR | null | undefined,
  ControlInfoLength: number,
  ControlInfo: Uint8Array | null | undefined,
  Irp: IRP,
): NTSTATUS {
  if (!isUsableIrp(Irp)) return STATUS_INVALID_PARAMETER;
  let outcome: Outcome | null;
  try {
    outcome = sendMessages(Socket, BufferList, Flags, RemoteAddress, ControlInfoLength, ControlInfo, Irp);
  } catch (error: unknown) {
    // Only a hostile argument (a throwing getter, a Proxy) gets here; the IRP still completes.
    outcome = failed(STATUS_INVALID_PARAMETER, `an argument could not be read: ${describeError(error)}`);
  }
  if (outcome === null) return STATUS_PENDING;
  complete(Irp, outcome);
  return outcome.status;
}

function complete(Irp: IRP, outcome: Outcome): void {
  if (outcome.failure !== null) Irp.FailureInfo = outcome.failure;
  IoCompleteRequest(Irp, outcome.status, outcome.information);
}

function sendMessages(
  Socket: BatchSender,
  BufferList: WSK_BUF_LIST | null,
  Flags: number,
  RemoteAddress: SOCKADDR | null | undefined,
  ControlInfoLength: number,
  ControlInfo: Uint8Array | null | undefined,
  Irp: IRP,
): Outcome | null {
  if (Flags !== 0) return failed(STATUS_INVALID_PARAMETER, `Flags must be 0, got ${describeValue(Flags)}`);

  // Control information applies to every datagram. It is parsed here and translated once the
  // socket's family is known, before anything is sent: a malformed or unsupported block sends
  // nothing.
  let controlObjects: CMSGHDR[] = [];
  if (ControlInfo === null || ControlInfo === undefined) {
    if (ControlInfoLength !== 0) {
      const length = describeValue(ControlInfoLength);
      return failed(STATUS_INVALID_PARAMETER, `ControlInfoLength is ${length} but ControlInfo is NULL`);
    }
  } else {
    const parsed = parseControlInfo(ControlInfo, ControlInfoLength);
    if (!parsed.ok) return failed(parsed.status, `ControlInfo: ${parsed.reason}`);
    controlObjects = parsed.objects;
  }

  if (typeof Socket !== 'object' || Socket === null || typeof Socket.submit !== 'function') {
    return failed(STATUS_INVALID_HANDLE, 'Socket is not a socket');
  }
  if (Socket.closed) return failed(STATUS_INVALID_HANDLE, 'Socket is closed');
  const family = Socket.family;
  // A dual-stack IPv6 socket also takes IPv4-level controls and sources, for IPv4-mapped peers.
  const dualStack = family === 6 && Socket.ipv6Only === false;

  let controls: NativeControls | undefined;
  if (controlObjects.length > 0) {
    const translated = translateControls(controlObjects, family, dualStack);
    if (!translated.ok) return failed(translated.status, `ControlInfo: ${translated.reason}`);
    // The native form: the ECN bits folded into the TOS byte. It also holds a segment size to
    // the family's UDP limit, narrower on IPv4 than UDP_SEND_MSG_SIZE's own range.
    try {
      controls = nativeControls(translated.controls, family, dualStack);
    } catch (error: unknown) {
      return failed(STATUS_INVALID_PARAMETER, `ControlInfo: ${describeError(error)}`);
    }
  }

  let destination: Destination | null = null;
  if (RemoteAddress === null || RemoteAddress === undefined) {
    // Windows: NULL RemoteAddress needs a fixed remote (SIO_WSK_SET_REMOTE_ADDRESS); ours is connect().
    if (Socket.remote === null || Socket.remote === undefined) {
      return failed(STATUS_INVALID_CONNECTION, 'RemoteAddress is NULL and the socket has no fixed remote address');
    }
  } else {
    const parsed = parseRemoteAddress(RemoteAddress, family);
    if (!parsed.ok) return failed(parsed.status, `RemoteAddress: ${parsed.reason}`);
    destination = parsed.destination;
  }

  const payload = buildBatch(BufferList, family);
  if (!payload.ok) return failed(payload.status, `BufferList: ${payload.reason}`);
  // WSK completes the IRP with the first error: the send stops at a refused datagram.
  const batch = batchOf(payload, destination, {
    family, segment: Socket.gso === true, continueOnError: false, controls,
  });

  let submitted: ReturnType<BatchSender['submit']>;
  try {
    submitted = Socket.submit(batch, (completion) => complete(Irp, outcomeOf(completion, batch)));
  } catch (error: unknown) {
    // Should not happen after the checks above; if it does, nothing was sent.
    return failed(STATUS_INVALID_PARAMETER, `the socket refused the batch: ${describeError(error)}`);
  }
  if (typeof submitted === 'object' && submitted !== null && 'pending' in submitted) {
    // The cancel routine takes the request out of the queue; its completion (above) then
    // reports STATUS_CANCELLED with the bytes already sent.
    IoSetCancelRoutine(Irp, () => submitted.cancel());
    return null;
  }
  return outcomeOf(submitted, batch);
}

/** The IRP's outcome for what the socket reported, immediate or queued. */
function outcomeOf(result: RawSendResult | SendCompletion, batch: Batch): Outcome {
  if (
    typeof result !== 'object' ||
    result === null ||
    !isCount(result.bytes) ||
    !isCount(result.datagrams) ||
    !Number.isSafeInteger(result.errno)
  ) {
    return failed(STATUS_UNSUCCESSFUL, 'the socket returned a malformed send result');
  }
  // Information counts bytes actually sent, never more than the batch holds.
  const information = Math.min(result.bytes, batch.totalBytes);
  const datagramsSent = Math.min(result.datagrams, batch.count);
  if ('cancelled' in result && result.cancelled) {
    return {
      status: STATUS_CANCELLED,
      information,
      failure: {
        reason: `cancelled after ${datagramsSent} of ${batch.count} datagrams`,
        errno: 0,
        code: '',
        syscall: '',
        datagramsSent,
      },
    };
  }
  if (result.errno === 0) return { status: STATUS_SUCCESS, information, failure: null };

  const errno = Math.abs(result.errno);
  const code = osErrorName(errno) ?? '';
  const syscall = typeof result.syscall === 'string' ? result.syscall : '';
  return {
    status: ntStatusFromOsError(errno),
    information,
    failure: {
      reason:
        `${syscall || 'send'} failed with ${code || `errno ${errno}`} ` +
        `after ${datagramsSent} of ${batch.count} datagrams`,
      errno,
      code,
      syscall,
      datagramsSent,
    },
  };
}
