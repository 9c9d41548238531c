import fc from 'fast-check';
import { buildBatch, MAX_MDLS_PER_BATCH, wskBufList, type WSK_BUF, type WSK_BUF_LIST } from '../../lib/wsk/buf';
import { IoAllocateMdl, mdlChain, type MDL } from '../../lib/wsk/mdl';
import { gather } from './fake-sender';

const STATUS_INVALID_PARAMETER = 0xc000000d;
const STATUS_INVALID_BUFFER_SIZE = 0xc0000206;

/** Bytes 0, 1, 2, ... (mod 256) plus `start`. */
function bytes(length: number, start = 0): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (start + i) & 0xff);
}

function one(Mdl: MDL | null, Offset: number, Length: number): WSK_BUF_LIST {
  return { Next: null, Buffer: { Mdl, Offset, Length } };
}

/** buildBatch that must succeed; returns the plain parts for toEqual. */
function ok(list: WSK_BUF_LIST | null, family: 4 | 6 = 4) {
  const result = buildBatch(list, family);
  if (!result.ok) throw new Error(`expected success, got ${result.status.toString(16)}: ${result.reason}`);
  return { ...result, ranges: Array.from(result.ranges), spans: Array.from(result.spans) };
}

function status(list: unknown, family: 4 | 6 = 4): number | 'ok' {
  const result = buildBatch(list as WSK_BUF_LIST, family);
  return result.ok ? 'ok' : result.status;
}

