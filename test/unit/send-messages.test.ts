import * as os from 'node:os';
import type { Destination } from '../../lib/transport';
import { wskBufList, type WSK_BUF_LIST } from '../../lib/wsk/buf';
import { IRP, IoAllocateIrp, IoCancelIrp, IoCompleteRequest, IoSetCompletionRoutine } from '../../lib/wsk/irp';
import { mdlChain } from '../../lib/wsk/mdl';
import { WskSendMessages } from '../../lib/wsk/send-messages';
import type { SOCKADDR } from '../../lib/wsk/sockaddr';
import { completion, FakeSender, gather, sendResult } from './fake-sender';

// Control blocks written out by hand (Windows x64 WSACMSGHDR: len u64, level i32, type i32).
function controlBlock(level: number, type: number, value: number): Uint8Array {
  const block = new Uint8Array(24);
  const view = new DataView(block.buffer);
  view.setUint32(0, 20, true);
  view.setInt32(8, level, true);
  view.setInt32(12, type, true);
  view.setInt32(16, value, true);
  return block;
}
const TOS_CONTROL = controlBlock(0, 3, 0xb8); // IPPROTO_IP, IP_TOS
const TCLASS_CONTROL = controlBlock(41, 39, 0xb8); // IPPROTO_IPV6, IPV6_TCLASS
const UNKNOWN_CONTROL = controlBlock(0, 99, 1);

const STATUS_SUCCESS = 0;
const STATUS_PENDING = 0x103;
const STATUS_UNSUCCESSFUL = 0xc0000001;
const STATUS_INVALID_HANDLE = 0xc0000008;
const STATUS_INVALID_PARAMETER = 0xc000000d;
const STATUS_NOT_SUPPORTED = 0xc00000bb;
const STATUS_INVALID_CONNECTION = 0xc0000140;
const STATUS_INVALID_BUFFER_SIZE = 0xc0000206;
const STATUS_INVALID_ADDRESS_COMPONENT = 0xc0000207;
const STATUS_CONNECTION_REFUSED = 0xc0000236;

const { errno } = os.constants;
const TO: SOCKADDR = { family: 'IPv4', address: '127.0.0.1', port: 5000 };
const TO_DEST: Destination = { family: 4, address: '127.0.0.1', port: 5000, scopeId: 0 };

/** `count` datagrams of `size` bytes, each in its own buffer. */
function datagrams(count: number, size = 100): WSK_BUF_LIST {
  return wskBufList(
    Array.from({ length: count }, (_, i) => ({ Mdl: mdlChain(new Uint8Array(size).fill(i)), Offset: 0, Length: size })),
  );
}

interface Call {
  socket?: FakeSender;
  list?: WSK_BUF_LIST | null;
  flags?: number;
  remote?: SOCKADDR | null;
  controlLength?: number;
  control?: Uint8Array | null;
}

function send(call: Call = {}): { status: number; irp: IRP; socket: FakeSender } {
  const socket = call.socket ?? new FakeSender(4);
  const irp = IoAllocateIrp();
  const status = WskSendMessages(
    socket,
    'list' in call ? (call.list as WSK_BUF_LIST | null) : datagrams(2),
    call.flags ?? 0,
    'remote' in call ? call.remote : TO,
    call.controlLength ?? 0,
    call.control ?? null,
    irp,
  );
  return { status, irp, socket };
}

describe('WskSendMessages: the IRP argument', () => {
  it.each([
    ['null', null],
    ['a plain object', { IoStatus: { Status: 0, Information: 0 } }],
    ['an object made from IRP.prototype', Object.create(IRP.prototype)],
  ])('returns STATUS_INVALID_PARAMETER for %s without sending', (_label, bad) => {
    const socket = new FakeSender(4);
    expect(WskSendMessages(socket, datagrams(1), 0, TO, 0, null, bad as IRP)).toBe(STATUS_INVALID_PARAMETER);
    expect(socket.calls).toHaveLength(0);
  });

  it('returns STATUS_INVALID_PARAMETER for a completed IRP without touching it', () => {
    const socket = new FakeSender(4);
    const irp = IoAllocateIrp();
    IoCompleteRequest(irp, STATUS_SUCCESS, 77);
    expect(WskSendMessages(socket, datagrams(1), 0, TO, 0, null, irp)).toBe(STATUS_INVALID_PARAMETER);
    expect(irp.IoStatus).toEqual({ Status: STATUS_SUCCESS, Information: 77 });
    expect(irp.FailureInfo).toBeNull();
    expect(socket.calls).toHaveLength(0);
  });
});

