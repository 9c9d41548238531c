/**
 * IRP: the I/O request packet through which a WSK function reports its final status, reduced
 * to what WSK clients use: IoStatus, a completion routine with a context, cancellation, and a
 * promise for JavaScript callers.
 */

import { NT_SUCCESS, STATUS_PENDING, ntStatusName, type NTSTATUS } from './ntstatus';

/**
 * Mirrors Windows' `IO_STATUS_BLOCK`: the final status of a request and, for a send, the
 * number of bytes sent (`Information`, a ULONG_PTR in Windows, a byte count here).
 */
export interface IO_STATUS_BLOCK {
  Status: NTSTATUS;
  Information: number;
}

/**
 * Mirrors Windows' `IO_COMPLETION_ROUTINE` (`DeviceObject` is always null here: there is no
 * device stack). Windows' routine returns an NTSTATUS (STATUS_MORE_PROCESSING_REQUIRED to keep
 * a reusable IRP); here the IRP is never freed for you, so the routine returns nothing.
 */
export type IO_COMPLETION_ROUTINE<C> = (DeviceObject: null, Irp: IRP, Context: C) => void;

/** Mirrors Windows' `DRIVER_CANCEL`: called by {@link IoCancelIrp} to cancel a pending IRP. */
export type DRIVER_CANCEL = (DeviceObject: null, Irp: IRP) => void;

/**
 * What the WSK layer saw when a request failed, kept on the IRP for diagnostics and error
 * messages. No Windows counterpart (Windows keeps only the NTSTATUS).
 */
export interface WSK_FAILURE_INFO {
  /** Human-readable cause, e.g. "datagram 3: Length 70000 is more than ...". */
  readonly reason: string;
  /** OS error number the native send reported (POSIX errno value), or 0 for a check made in TS. */
  readonly errno: number;
  /** errno code name (`'ECONNREFUSED'`), or '' when `errno` is 0 or has no name. */
  readonly code: string;
  /** System call that failed (`'sendmmsg'`, ...), or '' for a check made in TS. */
  readonly syscall: string;
  /** Datagrams the kernel accepted before the failure (they were sent). */
  readonly datagramsSent: number;
}

/** Library-private state of an IRP, kept out of the public object. */
interface IrpInternals {
  completed: boolean;
  resolve: (status: Readonly<IO_STATUS_BLOCK>) => void;
  /** Completion routine bound to its context and Invoke flags. */
  completionRoutine: ((Irp: IRP) => void) | null;
}

const internals = new WeakMap<IRP, IrpInternals>();

function internalsOf(Irp: IRP): IrpInternals {
  const state = internals.get(Irp);
  if (state === undefined) throw new TypeError('not an IRP made by IoAllocateIrp');
  return state;
}

/**
 * Mirrors Windows' `IRP`, for the fields a WSK client touches. Make one with
 * {@link IoAllocateIrp}, optionally set a completion routine with
 * {@link IoSetCompletionRoutine}, pass it to a WSK function, then read `IoStatus` in the
 * routine or await `promise`. An IRP completes exactly once; it cannot be reused.
 */
export class IRP {
  /**
   * Mirrors `Irp->IoStatus`: final status and byte count, valid once `completed` is true.
   * Before completion it reads STATUS_PENDING / 0.
   */
  IoStatus: IO_STATUS_BLOCK = { Status: STATUS_PENDING, Information: 0 };

  /** Mirrors `Irp->Cancel`: set by {@link IoCancelIrp} on an IRP that has not completed yet. */
  Cancel = false;

  /**
   * Mirrors `Irp->CancelRoutine` (set it with {@link IoSetCancelRoutine}): what
   * {@link IoCancelIrp} calls. The WSK layer sets it while an IRP is pending; it is cleared
   * when the IRP completes or the routine is called.
   */
  CancelRoutine: DRIVER_CANCEL | null = null;

  /**
   * Details of the failure the IRP completed with (set just before completion, so the
   * completion routine sees it), or null. No Windows counterpart.
   */
  FailureInfo: WSK_FAILURE_INFO | null = null;

  /**
   * Resolves with a frozen copy of `IoStatus` once the IRP has completed (after the completion
   * routine ran). Never rejects: failures are NTSTATUS values, test them with NT_SUCCESS.
   */
  readonly promise: Promise<Readonly<IO_STATUS_BLOCK>>;

  /** Prefer {@link IoAllocateIrp}, which says what it mirrors. */
  constructor() {
    let resolve: ((status: Readonly<IO_STATUS_BLOCK>) => void) | undefined;
    this.promise = new Promise<Readonly<IO_STATUS_BLOCK>>((r) => {
      resolve = r;
    });
    internals.set(this, {
      completed: false,
      resolve: resolve as (status: Readonly<IO_STATUS_BLOCK>) => void,
      completionRoutine: null,
    });
  }

