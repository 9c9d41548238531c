/**
 * lib/wsk/wsa.ts: the WSA code -> NTSTATUS table. Codes are checked against MinGW-w64's
 * winerror.h / winsock2.h (Debian's mingw-w64-x86-64-dev, which .ci/run installs; outside CI a
 * machine without it skips that test visibly), NTSTATUS partners against the errno table, and
 * the platform-aware helpers for both win32 and Linux.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  ERRNO_TO_NTSTATUS,
  STATUS_ACCESS_DENIED,
  STATUS_CONNECTION_REFUSED,
  STATUS_DEVICE_NOT_READY,
  STATUS_INVALID_BUFFER_SIZE,
  STATUS_INVALID_HANDLE,
  STATUS_NOT_SUPPORTED,
  STATUS_SUCCESS,
  STATUS_UNSUCCESSFUL,
  ntStatusFromErrnoNumber,
  errnoName,
} from '../../lib/wsk/ntstatus';
import {
  WSA_ERRORS,
  ntStatusFromOsError,
  ntStatusFromWsaCode,
  osErrorName,
  wsaError,
} from '../../lib/wsk/wsa';

const MINGW_DIRS = ['/usr/share/mingw-w64/include', '/usr/x86_64-w64-mingw32/include'];
const mingwDir = MINGW_DIRS.find((dir) => fs.existsSync(path.join(dir, 'winerror.h')));

/**
 * Every `#define NAME value` of the given headers, and an evaluator for the forms winerror.h and
 * winsock2.h use: `10035L`, `(WSABASEERR + 35)`, `(ERROR_OPERATION_ABORTED)`,
 * `__MSABI_LONG(995)` (a cast to LONG).
 */
function headerDefines(files: readonly string[]): (name: string) => number | undefined {
  const table = new Map<string, string>();
  for (const file of files) {
    const text = fs.readFileSync(file, 'latin1');
    for (const m of text.matchAll(/^[ \t]*#[ \t]*define[ \t]+(\w+)[ \t]+([^\r\n]*?)[ \t]*(?:\/[*/].*)?$/gm)) {
      if (!table.has(m[1]!)) table.set(m[1]!, m[2]!);
    }
  }
  const evaluate = (name: string, depth: number): number | undefined => {
    const body = table.get(name);
    if (body === undefined || depth > 8) return undefined;
    const terms = body.replace(/__MSABI_LONG/g, '').replace(/[()\s]/g, '').split('+');
    let sum = 0;
    for (const term of terms) {
      const literal = /^(0[xX][0-9A-Fa-f]+|\d+)[uUlL]*$/.exec(term);
      if (literal) {
        sum += Number(literal[1]);
        continue;
      }
      if (!/^\w+$/.test(term)) return undefined;
      const value = evaluate(term, depth + 1);
      if (value === undefined) return undefined;
      sum += value;
    }
    return sum;
  };
  return (name) => evaluate(name, 0);
}

describe('WSA_ERRORS', () => {
  (mingwDir === undefined && !process.env.CI ? it.skip : it)(
    'has the values of MinGW-w64 winerror.h / winsock2.h',
    () => {
      if (mingwDir === undefined) throw new Error('winerror.h not found: apt-get install mingw-w64-x86-64-dev');
      const value = headerDefines([path.join(mingwDir, 'winsock2.h'), path.join(mingwDir, 'winerror.h')]);
      for (const entry of WSA_ERRORS) expect([entry.name, value(entry.name)]).toEqual([entry.name, entry.code]);
    },
  );

  it('pairs each code with the NTSTATUS its errno partner has on Linux', () => {
    for (const entry of WSA_ERRORS) {
      expect([entry.name, entry.errno, entry.status]).toEqual([entry.name, entry.errno, ERRNO_TO_NTSTATUS[entry.errno]]);
    }
  });

  it('has one entry per code and per name', () => {
    expect(new Set(WSA_ERRORS.map((e) => e.code)).size).toBe(WSA_ERRORS.length);
    expect(new Set(WSA_ERRORS.map((e) => e.name)).size).toBe(WSA_ERRORS.length);
  });

  it.each([
    [10035, STATUS_DEVICE_NOT_READY],
    [10040, STATUS_INVALID_BUFFER_SIZE],
    [10013, STATUS_ACCESS_DENIED],
    [10038, STATUS_INVALID_HANDLE],
    [10045, STATUS_NOT_SUPPORTED],
    [10061, STATUS_CONNECTION_REFUSED],
    [0, STATUS_SUCCESS],
    [10093, STATUS_UNSUCCESSFUL], // WSANOTINITIALISED: not in the table
  ])('ntStatusFromWsaCode(%i)', (code, status) => {
    expect(ntStatusFromWsaCode(code)).toBe(status);
  });
});

describe('platform-aware mapping', () => {
  it('on win32 reads WSA codes, and still names libuv / C runtime codes as errno', () => {
    expect(osErrorName(10040, 'win32')).toBe('EMSGSIZE');
    expect(ntStatusFromOsError(10040, 'win32')).toBe(STATUS_INVALID_BUFFER_SIZE);
    expect(ntStatusFromOsError(995, 'win32')).toBe(wsaError(995)?.status);
    // A non-WSA code falls through to the errno path.
    expect(osErrorName(1, 'win32')).toBe(errnoName(1));
  });

  it('elsewhere leaves every code to the errno table', () => {
    for (const code of [1, 11, 13, 22, 90, 111, 10035, 10040]) {
      expect(osErrorName(code, 'linux')).toBe(errnoName(code));
      expect(ntStatusFromOsError(code, 'linux')).toBe(ntStatusFromErrnoNumber(code));
    }
  });

});
