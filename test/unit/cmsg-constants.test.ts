/**
 * The numbers of lib/wsk/cmsg.ts against the C headers on this machine: Windows ones against
 * MinGW-w64's (Debian's mingw-w64-x86-64-dev, which .ci/run installs), Linux ones against the
 * kernel's uapi headers and glibc's. No expected number is written here: each is read from the
 * header text. Outside CI a machine without a header skips its test visibly; in CI (process.env.CI
 * set) a missing header is a failure.
 */

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as cmsg from '../../lib/wsk/cmsg';

const named = cmsg as unknown as Record<string, unknown>;

function firstExisting(candidates: readonly string[]): string | undefined {
  return candidates.find((candidate) => fs.existsSync(candidate));
}

/** `it`, or `it.skip` when the header is missing outside CI (in CI the test runs and fails). */
function itWithHeader(found: string | undefined): jest.It {
  return found === undefined && !process.env.CI ? it.skip : it;
}

function read(file: string | undefined, what: string, pkg: string): string {
  if (file === undefined) throw new Error(`${what} not found: apt-get install ${pkg}`);
  return fs.readFileSync(file, 'latin1');
}

/** Like `expect(text).toMatch(pattern)`, without printing a whole header on failure. */
function expectMatch(text: string, pattern: RegExp): void {
  expect(pattern.test(text) ? 'matched' : `no match for ${String(pattern)}`).toBe('matched');
}

