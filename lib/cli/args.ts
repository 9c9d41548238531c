/**
 * Command-line parsing shared by the subcommands: util.parseArgs in strict mode (an unknown flag
 * is a usage error, exit status 2), and the value forms the flags take (integers, SI suffixes,
 * HOST:PORT).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A mistake in the command line: printed with a pointer to --help, exit status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** Parses `argv` against `options` (strict: unknown flags and stray arguments are errors). */
export function parseFlags<T extends Options>(argv: readonly string[], options: T): ReturnType<typeof parseArgs<{ options: T; args: string[]; strict: true; allowPositionals: false }>>['values'] {
  try {
    return parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** An integer from `min` to `max` (decimal digits, optionally with a k/M/G suffix). */
export function integerFlag(text: string, name: string, min: number, max: number): number {
  const value = quantity(text, name);
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`);
  }
  return value;
}

/** A positive number of seconds, e.g. 3 or 0.5. */
export function secondsFlag(text: string, name: string): number {
  const value = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !(value > 0) || value > 1e7) {
    throw new UsageError(`--${name} must be a number of seconds above 0, got ${JSON.stringify(text)}`);
  }
  return value;
}

const SUFFIX: Record<string, number> = { '': 1, k: 1e3, K: 1e3, m: 1e6, M: 1e6, g: 1e9, G: 1e9 };

/** A positive number with an optional SI suffix: 250000, 250k, 1.5M, 10G. */
export function quantity(text: string, name: string): number {
  const match = /^(\d+(?:\.\d+)?)([kKmMgG]?)$/.exec(text);
  if (match === null) throw new UsageError(`--${name} must be a number (suffixes k, M, G allowed), got ${JSON.stringify(text)}`);
  const value = Number(match[1]) * SUFFIX[match[2]!]!;
  // 1.5k is 1500: round away the binary fraction of the multiplication.
  return Math.round(value * 1e6) / 1e6;
}

/** HOST:PORT, with an IPv6 literal in brackets: 127.0.0.1:9000, [::1]:9000. */
export function hostPort(text: string, name: string): { host: string; port: number; family: 4 | 6 } {
  const match = /^\[([0-9a-fA-F:.%\w]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]]+):(\d+)$/.exec(text);
  if (match === null) throw new UsageError(`--${name} must be HOST:PORT (IPv6 as [ADDR]:PORT), got ${JSON.stringify(text)}`);
  const port = Number(match[2]);
  if (port < 1 || port > 65535) throw new UsageError(`--${name}: port must be 1..65535, got ${match[2]}`);
  const host = match[1]!;
  return { host: host === 'localhost' ? '127.0.0.1' : host, port, family: host.includes(':') ? 6 : 4 };
}

/** A number with thousands separators: 1,234,567. */
export function grouped(value: number): string {
  return Math.round(value).toLocaleString('en-US');
}

/** Gbit/s of `bytes` payload over `seconds`. */
export function gbit(bytes: number, seconds: number): number {
  return seconds > 0 ? (bytes * 8) / seconds / 1e9 : 0;
}

/** Payload bytes in a short human form: 12.3 MB. */
export function shortBytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(1)} MB`;
  if (bytes >= 1e3) return `${(bytes / 1e3).toFixed(1)} kB`;
  return `${bytes} B`;
}
