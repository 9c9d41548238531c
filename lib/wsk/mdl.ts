/**
 * MDL: the memory descriptor list of the Windows kernel, reduced to what a send needs: the
 * bytes one piece describes and the link to the next piece.
 */

import { types } from 'node:util';

/**
 * Mirrors Windows' `MDL` (a `PMDL` chain linked through `MDL.Next`). `Bytes` stands for the
 * locked pages the MDL describes: Windows' `MmGetMdlByteCount(Mdl)` is `Bytes.byteLength` and
 * `MmGetSystemAddressForMdlSafe(Mdl)` is `Bytes` itself. The send path reads `Bytes` without
 * copying it, so its contents must stay put until the IRP completes.
 */
export interface MDL {
  /** Next MDL of the chain, or null at its end (Windows: `Mdl->Next`). */
  Next: MDL | null;
  /** The bytes this MDL describes (a view; offsets are relative to the view, not its buffer). */
  readonly Bytes: Uint8Array;
}

/**
 * Mirrors `IoAllocateMdl(VirtualAddress, Length, SecondaryBuffer, ...)` followed by
 * `MmBuildMdlForNonPagedPool`: makes an MDL describing `bytes` (the whole view), linked to
 * `next` (default null). Unlike Windows it cannot fail for lack of memory; it throws a
 * TypeError when `bytes` is not a Uint8Array (a Buffer is one).
 */
export function IoAllocateMdl(bytes: Uint8Array, next: MDL | null = null): MDL {
  // util.types.isUint8Array also accepts a Uint8Array from another realm (vm, jest sandbox).
  if (!types.isUint8Array(bytes)) {
    throw new TypeError('IoAllocateMdl: bytes must be a Uint8Array');
  }
  return { Next: next, Bytes: bytes };
}

/**
 * Convenience: an MDL chain with one MDL per part, in order (what a driver builds by linking
 * `Mdl->Next` by hand). Throws a RangeError when no part is given, since an MDL chain has at
 * least one MDL, and a TypeError when a part is not a Uint8Array.
 */
export function mdlChain(...parts: Uint8Array[]): MDL {
  if (parts.length === 0) throw new RangeError('mdlChain: at least one part is needed');
  let head: MDL | null = null;
  for (let i = parts.length - 1; i >= 0; i--) {
    head = IoAllocateMdl(parts[i] as Uint8Array, head);
  }
  return head as MDL;
}
