import { describeError, describeValue } from '../../lib/describe';
import { buildBatch, type WSK_BUF_LIST } from '../../lib/wsk/buf';
import { encodeSockaddr } from '../../lib/wsk/sockaddr';
import { controlInt } from '../../lib/wsk/cmsg';
import { createSocket } from '../../lib';

// Objects whose conversion to a string throws: String(x) on them is a TypeError of its own.
const hostile: unknown[] = [
  { toString: {} },
  { toString: () => { throw new Error('boom'); } },
  { [Symbol.toPrimitive]: () => { throw new Error('boom'); } },
  Object.create(null),
  new Proxy({}, { get: () => { throw new Error('trap'); } }),
];

describe('describeValue', () => {
  test.each(hostile.map((value, i) => [i, value]))('never calls into value %i', (_i, value) => {
    expect(() => String(value)).toThrow();
    expect(describeValue(value)).toBe('an object');
  });

  test('primitives keep their text; long strings are summarised', () => {
    expect(describeValue(7)).toBe('7');
    expect(describeValue(10n)).toBe('10');
    expect(describeValue(undefined)).toBe('undefined');
    expect(describeValue(null)).toBe('null');
    expect(describeValue('udp5')).toBe('"udp5"');
    expect(describeValue('x'.repeat(41))).toBe('a string of 41 characters');
    expect(describeValue(Symbol('s'))).toBe('a symbol');
    expect(describeValue(() => 0)).toBe('a function');
  });

  test('describeError survives an error whose message getter throws', () => {
    const error = new Error('x');
    Object.defineProperty(error, 'message', { get: () => { throw new Error('no'); } });
    expect(describeError(error)).toBe('an error whose message could not be read');
    expect(describeError(new RangeError('plain'))).toBe('plain');
    expect(describeError({ toString: {} })).toBe('an object');
  });
});

describe('entries that print a bad value give their own error, not a conversion TypeError', () => {
  const odd = { toString: {} };

  test('buildBatch: an Offset whose toString is not callable is STATUS_INVALID_PARAMETER', () => {
    const result = buildBatch({ Buffer: { Offset: odd } } as unknown as WSK_BUF_LIST, 4);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.reason).toMatch(/Offset an object is not a ULONG/);
  });

  test('encodeSockaddr and controlInt throw RangeError/TypeError naming the field', () => {
    expect(() => encodeSockaddr({ family: 4, address: '127.0.0.1', port: odd } as never)).toThrow(RangeError);
    expect(() => encodeSockaddr({ family: odd, address: '127.0.0.1', port: 1 } as never)).toThrow(/family an object/);
    expect(() => controlInt(0, 1, odd as never)).toThrow(/value an object is not an INT/);
  });

  test('createSocket with a hostile type is a TypeError naming what it got', () => {
    // Its own key toString is not a createSocket option: the TypeError names it.
    expect(() => createSocket(odd as never)).toThrow(/unknown option "toString"/);
    expect(() => createSocket({ type: odd } as never)).toThrow(/got an object/);
  });
});
