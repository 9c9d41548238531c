import { types } from 'node:util';

/**
 * Text for a caller's value in an error message. It never calls anything on the value: `String()`
 * runs a caller's `toString`/`Symbol.toPrimitive`, which can throw or answer differently each time.
 */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'number':
    case 'bigint':
    case 'boolean':
    case 'undefined':
      return String(value);
    case 'string':
      return value.length <= 40 ? JSON.stringify(value) : `a string of ${value.length} characters`;
    case 'symbol':
      return 'a symbol';
    case 'function':
      return 'a function';
    default:
      return value === null ? 'null' : 'an object';
  }
}

/** The message of a caught value; never throws, whatever was thrown. */
export function describeError(error: unknown): string {
  try {
    // isNativeError: also errors of another realm (a vm context, jest's sandbox, the addon's).
    if (types.isNativeError(error) || error instanceof Error) {
      const message: unknown = (error).message;
      return typeof message === 'string' ? message : describeValue(message);
    }
  } catch {
    return 'an error whose message could not be read';
  }
  return describeValue(error);
}