function escape(name: string): string {
  return name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Every value `#define NAME <integer>` gives NAME in `text` (decimal or hex). */
function defines(text: string, name: string): number[] {
  // `#define NAME 19`, `#define NAME (0x13)`, `#define NAME 19 /* comment */`; not `#define NAME OTHER`.
  const value = '\\(?[ \\t]*(0[xX][0-9A-Fa-f]+|\\d+)[uUlL]*[ \\t]*\\)?';
  const pattern = new RegExp(`^[ \\t]*#[ \\t]*define[ \\t]+${escape(name)}[ \\t]+${value}[ \\t]*(?:/[*/].*)?$`, 'gm');
  return [...text.matchAll(pattern)].map((m) => Number(m[1]));
}

/** Every value an enum entry `NAME = <integer>` gives NAME in `text`. */
function enumEntries(text: string, name: string): number[] {
  const pattern = new RegExp(`^[ \\t]*${escape(name)}[ \\t]*=[ \\t]*(0[xX][0-9A-Fa-f]+|\\d+)[ \\t]*,`, 'gm');
  return [...text.matchAll(pattern)].map((m) => Number(m[1]));
}

// ---------------------------------------------------------------------------------------------
// Windows: MinGW-w64

const MINGW_DIRS = ['/usr/share/mingw-w64/include', '/usr/x86_64-w64-mingw32/include'];
const mingwDir = MINGW_DIRS.find((dir) => fs.existsSync(path.join(dir, 'ws2ipdef.h')));
const mingw = (file: string): string => read(mingwDir && path.join(mingwDir, file), file, 'mingw-w64-x86-64-dev');

describe('Windows constants against MinGW-w64 headers', () => {
  // The Windows SDK declares IPPROTO_* as an enum in ws2def.h; MinGW-w64's ws2def.h is a stub and
  // has them as #defines in winsock2.h. Both spellings are accepted, from either file.
  itWithHeader(mingwDir)('IPPROTO_IP, IPPROTO_IPV6, IPPROTO_UDP (ws2def.h enum / winsock2.h #define)', () => {
    const text = mingw('ws2def.h') + '\n' + mingw('winsock2.h');
    for (const name of ['IPPROTO_IP', 'IPPROTO_IPV6', 'IPPROTO_UDP']) {
      const values = [...defines(text, name), ...enumEntries(text, name)];
      expect([name, values.length > 0]).toEqual([name, true]);
      for (const value of values) expect([name, named[name]]).toEqual([name, value]);
    }
  });

  // Only ws2ipdef.h: Winsock 1.1's winsock.h has other, obsolete numbers (IP_TOS 8, IP_TTL 7).
  const WS2IPDEF = ['IP_TOS', 'IP_TTL', 'IP_PKTINFO', 'IP_ECN'].concat(
    ['IPV6_HOPLIMIT', 'IPV6_PKTINFO', 'IPV6_TCLASS', 'IPV6_ECN'],
  );
  itWithHeader(mingwDir).each(WS2IPDEF)('%s (ws2ipdef.h)', (name) => {
    const values = defines(mingw('ws2ipdef.h'), name);
    expect(values).toHaveLength(1);
    expect(named[name]).toBe(values[0]);
  });

  itWithHeader(mingwDir)('UDP_SEND_MSG_SIZE: from the header if it has it, else the Windows SDK value', () => {
    const files = ['ws2def.h', 'ws2ipdef.h', 'ws2tcpip.h', 'winsock2.h', 'mswsock.h'];
    const values = files.flatMap((file) => defines(mingw(file), 'UDP_SEND_MSG_SIZE'));
    if (values.length > 0) {
      for (const value of values) expect(cmsg.UDP_SEND_MSG_SIZE).toBe(value);
    } else {
      // Absent from MinGW-w64's headers. The Windows SDK (10.0.19041+) ws2ipdef.h
      // has, under "Options to use with [gs]etsockopt at the IPPROTO_UDP level":
      //   #define UDP_SEND_MSG_SIZE           2
      // and MsQuic's kernel datapath passes it as a WskSendMessages control.
      expect(cmsg.UDP_SEND_MSG_SIZE).toBe(2);
    }
  });

  itWithHeader(mingwDir)('IN_PKTINFO and IN6_PKTINFO sizes (ws2tcpip.h C_ASSERTs) and field order', () => {
    const text = mingw('ws2tcpip.h');
    const size = (type: string): number[] =>
      [...text.matchAll(new RegExp(`C_ASSERT\\(sizeof\\(${type}\\)\\s*==\\s*(\\d+)\\)`, 'g'))].map((m) => Number(m[1]));
    expect(size('IN_PKTINFO')).toEqual([cmsg.IN_PKTINFO_SIZE]);
    expect(size('IN6_PKTINFO')).toEqual([cmsg.IN6_PKTINFO_SIZE]);
    // Address first, then the interface index: what controlInPktinfo / controlIn6Pktinfo write.
    expectMatch(text, /struct in_pktinfo\s*\{\s*IN_ADDR ipi_addr;\s*UINT ipi_ifindex;\s*\}/);
    expectMatch(text, /struct in6_pktinfo\s*\{\s*IN6_ADDR ipi6_addr;\s*UINT ipi6_ifindex;\s*\}/);
  });

  itWithHeader(mingwDir)('WSACMSGHDR layout and the WSA_CMSG_* macros (mswsock.h)', () => {
    const text = mingw('mswsock.h');
    // SIZE_T (8 on x64) + INT + INT = 16 bytes, in this order.
    expectMatch(text, /struct _WSACMSGHDR\s*\{\s*SIZE_T cmsg_len;\s*INT cmsg_level;\s*INT cmsg_type;\s*\}/);
    const macro = (name: string): string => {
      const m = new RegExp(`#define ${name}\\((\\w+)\\) (.*)$`, 'm').exec(text);
      if (m === null) throw new Error(`${name} not in mswsock.h`);
      return (m[2] as string).replace(new RegExp(`\\b${m[1] as string}\\b`, 'g'), 'n');
    };
    // Evaluate the macros for x64: sizeof(WSACMSGHDR) 16, TYPE_ALIGNMENT 8, MAX_NATURAL_ALIGNMENT 8.
    const evaluate = (body: string, n: number): number => {
      const expanded = body
        .replace(/WSA_CMSGDATA_ALIGN/g, 'ALIGN')
        .replace(/WSA_CMSGHDR_ALIGN/g, 'ALIGN')
        .replace(/sizeof\(WSACMSGHDR\)/g, '16')
        .replace(/\bn\b/g, String(n));
      const ALIGN = (x: number): number => (x + 7) & ~7;
      // The expanded text is plain arithmetic on numbers and ALIGN(...).
      expect(expanded).toMatch(/^[\sALIGN()+\d]+$/);
      return new Function('ALIGN', `return ${expanded};`)(ALIGN) as number;
    };
    expect(macro('WSA_CMSGHDR_ALIGN')).toContain('TYPE_ALIGNMENT(WSACMSGHDR)');
    expect(macro('WSA_CMSGDATA_ALIGN')).toContain('MAX_NATURAL_ALIGNMENT');
    for (const n of [0, 1, 4, 8, 9, 20, 65535]) {
      expect([n, evaluate(macro('WSA_CMSG_LEN'), n)]).toEqual([n, cmsg.WSA_CMSG_LEN(n)]);
      expect([n, evaluate(macro('WSA_CMSG_SPACE'), n)]).toEqual([n, cmsg.WSA_CMSG_SPACE(n)]);
    }
    // WSA_CMSG_DATA(cmsg) = cmsg + WSA_CMSGDATA_ALIGN(sizeof(WSACMSGHDR)) = + 16.
    expect(evaluate(macro('WSA_CMSG_DATA').replace(/\(u_char \*\)\(n\) \+ /, ''), 0)).toBe(cmsg.WSA_CMSG_DATA_OFFSET);
    // MAX_NATURAL_ALIGNMENT is sizeof(ULONGLONG) = 8 on _WIN64.
    const winnt = mingw('winnt.h');
    expectMatch(winnt, /#if(?:def _WIN64| defined\(_WIN64\))\s*\n#define MAX_NATURAL_ALIGNMENT sizeof\(ULONGLONG\)/);
  });
});

// ---------------------------------------------------------------------------------------------
// Linux: kernel uapi headers first, then glibc's

const multiarch = fs.existsSync('/usr/include')
  ? fs
      .readdirSync('/usr/include')
      .filter((dir) => /-linux-gnu\w*$/.test(dir))
      .map((dir) => `/usr/include/${dir}/bits/in.h`)
  : [];
const LINUX_HEADERS = [
  '/usr/include/linux/in.h',
  '/usr/include/linux/in6.h',
  '/usr/include/linux/udp.h',
  '/usr/include/netinet/in.h',
  '/usr/include/netinet/udp.h',
  '/usr/include/bits/in.h',
  ...multiarch,
].filter((file) => fs.existsSync(file));
const kernelHeaders = firstExisting(['/usr/include/linux/in.h']);

describe('LINUX_CONTROLS against the Linux headers', () => {
  it('holds the names the native side and the receiver use, and is frozen', () => {
    expect(Object.keys(cmsg.LINUX_CONTROLS).sort()).toEqual(
      [
        'SOL_IP',
        'SOL_IPV6',
        'SOL_UDP',
        'IP_TOS',
        'IP_TTL',
        'IP_PKTINFO',
        'IP_RECVTOS',
        'IP_RECVTTL',
        'IPV6_PKTINFO',
        'IPV6_HOPLIMIT',
        'IPV6_TCLASS',
        'IPV6_RECVPKTINFO',
        'IPV6_RECVHOPLIMIT',
        'IPV6_RECVTCLASS',
        'UDP_SEGMENT',
        'UDP_GRO',
      ].sort(),
    );
    expect(Object.isFrozen(cmsg.LINUX_CONTROLS)).toBe(true);
  });

  const texts = LINUX_HEADERS.map((file): [string, string] => [file, fs.readFileSync(file, 'latin1')]);
  const names = Object.keys(cmsg.LINUX_CONTROLS);
  itWithHeader(kernelHeaders).each(names)('%s: every header that defines it agrees', (name) => {
    if (kernelHeaders === undefined) throw new Error('linux/in.h not found: apt-get install linux-libc-dev');
    const found = texts.flatMap(([file, text]) => defines(text, name).map((value) => ({ file, value })));
    expect([name, found.length > 0]).toEqual([name, true]);
    const value = (cmsg.LINUX_CONTROLS as Record<string, number>)[name];
    for (const { file, value: inHeader } of found) expect({ name, file, value }).toEqual({ name, file, value: inHeader });
  });
});
