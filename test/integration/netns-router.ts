/**
 * A routed path for the ICMP tests: three fresh network namespaces, a sender, a router and a
 * receiver, joined by two veth pairs; the router's far side may have a smaller MTU, and the
 * router holds routes to nowhere.
 *
 *   s (sender)                 r (router, forwarding)                        d (receiver)
 *   vs 198.18.k.1/24  <==>  vrs 198.18.k.2/24 | vrd 198.19.k.1/24 (farMtu)  <==>  vd 198.19.k.2/24
 *      198.18.k.3/24                          |                                   198.19.k.3/24
 *      fd00:k::1/64             fd00:k::2/64  |     fd01:k::1/64                   fd01:k::2/64
 *      fd00:k::3/64                           |                                   fd01:k::3/64
 *   default via r                             |                              default via r
 *
 * The second address on each end (s2, d2) gives a second run its own path state: the kernel
 * caches a learned path MTU per destination, and rate-limits the router's route errors per
 * source (net.ipv4.route.error_cost / error_burst: 5 at once, then one a second; global
 * sysctls, so not changed here).
 *
 * On r: `unreachable` routes to 198.19.201.0/24 and fd0f:1::/64, `prohibit` routes to
 * 198.19.202.0/24 and fd0f:2::/64, and no route at all to 198.19.203.0/24 and fd0f:3::/64 (r has
 * no default route). ICMP rate limits are off in all three namespaces (icmp_ratelimit 0,
 * icmp_ratemask 0, a global budget far above any test's), so every datagram that meets an error
 * gets its ICMP. Neighbour entries are permanent: nothing waits in an ARP/ND queue.
 *
 * Needs root and iproute2; throws when they are not usable (the tests fail, never skip). Names
 * start with netns.ts's NAMESPACE_PREFIX and this process's pid, so the suite's leak check sees
 * them; a detached janitor deletes them if this process dies first. Only addresses of
 * 198.18.0.0/15 and fd00::/8 are used.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { checkUsable, NAMESPACE_PREFIX, type ExecResult } from './netns';

export type Node = 's' | 'r' | 'd';

export interface RoutedPath {
  readonly names: Readonly<Record<Node, string>>;
  /** s's and d's addresses, and r's address on each side (rs: towards s, rd: towards d). */
  readonly ipv4: Readonly<Record<'s' | 's2' | 'rs' | 'rd' | 'd' | 'd2', string>>;
  readonly ipv6: Readonly<Record<'s' | 's2' | 'rs' | 'rd' | 'd' | 'd2', string>>;
  /** Destinations r has an `unreachable` route, a `prohibit` route, and no route for. */
  readonly nowhere: Readonly<Record<4 | 6, { unreachable: string; prohibited: string; unrouted: string }>>;
  readonly farMtu: number;
  exec(node: Node, argv: readonly string[], timeoutMs?: number): Promise<ExecResult>;
  /** Starts `node script ...args` in `node`'s namespace; killed on destroy(). */
  spawnNode(node: Node, script: string, args: readonly string[]): ChildProcess;
  destroy(): Promise<void>;
}

function run(file: string, argv: readonly string[], timeoutMs = 10000): Promise<ExecResult> {
  const env = { ...process.env };
  delete env.LD_PRELOAD; // never check iproute2 with the sanitizer runtime (see netns.ts)
  return new Promise((resolve) => {
    execFile(file, [...argv], { timeout: timeoutMs, killSignal: 'SIGKILL', env }, (error, stdout, stderr) => {
      const e = error as (NodeJS.ErrnoException & { code?: unknown; signal?: NodeJS.Signals | null }) | null;
      resolve({
        code: e === null ? 0 : typeof e.code === 'number' ? e.code : null,
        signal: e?.signal ?? null,
        stdout: String(stdout ?? ''),
        stderr: String(stderr ?? ''),
      });
    });
  });
}