describe('WskSendMessages: parameter checks complete the IRP and send nothing', () => {
  const closed = (): FakeSender => new FakeSender(4, null, true);
  const connected = (): FakeSender => new FakeSender(4, TO_DEST);

  it.each<[string, Call, number, RegExp]>([
    ['Flags 1', { flags: 1 }, STATUS_INVALID_PARAMETER, /Flags/],
    ['Flags -0.5', { flags: -0.5 }, STATUS_INVALID_PARAMETER, /Flags/],
    ['ControlInfoLength without ControlInfo', { controlLength: 4 }, STATUS_INVALID_PARAMETER, /ControlInfo/],
    ['ControlInfo with length 0', { control: new Uint8Array(16) }, STATUS_INVALID_PARAMETER, /ControlInfo/],
    [
      'ControlInfoLength past ControlInfo',
      { control: new Uint8Array(16), controlLength: 17 },
      STATUS_INVALID_PARAMETER,
      /ControlInfo/,
    ],
    [
      'ControlInfo not a Uint8Array',
      { control: [1, 2] as unknown as Uint8Array, controlLength: 2 },
      STATUS_INVALID_PARAMETER,
      /ControlInfo/,
    ],
    ['a zeroed ControlInfo (cmsg_len 0)', { control: new Uint8Array(24), controlLength: 24 }, STATUS_INVALID_PARAMETER, /ControlInfo/],
    ['an unknown control', { control: UNKNOWN_CONTROL, controlLength: UNKNOWN_CONTROL.byteLength }, STATUS_NOT_SUPPORTED, /ControlInfo/],
    ['an IPv6 control on an IPv4 socket', { control: TCLASS_CONTROL, controlLength: TCLASS_CONTROL.byteLength }, STATUS_NOT_SUPPORTED, /ControlInfo/],
    ['a closed socket', { socket: closed() }, STATUS_INVALID_HANDLE, /closed/],
    ['no RemoteAddress and no fixed remote', { remote: null }, STATUS_INVALID_CONNECTION, /RemoteAddress/],
    ['undefined RemoteAddress and no fixed remote', { remote: undefined }, STATUS_INVALID_CONNECTION, /RemoteAddress/],
    [
      'a malformed RemoteAddress',
      { remote: { family: 'IPv4', address: '1.2.3.4', port: 0 } },
      STATUS_INVALID_PARAMETER,
      /RemoteAddress/,
    ],
    [
      'an IPv6 RemoteAddress on an IPv4 socket',
      { remote: { family: 'IPv6', address: '::1', port: 1 } },
      STATUS_INVALID_ADDRESS_COMPONENT,
      /RemoteAddress/,
    ],
    ['a NULL BufferList', { list: null }, STATUS_INVALID_PARAMETER, /BufferList/],
    ['an oversized datagram', { list: datagrams(1, 65508) }, STATUS_INVALID_BUFFER_SIZE, /BufferList/],
    // Order: earlier checks win.
    ['bad Flags on a closed socket', { flags: 2, socket: closed() }, STATUS_INVALID_PARAMETER, /Flags/],
    [
      'a supported ControlInfo on a closed socket',
      { control: TOS_CONTROL, controlLength: TOS_CONTROL.byteLength, socket: closed() },
      STATUS_INVALID_HANDLE,
      /closed/,
    ],
    ['a closed socket and no remote', { socket: closed(), remote: null }, STATUS_INVALID_HANDLE, /closed/],
    ['a bad remote and a bad list', { remote: { family: 4 } as unknown as SOCKADDR, list: null }, STATUS_INVALID_PARAMETER, /RemoteAddress/],
    ['a connected socket and a NULL BufferList', { socket: connected(), remote: null, list: null }, STATUS_INVALID_PARAMETER, /BufferList/],
  ])('%s', async (_label, call, expected, reason) => {
    const { status, irp, socket } = send(call);
    expect(status).toBe(expected);
    expect(irp.completed).toBe(true);
    expect(irp.IoStatus).toEqual({ Status: expected, Information: 0 });
    await expect(irp.promise).resolves.toEqual({ Status: expected, Information: 0 });
    expect(socket.calls).toHaveLength(0);
    expect(irp.FailureInfo?.reason).toMatch(reason);
    expect(irp.FailureInfo?.datagramsSent).toBe(0);
  });

  it('a socket that is not a BatchSender gives STATUS_INVALID_HANDLE', () => {
    const irp = IoAllocateIrp();
    const bad = {} as unknown as FakeSender;
    expect(WskSendMessages(bad, datagrams(1), 0, TO, 0, null, irp)).toBe(STATUS_INVALID_HANDLE);
    expect(irp.IoStatus.Status).toBe(STATUS_INVALID_HANDLE);
  });

  it('an argument whose getter throws still completes the IRP', () => {
    const irp = IoAllocateIrp();
    const list = {
      Next: null,
      get Buffer(): never {
        throw new Error('hostile');
      },
    } as unknown as WSK_BUF_LIST;
    expect(WskSendMessages(new FakeSender(4), list, 0, TO, 0, null, irp)).toBe(STATUS_INVALID_PARAMETER);
    expect(irp.IoStatus).toEqual({ Status: STATUS_INVALID_PARAMETER, Information: 0 });
  });

  it('submit throwing completes with STATUS_INVALID_PARAMETER', () => {
    const socket = new FakeSender(4);
    socket.script.push(new RangeError('bad layout'));
    const { status, irp } = send({ socket });
    expect(status).toBe(STATUS_INVALID_PARAMETER);
    expect(irp.IoStatus).toEqual({ Status: STATUS_INVALID_PARAMETER, Information: 0 });
    expect(socket.calls).toHaveLength(1);
    expect(irp.FailureInfo?.reason).toMatch(/bad layout/);
  });
});

