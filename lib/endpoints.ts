/**
 * Reading the destinations of a multi-destination send (sendTo's messages, sendToMany's
 * endpoints) into checked Destinations, each field read once: one reader for UdpSocket and the
 * node:dgram wrapper, which take the same shapes.
 */
import type { DestinationCache } from './batch';
import type { Destination } from './transport';

/** The address a destination without one goes to: loopback of the socket's family. */
function loopback(family: 4 | 6): string {
  return family === 6 ? '::1' : '127.0.0.1';
}

/** One destination, its errors prefixed with `what` ("message 3: ..."). */
export function readEndpoint(cache: DestinationCache, family: 4 | 6, port: unknown, address: unknown,
  what: string): Destination {
  try {
    return cache.destination(port, address ?? loopback(family));
  } catch (error) {
    if (error instanceof TypeError) throw new TypeError(`${what}: ${error.message}`);
    if (error instanceof RangeError) throw new RangeError(`${what}: ${error.message}`);
    throw error;
  }
}

/** `[{ port, address? }]` into destinations, each endpoint read once. */
export function readEndpoints(cache: DestinationCache, family: 4 | 6, endpoints: unknown): Destination[] {
  if (!Array.isArray(endpoints)) throw new TypeError('destinations must be an array of { port, address }');
  const count = endpoints.length;
  const destinations: Destination[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const endpoint: unknown = endpoints[i];
    if (typeof endpoint !== 'object' || endpoint === null) throw new TypeError(`destination ${i} must be an object`);
    const { port, address } = endpoint as Record<string, unknown>;
    destinations[i] = readEndpoint(cache, family, port, address, `destination ${i}`);
  }
  return destinations;
}

/** `[{ data, port, address? }]` into the data (unchecked: the batch builder checks it) and destinations. */
export function readMessages(cache: DestinationCache, family: 4 | 6, messages: unknown,
): { data: unknown[]; destinations: Destination[] } {
  if (!Array.isArray(messages)) throw new TypeError('messages must be an array of { data, port, address }');
  const count = messages.length;
  const data: unknown[] = new Array(count);
  const destinations: Destination[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const message: unknown = messages[i];
    if (typeof message !== 'object' || message === null) throw new TypeError(`message ${i} must be an object`);
    const { data: bytes, port, address } = message as Record<string, unknown>;
    data[i] = bytes;
    destinations[i] = readEndpoint(cache, family, port, address, `message ${i}`);
  }
  return { data, destinations };
}
