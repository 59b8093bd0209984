/**
 * Timeouts that are cheap to set and clear by the thousand: deadlines that almost never fire (a
 * publish's confirm, an attempt's time limit). They share one runtime timer per 100 ms slot,
 * where a `setTimeout` each cost a task a few microseconds to set and clear. A timeout fires no
 * earlier than asked, and at most one slot (100 ms) later.
 *
 * @module
 */

/** The width of a slot, in ms: how late a timeout may fire. */
export const SLOT_MS = 100;

/** The timeouts due in a slot, and the runtime timer that fires them. */
interface Slot {
  calls: Set<() => void>;
  timer: ReturnType<typeof setTimeout>;
}

const slots = new Map<number, Slot>();

/**
 * Calls `fire` after `ms` (rounded up to the next slot); returns the function that clears it. A
 * slot whose timeouts were all cleared drops its runtime timer, so nothing is left pending.
 *
 * @example
 * ```ts
 * const clear = coarseTimeout(() => console.log("no confirm"), 5_000);
 * clear(); // the confirm came
 * ```
 */
export function coarseTimeout(fire: () => void, ms: number): () => void {
  const at = Math.ceil((Date.now() + ms) / SLOT_MS);
  let slot = slots.get(at);
  if (!slot) {
    const calls = new Set<() => void>();
    const timer = setTimeout(() => {
      slots.delete(at);
      for (const call of calls) call();
    }, at * SLOT_MS - Date.now());
    slot = { calls, timer };
    slots.set(at, slot);
  }
  const { calls, timer } = slot;
  calls.add(fire);
  return () => {
    if (!calls.delete(fire) || calls.size > 0 || slots.get(at)?.calls !== calls) return;
    clearTimeout(timer);
    slots.delete(at);
  };
}
