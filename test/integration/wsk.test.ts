/**
 * WskSendMessages on real loopback sockets (the idiomatic UdpSocket as the WSK socket),
 * received by Node's dgram. Every case checks the returned NTSTATUS, Irp.IoStatus and what the
 * receiver got, byte for byte and in order.
 */
import {
  nativeBackend,
  createSocket,
  IoAllocateIrp,
  IoAllocateMdl,
  IoSetCompletionRoutine,
  mdlChain,
  NT_SUCCESS,
  STATUS_CONNECTION_REFUSED,
  STATUS_INVALID_ADDRESS_COMPONENT,
  STATUS_INVALID_BUFFER_SIZE,
  STATUS_INVALID_CONNECTION,
  STATUS_INVALID_HANDLE,
  STATUS_INVALID_PARAMETER,
  STATUS_NOT_SUPPORTED,
  STATUS_PENDING,
  STATUS_SUCCESS,
  WskSendMessages,
  wskBufList,
  type IRP,
  type SOCKADDR,
  type UdpSocket,
  type WSK_BUF,
  type WSK_BUF_LIST,
} from '../../lib';
import { openUdpSocketCount, openReceiver, patterned, type Receiver } from './receiver';

// The expected values, spelled out in hex (ntstatus.h) so that a wrong constant in the
// library cannot make a test pass.
const HEX = {
  SUCCESS: 0x00000000,
  PENDING: 0x00000103,
  INVALID_HANDLE: 0xc0000008,
  INVALID_PARAMETER: 0xc000000d,
  NOT_SUPPORTED: 0xc00000bb,
  INVALID_CONNECTION: 0xc0000140,
  INVALID_BUFFER_SIZE: 0xc0000206,
  INVALID_ADDRESS_COMPONENT: 0xc0000207,
  CONNECTION_REFUSED: 0xc0000236,
} as const;

const QUIET_MS = 50;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// Per-test resources: everything opened is closed in afterEach, even when the test fails.

let descriptorsBefore: number;
let sockets: UdpSocket[];
let receivers: Receiver[];

beforeEach(() => {
  descriptorsBefore = openUdpSocketCount();
  sockets = [];
  receivers = [];
});

afterEach(async () => {
  for (const socket of sockets) socket.close();
  for (const receiver of receivers) await receiver.close();
  expect(openUdpSocketCount()).toBe(descriptorsBefore);
});

function socketOf(type: 'udp4' | 'udp6'): UdpSocket {
  const socket = createSocket(type);
  sockets.push(socket);
  return socket;
}

async function receiverOf(type: 'udp4' | 'udp6' = 'udp4'): Promise<Receiver> {
  const receiver = await openReceiver(type);
  receivers.push(receiver);
  return receiver;
}

// ---------------------------------------------------------------------------------------------
// Helpers