describe('MDL helpers', () => {
  it('IoAllocateMdl describes the whole view and links next', () => {
    const a = bytes(3);
    const tail = IoAllocateMdl(bytes(2));
    const mdl = IoAllocateMdl(a, tail);
    expect(mdl.Bytes).toBe(a);
    expect(mdl.Next).toBe(tail);
    expect(IoAllocateMdl(a).Next).toBeNull();
  });

  it('IoAllocateMdl accepts a Buffer and rejects non-Uint8Arrays', () => {
    expect(IoAllocateMdl(Buffer.from('hi')).Bytes.byteLength).toBe(2);
    expect(() => IoAllocateMdl([1, 2] as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => IoAllocateMdl(new Uint16Array(2) as unknown as Uint8Array)).toThrow(TypeError);
  });

  it('mdlChain links the parts in order', () => {
    const [a, b, c] = [bytes(1), bytes(2), bytes(3)];
    const chain = mdlChain(a, b, c);
    expect(chain.Bytes).toBe(a);
    expect(chain.Next?.Bytes).toBe(b);
    expect(chain.Next?.Next?.Bytes).toBe(c);
    expect(chain.Next?.Next?.Next).toBeNull();
    expect(() => mdlChain()).toThrow(RangeError);
  });

  it('wskBufList links the WSK_BUFs in order', () => {
    const bufs: WSK_BUF[] = [
      { Mdl: null, Offset: 0, Length: 0 },
      { Mdl: null, Offset: 0, Length: 0 },
    ];
    const list = wskBufList(bufs);
    expect(list.Buffer).toBe(bufs[0]);
    expect(list.Next?.Buffer).toBe(bufs[1]);
    expect(list.Next?.Next).toBeNull();
    expect(() => wskBufList([])).toThrow(RangeError);
  });
});

describe('buildBatch ranges and spans (golden words)', () => {
  // ranges: (buffer index, offset, length) per range; spans: (first range, range count) per datagram.
  it('single MDL, whole', () => {
    const a = bytes(10);
    const r = ok(one(mdlChain(a), 0, 10));
    expect(r.ranges).toEqual([0, 0, 10]);
    expect(r.spans).toEqual([0, 1]);
    expect(r.buffers).toHaveLength(1);
    expect(r.buffers[0]).toBe(a);
    expect(r.count).toBe(1);
    expect(r.totalBytes).toBe(10);
  });

  it('single MDL with an offset', () => {
    const r = ok(one(mdlChain(bytes(10)), 3, 4));
    expect(r.ranges).toEqual([0, 3, 4]);
    expect(r.spans).toEqual([0, 1]);
    expect(r.totalBytes).toBe(4);
  });

  it('a datagram spanning 2 MDLs', () => {
    const [a, b] = [bytes(10), bytes(5, 100)];
    const result = buildBatch(one(mdlChain(a, b), 8, 5), 4);
    if (!result.ok) throw new Error(result.reason);
    expect(Array.from(result.ranges)).toEqual([0, 8, 2, 1, 0, 3]);
    expect(Array.from(result.spans)).toEqual([0, 2]);
    expect(result.buffers[0]).toBe(a);
    expect(result.buffers[1]).toBe(b);
    expect(gather(result.buffers, result.ranges, result.spans)).toEqual([Uint8Array.of(8, 9, 100, 101, 102)]);
  });

  it('a datagram spanning 3 MDLs', () => {
    const r = ok(one(mdlChain(bytes(4), bytes(4), bytes(4)), 2, 8));
    expect(r.ranges).toEqual([0, 2, 2, 1, 0, 4, 2, 0, 2]);
    expect(r.spans).toEqual([0, 3]);
    expect(r.buffers).toHaveLength(3);
  });

  it('stops at the last MDL it needs', () => {
    const r = ok(one(mdlChain(bytes(4), bytes(4), bytes(4)), 0, 5));
    expect(r.ranges).toEqual([0, 0, 4, 1, 0, 1]);
    expect(r.spans).toEqual([0, 2]);
    expect(r.buffers).toHaveLength(2);
  });

  it('skips zero-length MDLs, which take no range and no buffer slot', () => {
    const [a, empty, c] = [bytes(4), bytes(0), bytes(4)];
    const r = ok(one(mdlChain(a, empty, c), 0, 8));
    expect(r.ranges).toEqual([0, 0, 4, 1, 0, 4]);
    expect(r.spans).toEqual([0, 2]);
    expect(r.buffers).toEqual([a, c]);
    expect(r.buffers[1]).toBe(c);
  });

  it('Offset equal to the first MDL length starts in the next MDL', () => {
    const [a, b] = [bytes(4), bytes(4)];
    const r = ok(one(mdlChain(a, b), 4, 2));
    expect(r.ranges).toEqual([0, 0, 2]);
    expect(r.buffers).toHaveLength(1);
    expect(r.buffers[0]).toBe(b);
  });

  it('zero-length datagrams have a span of 0 ranges', () => {
    const a = bytes(10);
    for (const list of [one(null, 0, 0), one(mdlChain(a), 10, 0), one(mdlChain(a), 0, 0)]) {
      const r = ok(list);
      expect(r.ranges).toEqual([]);
      expect(r.spans).toEqual([0, 0]);
      expect(r.buffers).toEqual([]);
      expect(r.count).toBe(1);
    }
    const r = ok(
      wskBufList([
        { Mdl: mdlChain(a), Offset: 0, Length: 3 },
        { Mdl: null, Offset: 0, Length: 0 },
        { Mdl: mdlChain(bytes(5)), Offset: 0, Length: 5 },
      ]),
    );
    expect(r.ranges).toEqual([0, 0, 3, 1, 0, 5]);
    expect(r.spans).toEqual([0, 1, 1, 0, 1, 1]);
    expect(r.count).toBe(3);
    expect(r.totalBytes).toBe(8);
  });

  it('a buffer entry per range, shared only by ranges in a row from one view', () => {
    const [a, b] = [bytes(10), bytes(10)];
    const r = ok(
      wskBufList([
        { Mdl: mdlChain(a), Offset: 0, Length: 2 },
        { Mdl: mdlChain(b, a), Offset: 9, Length: 3 },
        { Mdl: IoAllocateMdl(a), Offset: 5, Length: 1 },
      ]),
    );
    // a, then b, then a again (not merged with the first a: no lookup over earlier buffers),
    // which the third datagram's range, next in a row, reuses.
    expect(r.buffers).toHaveLength(3);
    expect(r.buffers[0]).toBe(a);
    expect(r.buffers[1]).toBe(b);
    expect(r.buffers[2]).toBe(a);
    expect(r.ranges).toEqual([0, 0, 2, 1, 9, 1, 2, 0, 2, 2, 5, 1]);
    expect(r.spans).toEqual([0, 1, 1, 2, 3, 1]);
  });

  it('datagrams cut from one MDL by Offset share one buffer entry', () => {
    const packed = bytes(1200 * 8);
    const mdl = IoAllocateMdl(packed);
    const r = ok(wskBufList(Array.from({ length: 8 }, (_, i) => ({ Mdl: mdl, Offset: i * 1200, Length: 1200 }))));
    expect(r.buffers).toHaveLength(1);
    expect(r.buffers[0]).toBe(packed);
    expect(r.ranges).toEqual(Array.from({ length: 8 }, (_, i) => [0, i * 1200, 1200]).flat());
    expect(r.spans).toEqual(Array.from({ length: 8 }, (_, i) => [i, 1]).flat());
  });

  it('keeps distinct views of one ArrayBuffer apart, offsets relative to each view', () => {
    const backing = new ArrayBuffer(32);
    const v1 = new Uint8Array(backing, 4, 8);
    const v2 = new Uint8Array(backing, 16, 8);
    v1.set([1, 2, 3, 4, 5, 6, 7, 8]);
    const r = ok(one(mdlChain(v1, v2), 2, 8));
    expect(r.buffers).toEqual([v1, v2]);
    expect(r.buffers[0]).toBe(v1);
    expect(r.ranges).toEqual([0, 2, 6, 1, 0, 2]);
  });

  it('shares one MDL chain between datagrams', () => {
    const [x, y] = [bytes(3), bytes(3, 50)];
    const chain = mdlChain(x, y);
    const result = buildBatch(
      wskBufList([
        { Mdl: chain, Offset: 0, Length: 6 },
        { Mdl: chain, Offset: 1, Length: 4 },
      ]),
      4,
    );
    if (!result.ok) throw new Error(result.reason);
    expect(Array.from(result.ranges)).toEqual([0, 0, 3, 1, 0, 3, 2, 1, 2, 3, 0, 2]);
    expect(Array.from(result.spans)).toEqual([0, 2, 2, 2]);
    expect(result.buffers).toEqual([x, y, x, y]);
    expect(gather(result.buffers, result.ranges, result.spans)).toEqual([
      Uint8Array.of(0, 1, 2, 50, 51, 52),
      Uint8Array.of(1, 2, 50, 51),
    ]);
  });

  it('reads undefined Next / Mdl as NULL', () => {
    const list = { Buffer: { Mdl: { Bytes: bytes(3) }, Offset: 0, Length: 3 } };
    expect(ok(list as unknown as WSK_BUF_LIST).ranges).toEqual([0, 0, 3]);
    const empty = ok({ Buffer: { Offset: 0, Length: 0 } } as unknown as WSK_BUF_LIST);
    expect(empty.ranges).toEqual([]);
    expect(empty.spans).toEqual([0, 0]);
  });
});

describe('buildBatch failures', () => {
  const ten = (): MDL => mdlChain(bytes(10));

  it('NULL or empty list', () => {
    expect(status(null)).toBe(STATUS_INVALID_PARAMETER);
    expect(status(undefined)).toBe(STATUS_INVALID_PARAMETER);
  });

  it('Offset past the end of the first MDL', () => {
    expect(status(one(ten(), 11, 0))).toBe(STATUS_INVALID_PARAMETER);
    expect(status(one(mdlChain(bytes(10), bytes(10)), 11, 1))).toBe(STATUS_INVALID_PARAMETER);
    expect(status(one(ten(), 10, 0))).toBe('ok');
  });

  it('Length running off the end of the chain', () => {
    expect(status(one(ten(), 0, 11))).toBe(STATUS_INVALID_PARAMETER);
    expect(status(one(ten(), 5, 6))).toBe(STATUS_INVALID_PARAMETER);
    expect(status(one(mdlChain(bytes(4), bytes(4)), 1, 8))).toBe(STATUS_INVALID_PARAMETER);
    expect(status(one(mdlChain(bytes(4), bytes(4)), 1, 7))).toBe('ok');
  });

  it('datagram size limit: 65507 on IPv4, 65527 on IPv6', () => {
    const big = mdlChain(bytes(65528));
    expect(status(one(big, 0, 65507), 4)).toBe('ok');
    expect(status(one(big, 0, 65508), 4)).toBe(STATUS_INVALID_BUFFER_SIZE);
    expect(status(one(big, 0, 65508), 6)).toBe('ok');
    expect(status(one(big, 0, 65527), 6)).toBe('ok');
    expect(status(one(big, 0, 65528), 6)).toBe(STATUS_INVALID_BUFFER_SIZE);
    // Spread over several MDLs it is the datagram, not the piece, that counts.
    const split = mdlChain(bytes(30000), bytes(30000), bytes(30000));
    expect(status(one(split, 0, 65508), 4)).toBe(STATUS_INVALID_BUFFER_SIZE);
  });

  it('Mdl NULL with Length > 0 or Offset > 0', () => {
    expect(status(one(null, 0, 1))).toBe(STATUS_INVALID_PARAMETER);
    expect(status(one(null, 1, 0))).toBe(STATUS_INVALID_PARAMETER);
  });

  it('a cycle in the list', () => {
    const a: WSK_BUF_LIST = { Next: null, Buffer: { Mdl: null, Offset: 0, Length: 0 } };
    a.Next = a;
    expect(status(a)).toBe(STATUS_INVALID_PARAMETER);

    const b: WSK_BUF_LIST = { Next: null, Buffer: { Mdl: null, Offset: 0, Length: 0 } };
    const c: WSK_BUF_LIST = { Next: b, Buffer: { Mdl: ten(), Offset: 0, Length: 1 } };
    b.Next = c;
    expect(status(c)).toBe(STATUS_INVALID_PARAMETER);

    // A long tail into a long loop.
    const nodes: WSK_BUF_LIST[] = Array.from({ length: 300 }, () => ({
      Next: null,
      Buffer: { Mdl: null, Offset: 0, Length: 0 },
    }));
    nodes.forEach((node, i) => (node.Next = nodes[i + 1] ?? (nodes[37] as WSK_BUF_LIST)));
    const result = buildBatch(nodes[0] as WSK_BUF_LIST, 4);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toMatch(/cycle/);
  });

  it('a cycle in an MDL chain, also past the bytes sent', () => {
    const m1 = IoAllocateMdl(bytes(4));
    const m2 = IoAllocateMdl(bytes(4), m1);
    m1.Next = m2;
    expect(status(one(m1, 0, 20))).toBe(STATUS_INVALID_PARAMETER);
    expect(status(one(m1, 0, 2))).toBe(STATUS_INVALID_PARAMETER);
    const empty = IoAllocateMdl(bytes(0));
    empty.Next = empty;
    expect(status(one(empty, 0, 1))).toBe(STATUS_INVALID_PARAMETER);
  });

  it.each([
    ['-1', -1],
    ['-0.5', -0.5],
    ['1.5', 1.5],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['2^53', 2 ** 53],
    ['"1"', '1'],
    ['null', null],
    ['1n', 1n],
  ])('Offset or Length %s', (_label, bad) => {
    const mdl = ten();
    expect(status({ Next: null, Buffer: { Mdl: mdl, Offset: bad, Length: 1 } })).toBe(STATUS_INVALID_PARAMETER);
    expect(status({ Next: null, Buffer: { Mdl: mdl, Offset: 0, Length: bad } })).toBe(STATUS_INVALID_PARAMETER);
  });

  it('Offset above ULONG', () => {
    expect(status(one(ten(), 2 ** 32, 0))).toBe(STATUS_INVALID_PARAMETER);
  });

  it.each([
    ['a number', 42],
    ['a string', 'datagram'],
    ['an array', []],
    ['an entry without Buffer', {}],
    ['Buffer null', { Next: null, Buffer: null }],
    ['Buffer a number', { Next: null, Buffer: 7 }],
    ['Next a number', { Next: 5, Buffer: { Mdl: null, Offset: 0, Length: 0 } }],
    ['Mdl a number', { Next: null, Buffer: { Mdl: 1, Offset: 0, Length: 0 } }],
    ['Mdl without Bytes', { Next: null, Buffer: { Mdl: {}, Offset: 0, Length: 0 } }],
    ['Mdl.Bytes an array', { Next: null, Buffer: { Mdl: { Next: null, Bytes: [1, 2] }, Offset: 0, Length: 2 } }],
    ['Mdl.Bytes a Uint16Array', { Next: null, Buffer: { Mdl: { Next: null, Bytes: new Uint16Array(2) }, Offset: 0, Length: 2 } }],
    ['Mdl.Next a string', { Next: null, Buffer: { Mdl: { Next: 'x', Bytes: bytes(2) }, Offset: 0, Length: 2 } }],
    ['a bad MDL past the bytes sent', { Next: null, Buffer: { Mdl: { Next: { Bytes: 'x' }, Bytes: bytes(4) }, Offset: 0, Length: 2 } }],
  ])('wrong types: %s', (_label, input) => {
    expect(status(input)).toBe(STATUS_INVALID_PARAMETER);
  });

  it('a family other than 4 or 6', () => {
    expect(status(one(ten(), 0, 1), 5 as 4)).toBe(STATUS_INVALID_PARAMETER);
  });

  it('more than 1024 non-empty MDL pieces in one datagram (UIO_MAXIOV)', () => {
    const parts = (n: number, withEmpties: boolean): Uint8Array[] =>
      Array.from({ length: n }, () => bytes(1)).flatMap((p) => (withEmpties ? [p, bytes(0)] : [p]));
    expect(status(one(mdlChain(...parts(1024, false)), 0, 1024))).toBe('ok');
    expect(status(one(mdlChain(...parts(1024, true)), 0, 1024))).toBe('ok');
    expect(status(one(mdlChain(...parts(1025, false)), 0, 1025))).toBe(STATUS_INVALID_PARAMETER);
    // Only the pieces the datagram touches count.
    expect(status(one(mdlChain(...parts(2000, false)), 0, 1024))).toBe('ok');
  });

  it('more than 1_048_576 datagrams', () => {
    const shared: WSK_BUF = { Mdl: null, Offset: 0, Length: 0 };
    let head: WSK_BUF_LIST | null = null;
    for (let i = 0; i < 1_048_576; i++) head = { Next: head, Buffer: shared };
    const exactly = buildBatch(head, 4);
    expect(exactly.ok && exactly.count).toBe(1_048_576);
    expect(exactly.ok && exactly.spans.length).toBe(2 * 1_048_576);
    const over: WSK_BUF_LIST = { Next: head, Buffer: shared };
    expect(status(over)).toBe(STATUS_INVALID_PARAMETER);
  });
});

describe('buildBatch: the order of faults and the MDL budget', () => {
  it('a chain of the wrong shape past the bytes sent outranks Offset and size', () => {
    const badTail = (): MDL => ({ Bytes: bytes(4), Next: { Bytes: 'x' } }) as unknown as MDL;
    const big = buildBatch(one(badTail(), 0, 70000), 4);
    expect(!big.ok && [big.status, big.reason]).toEqual([STATUS_INVALID_PARAMETER, 'datagram 0: MDL.Bytes is not a Uint8Array']);
    const past = buildBatch(one(badTail(), 5, 1), 4);
    expect(!past.ok && past.reason).toBe('datagram 0: MDL.Bytes is not a Uint8Array');
  });

  it('Offset past the first MDL outranks size, size outranks the end of the chain', () => {
    const past = buildBatch(one(mdlChain(bytes(4)), 5, 70000), 4);
    expect(!past.ok && [past.status, past.reason]).toEqual([
      STATUS_INVALID_PARAMETER, 'datagram 0: Offset 5 is past the end of the first MDL (4 bytes)',
    ]);
    const big = buildBatch(one(mdlChain(bytes(4)), 0, 70000), 4);
    expect(!big.ok && big.status).toBe(STATUS_INVALID_BUFFER_SIZE);
    const short = buildBatch(one(mdlChain(bytes(4)), 0, 5), 4);
    expect(!short.ok && short.reason).toBe('datagram 0: Offset 0 + Length 5 runs off the end of the MDL chain');
  });

  it('a chain shared by many datagrams counts once per datagram against MAX_MDLS_PER_BATCH', () => {
    expect(MAX_MDLS_PER_BATCH).toBe(2 ** 21);
    const listOf = (chain: MDL, count: number): WSK_BUF_LIST => {
      const shared: WSK_BUF = { Mdl: chain, Offset: 0, Length: 0 };
      let head: WSK_BUF_LIST | null = null;
      for (let i = 0; i < count; i++) head = { Next: head, Buffer: shared };
      return head as WSK_BUF_LIST;
    };
    const three = mdlChain(bytes(0), bytes(0), bytes(0));
    // 699_050 * 3 = 2_097_150 reads fit; 699_051 * 3 = 2_097_153 do not.
    expect(status(listOf(three, 699_050))).toBe('ok');
    const over = buildBatch(listOf(three, 699_051), 4);
    expect(!over.ok && [over.status, over.reason]).toEqual([
      STATUS_INVALID_PARAMETER, `datagram 699050: more than ${2 ** 21} MDLs in one call`,
    ]);
  });
});

describe('buildBatch properties', () => {
  /** A pool of views (some sharing one ArrayBuffer) and datagrams as chains over the pool. */
  const batchArb = fc
    .array(fc.uint8Array({ maxLength: 40 }), { minLength: 1, maxLength: 5 })
    .chain((pool) =>
      fc.tuple(
        fc.constant(pool),
        fc.array(
          fc
            .array(fc.nat({ max: pool.length - 1 }), { minLength: 1, maxLength: 6 })
            .chain((chain) => {
              const first = (pool[chain[0] as number] as Uint8Array).length;
              const total = chain.reduce((sum, i) => sum + (pool[i] as Uint8Array).length, 0);
              return fc
                .nat({ max: first })
                .chain((offset) => fc.tuple(fc.constant(chain), fc.constant(offset), fc.nat({ max: total - offset })));
            }),
          { minLength: 1, maxLength: 6 },
        ),
        fc.boolean(),
      ),
    );

  it('the ranges of each datagram concatenate to concat(chain).subarray(Offset, Offset + Length)', () => {
    fc.assert(
      fc.property(batchArb, ([rawPool, datagrams, asViews]) => {
        // Optionally make the pool views into one backing buffer at odd offsets.
        let pool = rawPool;
        if (asViews) {
          const backing = new Uint8Array(rawPool.reduce((sum, p) => sum + p.length + 3, 0));
          let at = 3;
          pool = rawPool.map((p) => {
            const view = backing.subarray(at, at + p.length);
            view.set(p);
            at += p.length + 3;
            return view;
          });
        }
        const bufs = datagrams.map(([chain, Offset, Length]) => ({
          Mdl: mdlChain(...chain.map((i) => pool[i] as Uint8Array)),
          Offset,
          Length,
        }));
        const result = buildBatch(wskBufList(bufs), 6);
        if (!result.ok) throw new Error(result.reason);

        const expected = datagrams.map(([chain, offset, length]) =>
          new Uint8Array(Buffer.concat(chain.map((i) => pool[i] as Uint8Array)).subarray(offset, offset + length)),
        );
        expect(gather(result.buffers, result.ranges, result.spans)).toEqual(expected);
        expect(result.count).toBe(datagrams.length);
        expect(result.spans.length).toBe(2 * datagrams.length);
        expect(result.totalBytes).toBe(datagrams.reduce((sum, [, , length]) => sum + length, 0));
        // Spans tile the ranges in order, and every range is non-empty.
        let next = 0;
        for (let d = 0; d < result.count; d++) {
          expect(result.spans[d * 2]).toBe(next);
          next += result.spans[d * 2 + 1] as number;
        }
        expect(next * 3).toBe(result.ranges.length);
        for (let r = 0; r < next; r++) expect(result.ranges[r * 3 + 2]).toBeGreaterThan(0);
        // Buffers are taken in range order: each range uses the last entry or a new one, a new
        // one only for a different view, and no entry goes unused.
        for (let r = 0; r < next; r++) {
          const index = result.ranges[r * 3] as number;
          const previous = r === 0 ? -1 : (result.ranges[(r - 1) * 3] as number);
          expect(index === previous || index === previous + 1).toBe(true);
        }
        expect(next === 0 ? 0 : (result.ranges[(next - 1) * 3] as number) + 1).toBe(result.buffers.length);
        for (let k = 1; k < result.buffers.length; k++) expect(result.buffers[k]).not.toBe(result.buffers[k - 1]);
        for (const b of result.buffers) expect(pool).toContain(b);
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on garbage', () => {
    const leaf = fc.oneof(
      fc.anything(),
      fc.uint8Array({ maxLength: 8 }),
      fc.integer({ min: -2, max: 20 }),
      fc.constantFrom(null, undefined, Number.NaN, -0, 2 ** 40),
    );
    const { list } = fc.letrec((tie) => ({
      list: fc.oneof(
        { depthSize: 'small' },
        leaf,
        fc.record({ Next: tie('list'), Buffer: fc.oneof(leaf, tie('buf')) }, { requiredKeys: [] }),
      ),
      buf: fc.record({ Mdl: fc.oneof(leaf, tie('mdl')), Offset: leaf, Length: leaf }, { requiredKeys: [] }),
      mdl: fc.record({ Next: fc.oneof(leaf, tie('mdl')), Bytes: leaf }, { requiredKeys: [] }),
    }));
    fc.assert(
      fc.property(list, fc.constantFrom(4, 6, 0, Number.NaN), (input, family) => {
        const result = buildBatch(input as WSK_BUF_LIST, family as 4);
        expect(typeof result.ok).toBe('boolean');
        if (!result.ok) expect([STATUS_INVALID_PARAMETER, STATUS_INVALID_BUFFER_SIZE]).toContain(result.status);
      }),
      { numRuns: 500 },
    );
  });
});

describe('buildBatch reads each MDL once per walk (getters that change their answer)', () => {
  it('an MDL whose Next is null on the first read and itself later: sent as read, no loop', () => {
    let reads = 0;
    const mdl = { Bytes: bytes(4) } as { Bytes: Uint8Array; Next: MDL | null };
    Object.defineProperty(mdl, 'Next', { get: () => (reads++ === 0 ? null : mdl) });
    // Length 8 needs a second MDL: as read (Next null), the chain ends after 4 bytes.
    expect(status(one(mdl, 0, 8))).toBe(STATUS_INVALID_PARAMETER);
    reads = 0;
    const sent = ok(one(mdl, 0, 4));
    expect(sent.ranges).toEqual([0, 0, 4]);
    expect(reads).toBe(1);
  });

  it('an MDL whose Bytes grows between reads: the first answer is the one sent', () => {
    const small = bytes(2);
    const big = bytes(500);
    let reads = 0;
    const mdl = { Next: null } as { Bytes: Uint8Array; Next: MDL | null };
    Object.defineProperty(mdl, 'Bytes', { get: () => (reads++ === 0 ? small : big) });
    expect(status(one(mdl, 0, 100))).toBe(STATUS_INVALID_PARAMETER);
    expect(reads).toBe(1);
  });

  it('a byteLength the caller put on a view is not read: the engine\'s length is used', () => {
    const view = bytes(4);
    Object.defineProperty(view, 'byteLength', { get: () => 1000 });
    expect(status(one(IoAllocateMdl(view), 0, 5))).toBe(STATUS_INVALID_PARAMETER);
    expect(ok(one(IoAllocateMdl(view), 0, 4)).ranges).toEqual([0, 0, 4]);
  });

  it('a chain shared by two datagrams is read once for each, and each walk sends what it read', () => {
    const [p, q] = [new Uint8Array(4).fill(1), new Uint8Array(4).fill(2)];
    let bytesReads = 0;
    let nextReads = 0;
    const mdl = {} as MDL;
    Object.defineProperty(mdl, 'Bytes', { get: () => (bytesReads++ % 2 === 0 ? p : q) });
    Object.defineProperty(mdl, 'Next', { get: () => (nextReads++, null) });
    const result = buildBatch(
      wskBufList([
        { Mdl: mdl, Offset: 0, Length: 4 },
        { Mdl: mdl, Offset: 0, Length: 4 },
      ]),
      4,
    );
    if (!result.ok) throw new Error(result.reason);
    expect([bytesReads, nextReads]).toEqual([2, 2]);
    expect(gather(result.buffers, result.ranges, result.spans)).toEqual([p, q]);
    expect(result.buffers).toEqual([p, q]);
  });

  it('a shared MDL whose Next turns into itself for the second datagram: that walk finds the cycle', () => {
    let reads = 0;
    const mdl = { Bytes: bytes(4) } as { Bytes: Uint8Array; Next: MDL | null };
    Object.defineProperty(mdl, 'Next', { get: () => (reads++ === 0 ? null : mdl) });
    const result = buildBatch(
      wskBufList([
        { Mdl: mdl, Offset: 0, Length: 4 },
        { Mdl: mdl, Offset: 0, Length: 4 },
      ]),
      4,
    );
    expect(!result.ok && [result.status, result.reason]).toEqual([STATUS_INVALID_PARAMETER, 'datagram 1: MDL chain has a cycle']);
  });

  it('a Next getter that makes a fresh MDL on every read ends with STATUS_INVALID_PARAMETER', () => {
    let made = 0;
    const endless = (): MDL => {
      made++;
      const mdl = { Bytes: bytes(0) } as MDL;
      Object.defineProperty(mdl, 'Next', { get: endless });
      return mdl;
    };
    expect(status(one(endless(), 0, 0))).toBe(STATUS_INVALID_PARAMETER);
    expect(made).toBeLessThanOrEqual(2 * 2 ** 20 + 1);
  });
});
