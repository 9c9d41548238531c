/**
 * Compile-time test of UdpSocket's typed events (lib/events.ts): `npm run typecheck` compiles
 * this file (test/tsconfig.json includes test/**), and every `@ts-expect-error` line must be an
 * error, so the typecheck fails if the event typing loosens. Never run, only compiled.
 */
import { createSocket, type RemoteInfo, type UdpSocketEvents } from '../../lib';

const socket = createSocket('udp4');

// The right names and listener shapes compile.
socket.on('message', (msg: Buffer, rinfo: RemoteInfo) => msg.length + rinfo.port + rinfo.size);
socket.once('drain', () => undefined);
socket.off('close', () => undefined);
socket.on('error', (error: Error) => error.message);
socket.prependListener('listening', () => undefined);
socket.emit('drain');
const chained: typeof socket = socket.on('close', () => undefined).ref().unref();
void chained;
const args: UdpSocketEvents['message'] = [Buffer.alloc(1), { address: '::1', family: 'IPv6', port: 1, size: 1 }];
void args;

// @ts-expect-error a misspelt event name
socket.on('messge', () => undefined);
// @ts-expect-error a misspelt event name, once
socket.once('dran', () => undefined);
// @ts-expect-error a message listener whose first argument is not a Buffer
socket.on('message', (msg: string) => msg);
// @ts-expect-error rinfo has no `host`
socket.on('message', (_msg, rinfo) => rinfo.host);
// @ts-expect-error 'error' passes an Error, not a number
socket.on('error', (code: number) => code);
// @ts-expect-error 'drain' carries no arguments
socket.emit('drain', 1);
// @ts-expect-error a misspelt event name, emitted
socket.emit('clsoe');
// @ts-expect-error the signal option takes an AbortSignal
void socket.sendBatch([], 1, '::1', { signal: 'stop' });
