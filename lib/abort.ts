/**
 * AbortSignal support shared by the send and receive calls. An abort cancels the way WSK's
 * IoCancelIrp does (the request completes with STATUS_CANCELLED and the counts of what it had
 * done), so it rejects with the same WskError a close gives: code ECANCELED, status
 * STATUS_CANCELLED, `datagramsSent`/`bytesSent`, and `cause` = `signal.reason`. One error for
 * every cancellation, carrying the counts, rather than Node's AbortError, which has no place
 * for them.
 */
import * as os from 'node:os';
import { WskError, type WskErrorDetails } from './errors';

const { ECANCELED } = os.constants.errno;

/** The `signal` option: undefined, or an AbortSignal; a TypeError for anything else. */
export function readSignal(value: unknown, name = 'signal'): AbortSignal | undefined {
  if (value === undefined) return undefined;
  // Duck-typed as Node's own validateAbortSignal does, so a signal of another realm passes.
  if (typeof value !== 'object' || value === null || !('aborted' in value) ||
    typeof (value as { addEventListener?: unknown }).addEventListener !== 'function') {
    throw new TypeError(`${name} must be an AbortSignal`);
  }
  return value as AbortSignal;
}

/** The rejection of a request cancelled by `signal`, with what it had sent. */
export function abortError(signal: AbortSignal, sent = { datagrams: 0, bytes: 0 },
  destination: Pick<WskErrorDetails, 'address' | 'port'> = {}): WskError {
  return new WskError(ECANCELED, 'abort', sent, { ...destination, cause: signal.reason });
}

/**
 * Calls `onAbort` once when `signal` aborts; returns the function that removes the listener
 * (call it when the request settles, so that a long-lived signal collects no listeners).
 */
export function onAbort(signal: AbortSignal | undefined, onAbort: () => void): () => void {
  if (signal === undefined) return () => undefined;
  signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}
