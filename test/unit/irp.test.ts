import {
  IRP,
  IoAllocateIrp,
  IoCancelIrp,
  IoCompleteRequest,
  IoSetCancelRoutine,
  IoSetCompletionRoutine,
} from '../../lib/wsk/irp';

const STATUS_SUCCESS = 0;
const STATUS_PENDING = 0x103;
const STATUS_CANCELLED = 0xc0000120;
const STATUS_CONNECTION_REFUSED = 0xc0000236;
const STATUS_BUFFER_OVERFLOW = 0x80000005;

describe('IRP', () => {
  it('starts pending and not completed', () => {
    const irp = IoAllocateIrp();
    expect(irp).toBeInstanceOf(IRP);
    expect(irp.completed).toBe(false);
    expect(irp.IoStatus).toEqual({ Status: STATUS_PENDING, Information: 0 });
    expect(irp.Cancel).toBe(false);
    expect(irp.CancelRoutine).toBeNull();
    expect(irp.FailureInfo).toBeNull();
  });

  it('completes once: IoStatus set, promise resolves with it', async () => {
    const irp = IoAllocateIrp();
    IoCompleteRequest(irp, STATUS_SUCCESS, 1200);
    expect(irp.completed).toBe(true);
    expect(irp.IoStatus).toEqual({ Status: STATUS_SUCCESS, Information: 1200 });
    await expect(irp.promise).resolves.toEqual({ Status: STATUS_SUCCESS, Information: 1200 });
  });

  it('stores a signed status as its unsigned value', () => {
    const irp = IoAllocateIrp();
    IoCompleteRequest(irp, STATUS_CONNECTION_REFUSED | 0, 0);
    expect(irp.IoStatus.Status).toBe(0xc0000236);
  });

  it('throws on a second completion and keeps the first status', async () => {
    const irp = IoAllocateIrp();
    IoCompleteRequest(irp, STATUS_CONNECTION_REFUSED, 300);
    expect(() => IoCompleteRequest(irp, STATUS_SUCCESS, 0)).toThrow(/completed twice/);
    expect(irp.IoStatus).toEqual({ Status: STATUS_CONNECTION_REFUSED, Information: 300 });
    await expect(irp.promise).resolves.toEqual({ Status: STATUS_CONNECTION_REFUSED, Information: 300 });
  });

  it('resolves with a frozen snapshot that later writes do not change', async () => {
    const irp = IoAllocateIrp();
    IoCompleteRequest(irp, STATUS_SUCCESS, 5);
    irp.IoStatus.Information = 99;
    const status = await irp.promise;
    expect(status).toEqual({ Status: STATUS_SUCCESS, Information: 5 });
    expect(Object.isFrozen(status)).toBe(true);
  });
});

