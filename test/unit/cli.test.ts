/**
 * The pure parts of the wsk-dgram command: the datagram header and the sink's sequence
 * accounting, the kernel counter parsers, and the flag value forms.
 */
import { hostPort, quantity, UsageError } from '../../lib/cli/args';
import { HEADER_BYTES, readHeader, REORDER_WINDOW, SequenceTracker, writeHeader } from '../../lib/cli/header';
import { counterDelta, parseSnmp, parseSnmp6 } from '../../lib/cli/kernel';

test('a header written is read back; anything else is not a header', () => {
  const buffer = new Uint8Array(100);
  const view = new DataView(buffer.buffer);
  writeHeader(view, 40, 0xdeadbeef, 7, 2 ** 40 + 5, 12, 34);
  expect(readHeader(buffer, 40, 60)).toEqual({ session: 0xdeadbeef, thread: 7, sequence: 2 ** 40 + 5 });
  expect(readHeader(buffer, 40, HEADER_BYTES - 1)).toBeNull();
  expect(readHeader(buffer, 0, 40)).toBeNull();
  buffer[44] = 2; // another version
  expect(readHeader(buffer, 40, 60)).toBeNull();
});

test('sequence accounting: loss, reordering and duplicates', () => {
  const tracker = new SequenceTracker();
  for (const s of [0, 1, 2, 5, 3, 3, 7, 1]) tracker.add(s);
  // Seen: 0,1,2,3,5,7 (unique); 4 and 6 missing; 3 arrived late once then again; 1 again.
  expect(tracker).toMatchObject({ received: 8, highest: 7, reordered: 1, duplicates: 2, tooLate: 0 });
  expect(tracker.lost).toBe(2);
  tracker.add(4);
  tracker.add(6);
  expect(tracker.lost).toBe(0);
  expect(tracker.reordered).toBe(3);
});

test('a number skipped over by a big jump is reordered, not duplicate, when it comes; past the window it is too late', () => {
  const tracker = new SequenceTracker();
  tracker.add(0);
  tracker.add(REORDER_WINDOW + 10); // clears the window's bits
  tracker.add(REORDER_WINDOW + 5);
  expect(tracker).toMatchObject({ reordered: 1, duplicates: 0 });
  tracker.add(0); // more than a window behind the highest
  expect(tracker.tooLate).toBe(1);
});

test('the kernel counters are parsed from /proc/net/snmp and snmp6 text', () => {
  const snmp = 'Ip: Forwarding\nIp: 1\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\n' +
    'Udp: 10 2 3 40 5 6 0 0 0\nUdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors\nUdpLite: 0 0 0 0 0 0 0 0 0\n';
  const before = parseSnmp(snmp);
  expect(before).toEqual({ inDatagrams: 10, noPorts: 2, inErrors: 3, outDatagrams: 40, rcvbufErrors: 5, sndbufErrors: 6 });
  const after = parseSnmp(snmp.replace('Udp: 10 2 3 40', 'Udp: 15 2 3 140'));
  expect(counterDelta(after, before)).toMatchObject({ inDatagrams: 5, outDatagrams: 100, rcvbufErrors: 0 });
  expect(parseSnmp('Ip: 1\n')).toBeNull();
  const snmp6 = 'Udp6InDatagrams                 \t7\nUdp6NoPorts 1\nUdp6InErrors 0\nUdp6OutDatagrams 9\nUdp6RcvbufErrors 2\nUdp6SndbufErrors 3\nUdpLite6InDatagrams 99\n';
  expect(parseSnmp6(snmp6)).toEqual({ inDatagrams: 7, noPorts: 1, inErrors: 0, outDatagrams: 9, rcvbufErrors: 2, sndbufErrors: 3 });
  expect(counterDelta(null, before)).toBeNull();
});

test('flag values: HOST:PORT and SI quantities', () => {
  expect(hostPort('127.0.0.1:9000', 'to')).toEqual({ host: '127.0.0.1', port: 9000, family: 4 });
  expect(hostPort('[::1]:53', 'to')).toEqual({ host: '::1', port: 53, family: 6 });
  expect(hostPort('localhost:1', 'to')).toMatchObject({ host: '127.0.0.1', family: 4 });
  for (const bad of ['::1:53', '127.0.0.1', '127.0.0.1:0', '127.0.0.1:70000', '[::1]53']) {
    expect(() => hostPort(bad, 'to')).toThrow(UsageError);
  }
  expect(quantity('100k', 'rate')).toBe(100_000);
  expect(quantity('1.5M', 'rate')).toBe(1_500_000);
  expect(quantity('10G', 'bitrate')).toBe(1e10);
  expect(quantity('250', 'rate')).toBe(250);
  for (const bad of ['', '1e5', '-1', '5T', 'k']) expect(() => quantity(bad, 'rate')).toThrow(UsageError);
});
