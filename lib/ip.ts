/** IP literals to bytes, for the destination table and the WSK SOCKADDR codec. */
import { isIPv4, isIPv6 } from 'node:net';

/** Dotted quad to 4 bytes, or null. Strict: four decimal parts 0..255, no leading zeros. */
export function parseIPv4(text: string): Uint8Array | null {
  if (typeof text !== 'string' || !isIPv4(text)) return null;
  return Uint8Array.from(text.split('.'), Number);
}

/** IPv6 literal (no zone) to 16 bytes, or null. Accepts `::` and a trailing dotted quad. */
export function parseIPv6(text: string): Uint8Array | null {
  if (typeof text !== 'string' || !isIPv6(text) || text.includes('%')) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groups = (half: string | undefined): number[] | null => {
    if (half === undefined || half === '') return [];
    const out: number[] = [];
    const parts = half.split(':');
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] as string;
      if (part.includes('.')) {
        const v4 = i === parts.length - 1 ? parseIPv4(part) : null;
        if (v4 === null) return null;
        out.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number));
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(part)) return null;
        out.push(parseInt(part, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = groups(halves[1]);
  if (head === null || tail === null) return null;
  const zeros = 8 - head.length - tail.length;
  if (halves.length === 2 ? zeros < 1 : zeros !== 0) return null;
  const all = [...head, ...new Array<number>(zeros).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  all.forEach((group, i) => {
    bytes[2 * i] = group >> 8;
    bytes[2 * i + 1] = group & 0xff;
  });
  return bytes;
}
