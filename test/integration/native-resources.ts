/**
 * Per-test native sockets and receivers for the raw-binding suites, closed in afterEach even
 * when the test fails; afterEach also checks that no UDP socket of this process is left open.
 */
import { binding, type NativeUdpSocket } from '../../lib/binding';
import { openReceiver, openUdpSocketCount, type Receiver } from './receiver';

export interface NativeResources {
  /** A raw native socket of `family`, opened. */
  openNative(family?: 4 | 6): NativeUdpSocket;
  /** A node:dgram receiver on loopback. */
  receiverOf(type?: 'udp4' | 'udp6'): Promise<Receiver>;
}

/** Registers the beforeEach/afterEach of the calling suite; call it at the top level. */
export function useNativeResources(): NativeResources {
  let socketsBefore = 0;
  let opened: NativeUdpSocket[] = [];
  let receivers: Receiver[] = [];

  beforeEach(() => {
    socketsBefore = openUdpSocketCount();
    opened = [];
    receivers = [];
  });

  afterEach(async () => {
    for (const native of opened) native.close();
    for (const receiver of receivers) await receiver.close();
    expect(openUdpSocketCount()).toBe(socketsBefore);
  });

  return {
    openNative(family: 4 | 6 = 4): NativeUdpSocket {
      const native = new (binding().UdpSocket)();
      opened.push(native);
      const error = native.open(family);
      if (error !== 0) throw new Error(`open(${family}) failed with errno ${error}`);
      return native;
    },
    async receiverOf(type: 'udp4' | 'udp6' = 'udp4'): Promise<Receiver> {
      const receiver = await openReceiver(type);
      receivers.push(receiver);
      return receiver;
    },
  };
}