describe('IoSetCompletionRoutine', () => {
  it('runs the routine synchronously with (null, Irp, Context), before the promise resolves', async () => {
    const irp = IoAllocateIrp();
    const events: string[] = [];
    const context = { tag: 'ctx' };
    let seen: unknown[] = [];
    IoSetCompletionRoutine(
      irp,
      (device, completedIrp, ctx) => {
        seen = [device, completedIrp, ctx, completedIrp.completed, { ...completedIrp.IoStatus }];
        events.push('routine');
      },
      context,
    );
    void irp.promise.then(() => events.push('promise'));
    IoCompleteRequest(irp, STATUS_SUCCESS, 42);
    events.push('returned');
    expect(seen).toEqual([null, irp, context, true, { Status: STATUS_SUCCESS, Information: 42 }]);
    expect(seen[2]).toBe(context);
    await irp.promise;
    expect(events).toEqual(['routine', 'returned', 'promise']);
  });

  it('honours InvokeOnSuccess / InvokeOnError / InvokeOnCancel like Windows', () => {
    const calls = (status: number, flags: [boolean, boolean, boolean], cancel = false): number => {
      const irp = IoAllocateIrp();
      let n = 0;
      IoSetCompletionRoutine(irp, () => n++, undefined, ...flags);
      if (cancel) {
        IoSetCancelRoutine(irp, (_device, cancelled) => IoCompleteRequest(cancelled, status, 0));
        IoCancelIrp(irp);
      } else {
        IoCompleteRequest(irp, status, 0);
      }
      return n;
    };
    expect(calls(STATUS_SUCCESS, [true, false, false])).toBe(1);
    expect(calls(STATUS_SUCCESS, [false, true, true])).toBe(0);
    expect(calls(STATUS_CONNECTION_REFUSED, [false, true, false])).toBe(1);
    expect(calls(STATUS_CONNECTION_REFUSED, [true, false, false])).toBe(0);
    // A warning is not NT_SUCCESS: it counts as an error.
    expect(calls(STATUS_BUFFER_OVERFLOW, [false, true, false])).toBe(1);
    expect(calls(STATUS_CANCELLED, [false, false, true], true)).toBe(1);
    expect(calls(STATUS_CANCELLED, [false, false, false], true)).toBe(0);
  });

  it('replaces an earlier routine, and null removes it', () => {
    const irp = IoAllocateIrp();
    const hits: string[] = [];
    IoSetCompletionRoutine(irp, () => hits.push('first'), null);
    IoSetCompletionRoutine(irp, () => hits.push('second'), null);
    IoCompleteRequest(irp, STATUS_SUCCESS, 0);
    expect(hits).toEqual(['second']);

    const other = IoAllocateIrp();
    IoSetCompletionRoutine(other, () => hits.push('removed'), null);
    IoSetCompletionRoutine(other, null, null);
    IoCompleteRequest(other, STATUS_SUCCESS, 0);
    expect(hits).toEqual(['second']);
  });

  it('refuses a completed IRP', () => {
    const irp = IoAllocateIrp();
    IoCompleteRequest(irp, STATUS_SUCCESS, 0);
    expect(() => IoSetCompletionRoutine(irp, () => undefined, null)).toThrow(Error);
  });

  it('a throwing routine does not stop completion; the error is rethrown on nextTick', async () => {
    const irp = IoAllocateIrp();
    const boom = new Error('routine failed');
    IoSetCompletionRoutine(irp, () => {
      throw boom;
    }, null);

    const originalNextTick = process.nextTick;
    const scheduled: Array<() => void> = [];
    process.nextTick = ((fn: () => void) => {
      scheduled.push(fn);
    }) as typeof process.nextTick;
    try {
      expect(() => IoCompleteRequest(irp, STATUS_SUCCESS, 7)).not.toThrow();
    } finally {
      process.nextTick = originalNextTick;
    }
    expect(irp.completed).toBe(true);
    await expect(irp.promise).resolves.toEqual({ Status: STATUS_SUCCESS, Information: 7 });
    expect(scheduled).toHaveLength(1);
    expect(() => (scheduled[0] as () => void)()).toThrow(boom);
  });
});

describe('IoCancelIrp', () => {
  it('returns false without a cancel routine (but marks the IRP)', () => {
    const irp = IoAllocateIrp();
    expect(IoCancelIrp(irp)).toBe(false);
    expect(irp.Cancel).toBe(true);
    expect(irp.completed).toBe(false);
  });

  it('returns false for a completed IRP and does not call the routine', () => {
    const irp = IoAllocateIrp();
    const cancel = jest.fn();
    IoSetCancelRoutine(irp, cancel);
    IoCompleteRequest(irp, STATUS_SUCCESS, 0);
    expect(IoCancelIrp(irp)).toBe(false);
    expect(cancel).not.toHaveBeenCalled();
    expect(irp.Cancel).toBe(false);
  });

  it('calls the cancel routine once with (null, Irp), clearing it first, and returns true', async () => {
    const irp = IoAllocateIrp();
    let routineSeen: unknown = 'unset';
    const cancel = jest.fn((_device: null, cancelled: IRP) => {
      routineSeen = cancelled.CancelRoutine;
      IoCompleteRequest(cancelled, STATUS_CANCELLED, 0);
    });
    expect(IoSetCancelRoutine(irp, cancel)).toBeNull();
    expect(IoCancelIrp(irp)).toBe(true);
    expect(cancel).toHaveBeenCalledTimes(1);
    expect(cancel).toHaveBeenCalledWith(null, irp);
    expect(routineSeen).toBeNull();
    expect(irp.Cancel).toBe(true);
    await expect(irp.promise).resolves.toEqual({ Status: STATUS_CANCELLED, Information: 0 });
    expect(IoCancelIrp(irp)).toBe(false);
  });

  it('a second cancel before completion finds no routine', () => {
    const irp = IoAllocateIrp();
    const cancel = jest.fn();
    IoSetCancelRoutine(irp, cancel);
    expect(IoCancelIrp(irp)).toBe(true);
    expect(IoCancelIrp(irp)).toBe(false);
    expect(cancel).toHaveBeenCalledTimes(1);
  });

  it('completion clears the cancel routine', () => {
    const irp = IoAllocateIrp();
    IoSetCancelRoutine(irp, () => undefined);
    IoCompleteRequest(irp, STATUS_SUCCESS, 0);
    expect(irp.CancelRoutine).toBeNull();
  });

  it('IoSetCancelRoutine returns the previous routine', () => {
    const irp = IoAllocateIrp();
    const first = (): void => undefined;
    expect(IoSetCancelRoutine(irp, first)).toBeNull();
    expect(IoSetCancelRoutine(irp, null)).toBe(first);
  });
});
