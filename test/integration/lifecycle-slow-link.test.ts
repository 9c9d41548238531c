/**
 * Lifecycle of sends that really wait: a child process in namespace A sends over a tbf-shaped
 * veth (10 mbit, about 1000 datagrams of 1200 B a second) with a small SO_SNDBUF, so its
 * sendBatch goes pending (see slow-link.test.ts). A receiver in namespace B counts what
 * arrived, in order. Covers unref() with a send waiting (next to node:dgram's), an abort with
 * exact counts and the requests behind it, listeners on a long-lived signal, and
 * Symbol.asyncDispose cancelling a waiting send.
 */
import * as path from 'node:path';
import { createSlowLink, JsonChild, startReceiver, type JsonLine, type SlowLink, type SlowReceiver } from './netns';
import { useNamespaceSuite } from './namespace-suite';

const CHILD = path.join(__dirname, 'fixtures', 'lifecycle-child.js');
const SIZE = 1200;
const SEND_BUFFER = 16384;
const STATUS_CANCELLED = 0xc0000120;

let link: SlowLink;
let receiver: SlowReceiver | null = null;

beforeAll(async () => {
  link = await createSlowLink();
}, 30000);
afterAll(async () => {
  await link?.destroy();
});
afterEach(async () => {
  await receiver?.close();
  receiver = null;
});
// After the hooks above: its afterAll checks that the link's namespaces are gone.
const { notes } = useNamespaceSuite('lifecycle-slow-link');

async function start(scenario: string, params: Record<string, unknown>): Promise<{ child: JsonChild; receiver: SlowReceiver }> {
  receiver = await startReceiver(link, 4);
  const all = { address: receiver.address, port: receiver.port, size: SIZE, sendBufferSize: SEND_BUFFER, ...params };
  const child = new JsonChild(link.spawnNode('a', CHILD, [scenario, JSON.stringify(all)]), `lifecycle-child ${scenario}`);
  return { child, receiver };
}

async function resultOf(child: JsonChild, timeoutMs: number): Promise<JsonLine & Record<string, any>> {
  const line = await child.nextLine((l) => l.event === 'result' || l.event === 'error', timeoutMs, 'the result');
  if (line.event === 'error') throw new Error(`the child failed: ${JSON.stringify(line)}\n${child.describe()}`);
  return line as JsonLine & Record<string, any>;
}

describe('ref() / unref() with a send waiting, next to node:dgram', () => {
  // 3000 datagrams take about 3 s at 10 mbit: an unref'd child ends long before that.
  const COUNT = 3000;

  test('wsk: unref\'d, the child ends with the send still pending', async () => {
    const { child, receiver: r } = await start('send', { api: 'wsk', count: COUNT, ref: 'unref' });
    const ready = await child.nextLine((l) => l.event === 'ready', 5000, 'the send to start');
    expect(ready.pendingDatagrams).toBeGreaterThan(0);
    const exit = await child.waitForExit(5000);
    expect({ exit, output: child.describe() }).toMatchObject({ exit: { timedOut: false, code: 0 } });
    const last = child.lines.find((l) => l.event === 'exit')!;
    expect(child.lines.find((l) => l.event === 'sent')).toBeUndefined();
    expect(last.pendingDatagrams).toBeGreaterThan(0);
    const report = await r.settle({ quietMs: 500 });
    notes.push(`wsk unref'd: exited after ${Math.round(exit.ms)} ms with ${String(last.pendingDatagrams)} datagrams pending; ${report.count} arrived`);
    expect(report.count).toBeLessThan(COUNT);
  }, 30000);

  test('dgram: unref\'d, the child still waits for its sends (libuv counts each send request as active)', async () => {
    // node:dgram's unref() only unrefs the handle; its queued uv_udp_send requests keep the loop
    // alive, so an unref'd dgram socket does not let the process end while sends wait.
    const { child, receiver: r } = await start('send', { api: 'dgram', count: COUNT, ref: 'unref' });
    await child.nextLine((l) => l.event === 'ready', 5000, 'the send to start');
    const exit = await child.waitForExit(20000);
    expect({ exit, output: child.describe() }).toMatchObject({ exit: { timedOut: false, code: 0 } });
    expect(child.lines.find((l) => l.event === 'sent')).toEqual({ event: 'sent', datagrams: COUNT });
    const report = await r.waitFor(COUNT, { timeoutMs: 10000 });
    notes.push(`dgram unref'd: exited after ${Math.round(exit.ms)} ms, once all ${report.count} had gone out`);
    expect(report.count).toBe(COUNT);
  }, 40000);

  test.each(['wsk', 'dgram'])('%s: ref\'d (also after unref then ref), the child ends once everything went out', async (api) => {
    const { child, receiver: r } = await start('send', { api, count: COUNT, ref: 'unref-ref' });
    await child.nextLine((l) => l.event === 'ready', 5000, 'the send to start');
    const exit = await child.waitForExit(20000);
    expect({ exit, output: child.describe() }).toMatchObject({ exit: { timedOut: false, code: 0 } });
    expect(child.lines.find((l) => l.event === 'sent')).toEqual({ event: 'sent', datagrams: COUNT });
    const report = await r.waitFor(COUNT, { timeoutMs: 10000 });
    notes.push(`${api} ref'd: exited after ${Math.round(exit.ms)} ms, ${report.count} arrived`);
    expect({ count: report.count, runs: report.runs }).toEqual({ count: COUNT, runs: [[0, COUNT - 1]] });
  }, 40000);
});

