/**
 * What a send reports, from the native form to the public one: one place for UdpSocket, the
 * send queue and the node:dgram wrapper.
 */
import type { Batch } from './batch';
import type { SendFailure, SendResult } from './socket';
import type { RawFailure } from './transport';
import { ntStatusFromOsError, osErrorName } from './wsk/wsa';

/** The native failures (flat pairs: window index, errno; null without continueOnError) as objects. */
export function rawFailures(flat: readonly number[] | null): RawFailure[] {
  const failures: RawFailure[] = [];
  if (flat !== null) {
    for (let i = 0; i + 1 < flat.length; i += 2) failures.push({ index: flat[i]!, errno: flat[i + 1]! });
  }
  return failures;
}

/** A send's public result: each failure with its code, NTSTATUS and destination. */
export function sendResult(batch: Batch, datagrams: number, bytes: number, segments: number,
  failures: readonly RawFailure[]): SendResult {
  return {
    datagrams, bytes, segments,
    failures: failures.map((failure): SendFailure => {
      const code = osErrorName(failure.errno) ?? `E${failure.errno}`;
      const status = ntStatusFromOsError(failure.errno);
      const endpoint = batch.endpoints[batch.targets === null ? 0 : batch.targets[failure.index]!];
      return endpoint === undefined
        ? { index: failure.index, code, errno: failure.errno, status }
        : { index: failure.index, code, errno: failure.errno, status, address: endpoint.address, port: endpoint.port };
    }),
  };
}