async function must(argv: readonly string[]): Promise<void> {
  const result = await run(argv[0]!, argv.slice(1));
  if (result.code !== 0) throw new Error(`\`${argv.join(' ')}\` failed: ${result.stderr.trim()}`);
}

let counter = 0;

export async function createRoutedPath(options: { farMtu?: number } = {}): Promise<RoutedPath> {
  await checkUsable();
  const n = ++counter;
  const base = `${NAMESPACE_PREFIX}${process.pid}-icmp${n}`;
  const names = { s: `${base}-s`, r: `${base}-r`, d: `${base}-d` };
  const k = ((process.pid + n) % 200) + 1;
  const hex = k.toString(16);
  const ipv4 = {
    s: `198.18.${k}.1`, s2: `198.18.${k}.3`, rs: `198.18.${k}.2`, rd: `198.19.${k}.1`, d: `198.19.${k}.2`, d2: `198.19.${k}.3`,
  };
  const ipv6 = {
    s: `fd00:${hex}::1`, s2: `fd00:${hex}::3`, rs: `fd00:${hex}::2`, rd: `fd01:${hex}::1`, d: `fd01:${hex}::2`, d2: `fd01:${hex}::3`,
  };
  const mac = { vs: '02:00:5e:00:01:01', vrs: '02:00:5e:00:01:02', vrd: '02:00:5e:00:01:03', vd: '02:00:5e:00:01:04' };
  const farMtu = options.farMtu ?? 1500;
  const children = new Set<ChildProcess>();

  const deleteAll = async (): Promise<string[]> => {
    const errors: string[] = [];
    for (const name of Object.values(names)) {
      const result = await run('ip', ['netns', 'del', name]);
      if (result.code !== 0 && !/No such file|does not exist/i.test(result.stderr)) errors.push(`${name}: ${result.stderr.trim()}`);
    }
    return errors;
  };

  try {
    for (const name of Object.values(names)) await must(['ip', 'netns', 'add', name]);
    const exists = Object.values(names).map((name) => `[ -e /run/netns/${name} ]`).join(' || ');
    spawn('sh', ['-c', `while kill -0 ${process.pid} 2>/dev/null && { ${exists}; }; do sleep 1; done; ` +
      Object.values(names).map((name) => `ip netns del ${name} 2>/dev/null;`).join(' ') + ' exit 0'],
    { detached: true, stdio: 'ignore' }).unref();
    await must(['ip', '-n', names.s, 'link', 'add', 'vs', 'address', mac.vs, 'type', 'veth', 'peer', 'name', 'vrs',
      'address', mac.vrs, 'netns', names.r]);
    await must(['ip', '-n', names.r, 'link', 'add', 'vrd', 'address', mac.vrd, 'mtu', String(farMtu), 'type', 'veth',
      'peer', 'name', 'vd', 'address', mac.vd, 'mtu', String(farMtu), 'netns', names.d]);
    const sides: Array<[string, string, string, string]> = [
      [names.s, 'vs', ipv4.s, ipv6.s], [names.s, 'vs', ipv4.s2, ipv6.s2], [names.r, 'vrs', ipv4.rs, ipv6.rs],
      [names.r, 'vrd', ipv4.rd, ipv6.rd], [names.d, 'vd', ipv4.d, ipv6.d], [names.d, 'vd', ipv4.d2, ipv6.d2],
    ];
    for (const [ns, dev, v4, v6] of sides) {
      await must(['ip', '-n', ns, 'addr', 'add', `${v4}/24`, 'dev', dev]);
      await must(['ip', '-n', ns, '-6', 'addr', 'add', `${v6}/64`, 'dev', dev, 'nodad']);
      await must(['ip', '-n', ns, 'link', 'set', dev, 'up']);
    }
    for (const ns of Object.values(names)) {
      await must(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
      await must(['ip', 'netns', 'exec', ns, 'sysctl', '-q', '-w', 'net.ipv4.icmp_ratelimit=0', 'net.ipv4.icmp_ratemask=0',
        'net.ipv4.icmp_msgs_per_sec=100000', 'net.ipv4.icmp_msgs_burst=100000', 'net.ipv6.icmp.ratelimit=0']);
    }
    await must(['ip', 'netns', 'exec', names.r, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    const neighbours: Array<[string, string, string, string]> = [
      [names.s, 'vs', ipv4.rs, mac.vrs], [names.s, 'vs', ipv6.rs, mac.vrs],
      [names.r, 'vrs', ipv4.s, mac.vs], [names.r, 'vrs', ipv6.s, mac.vs],
      [names.r, 'vrs', ipv4.s2, mac.vs], [names.r, 'vrs', ipv6.s2, mac.vs],
      [names.r, 'vrd', ipv4.d, mac.vd], [names.r, 'vrd', ipv6.d, mac.vd],
      [names.r, 'vrd', ipv4.d2, mac.vd], [names.r, 'vrd', ipv6.d2, mac.vd],
      [names.d, 'vd', ipv4.rd, mac.vrd], [names.d, 'vd', ipv6.rd, mac.vrd],
    ];
    for (const [ns, dev, address, lladdr] of neighbours) {
      await must(['ip', '-n', ns, 'neigh', 'replace', address, 'lladdr', lladdr, 'dev', dev, 'nud', 'permanent']);
    }
    await must(['ip', '-n', names.s, 'route', 'add', 'default', 'via', ipv4.rs]);
    await must(['ip', '-n', names.s, '-6', 'route', 'add', 'default', 'via', ipv6.rs]);
    await must(['ip', '-n', names.d, 'route', 'add', 'default', 'via', ipv4.rd]);
    await must(['ip', '-n', names.d, '-6', 'route', 'add', 'default', 'via', ipv6.rd]);
    await must(['ip', '-n', names.r, 'route', 'add', 'unreachable', '198.19.201.0/24']);
    await must(['ip', '-n', names.r, 'route', 'add', 'prohibit', '198.19.202.0/24']);
    await must(['ip', '-n', names.r, '-6', 'route', 'add', 'unreachable', 'fd0f:1::/64']);
    await must(['ip', '-n', names.r, '-6', 'route', 'add', 'prohibit', 'fd0f:2::/64']);
  } catch (error) {
    const cleanup = await deleteAll();
    throw new Error(`createRoutedPath: setting up ${base} failed: ${(error as Error).message}` +
      (cleanup.length > 0 ? ` (and cleanup failed: ${cleanup.join('; ')})` : ''));
  }

  let destroyed = false;
  return {
    names,
    ipv4,
    ipv6,
    nowhere: {
      4: { unreachable: '198.19.201.1', prohibited: '198.19.202.1', unrouted: '198.19.203.1' },
      6: { unreachable: 'fd0f:1::1', prohibited: 'fd0f:2::1', unrouted: 'fd0f:3::1' },
    },
    farMtu,
    exec(node, argv, timeoutMs) {
      if (destroyed) return Promise.reject(new Error('the routed path was destroyed'));
      return run('ip', ['netns', 'exec', names[node], ...argv], timeoutMs);
    },
    spawnNode(node, script, args) {
      if (destroyed) throw new Error('the routed path was destroyed');
      const child = spawn('ip', ['netns', 'exec', names[node], process.execPath, script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
      children.add(child);
      child.once('exit', () => children.delete(child));
      child.once('error', () => children.delete(child));
      return child;
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      await Promise.all([...children].filter((c) => c.exitCode === null && c.signalCode === null)
        .map((child) => new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 3000);
          child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill('SIGKILL');
        })));
      const errors = await deleteAll();
      if (errors.length > 0) throw new Error(`RoutedPath.destroy: ${errors.join('; ')}`);
    },
  };
}
