/**
 * The WSK (Winsock Kernel) surface of wsk-dgram: Windows names and shapes, so code written
 * against WSK ports line by line. Pure TypeScript; the socket it sends through is any
 * `BatchSender` (lib/transport.ts).
 *
 * Not exported here, because only the WSK provider side may call them: `IoCompleteRequest`
 * and `IoSetCancelRoutine` (import them from './irp' inside the library). The batch limits live in
 * lib/transport.ts, shared with the idiomatic API.
 */

export * from './ntstatus';
export { IoAllocateMdl, mdlChain, type MDL } from './mdl';
export {
  buildBatch,
  wskBufList,
  type BatchBuildFailure,
  type BuildBatchResult,
  type BuiltBatch,
  type WSK_BUF,
  type WSK_BUF_LIST,
} from './buf';
export {
  IRP,
  IoAllocateIrp,
  IoCancelIrp,
  IoSetCompletionRoutine,
  type DRIVER_CANCEL,
  type IO_COMPLETION_ROUTINE,
  type IO_STATUS_BLOCK,
  type WSK_FAILURE_INFO,
} from './irp';
export {
  AF_INET,
  AF_INET6,
  SOCKADDR_IN6_SIZE,
  SOCKADDR_IN_SIZE,
  SOCKADDR_STORAGE_SIZE,
  encodeSockaddr,
  parseRemoteAddress,
  type ParseRemoteAddressResult,
  type SOCKADDR,
  type SOCKADDR_INET,
} from './sockaddr';
export { WskSendMessages } from './send-messages';
export * from './cmsg';