function bytes(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

/** Windows SOCKADDR_IN, written out by hand: family 2 LE, port BE, address, 8 zero bytes. */
function sockaddrIn(port: number, a: number, b: number, c: number, d: number): Uint8Array {
  return bytes(0x02, 0x00, port >> 8, port & 0xff, a, b, c, d, 0, 0, 0, 0, 0, 0, 0, 0);
}

/** Windows SOCKADDR_IN6 to ::1, by hand: family 23 LE, port BE, flowinfo 0, ::1, scope 0. */
function sockaddrIn6Loopback(port: number): Uint8Array {
  return bytes(
    23, 0x00, port >> 8, port & 0xff,
    0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    0, 0, 0, 0,
  );
}

function ipv4(port: number): SOCKADDR {
  return { family: 'IPv4', address: '127.0.0.1', port };
}

function expectSameDatagrams(received: readonly Buffer[], expected: readonly Uint8Array[]): void {
  expect(received.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const want = Buffer.from(expected[i] as Uint8Array);
    const got = received[i] as Buffer;
    if (!want.equals(got)) {
      throw new Error(`datagram ${i} differs: expected ${want.byteLength} B ` +
        `${want.subarray(0, 16).toString('hex')}..., got ${got.byteLength} B ${got.subarray(0, 16).toString('hex')}...`);
    }
  }
}

interface CompletionCall {
  device: unknown;
  irp: IRP;
  context: unknown;
  status: number;
  information: number;
  promiseSettledBefore: boolean;
}

interface Sent {
  status: number;
  irp: IRP;
  context: object;
  calls: CompletionCall[];
  /** irp.completed and the completion routine calls right after WskSendMessages returned. */
  completedAtReturn: boolean;
  callsAtReturn: number;
}

interface SendOptions {
  flags?: number;
  controlInfoLength?: number;
  controlInfo?: Uint8Array | null;
}

/** WskSendMessages with a fresh IRP whose completion routine records every call. */
function wskSend(
  socket: UdpSocket,
  list: WSK_BUF_LIST | null,
  remote: SOCKADDR | null,
  options: SendOptions = {},
): Sent {
  const irp = IoAllocateIrp();
  const context = { tag: Symbol('context') };
  const calls: CompletionCall[] = [];
  let settled = false;
  void irp.promise.then(() => {
    settled = true;
  });
  IoSetCompletionRoutine(irp, (device, completed, ctx) => {
    calls.push({
      device,
      irp: completed,
      context: ctx,
      status: completed.IoStatus.Status,
      information: completed.IoStatus.Information,
      promiseSettledBefore: settled,
    });
  }, context);
  const status = WskSendMessages(
    socket,
    list,
    options.flags ?? 0,
    remote,
    options.controlInfoLength ?? 0,
    options.controlInfo ?? null,
    irp,
  );
  return { status, irp, context, calls, completedAtReturn: irp.completed, callsAtReturn: calls.length };
}

/**
 * The call completed AT ONCE (returned status = final status, completion routine already run
 * once, with its context) with `hex`/`named` and `information` bytes.
 */
async function expectCompleted(sent: Sent, named: number, hex: number, information: number): Promise<void> {
  expect(named).toBe(hex); // the library's constant is the ntstatus.h value
  expect(sent.status).toBe(hex);
  expect(sent.completedAtReturn).toBe(true);
  expect(sent.callsAtReturn).toBe(1);
  await expectFinal(sent, hex, information);
}

/**
 * A successful send of `information` bytes. It may also have gone pending (STATUS_PENDING
 * returned, the IRP completed later from the event loop) if the socket could not take it all
 * at once; either way the completion routine runs once, before the promise resolves.
 */
async function expectSucceeded(sent: Sent, information: number): Promise<void> {
  expect(STATUS_SUCCESS).toBe(HEX.SUCCESS);
  if (sent.status === HEX.PENDING) {
    expect(sent.completedAtReturn).toBe(false);
    expect(sent.callsAtReturn).toBe(0);
  } else {
    expect(sent.status).toBe(HEX.SUCCESS);
    expect(sent.completedAtReturn).toBe(true);
    expect(sent.callsAtReturn).toBe(1);
  }
  await expectFinal(sent, HEX.SUCCESS, information);
  expect(NT_SUCCESS(sent.irp.IoStatus.Status)).toBe(true);
  expect(sent.irp.FailureInfo).toBeNull();
}

async function expectFinal(sent: Sent, hex: number, information: number): Promise<void> {
  await expect(sent.irp.promise).resolves.toEqual({ Status: hex, Information: information });
  expect(sent.irp.IoStatus.Status).toBe(hex);
  expect(sent.irp.IoStatus.Information).toBe(information);
  expect(sent.irp.completed).toBe(true);
  expect(sent.calls).toHaveLength(1);
  const call = sent.calls[0] as CompletionCall;
  expect(call.device).toBeNull();
  expect(call.irp).toBe(sent.irp);
  expect(call.context).toBe(sent.context);
  expect(call.status).toBe(hex);
  expect(call.information).toBe(information);
  expect(call.promiseSettledBefore).toBe(false);
}

/** A failed call: status, Information 0, NT_SUCCESS false, a failure reason. */
async function expectFailed(sent: Sent, named: number, hex: number): Promise<void> {
  await expectCompleted(sent, named, hex, 0);
  expect(NT_SUCCESS(sent.status)).toBe(false);
  expect(sent.irp.FailureInfo).not.toBeNull();
}

async function expectNothingReceived(receiver: Receiver): Promise<void> {
  await sleep(QUIET_MS);
  expect(receiver.received).toHaveLength(0);
}

// ---------------------------------------------------------------------------------------------

describe('WskSendMessages succeeds on loopback', () => {
  test('IPv4: MDL chains with offsets, a datagram spanning three MDLs, an empty one, a shared MDL', async () => {
    const receiver = await receiverOf('udp4');
    const socket = socketOf('udp4');
    const a = patterned(100, 50);
    const b = patterned(101, 30);
    const c = patterned(102, 40);
    const chain = mdlChain(a, b, c);
    const sharedBytes = patterned(103, 64);
    const shared = IoAllocateMdl(sharedBytes);
    const bufs: WSK_BUF[] = [
      { Mdl: chain, Offset: 5, Length: 10 }, // inside the first MDL, non-zero Offset
      { Mdl: chain, Offset: 45, Length: 5 + 30 + 7 }, // the end of a, all of b, the start of c
      { Mdl: chain, Offset: 0, Length: 0 }, // zero-length datagram
      { Mdl: shared, Offset: 0, Length: 8 }, // several datagrams out of one MDL
      { Mdl: shared, Offset: 20, Length: 44 }, // ...up to its end
      { Mdl: shared, Offset: 3, Length: 1 },
      { Mdl: chain, Offset: 50, Length: 31 }, // Offset == length of the first MDL: starts in b
      { Mdl: chain, Offset: 0, Length: 120 }, // the whole chain
    ];
    const expected = [
      a.slice(5, 15),
      Buffer.concat([a.slice(45, 50), b, c.slice(0, 7)]),
      new Uint8Array(0),
      sharedBytes.slice(0, 8),
      sharedBytes.slice(20, 64),
      sharedBytes.slice(3, 4),
      Buffer.concat([b, c.slice(0, 1)]),
      Buffer.concat([a, b, c]),
    ];
    const total = 10 + 42 + 0 + 8 + 44 + 1 + 31 + 120;

    const sent = wskSend(socket, wskBufList(bufs), ipv4(receiver.port));
    await expectSucceeded(sent, total);
    expectSameDatagrams(await receiver.waitFor(expected.length, 3000), expected);
    // The MDL contents were only read.
    expect(Buffer.from(a).equals(Buffer.from(patterned(100, 50)))).toBe(true);
  });

  test('a WSK_BUF_LIST of 1500 datagrams (more than one sendmmsg chunk) arrives whole and in order', async () => {
    const receiver = await receiverOf('udp4');
    const socket = socketOf('udp4');
    const count = 1500;
    const size = 200;
    const payloads = Array.from({ length: count }, (_, i) => patterned(i, size));
    // Half the datagrams from their own MDL, half from one big MDL at increasing offsets.
    const big = new Uint8Array(count * size);
    payloads.forEach((p, i) => big.set(p, i * size));
    const bigMdl = IoAllocateMdl(big);
    const list = wskBufList(payloads.map((p, i) => (i % 2 === 0
      ? { Mdl: IoAllocateMdl(p), Offset: 0, Length: size }
      : { Mdl: bigMdl, Offset: i * size, Length: size })));

    const sent = wskSend(socket, list, ipv4(receiver.port));
    await expectSucceeded(sent, count * size);
    expectSameDatagrams(await receiver.waitFor(count, 5000), payloads);
  });

  test('RemoteAddress as raw Windows SOCKADDR_IN bytes', async () => {
    const receiver = await receiverOf('udp4');
    const socket = socketOf('udp4');
    const payloads = [patterned(1, 17), patterned(2, 0), patterned(3, 1000)];
    const list = wskBufList(payloads.map((p) => ({ Mdl: IoAllocateMdl(p), Offset: 0, Length: p.byteLength })));
    const sent = wskSend(socket, list, sockaddrIn(receiver.port, 127, 0, 0, 1));
    await expectSucceeded(sent, 1017);
    expectSameDatagrams(await receiver.waitFor(3, 3000), payloads);
  });

  test('RemoteAddress as raw Windows SOCKADDR_IN6 bytes to ::1 on a udp6 socket', async () => {
    const receiver = await receiverOf('udp6');
    const socket = socketOf('udp6');
    const payloads = [patterned(4, 33), patterned(5, 1400)];
    const list = wskBufList(payloads.map((p) => ({ Mdl: IoAllocateMdl(p), Offset: 0, Length: p.byteLength })));
    const sent = wskSend(socket, list, sockaddrIn6Loopback(receiver.port));
    await expectSucceeded(sent, 1433);
    expectSameDatagrams(await receiver.waitFor(2, 3000), payloads);
  });

  test('IPv6 on ::1 with an object RemoteAddress, MDL chain included', async () => {
    const receiver = await receiverOf('udp6');
    const socket = socketOf('udp6');
    const head = patterned(6, 20);
    const tail = patterned(7, 70000); // more than an IPv4 datagram may hold
    const chain = mdlChain(head, tail);
    const list = wskBufList([
      { Mdl: chain, Offset: 2, Length: 18 + 65509 }, // 65527 bytes: the IPv6 maximum
      { Mdl: chain, Offset: 19, Length: 2 },
    ]);
    const expected = [Buffer.concat([head.slice(2), tail.slice(0, 65509)]), Buffer.concat([head.slice(19), tail.slice(0, 1)])];
    const sent = wskSend(socket, list, { family: 'IPv6', address: '::1', port: receiver.port });
    await expectSucceeded(sent, 65527 + 2);
    expectSameDatagrams(await receiver.waitFor(2, 3000), expected);
  });

  test('a connected socket sends with RemoteAddress null', async () => {
    const receiver = await receiverOf('udp4');
    const socket = socketOf('udp4');
    socket.connect(receiver.port, '127.0.0.1');
    const payloads = [patterned(8, 12), patterned(9, 300)];
    const list = wskBufList(payloads.map((p) => ({ Mdl: IoAllocateMdl(p), Offset: 0, Length: p.byteLength })));
    const sent = wskSend(socket, list, null);
    await expectSucceeded(sent, 312);
    expectSameDatagrams(await receiver.waitFor(2, 3000), payloads);
  });
});

describe('WskSendMessages failures', () => {
  test('RemoteAddress null on an unconnected socket: STATUS_INVALID_CONNECTION, nothing sent', async () => {
    const receiver = await receiverOf('udp4');
    const socket = socketOf('udp4');
    socket.bind(0, '127.0.0.1');
    const sent = wskSend(socket, wskBufList([{ Mdl: IoAllocateMdl(patterned(1, 10)), Offset: 0, Length: 10 }]), null);
    await expectFailed(sent, STATUS_INVALID_CONNECTION, HEX.INVALID_CONNECTION);
    await expectNothingReceived(receiver);
  });

  test('ICMP port unreachable on a connected socket: STATUS_CONNECTION_REFUSED', async () => {
    const closed = await openReceiver('udp4');
    const port = closed.port;
    await closed.close();
    const socket = socketOf('udp4');
    socket.connect(port, '127.0.0.1');
    let refused: Sent | undefined;
    const others: number[] = [];
    // The first datagram draws the ICMP error; a later send reports it. Bounded: 50 tries.
    for (let attempt = 0; attempt < 50 && refused === undefined; attempt++) {
      const sent = wskSend(socket, wskBufList([{ Mdl: IoAllocateMdl(patterned(attempt, 8)), Offset: 0, Length: 8 }]), null);
      if (sent.status === HEX.CONNECTION_REFUSED) refused = sent;
      else others.push(sent.status);
      await sleep(5);
    }
    expect(refused).toBeDefined();
    // Every attempt before it went out.
    expect(others.every((status) => status === HEX.SUCCESS)).toBe(true);
    const sent = refused as Sent;
    await expectFailed(sent, STATUS_CONNECTION_REFUSED, HEX.CONNECTION_REFUSED);
    expect(sent.irp.FailureInfo).toMatchObject({ code: 'ECONNREFUSED', syscall: nativeBackend(), datagramsSent: 0 });
  });

  test('Flags != 0: STATUS_INVALID_PARAMETER, nothing sent', async () => {
    const receiver = await receiverOf('udp4');
    const socket = socketOf('udp4');
    for (const flags of [1, 0x80, -1]) {
      const list = wskBufList([{ Mdl: IoAllocateMdl(patterned(1, 10)), Offset: 0, Length: 10 }]);
      await expectFailed(wskSend(socket, list, ipv4(receiver.port), { flags }), STATUS_INVALID_PARAMETER,
        HEX.INVALID_PARAMETER);
    }
    await expectNothingReceived(receiver);
  });

  test('Offset past the end of the first MDL: STATUS_INVALID_PARAMETER, nothing sent', async () => {
    const receiver = await receiverOf('udp4');
    const socket = socketOf('udp4');
    const chain = mdlChain(patterned(1, 50), patterned(2, 30));
    // Offset 51 would still fall inside the chain if it were counted from its start.
    const list = wskBufList([
      { Mdl: chain, Offset: 0, Length: 10 }, // a good datagram first: nothing may go out
      { Mdl: chain, Offset: 51, Length: 1 },
    ]);
    await expectFailed(wskSend(socket, list, ipv4(receiver.port)), STATUS_INVALID_PARAMETER, HEX.INVALID_PARAMETER);
    await expectNothingReceived(receiver);
  });

  test('Length past the end of the MDL chain: STATUS_INVALID_PARAMETER, nothing sent', async () => {
    const receiver = await receiverOf('udp4');
    const socket = socketOf('udp4');
    const chain = mdlChain(patterned(1, 50), patterned(2, 30), patterned(3, 40));
    const list = wskBufList([
      { Mdl: chain, Offset: 5, Length: 115 }, // exactly to the end: fine on its own
      { Mdl: chain, Offset: 5, Length: 116 }, // one byte past the end
    ]);
    await expectFailed(wskSend(socket, list, ipv4(receiver.port)), STATUS_INVALID_PARAMETER, HEX.INVALID_PARAMETER);
    await expectNothingReceived(receiver);
  });

  test('a datagram of 65508 bytes over IPv4: STATUS_INVALID_BUFFER_SIZE; 65507 bytes succeeds', async () => {
    const receiver = await receiverOf('udp4');
    const socket = socketOf('udp4');
    const payload = patterned(42, 65508);
    const tooBig = wskBufList([
      { Mdl: IoAllocateMdl(patterned(1, 10)), Offset: 0, Length: 10 },
      { Mdl: IoAllocateMdl(payload), Offset: 0, Length: 65508 },
    ]);
    await expectFailed(wskSend(socket, tooBig, ipv4(receiver.port)), STATUS_INVALID_BUFFER_SIZE,
      HEX.INVALID_BUFFER_SIZE);
    // The same size assembled from a chain of two MDLs.
    const chained = wskBufList([{ Mdl: mdlChain(payload.subarray(0, 30000), payload.subarray(30000)), Offset: 0, Length: 65508 }]);
    await expectFailed(wskSend(socket, chained, ipv4(receiver.port)), STATUS_INVALID_BUFFER_SIZE,
      HEX.INVALID_BUFFER_SIZE);
    await expectNothingReceived(receiver);

    const max = wskBufList([{ Mdl: IoAllocateMdl(payload), Offset: 1, Length: 65507 }]);
    const sent = wskSend(socket, max, ipv4(receiver.port));
    await expectSucceeded(sent, 65507);
    expectSameDatagrams(await receiver.waitFor(1, 3000), [payload.slice(1)]);
  });

  test('a closed socket: STATUS_INVALID_HANDLE, nothing sent', async () => {
    const receiver = await receiverOf('udp4');
    const socket = socketOf('udp4');
    socket.close();
    const list = wskBufList([{ Mdl: IoAllocateMdl(patterned(1, 10)), Offset: 0, Length: 10 }]);
    await expectFailed(wskSend(socket, list, ipv4(receiver.port)), STATUS_INVALID_HANDLE, HEX.INVALID_HANDLE);
    await expectNothingReceived(receiver);
  });

  test('an address of the wrong family: STATUS_INVALID_ADDRESS_COMPONENT, nothing sent', async () => {
    const receiver = await receiverOf('udp4');
    const receiver6 = await receiverOf('udp6');
    const socket = socketOf('udp4');
    const list = (): WSK_BUF_LIST => wskBufList([{ Mdl: IoAllocateMdl(patterned(1, 10)), Offset: 0, Length: 10 }]);
    await expectFailed(wskSend(socket, list(), { family: 'IPv6', address: '::1', port: receiver6.port }),
      STATUS_INVALID_ADDRESS_COMPONENT, HEX.INVALID_ADDRESS_COMPONENT);
    await expectFailed(wskSend(socket, list(), sockaddrIn6Loopback(receiver6.port)),
      STATUS_INVALID_ADDRESS_COMPONENT, HEX.INVALID_ADDRESS_COMPONENT);
    // And the other way round: IPv4 bytes on a udp6 socket.
    const socket6 = socketOf('udp6');
    await expectFailed(wskSend(socket6, list(), sockaddrIn(receiver.port, 127, 0, 0, 1)),
      STATUS_INVALID_ADDRESS_COMPONENT, HEX.INVALID_ADDRESS_COMPONENT);
    await expectNothingReceived(receiver);
    expect(receiver6.received).toHaveLength(0);
  });

  test('malformed SOCKADDR bytes: STATUS_INVALID_PARAMETER, nothing sent', async () => {
    const receiver = await receiverOf('udp4');
    const socket = socketOf('udp4');
    const port = receiver.port;
    const good = sockaddrIn(port, 127, 0, 0, 1);
    const unknownFamily = good.slice();
    unknownFamily[0] = 99;
    const linuxInet6 = sockaddrIn6Loopback(port);
    linuxInet6[0] = 10; // Linux' AF_INET6 is not a Windows family
    const cases: Array<[string, Uint8Array]> = [
      ['15 bytes (SOCKADDR_IN is 16)', good.slice(0, 15)],
      ['1 byte', good.slice(0, 1)],
      ['no bytes', new Uint8Array(0)],
      ['SOCKADDR_IN6 of 27 bytes', sockaddrIn6Loopback(port).slice(0, 27)],
      ['family 99', unknownFamily],
      ['family 10', linuxInet6],
      ['port 0', sockaddrIn(0, 127, 0, 0, 1)],
    ];
    for (const [name, address] of cases) {
      const list = wskBufList([{ Mdl: IoAllocateMdl(patterned(1, 10)), Offset: 0, Length: 10 }]);
      const sent = wskSend(socket, list, address);
      if (sent.status !== HEX.INVALID_PARAMETER) throw new Error(`${name}: status 0x${sent.status.toString(16)}`);
      await expectFailed(sent, STATUS_INVALID_PARAMETER, HEX.INVALID_PARAMETER);
    }
    await expectNothingReceived(receiver);
  });

  test('ControlInfoLength != 0 with ControlInfo null: STATUS_INVALID_PARAMETER, nothing sent', async () => {
    const receiver = await receiverOf('udp4');
    const socket = socketOf('udp4');
    const list = wskBufList([{ Mdl: IoAllocateMdl(patterned(1, 10)), Offset: 0, Length: 10 }]);
    await expectFailed(wskSend(socket, list, ipv4(receiver.port), { controlInfoLength: 16, controlInfo: null }),
      STATUS_INVALID_PARAMETER, HEX.INVALID_PARAMETER);
    await expectNothingReceived(receiver);
  });

  test('a non-empty ControlInfo: STATUS_NOT_SUPPORTED, nothing sent', async () => {
    const receiver = await receiverOf('udp4');
    const socket = socketOf('udp4');
    const list = wskBufList([{ Mdl: IoAllocateMdl(patterned(1, 10)), Offset: 0, Length: 10 }]);
    // A well-formed Windows x64 CMSGHDR (SIZE_T cmsg_len = 20, INT level 1234, INT type 5678,
    // then an INT of data, padded to 8) of a control no transport knows.
    const control = bytes(
      20, 0, 0, 0, 0, 0, 0, 0,
      0xd2, 0x04, 0, 0,
      0x2e, 0x16, 0, 0,
      1, 0, 0, 0, 0, 0, 0, 0,
    );
    await expectFailed(wskSend(socket, list, ipv4(receiver.port), { controlInfoLength: 24, controlInfo: control }),
      STATUS_NOT_SUPPORTED, HEX.NOT_SUPPORTED);
    await expectNothingReceived(receiver);
  });

  test('an IRP that has already completed: STATUS_INVALID_PARAMETER, the IRP untouched, nothing sent', async () => {
    const receiver = await receiverOf('udp4');
    const socket = socketOf('udp4');
    const first = patterned(1, 10);
    const sent = wskSend(socket, wskBufList([{ Mdl: IoAllocateMdl(first), Offset: 0, Length: 10 }]), ipv4(receiver.port));
    await expectSucceeded(sent, 10);
    expectSameDatagrams(await receiver.waitFor(1, 3000), [first]);

    const again = WskSendMessages(socket, wskBufList([{ Mdl: IoAllocateMdl(patterned(2, 20)), Offset: 0, Length: 20 }]),
      0, ipv4(receiver.port), 0, null, sent.irp);
    expect(again).toBe(STATUS_INVALID_PARAMETER);
    expect(again).toBe(HEX.INVALID_PARAMETER);
    expect(sent.irp.IoStatus).toEqual({ Status: HEX.SUCCESS, Information: 10 });
    expect(sent.irp.FailureInfo).toBeNull();
    expect(sent.calls).toHaveLength(1);
    await expect(sent.irp.promise).resolves.toEqual({ Status: HEX.SUCCESS, Information: 10 });

    // The same for an IRP that completed with a failure.
    const failed = wskSend(socket, wskBufList([{ Mdl: IoAllocateMdl(first), Offset: 0, Length: 10 }]), null);
    await expectFailed(failed, STATUS_INVALID_CONNECTION, HEX.INVALID_CONNECTION);
    const failureInfo = failed.irp.FailureInfo;
    const againFailed = WskSendMessages(socket, wskBufList([{ Mdl: IoAllocateMdl(first), Offset: 0, Length: 10 }]),
      0, ipv4(receiver.port), 0, null, failed.irp);
    expect(againFailed).toBe(HEX.INVALID_PARAMETER);
    expect(failed.irp.IoStatus).toEqual({ Status: HEX.INVALID_CONNECTION, Information: 0 });
    expect(failed.irp.FailureInfo).toBe(failureInfo);
    expect(failed.calls).toHaveLength(1);

    await sleep(QUIET_MS);
    expect(receiver.received).toHaveLength(1);
  });

  test('a fresh IRP reads STATUS_PENDING (0x103) until a WSK call completes it', () => {
    const irp = IoAllocateIrp();
    expect(STATUS_PENDING).toBe(HEX.PENDING);
    expect(irp.IoStatus).toEqual({ Status: HEX.PENDING, Information: 0 });
    expect(irp.completed).toBe(false);
  });
});

describe('the helpers of this file', () => {
  test('hand-written SOCKADDR bytes have the Windows layout', () => {
    expect(Buffer.from(sockaddrIn(0x1234, 127, 0, 0, 1)).toString('hex')).toBe('020012347f0000010000000000000000');
    expect(Buffer.from(sockaddrIn6Loopback(0xabcd)).toString('hex'))
      .toBe('1700abcd' + '00000000' + '00000000000000000000000000000001' + '00000000');
  });
});