describe('WskSendMessages: sending', () => {
  it('control information reaches the socket as neutral controls for every datagram', () => {
    const socket = new FakeSender(4);
    const block = new Uint8Array(48);
    block.set(TOS_CONTROL, 0);
    block.set(controlBlock(0, 4, 9), 24); // IP_TTL 9
    const irp = IoAllocateIrp();
    const status = WskSendMessages(socket, datagrams(3), 0, TO, 48, block, irp);
    expect(status).toBe(STATUS_SUCCESS);
    expect(socket.calls).toHaveLength(1);
    expect(socket.calls[0]?.controls).toEqual({ tos: 0xb8, ttl: 9 });
  });

  it('IP_ECN goes into the low two bits of the TOS byte, as the native send takes it', () => {
    const ecn = controlBlock(0, 50, 1); // IPPROTO_IP, IP_ECN
    for (const [block, tos] of [[ecn, 1], [Buffer.concat([TOS_CONTROL, ecn]), 0xb9]] as const) {
      const socket = new FakeSender(4);
      const irp = IoAllocateIrp();
      expect(WskSendMessages(socket, datagrams(1), 0, TO, block.byteLength, block, irp)).toBe(STATUS_SUCCESS);
      expect(socket.calls[0]?.controls).toEqual({ tos });
    }
  });

  it('a UDP_SEND_MSG_SIZE past the IPv4 UDP limit is STATUS_INVALID_PARAMETER and sends nothing', () => {
    const block = controlBlock(17, 2, 65508); // IPPROTO_UDP, UDP_SEND_MSG_SIZE
    const socket = new FakeSender(4);
    const { status, irp } = send({ socket, control: block, controlLength: block.byteLength });
    expect(status).toBe(STATUS_INVALID_PARAMETER);
    expect(irp.FailureInfo?.reason).toMatch(/^ControlInfo: .*segmentSize/);
    expect(socket.calls).toHaveLength(0);
    const v6 = new FakeSender(6);
    const remote: SOCKADDR = { family: 'IPv6', address: '::1', port: 5000 };
    expect(send({ socket: v6, remote, control: block, controlLength: block.byteLength }).status).toBe(STATUS_SUCCESS);
    expect(v6.calls[0]?.controls).toEqual({ segmentSize: 65508 });
  });

  it('no control information gives no controls', () => {
    const socket = new FakeSender(4);
    expect(send({ socket }).status).toBe(STATUS_SUCCESS);
    expect(socket.calls[0]?.controls).toBeUndefined();
  });

  it('success: passes the batch through and completes with Information = bytes', async () => {
    const socket = new FakeSender(4);
    const a = new Uint8Array(10).fill(1);
    const b = new Uint8Array(20).fill(2);
    const list = wskBufList([
      { Mdl: mdlChain(a, b), Offset: 5, Length: 10 },
      { Mdl: mdlChain(b), Offset: 0, Length: 20 },
    ]);
    socket.script.push(sendResult({ datagrams: 2, bytes: 30, errno: 0, syscall: 'sendmmsg' }));
    const order: string[] = [];
    const irp = IoAllocateIrp();
    IoSetCompletionRoutine(irp, (_d, done, ctx: string) => order.push(`${ctx}:${done.IoStatus.Information}`), 'ctx');
    const status = WskSendMessages(socket, list, 0, TO, 0, null, irp);
    order.push('returned');

    expect(status).toBe(STATUS_SUCCESS);
    expect(order).toEqual(['ctx:30', 'returned']);
    expect(irp.IoStatus).toEqual({ Status: STATUS_SUCCESS, Information: 30 });
    await expect(irp.promise).resolves.toEqual({ Status: STATUS_SUCCESS, Information: 30 });
    expect(irp.FailureInfo).toBeNull();
    expect(socket.calls).toHaveLength(1);
    const call = socket.calls[0]!;
    expect(call.buffers).toEqual([a, b]);
    expect(call.buffers[0]).toBe(a);
    expect(call.buffers[1]).toBe(b);
    expect(Array.from(call.batch.ranges)).toEqual([0, 5, 5, 1, 0, 5, 1, 0, 20]);
    expect(Array.from(call.batch.spans)).toEqual([0, 2, 2, 1]);
    expect(gather(call.buffers, call.batch.ranges, call.batch.spans)).toEqual([
      new Uint8Array([1, 1, 1, 1, 1, 2, 2, 2, 2, 2]),
      b,
    ]);
    expect(call.batch.count).toBe(2);
    expect(call.batch.totalBytes).toBe(30);
    expect(call.batch.targets).toBeNull();
    expect(call.destination).toEqual(TO_DEST);
  });

  it('the batch: one destination record, stop at the first refused datagram, segment as the socket\'s gso', () => {
    for (const gso of [false, true]) {
      const socket = new FakeSender(4, null, false, gso);
      expect(send({ socket, list: datagrams(3) }).status).toBe(STATUS_SUCCESS);
      const { batch } = socket.calls[0]!;
      expect(batch.segment).toBe(gso);
      expect(batch.continueOnError).toBe(false);
      expect(batch.endpoints).toEqual([TO_DEST]);
      // family 4, 0, port 5000 big-endian, scope 0, then 127.0.0.1 and zeros (lib/batch.ts).
      expect(Array.from(batch.destinations ?? [])).toEqual([4, 0, 0x13, 0x88, 0, 0, 0, 0, 127, 0, 0, 1, ...new Array(12).fill(0)]);
    }
  });

  it('partial failure: ECONNREFUSED after 3 datagrams gives STATUS_CONNECTION_REFUSED, Information 300', async () => {
    const socket = new FakeSender(4);
    socket.script.push(sendResult({ datagrams: 3, bytes: 300, errno: errno.ECONNREFUSED, syscall: 'sendmmsg' }));
    const { status, irp } = send({ socket, list: datagrams(5) });
    expect(status).toBe(STATUS_CONNECTION_REFUSED);
    expect(irp.IoStatus).toEqual({ Status: STATUS_CONNECTION_REFUSED, Information: 300 });
    await expect(irp.promise).resolves.toEqual({ Status: STATUS_CONNECTION_REFUSED, Information: 300 });
    expect(irp.FailureInfo).toMatchObject({
      errno: errno.ECONNREFUSED,
      code: 'ECONNREFUSED',
      syscall: 'sendmmsg',
      datagramsSent: 3,
    });
  });

  it('a send that has to wait returns STATUS_PENDING and completes the IRP later, once', async () => {
    const socket = new FakeSender(4);
    socket.script.push('pending');
    const order: string[] = [];
    const irp = IoAllocateIrp();
    IoSetCompletionRoutine(irp, (_d, done) => order.push(`completed:${done.IoStatus.Information}`), null);
    const status = WskSendMessages(socket, datagrams(4), 0, TO, 0, null, irp);
    order.push('returned');
    expect(status).toBe(STATUS_PENDING);
    expect(irp.completed).toBe(false);
    expect(irp.IoStatus).toEqual({ Status: STATUS_PENDING, Information: 0 });
    socket.completeNext(completion({ datagrams: 4, bytes: 400, errno: 0, syscall: 'sendmmsg' }));
    expect(order).toEqual(['returned', 'completed:400']);
    await expect(irp.promise).resolves.toEqual({ Status: STATUS_SUCCESS, Information: 400 });
    expect(IoCancelIrp(irp)).toBe(false);
  });

  it('a pending send that fails later completes with its NTSTATUS and the bytes sent', async () => {
    const socket = new FakeSender(4);
    socket.script.push('pending');
    const { status, irp } = send({ socket, list: datagrams(4) });
    expect(status).toBe(STATUS_PENDING);
    socket.completeNext(completion({ datagrams: 2, bytes: 200, errno: errno.EHOSTUNREACH, syscall: 'sendmmsg' }));
    await expect(irp.promise).resolves.toEqual({ Status: 0xc000023d, Information: 200 });
    expect(irp.FailureInfo).toMatchObject({ code: 'EHOSTUNREACH', datagramsSent: 2 });
  });

  it('IoCancelIrp on a pending IRP completes it with STATUS_CANCELLED and the bytes already sent', async () => {
    const socket = new FakeSender(4);
    socket.script.push('pending');
    const { status, irp } = send({ socket, list: datagrams(4) });
    expect(status).toBe(STATUS_PENDING);
    expect(IoCancelIrp(irp)).toBe(true);
    // The fake reports 1 datagram / 7 bytes out before the cancel.
    await expect(irp.promise).resolves.toEqual({ Status: 0xc0000120, Information: 7 });
    expect(irp.Cancel).toBe(true);
    expect(IoCancelIrp(irp)).toBe(false);
  });

  it('EOPNOTSUPP maps to STATUS_NOT_SUPPORTED', () => {
    const socket = new FakeSender(4);
    socket.script.push(sendResult({ datagrams: 0, bytes: 0, errno: errno.EOPNOTSUPP, syscall: 'sendmmsg' }));
    expect(send({ socket }).status).toBe(STATUS_NOT_SUPPORTED);
  });

  it('an errno outside the table gives STATUS_UNSUCCESSFUL but keeps its name', () => {
    const socket = new FakeSender(4);
    socket.script.push(sendResult({ datagrams: 0, bytes: 0, errno: errno.EIO, syscall: 'sendmsg' }));
    const { status, irp } = send({ socket });
    expect(status).toBe(STATUS_UNSUCCESSFUL);
    expect(irp.FailureInfo).toMatchObject({ errno: errno.EIO, code: 'EIO', syscall: 'sendmsg' });
  });

  it('accepts a negative (libuv-style) errno', () => {
    const socket = new FakeSender(4);
    socket.script.push(sendResult({ datagrams: 0, bytes: 0, errno: -errno.ECONNREFUSED, syscall: 'sendmmsg' }));
    const { status, irp } = send({ socket });
    expect(status).toBe(STATUS_CONNECTION_REFUSED);
    expect(irp.FailureInfo?.errno).toBe(errno.ECONNREFUSED);
  });

  it('never reports more bytes than the batch holds', () => {
    const socket = new FakeSender(4);
    socket.script.push(sendResult({ datagrams: 2, bytes: 10_000, errno: 0, syscall: 'sendmmsg' }));
    const { irp } = send({ socket, list: datagrams(2) });
    expect(irp.IoStatus).toEqual({ Status: STATUS_SUCCESS, Information: 200 });
  });

  it('a malformed result from the socket gives STATUS_UNSUCCESSFUL', () => {
    const socket = new FakeSender(4);
    socket.script.push(sendResult({ datagrams: 1, bytes: -5, errno: 0, syscall: 'sendmmsg' }));
    const { status, irp } = send({ socket });
    expect(status).toBe(STATUS_UNSUCCESSFUL);
    expect(irp.IoStatus.Information).toBe(0);
  });

  it('connected socket, NULL RemoteAddress: sends to the fixed remote (destination null)', () => {
    for (const remote of [null, undefined]) {
      const socket = new FakeSender(4, TO_DEST);
      const { status, irp } = send({ socket, remote });
      expect(status).toBe(STATUS_SUCCESS);
      expect(irp.IoStatus).toEqual({ Status: STATUS_SUCCESS, Information: 200 });
      expect(socket.calls).toHaveLength(1);
      expect(socket.calls[0]?.destination).toBeNull();
      expect(socket.calls[0]?.batch.destinations).toBeNull();
      expect(socket.calls[0]?.batch.endpoints).toEqual([]);
    }
  });

  it('raw SOCKADDR_IN6 bytes on an IPv6 socket', () => {
    const socket = new FakeSender(6);
    const sockaddr = new Uint8Array(28);
    sockaddr.set([23, 0, 0x01, 0xbb]);
    sockaddr[23] = 1;
    sockaddr[24] = 2;
    const { status } = send({ socket, remote: sockaddr });
    expect(status).toBe(STATUS_SUCCESS);
    expect(socket.calls[0]?.destination).toEqual({ family: 6, address: '::1', port: 443, scopeId: 2 });
  });

  it('the IRP is never left pending', () => {
    const socket = new FakeSender(4);
    const { irp } = send({ socket });
    expect(irp.IoStatus.Status).not.toBe(STATUS_PENDING);
    expect(irp.completed).toBe(true);
  });
});
