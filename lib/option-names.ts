/**
 * The option names each options bag of the public API knows. A name outside its list is a
 * TypeError naming it, so that a misspelt or unsupported option (`reuseaddr`, dgram's `lookup`)
 * never passes without a word. Pure: loads no native code.
 */

/** createSocket({ ... }). */
export const SOCKET_OPTION_NAMES = [
  'type', 'sendBufferSize', 'recvBufferSize', 'gso', 'reuseAddr', 'reusePort', 'ipv6Only', 'signal',
] as const;

/** The last argument of sendBatch / sendTo / sendToMany and their try forms. */
export const SEND_OPTION_NAMES = [
  'sourceAddress', 'interfaceIndex', 'tos', 'ecn', 'ttl', 'segmentSize', 'gso', 'continueOnError', 'signal',
] as const;

/** new Pacer(socket, options). */
export const PACER_OPTION_NAMES = [
  'rate', 'bitrate', 'next', 'port', 'address', 'sendOptions', 'mode', 'intervalMs', 'burst', 'maxBatch', 'now',
] as const;

/** receiveBatch / datagrams. */
export const RECEIVE_OPTION_NAMES = ['maxDatagrams', 'slotSize', 'arena', 'timeoutMs', 'signal'] as const;

/** icmpErrors. */
export const ICMP_ERRORS_OPTION_NAMES = ['signal'] as const;

/** enableReceiveInfo. */
export const RECEIVE_INFO_OPTION_NAMES = ['gro'] as const;

/**
 * Throws a TypeError when `options` is not an object or has an own enumerable string key that
 * `known` lacks. `what` names the bag in the message, e.g. "createSocket".
 */
export function checkOptionNames(options: unknown, known: readonly string[], what: string): void {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`${what} options must be an object`);
  }
  for (const name of Object.keys(options)) {
    if (!known.includes(name)) {
      const shown = name.length <= 40 ? JSON.stringify(name) : `a name of ${name.length} characters`;
      throw new TypeError(`${what}: unknown option ${shown}; the known options are ${known.join(', ')}`);
    }
  }
}
