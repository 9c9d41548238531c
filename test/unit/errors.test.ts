/** WskError's message and fields (lib/errors.ts), and which destination a send error names. */
import * as os from 'node:os';
import { buildAddressedBatch, buildBatch, buildFanOutBatch } from '../../lib/batch';
import { destinationAt, formatEndpoint, WskError } from '../../lib/errors';
import { abortError, readSignal } from '../../lib/abort';
import type { Destination } from '../../lib/transport';

const { ECONNREFUSED, ECANCELED, EBADF } = os.constants.errno;
const d = (address: string, port: number): Destination => ({ family: 4, address, port, scopeId: 0 });
const options = { family: 4 as const, segment: false, continueOnError: false, controls: undefined };
const data = (n: number): Uint8Array[] => Array.from({ length: n }, () => new Uint8Array(1));

test('a send error says where it stopped, as the message of the issue has it', () => {
  const error = new WskError(ECONNREFUSED, 'sendmmsg', { datagrams: 3, bytes: 300 }, { address: '127.0.0.1', port: 9 });
  expect(error.message).toBe('sendmmsg ECONNREFUSED (STATUS_CONNECTION_REFUSED) to 127.0.0.1:9 after 3 datagrams, 300 bytes');
  expect(error).toMatchObject({ address: '127.0.0.1', port: 9, code: 'ECONNREFUSED', datagramsSent: 3, bytesSent: 300 });
});

test('IPv6 destinations are bracketed; no destination, no address or port property', () => {
  expect(new WskError(ECONNREFUSED, 'sendmsg', undefined, { address: 'fd00::1', port: 443 }).message)
    .toBe('sendmsg ECONNREFUSED (STATUS_CONNECTION_REFUSED) to [fd00::1]:443');
  const plain = new WskError(EBADF, 'bind');
  expect(plain.message).toBe('bind EBADF (STATUS_INVALID_HANDLE)');
  expect(Object.keys(plain)).not.toContain('address');
  expect('port' in plain).toBe(false);
  expect(formatEndpoint('fe80::1%2', 1)).toBe('[fe80::1%2]:1');
});

test('an abort error carries the reason as cause and the counts', () => {
  const reason = new Error('user gave up');
  const signal = AbortSignal.abort(reason);
  const error = abortError(signal, { datagrams: 2, bytes: 20 }, { address: '198.18.0.2', port: 5 });
  expect(error).toMatchObject({ errno: ECANCELED, code: 'ECANCELED', statusName: 'STATUS_CANCELLED', syscall: 'abort', cause: reason });
  expect(error.message).toBe('abort ECANCELED (STATUS_CANCELLED) to 198.18.0.2:5 after 2 datagrams, 20 bytes');
  expect('cause' in new WskError(EBADF, 'close')).toBe(false);
});

test('destinationAt: one destination, each message its own, fan-out destination-major, connected, past the end', () => {
  const one = buildBatch(data(3), d('198.18.0.1', 1), options);
  expect(destinationAt(one, 2, null)).toEqual({ address: '198.18.0.1', port: 1 });
  const each = buildAddressedBatch(data(3), [d('198.18.0.1', 1), d('198.18.0.2', 2), d('198.18.0.1', 1)], options);
  expect([0, 1, 2].map((i) => destinationAt(each, i, null).port)).toEqual([1, 2, 1]);
  const fan = buildFanOutBatch(data(2), [d('198.18.0.1', 1), d('198.18.0.3', 3)], options);
  expect([0, 1, 2, 3].map((i) => destinationAt(fan, i, null).port)).toEqual([1, 1, 3, 3]);
  const connected = buildBatch(data(2), null, options);
  expect(destinationAt(connected, 1, d('198.18.0.9', 9))).toEqual({ address: '198.18.0.9', port: 9 });
  expect(destinationAt(connected, 1, null)).toEqual({});
  expect(destinationAt(one, 3, null)).toEqual({});
});

test('readSignal takes undefined or an AbortSignal, and names the option otherwise', () => {
  expect(readSignal(undefined)).toBeUndefined();
  const signal = new AbortController().signal;
  expect(readSignal(signal)).toBe(signal);
  expect(() => readSignal(null, 'options.signal')).toThrow(new TypeError('options.signal must be an AbortSignal'));
  expect(() => readSignal({ aborted: false })).toThrow(TypeError);
});
