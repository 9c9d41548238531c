import * as fs from 'node:fs';
import * as os from 'node:os';
import * as ntstatus from '../../lib/wsk/ntstatus';
import {
  ERRNO_TO_NTSTATUS,
  NT_ERROR,
  NT_INFORMATION,
  NT_SUCCESS,
  NT_WARNING,
  NtStatus,
  errnoName,
  ntStatusFromErrno,
  ntStatusFromErrnoNumber,
  ntStatusName,
} from '../../lib/wsk/ntstatus';

// Written out by hand from MinGW-w64's ntstatus.h, plus the two extras.
const EXPECTED: ReadonlyArray<[string, number]> = [
  ['STATUS_SUCCESS', 0x00000000],
  ['STATUS_PENDING', 0x00000103],
  ['STATUS_BUFFER_OVERFLOW', 0x80000005],
  ['STATUS_UNSUCCESSFUL', 0xc0000001],
  ['STATUS_ACCESS_VIOLATION', 0xc0000005],
  ['STATUS_INVALID_HANDLE', 0xc0000008],
  ['STATUS_INVALID_PARAMETER', 0xc000000d],
  ['STATUS_INVALID_DEVICE_REQUEST', 0xc0000010],
  ['STATUS_NO_MEMORY', 0xc0000017],
  ['STATUS_ACCESS_DENIED', 0xc0000022],
  ['STATUS_INSUFFICIENT_RESOURCES', 0xc000009a],
  ['STATUS_DEVICE_NOT_READY', 0xc00000a3],
  ['STATUS_IO_TIMEOUT', 0xc00000b5],
  ['STATUS_NOT_SUPPORTED', 0xc00000bb],
  ['STATUS_NETWORK_BUSY', 0xc00000bf],
  ['STATUS_CANCELLED', 0xc0000120],
  ['STATUS_INVALID_CONNECTION', 0xc0000140],
  ['STATUS_INVALID_ADDRESS', 0xc0000141],
  ['STATUS_INVALID_BUFFER_SIZE', 0xc0000206],
  ['STATUS_INVALID_ADDRESS_COMPONENT', 0xc0000207],
  ['STATUS_CONNECTION_RESET', 0xc000020d],
  ['STATUS_CONNECTION_REFUSED', 0xc0000236],
  ['STATUS_ADDRESS_ALREADY_ASSOCIATED', 0xc0000238],
  ['STATUS_NETWORK_UNREACHABLE', 0xc000023c],
  ['STATUS_HOST_UNREACHABLE', 0xc000023d],
  ['STATUS_PORT_UNREACHABLE', 0xc000023f],
  ['STATUS_CONNECTION_ABORTED', 0xc0000241],
];

describe('NTSTATUS constants', () => {
  const named = ntstatus as unknown as Record<string, unknown>;

  it.each(EXPECTED)('%s has its ntstatus.h value', (name, value) => {
    expect(named[name]).toBe(value);
    expect((NtStatus as Record<string, number>)[name]).toBe(value);
  });

  it('NtStatus holds exactly the expected names and is frozen', () => {
    expect(Object.keys(NtStatus).sort()).toEqual(EXPECTED.map(([name]) => name).sort());
    expect(Object.isFrozen(NtStatus)).toBe(true);
  });

  // Checked against the Windows header (Debian's mingw-w64-x86-64-dev, which .ci/run installs).
  // Outside CI, a machine without it skips this one visibly; in CI its absence is a failure.
  const header = ['/usr/share/mingw-w64/include/ntstatus.h', '/usr/x86_64-w64-mingw32/include/ntstatus.h'].find(
    (path) => fs.existsSync(path),
  );
  (header === undefined && !process.env.CI ? it.skip : it)('matches MinGW-w64 ntstatus.h', () => {
    if (header === undefined) throw new Error('ntstatus.h not found: apt-get install mingw-w64-x86-64-dev');
    const text = fs.readFileSync(header, 'latin1');
    for (const [name, value] of EXPECTED) {
      const match = new RegExp(`#define\\s+${name}\\s+\\(\\(NTSTATUS\\)\\s*(0x[0-9A-Fa-f]+)L?\\)`).exec(text);
      expect(match).not.toBeNull();
      expect(Number((match as RegExpExecArray)[1])).toBe(value);
    }
  });
});

describe('NT_* severity predicates (ntdef.h)', () => {
  it.each([
    // value, SUCCESS, INFORMATION, WARNING, ERROR
    ['success 0x00000000', 0x00000000, true, false, false, false],
    ['success 0x00000103 (PENDING)', 0x00000103, true, false, false, false],
    ['informational 0x40000000', 0x40000000, true, true, false, false],
    ['warning 0x80000005 (BUFFER_OVERFLOW)', 0x80000005, false, false, true, false],
    ['error 0xC0000236 (CONNECTION_REFUSED)', 0xc0000236, false, false, false, true],
  ])('%s', (_label, value, success, information, warning, error) => {
    expect(NT_SUCCESS(value)).toBe(success);
    expect(NT_INFORMATION(value)).toBe(information);
    expect(NT_WARNING(value)).toBe(warning);
    expect(NT_ERROR(value)).toBe(error);
  });

  it('reads a signed (negative) spelling the same as the unsigned one', () => {
    expect(NT_SUCCESS(-1073741823)).toBe(false); // 0xC0000001 as a LONG
    expect(NT_ERROR(-1073741823)).toBe(true);
  });
});

