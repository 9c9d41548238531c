import fc from 'fast-check';
import { buildBatch, wskBufList, type WSK_BUF, type WSK_BUF_LIST } from '../../lib/wsk/buf';
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
  return { ...result, layout: Array.from(result.layout) };
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

describe('buildBatch layout (golden words)', () => {
  it('single MDL, whole', () => {
    const a = bytes(10);
    const r = ok(one(mdlChain(a), 0, 10));
    expect(r.layout).toEqual([1, 0, 0, 10]);
    expect(r.buffers).toHaveLength(1);
    expect(r.buffers[0]).toBe(a);
    expect(r.datagramCount).toBe(1);
    expect(r.bytes).toBe(10);
  });

  it('single MDL with an offset', () => {
    const r = ok(one(mdlChain(bytes(10)), 3, 4));
    expect(r.layout).toEqual([1, 0, 3, 4]);
    expect(r.bytes).toBe(4);
  });

  it('a datagram spanning 2 MDLs', () => {
    const [a, b] = [bytes(10), bytes(5, 100)];
    const r = ok(one(mdlChain(a, b), 8, 5));
    expect(r.layout).toEqual([2, 0, 8, 2, 1, 0, 3]);
    expect(r.buffers[0]).toBe(a);
    expect(r.buffers[1]).toBe(b);
    expect(gather(r.buffers, Uint32Array.from(r.layout))).toEqual([Uint8Array.of(8, 9, 100, 101, 102)]);
  });

  it('a datagram spanning 3 MDLs', () => {
    const r = ok(one(mdlChain(bytes(4), bytes(4), bytes(4)), 2, 8));
    expect(r.layout).toEqual([3, 0, 2, 2, 1, 0, 4, 2, 0, 2]);
    expect(r.buffers).toHaveLength(3);
  });

  it('stops at the last MDL it needs', () => {
    const r = ok(one(mdlChain(bytes(4), bytes(4), bytes(4)), 0, 5));
    expect(r.layout).toEqual([2, 0, 0, 4, 1, 0, 1]);
    expect(r.buffers).toHaveLength(2);
  });

  it('skips zero-length MDLs, which take no range and no buffer slot', () => {
    const [a, empty, c] = [bytes(4), bytes(0), bytes(4)];
    const r = ok(one(mdlChain(a, empty, c), 0, 8));
    expect(r.layout).toEqual([2, 0, 0, 4, 1, 0, 4]);
    expect(r.buffers).toEqual([a, c]);
    expect(r.buffers[1]).toBe(c);
  });

  it('Offset equal to the first MDL length starts in the next MDL', () => {
    const [a, b] = [bytes(4), bytes(4)];
    const r = ok(one(mdlChain(a, b), 4, 2));
    expect(r.layout).toEqual([1, 0, 0, 2]);
    expect(r.buffers).toHaveLength(1);
    expect(r.buffers[0]).toBe(b);
  });

  it('zero-length datagrams have n = 0', () => {
    const a = bytes(10);
    expect(ok(one(null, 0, 0)).layout).toEqual([0]);
    expect(ok(one(mdlChain(a), 10, 0)).layout).toEqual([0]);
    expect(ok(one(mdlChain(a), 0, 0)).layout).toEqual([0]);
    const r = ok(
      wskBufList([
        { Mdl: mdlChain(a), Offset: 0, Length: 3 },
        { Mdl: null, Offset: 0, Length: 0 },
        { Mdl: mdlChain(bytes(5)), Offset: 0, Length: 5 },
      ]),
    );
    expect(r.layout).toEqual([1, 0, 0, 3, 0, 1, 1, 0, 5]);
    expect(r.datagramCount).toBe(3);
    expect(r.bytes).toBe(8);
  });

  it('dedupes buffers by Uint8Array identity across MDLs and datagrams', () => {
    const [a, b] = [bytes(10), bytes(10)];
    const r = ok(
      wskBufList([
        { Mdl: mdlChain(a), Offset: 0, Length: 2 },
        { Mdl: mdlChain(b, a), Offset: 9, Length: 3 },
        { Mdl: IoAllocateMdl(a), Offset: 5, Length: 1 },
      ]),
    );
    expect(r.buffers).toHaveLength(2);
    expect(r.buffers[0]).toBe(a);
    expect(r.buffers[1]).toBe(b);
    expect(r.layout).toEqual([1, 0, 0, 2, 2, 1, 9, 1, 0, 0, 2, 1, 0, 5, 1]);
  });

  it('keeps distinct views of one ArrayBuffer apart, offsets relative to each view', () => {
    const backing = new ArrayBuffer(32);
    const v1 = new Uint8Array(backing, 4, 8);
    const v2 = new Uint8Array(backing, 16, 8);
    v1.set([1, 2, 3, 4, 5, 6, 7, 8]);
    const r = ok(one(mdlChain(v1, v2), 2, 8));
    expect(r.buffers).toEqual([v1, v2]);
    expect(r.buffers[0]).toBe(v1);
    expect(r.layout).toEqual([2, 0, 2, 6, 1, 0, 2]);
  });

  it('shares one MDL chain between datagrams', () => {
    const chain = mdlChain(bytes(3), bytes(3));
    const r = ok(
      wskBufList([
        { Mdl: chain, Offset: 0, Length: 6 },
        { Mdl: chain, Offset: 1, Length: 4 },
      ]),
    );
    expect(r.layout).toEqual([2, 0, 0, 3, 1, 0, 3, 2, 0, 1, 2, 1, 0, 2]);
  });

  it('reads undefined Next / Mdl as NULL', () => {
    const list = { Buffer: { Mdl: { Bytes: bytes(3) }, Offset: 0, Length: 3 } };
    expect(ok(list as unknown as WSK_BUF_LIST).layout).toEqual([1, 0, 0, 3]);
    expect(ok({ Buffer: { Offset: 0, Length: 0 } } as unknown as WSK_BUF_LIST).layout).toEqual([0]);
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
    expect(exactly.ok && exactly.datagramCount).toBe(1_048_576);
    const over: WSK_BUF_LIST = { Next: head, Buffer: shared };
    expect(status(over)).toBe(STATUS_INVALID_PARAMETER);
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
        expect(gather(result.buffers, result.layout)).toEqual(expected);
        expect(result.datagramCount).toBe(datagrams.length);
        expect(result.bytes).toBe(datagrams.reduce((sum, [, , length]) => sum + length, 0));
        expect(new Set(result.buffers).size).toBe(result.buffers.length);
        // Every range is non-empty and each buffer is in the pool.
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

describe('buildBatch reads each MDL once (getters that change their answer)', () => {
  it('an MDL whose Next is null on the check and itself on the walk: sent as read, no loop', () => {
    let reads = 0;
    const mdl = { Bytes: bytes(4) } as { Bytes: Uint8Array; Next: MDL | null };
    Object.defineProperty(mdl, 'Next', { get: () => (reads++ === 0 ? null : mdl) });
    // Length 8 needs a second MDL: as read (Next null), the chain ends after 4 bytes.
    expect(status(one(mdl, 0, 8))).toBe(STATUS_INVALID_PARAMETER);
    reads = 0;
    const sent = ok(one(mdl, 0, 4));
    expect(sent.layout).toEqual([1, 0, 0, 4]);
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