  /**
   * True once the IRP has completed, already inside its completion routine. (Windows has no
   * such field: there a completed IRP simply belongs to its owner again.)
   */
  get completed(): boolean {
    return internalsOf(this).completed;
  }
}

/**
 * Mirrors `IoAllocateIrp(StackSize, ChargeQuota)`: a fresh IRP, not completed, with no
 * completion or cancel routine. Cannot fail (Windows can return NULL).
 */
export function IoAllocateIrp(): IRP {
  return new IRP();
}

/**
 * Mirrors `IoSetCompletionRoutine(Irp, CompletionRoutine, Context, InvokeOnSuccess,
 * InvokeOnError, InvokeOnCancel)`: `CompletionRoutine(null, Irp, Context)` runs when the IRP
 * completes, if the status matches the Invoke flags (all true by default), as in Windows:
 * on success when NT_SUCCESS(Status), on error when !NT_SUCCESS(Status), on cancel when
 * `Irp.Cancel` is set. A second call replaces the routine. Throws an Error if the IRP has
 * already completed.
 *
 * As in Windows, the routine may run INSIDE the WSK call that was given the IRP, when that
 * call completes it at once (every immediate failure, and an immediate success).
 */
export function IoSetCompletionRoutine<C>(
  Irp: IRP,
  CompletionRoutine: IO_COMPLETION_ROUTINE<C> | null,
  Context: C,
  InvokeOnSuccess = true,
  InvokeOnError = true,
  InvokeOnCancel = true,
): void {
  const state = internalsOf(Irp);
  if (state.completed) throw new Error('IoSetCompletionRoutine: the IRP has already completed');
  if (CompletionRoutine === null) {
    state.completionRoutine = null;
    return;
  }
  state.completionRoutine = (irp: IRP): void => {
    const status = irp.IoStatus.Status;
    const invoke =
      (NT_SUCCESS(status) && InvokeOnSuccess) ||
      (!NT_SUCCESS(status) && InvokeOnError) ||
      (irp.Cancel && InvokeOnCancel);
    if (invoke) CompletionRoutine(null, irp, Context);
  };
}

/**
 * Mirrors `IoSetCancelRoutine(Irp, CancelRoutine)`: sets `Irp.CancelRoutine` (null clears
 * it) and returns the previous one. For the WSK layer's pending path.
 */
export function IoSetCancelRoutine(Irp: IRP, CancelRoutine: DRIVER_CANCEL | null): DRIVER_CANCEL | null {
  const previous = Irp.CancelRoutine;
  Irp.CancelRoutine = CancelRoutine;
  return previous;
}

/**
 * Mirrors `IoCancelIrp(Irp)`: returns false if the IRP has completed or has no cancel routine
 * (nothing to cancel: Windows also returns FALSE then). Otherwise sets `Irp.Cancel`, clears
 * `Irp.CancelRoutine`, calls it with `(null, Irp)` and returns true; the cancel routine is
 * expected to complete the IRP with STATUS_CANCELLED (possibly later).
 */
export function IoCancelIrp(Irp: IRP): boolean {
  if (Irp.completed) return false;
  Irp.Cancel = true;
  const routine = IoSetCancelRoutine(Irp, null);
  if (routine === null) return false;
  routine(null, Irp);
  return true;
}

/**
 * INTERNAL to the WSK layer (not exported from lib/wsk/index.ts). Mirrors setting
 * `Irp->IoStatus` then `IoCompleteRequest(Irp, IO_NO_INCREMENT)`: records Status and
 * Information, clears the cancel routine, runs the completion routine synchronously, then
 * resolves `Irp.promise`.
 *
 * Completes EXACTLY once: a second call throws an Error (a bug in the library, not a user
 * error). An exception thrown by the completion routine does not stop completion: the promise
 * still resolves, and the exception is rethrown from `process.nextTick`, so it reaches
 * `process.on('uncaughtException')` like an exception from any callback instead of vanishing
 * or unwinding into the WSK call.
 */
export function IoCompleteRequest(Irp: IRP, Status: NTSTATUS, Information: number): void {
  const state = internalsOf(Irp);
  if (state.completed) {
    throw new Error(
      `IoCompleteRequest: IRP completed twice (first ${ntStatusName(Irp.IoStatus.Status)}, ` +
        `now ${ntStatusName(Status)})`,
    );
  }
  state.completed = true;
  Irp.IoStatus.Status = Status >>> 0;
  Irp.IoStatus.Information = Information;
  Irp.CancelRoutine = null;
  const snapshot: Readonly<IO_STATUS_BLOCK> = Object.freeze({ Status: Status >>> 0, Information });
  const routine = state.completionRoutine;
  state.completionRoutine = null;
  try {
    if (routine !== null) routine(Irp);
  } catch (error: unknown) {
    process.nextTick(() => {
      throw error;
    });
  }
  state.resolve(snapshot);
}