describe('ntStatusName', () => {
  it('names known values', () => {
    expect(ntStatusName(0xc0000236)).toBe('STATUS_CONNECTION_REFUSED');
    expect(ntStatusName(0)).toBe('STATUS_SUCCESS');
    expect(ntStatusName(0x80000005)).toBe('STATUS_BUFFER_OVERFLOW');
  });

  it('spells unknown values as 8 upper-case hex digits', () => {
    expect(ntStatusName(0xc0001234)).toBe('0xC0001234');
    expect(ntStatusName(0x1)).toBe('0x00000001');
    expect(ntStatusName(-1)).toBe('0xFFFFFFFF');
  });
});

describe('ERRNO_TO_NTSTATUS', () => {
  it('every key is a real errno name of this platform (catches typos)', () => {
    const real = Object.keys(os.constants.errno);
    for (const key of Object.keys(ERRNO_TO_NTSTATUS)) expect(real).toContain(key);
  });

  it.each([
    ['EPERM', 0xc0000022],
    ['EACCES', 0xc0000022],
    ['EFAULT', 0xc0000005],
    ['EBADF', 0xc0000008],
    ['ENOTSOCK', 0xc0000008],
    ['EINVAL', 0xc000000d],
    ['ENOPROTOOPT', 0xc000000d],
    ['EDESTADDRREQ', 0xc000000d],
    ['ENOMEM', 0xc0000017],
    ['ENOBUFS', 0xc000009a],
    ['EAGAIN', 0xc00000a3],
    ['EWOULDBLOCK', 0xc00000a3],
    ['EOPNOTSUPP', 0xc00000bb],
    ['ENOTSUP', 0xc00000bb],
    ['EAFNOSUPPORT', 0xc00000bb],
    ['ENETDOWN', 0xc00000bf],
    ['ECANCELED', 0xc0000120],
    ['ENOTCONN', 0xc0000140],
    ['EMSGSIZE', 0xc0000206],
    ['EADDRNOTAVAIL', 0xc0000207],
    ['ECONNRESET', 0xc000020d],
    ['EPIPE', 0xc000020d],
    ['ECONNREFUSED', 0xc0000236],
    ['EADDRINUSE', 0xc0000238],
    ['ENETUNREACH', 0xc000023c],
    ['EHOSTUNREACH', 0xc000023d],
    ['ECONNABORTED', 0xc0000241],
    ['ETIMEDOUT', 0xc00000b5],
  ])('%s maps to its NTSTATUS', (code, status) => {
    expect(ERRNO_TO_NTSTATUS[code]).toBe(status);
    expect(ntStatusFromErrno(code)).toBe(status);
  });

  it('has no entries beyond the documented ones', () => {
    expect(Object.keys(ERRNO_TO_NTSTATUS)).toHaveLength(28);
  });

  it('is frozen', () => {
    expect(Object.isFrozen(ERRNO_TO_NTSTATUS)).toBe(true);
  });

  it('maps EMSGSIZE to an error, not the BUFFER_OVERFLOW warning', () => {
    expect(NT_ERROR(ntStatusFromErrno('EMSGSIZE'))).toBe(true);
  });

  it('maps unknown names, prototype keys and non-strings to STATUS_UNSUCCESSFUL', () => {
    expect(ntStatusFromErrno('ENOSUCHTHING')).toBe(0xc0000001);
    expect(ntStatusFromErrno('EIO')).toBe(0xc0000001);
    expect(ntStatusFromErrno('toString')).toBe(0xc0000001);
    expect(ntStatusFromErrno('__proto__')).toBe(0xc0000001);
    expect(ntStatusFromErrno(42 as unknown as string)).toBe(0xc0000001);
  });
});

describe('errno numbers', () => {
  const { errno } = os.constants;

  it('names the numbers the native send reports', () => {
    expect(errnoName(errno.ECONNREFUSED)).toBe('ECONNREFUSED');
    expect(errnoName(-errno.ECONNREFUSED)).toBe('ECONNREFUSED');
    expect(errnoName(errno.EAGAIN)).toBe('EAGAIN');
  });

  it('maps EOPNOTSUPP by number although Node calls it ENOTSUP on Linux', () => {
    expect(ntStatusFromErrnoNumber(errno.EOPNOTSUPP)).toBe(0xc00000bb);
  });

  it('maps every table entry by its number', () => {
    const table = errno as Record<string, number>;
    for (const [code, status] of Object.entries(ERRNO_TO_NTSTATUS)) {
      expect([code, ntStatusFromErrnoNumber(table[code] as number)]).toEqual([code, status]);
    }
  });

  it('gives STATUS_SUCCESS for 0 and STATUS_UNSUCCESSFUL for unknown or odd numbers', () => {
    expect(ntStatusFromErrnoNumber(0)).toBe(0);
    expect(ntStatusFromErrnoNumber(99999)).toBe(0xc0000001);
    expect(ntStatusFromErrnoNumber(1.5)).toBe(0xc0000001);
    expect(ntStatusFromErrnoNumber(Number.NaN)).toBe(0xc0000001);
    expect(errnoName(0)).toBeUndefined();
    expect(errnoName(99999)).toBeUndefined();
  });

  it('still names errnos that are outside the table (EIO) so diagnostics can show them', () => {
    expect(errnoName(errno.EIO)).toBe('EIO');
    expect(ntStatusFromErrnoNumber(errno.EIO)).toBe(0xc0000001);
  });
});
