/**
 * The events a UdpSocket emits, by name, with their listener arguments: `UdpSocket` is an
 * `EventEmitter<UdpSocketEvents>`, so `socket.on('messge', ...)` or a listener of the wrong
 * shape does not compile. All platforms.
 */
import type { IcmpError } from './icmp';

/** The sender of a datagram, as node:dgram's 'message' event reports it. */
export interface RemoteInfo {
  /** The source IP literal (an IPv6 link-local one with its `%scope`). */
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
  /** The datagram's length in bytes. */
  size: number;
}

/** Event name -> listener arguments. */
export interface UdpSocketEvents {
  /**
   * A datagram arrived (fed by the batched receiver while a 'message' listener is attached):
   * `msg` is a copy of its bytes, `rinfo` its sender, as node:dgram gives them.
   */
  message: [msg: Buffer, rinfo: RemoteInfo];
  /** The send queue emptied. */
  drain: [];
  /** close() ran. */
  close: [];
  /** A receive for the 'message' listeners failed (an OS error as a WskError). */
  error: [error: Error];
  /** bind() succeeded (emitted on the next tick, as node:dgram emits it after its bind). */
  listening: [];
  /** An ICMP error one of the socket's datagrams caused (Linux; see UdpSocket.icmpErrors()). */
  icmp: [error: IcmpError];
  /** EventEmitter's own: a listener is about to be added. */
  newListener: [eventName: string | symbol, listener: (...args: never[]) => void];
  /** EventEmitter's own: a listener was removed. */
  removeListener: [eventName: string | symbol, listener: (...args: never[]) => void];
}
