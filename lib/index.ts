/**
 * wsk-dgram: many UDP datagrams per system call.
 * - The idiomatic API: `createSocket`, `UdpSocket#sendBatch` / `#sendTo` / `#sendToMany` and
 *   their `try` forms.
 * - The WSK layer: `WskSendMessages` with WSK_BUF_LIST / MDL chains, NTSTATUS and IRPs. Its
 *   names are also the `wsk-dgram/wsk` entry (lib/wsk/index.ts) on their own; they stay here
 *   too, for the code that imports them from the root.
 */
export {
  createSocket,
  UdpSocket,
  type BatchInput,
  type Datagram,
  type Endpoint,
  type Message,
  type PackedBatch,
  type SendFailure,
  type SendOptions,
  type SendResult,
  type SocketOptions,
  type SocketType,
} from './socket';
export { DestinationSet, MAX_BATCH_RANGES } from './batch';
export { WskError } from './errors';
export {
  Pacer, type PacedSocket, type PacerBudget, type PacerMode, type PacerOptions, type PacerSource, type PacerStats,
} from './pacer';
export {
  DgramBatchSender, wrapDgram, type DgramSendResult, type DgramSenderStats, type WrapDgramOptions,
} from './wrap-dgram';
export type { RemoteInfo, UdpSocketEvents } from './events';
export type { AddressInfo, ReceivedDatagram, ReceiveOptions } from './receive';
export type { SocketStats } from './binding';
export type { IcmpError, IcmpErrorKind, IcmpErrorsOptions, IcmpStats, MtuDiscovery } from './icmp';
export { MAX_BATCH_DATAGRAMS, MAX_DATAGRAM_PIECES, MAX_UDP_PAYLOAD, type SendControls } from './transport';
export * from './wsk';

/** The batching system call of the loaded native build ("sendmmsg" on Linux). */
export function nativeBackend(): string {
  // Loaded lazily so that importing the WSK types never needs the addon.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('./binding') as typeof import('./binding')).binding().backend;
}