describe('AbortSignal on a waiting send', () => {
  test('abort takes the rest of request A out: it rejects with exactly what went out; B behind it goes out whole', async () => {
    const count = 3000;
    const follow = 200;
    const { child, receiver: r } = await start('abort', { count, follow, abortAfterMs: 400 });
    const result = await resultOf(child, 20000);
    const a = result.a.rejected;
    expect(a).toMatchObject({
      name: 'WskError', code: 'ECANCELED', status: STATUS_CANCELLED, causeIsReason: true, address: r.address, port: r.port,
    });
    expect(a.datagramsSent).toBeGreaterThan(0);
    expect(a.datagramsSent).toBeLessThan(count);
    expect(a.bytesSent).toBe(a.datagramsSent * SIZE);
    expect(a.message).toBe(`abort ECANCELED (STATUS_CANCELLED) to ${r.address}:${r.port} after ${a.datagramsSent} datagrams, ${a.bytesSent} bytes`);
    expect(result.b.resolved).toEqual({ datagrams: follow, bytes: follow * SIZE, segments: follow, failures: [] });
    expect(result.listenersWhilePending).toBe(1);
    expect(result.listenersAfter).toBe(0);
    // The queue's counts dropped by exactly A's unsent part at the abort.
    expect(result.pendingBefore).toBeGreaterThan(follow);
    expect(result.pendingAfterAbort).toBe(follow);
    expect(result.pendingAtEnd).toBe(0);
    const report = await r.waitFor(a.datagramsSent + follow, { timeoutMs: 10000, quietMs: 500 });
    notes.push(`abort after 400 ms: ${String(a.datagramsSent)} of ${count} went out`);
    expect({ count: report.count, duplicates: report.duplicates, corrupt: report.corrupt, runs: report.runs }).toEqual({
      count: a.datagramsSent + follow, duplicates: 0, corrupt: 0, runs: [[0, a.datagramsSent - 1], [count, count + follow - 1]],
    });
  }, 40000);

  test('200 waiting requests on one signal: one listener each while waiting, none once settled; abort after that does nothing', async () => {
    const requests = 200;
    const head = 100;
    const { child, receiver: r } = await start('listeners', { requests, count: 5, head });
    const result = await resultOf(child, 20000);
    expect(result).toMatchObject({
      pendingRequests: requests, listenersWhilePending: requests, listenersAfter: 0, datagrams: requests * 5, closed: false,
    });
    const report = await r.waitFor(head + requests * 5, { timeoutMs: 10000 });
    expect(report.runs).toEqual([[0, head + requests * 5 - 1]]);
  }, 40000);
});

describe('Symbol.asyncDispose with a send waiting', () => {
  test('the send is cancelled as close() cancels it, with its exact count; the socket is closed when it resolves', async () => {
    const count = 3000;
    const { child, receiver: r } = await start('dispose', { count, disposeAfterMs: 300 });
    const result = await resultOf(child, 20000);
    const a = result.a.rejected;
    expect(a).toMatchObject({ name: 'WskError', code: 'ECANCELED', status: STATUS_CANCELLED });
    expect(a.datagramsSent).toBeGreaterThan(0);
    expect(a.datagramsSent).toBeLessThan(count);
    expect(result).toMatchObject({ closedAtResolve: true, closeEvents: 1, fd: -1 });
    const report = await r.waitFor(a.datagramsSent, { timeoutMs: 10000, quietMs: 500 });
    expect({ count: report.count, runs: report.runs }).toEqual({ count: a.datagramsSent, runs: [[0, a.datagramsSent - 1]] });
  }, 40000);
});
