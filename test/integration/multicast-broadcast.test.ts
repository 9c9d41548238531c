/**
 * Broadcast and multicast on a veth pair between two new namespaces (loopback has no MULTICAST
 * flag and no broadcast address), each scenario run once with wsk-dgram sockets and once with
 * node:dgram sockets doing the same calls, with the same assertions. Every socket is a child
 * process (fixtures/option-peer.js) inside a namespace (`ip netns exec`).
 *
 *   namespace a: va 198.18.k.1/24 (+ .3 for the source-specific test), fd00:k::1/64 (+ ::3)
 *   namespace b: vb 198.18.k.2/24, fd00:k::2/64
 *
 * The link is createSlowLink's with a token bucket fast enough never to matter here.
 */
import * as path from 'node:path';
import { createSlowLink, FIXTURES, JsonChild, type JsonLine, type Side, type SlowLink } from './netns';
import { useNamespaceSuite } from './namespace-suite';

const PEER_SCRIPT = path.join(FIXTURES, 'option-peer.js');
const { notes } = useNamespaceSuite('multicast-broadcast');

type Kind = 'wsk' | 'dgram';
interface Received { data: string; address: string; port: number; ttl: number | null; tos: number | null }
interface Reply { value?: unknown; sent?: number; received?: Received[]; error?: { name?: string; code?: string; message?: string } }

let link: SlowLink;
const peers: Peer[] = [];

function third(family: 4 | 6): string {
  const a = link.address('a', family);
  return family === 4 ? a.replace(/\.1$/, '.3') : a.replace(/::1$/, '::3');
}

let commandId = 0;

/** A socket in a namespace, driven through fixtures/option-peer.js. */
class Peer {
  private constructor(readonly child: JsonChild, readonly port: number, readonly label: string) {}

  static async start(side: Side, kind: Kind, family: 4 | 6, setup: {
    options?: Record<string, unknown>; bind?: { port: number; address: string } | null; receiveInfo?: boolean;
  }): Promise<Peer> {
    const label = `${kind} udp${family} in ${side}`;
    const params = { kind, type: family === 6 ? 'udp6' : 'udp4', options: setup.options ?? {}, bind: setup.bind ?? null,
      receiveInfo: setup.receiveInfo ?? false, lifetimeMs: 30000 };
    const child = new JsonChild(link.spawnNode(side, PEER_SCRIPT, [JSON.stringify(params)]), label);
    const ready = await child.nextLine((l) => l.event === 'ready', 5000, `${label} to start`);
    if (ready.error !== undefined) throw new Error(`${label}: ${JSON.stringify(ready.error)}`);
    const peer = new Peer(child, ready.port as number, label);
    peers.push(peer);
    return peer;
  }

  async #ask(command: Record<string, unknown>): Promise<Reply> {
    const id = ++commandId;
    this.child.send({ ...command, id });
    const line: JsonLine = await this.child.nextLine((l) => l.event === 'reply' && l.id === id, 8000,
      `${this.label}: ${JSON.stringify(command)}`);
    return line as Reply;
  }

  /** socket[method](...args); throws with the child's error unless `allowError`. */
  async call(method: string, ...args: unknown[]): Promise<unknown> {
    const reply = await this.#ask({ op: 'call', method, args });
    if (reply.error !== undefined) throw new Error(`${this.label}.${method}(${args.join(', ')}): ${JSON.stringify(reply.error)}`);
    return reply.value;
  }

  /** Sends one datagram; the reply carries `sent` or the `error`. */
  send(data: string, port: number, address: string): Promise<Reply> {
    return this.#ask({ op: 'send', data, port, address });
  }

  /** What arrived (after waiting `waitMs` for more), as strings in arrival order. */
  async take(waitMs = 300): Promise<Received[]> {
    return (await this.#ask({ op: 'take', waitMs })).received ?? [];
  }

  async close(): Promise<void> {
    if (this.child.child.exitCode !== null) return;
    this.child.child.stdin?.end();
    const exit = await this.child.waitForExit(3000);
    if (exit.timedOut) throw new Error(`${this.label} did not exit\n${this.child.describe()}`);
  }
}

const data = (received: Received[]): string[] => received.map((r) => r.data);
const wildcard = (family: 4 | 6): string => (family === 6 ? '::' : '0.0.0.0');

// In a describe of its own: its afterAll (destroying the link) runs before the suite's check
// that no namespace is left.
describe('on a veth pair', () => {
  beforeAll(async () => {
    link = await createSlowLink({ rate: '1gbit', burst: '1mbit' });
    // Second addresses in a: a source that a source-specific membership does not allow.
    for (const argv of [['ip', 'addr', 'add', `${third(4)}/24`, 'dev', 'va'], ['ip', '-6', 'addr', 'add', `${third(6)}/64`, 'dev', 'va', 'nodad']]) {
      const result = await link.exec('a', argv);
      if (result.code !== 0) throw new Error(`${argv.join(' ')}: ${result.stderr}`);
    }
  }, 30000);
  afterEach(async () => {
    await Promise.all(peers.splice(0).map((peer) => peer.close()));
  });
  afterAll(async () => {
    await link?.destroy();
  });

  describe.each(['wsk', 'dgram'] as const)('%s', (kind) => {
    test('broadcast: EACCES without setBroadcast, received with it, by two receivers sharing the port with reuseAddr', async () => {
      const broadcast = link.address('b', 4).replace(/\.2$/, '.255');
      const first = await Peer.start('b', kind, 4, { options: { reuseAddr: true }, bind: { port: 0, address: '0.0.0.0' } });
      const second = await Peer.start('b', kind, 4, { options: { reuseAddr: true }, bind: { port: first.port, address: '0.0.0.0' } });
      const sender = await Peer.start('a', kind, 4, { bind: { port: 0, address: '0.0.0.0' } });

      const refused = await sender.send('before', first.port, broadcast);
      expect(refused.error?.code).toBe('EACCES');
      await sender.call('setBroadcast', true);
      expect(await sender.send('after', first.port, broadcast)).toEqual(expect.objectContaining({ sent: 1 }));
      expect(data(await first.take())).toEqual(['after']);
      expect(data(await second.take(0))).toEqual(['after']);
      notes.push(`${kind}: broadcast to ${broadcast} refused ${refused.error?.code} without SO_BROADCAST, received by both reuseAddr sockets with it`);
    });

    test.each([4, 6] as const)('multicast IPv%i: join on the veth, receive; multicast TTL and loopback observable; drop stops it', async (family) => {
      const group = family === 4 ? '239.18.0.7' : 'ff05::7';
      const via = { a: family === 4 ? link.address('a', 4) : '::%va', b: family === 4 ? link.address('b', 4) : '::%vb' };
      const member = await Peer.start('b', kind, family, { options: { reuseAddr: true }, bind: { port: 0, address: wildcard(family) } });
      // A wsk socket with receive info on the same port sees each datagram's TTL / hop limit.
      const observer = await Peer.start('b', 'wsk', family, {
        options: { reuseAddr: true }, bind: { port: member.port, address: wildcard(family) }, receiveInfo: true,
      });
      const local = await Peer.start('a', kind, family, { bind: { port: member.port, address: wildcard(family) } });
      const sender = await Peer.start('a', kind, family, { bind: { port: 0, address: wildcard(family) } });
      await member.call('addMembership', group, via.b);
      await observer.call('addMembership', group, via.b);
      await local.call('addMembership', group, via.a);

      if (family === 4) {
        // Namespace a has no route to 239/8: only the multicast interface makes the send possible.
        const unrouted = await sender.send('no interface', member.port, group);
        expect(unrouted.error?.code).toBe('ENETUNREACH');
      }
      await sender.call('setMulticastInterface', via.a);
      expect(await sender.call('setMulticastTTL', 7)).toBe(7);
      expect(await sender.send('loop on', member.port, group)).toEqual(expect.objectContaining({ sent: 1 }));
      expect(data(await member.take())).toEqual(['loop on']);
      expect(data(await local.take(0))).toEqual(['loop on']);
      const seen = await observer.take(0);
      expect(seen.map((r) => [r.data, r.ttl])).toEqual([['loop on', 7]]);

      expect(await sender.call('setMulticastLoopback', false)).toBe(false);
      await sender.send('loop off', member.port, group);
      expect(data(await member.take())).toEqual(['loop off']);
      expect(data(await local.take(0))).toEqual([]);

      // Linux hands a group's datagrams to every socket bound to the port and the wildcard address
      // while any socket keeps the group joined on the interface (IP_MULTICAST_ALL /
      // IPV6_MULTICAST_ALL, on by default), so the member still gets them while the observer is in.
      await member.call('dropMembership', group, via.b);
      await sender.send('observer still in', member.port, group);
      expect(data(await observer.take())).toEqual(['loop off', 'observer still in']);
      expect(data(await member.take(0))).toEqual(['observer still in']);
      await observer.call('dropMembership', group, via.b);
      await sender.send('both out', member.port, group);
      expect(data(await member.take())).toEqual([]);
      expect(data(await observer.take(0))).toEqual([]);
      notes.push(`${kind}: IPv${family} multicast ${group}: TTL 7 seen, loopback off kept it from a's member, drop stopped it`);
    });

    test.each([4, 6] as const)('source-specific IPv%i: only the allowed source is received; the drop ends it', async (family) => {
      const group = family === 4 ? '232.18.0.9' : 'ff35::9';
      const via = { a: family === 4 ? link.address('a', 4) : '::%va', b: family === 4 ? link.address('b', 4) : '::%vb' };
      const allowed = link.address('a', family);
      const member = await Peer.start('b', kind, family, { bind: { port: 0, address: wildcard(family) } });
      const fromAllowed = await Peer.start('a', kind, family, { bind: { port: 0, address: allowed } });
      const fromOther = await Peer.start('a', kind, family, { bind: { port: 0, address: third(family) } });
      for (const sender of [fromAllowed, fromOther]) await sender.call('setMulticastInterface', via.a);
      await member.call('addSourceSpecificMembership', allowed, group, via.b);

      await fromOther.send('other', member.port, group);
      await fromAllowed.send('allowed', member.port, group);
      const got = await member.take();
      expect(got.map((r) => [r.data, r.address])).toEqual([['allowed', allowed]]);

      await member.call('dropSourceSpecificMembership', allowed, group, via.b);
      await fromAllowed.send('after drop', member.port, group);
      expect(data(await member.take())).toEqual([]);
      notes.push(`${kind}: IPv${family} source-specific ${allowed} -> ${group}: only the allowed source arrived`);
    });
  });
});
