/**
 * The handler calls a worker is in, on a board in memory the worker shares with its supervisor (a
 * `SharedArrayBuffer`): a call writes its attempt's key and deadline into a free slot and clears
 * the slot when it returns, with no message either way. The supervisor reads the board to end a
 * worker whose handler overran its time limit (one that blocks its thread included), and to see
 * whether an attempt is still in its handler. Each slot holds a deadline (ms since the epoch; 0
 * when free), the key's length and the key's bytes; the deadline is written last and read first
 * (`Atomics`), so a reader that sees it sees the key written before it.
 *
 * @module
 */

/** The longest key a slot holds, in bytes (a task id of up to ~100 bytes and its run). */
const KEY_BYTES = 128;
const SLOT_BYTES = 8 + 4 + KEY_BYTES;

interface Views {
  slots: number;
  deadlines: BigInt64Array;
  lengths: Int32Array;
  keys: Uint8Array;
}

function views(buffer: SharedArrayBuffer): Views {
  const slots = buffer.byteLength / SLOT_BYTES;
  return {
    slots,
    deadlines: new BigInt64Array(buffer, 0, slots),
    lengths: new Int32Array(buffer, slots * 8, slots),
    keys: new Uint8Array(buffer, slots * 12, slots * KEY_BYTES),
  };
}

/**
 * A new, empty board of `slots` slots (the supervisor makes one for each worker it starts).
 *
 * @example
 * ```ts
 * const board = createBoard(16);
 * board.byteLength; // 2240
 * ```
 */
export function createBoard(slots: number): SharedArrayBuffer {
  return new SharedArrayBuffer(slots * SLOT_BYTES);
}

/** The worker's side of a board: see {@linkcode boardWriter}. */
export interface BoardWriter {
  /** Puts a call on the board; undefined when no slot is free or the key does not fit. */
  enter(key: string, deadline: number): number | undefined;
  /** Takes the call of `slot` off the board: it returned. */
  leave(slot: number): void;
}

/**
 * Writes a worker's calls on `board`.
 *
 * @example
 * ```ts
 * const writer = boardWriter(createBoard(4));
 * const slot = writer.enter("t-1/0/1", Date.now() + 30_000);
 * if (slot !== undefined) writer.leave(slot);
 * ```
 */
export function boardWriter(board: SharedArrayBuffer): BoardWriter {
  const { slots, deadlines, lengths, keys } = views(board);
  const free = Array.from({ length: slots }, (_, i) => slots - 1 - i);
  const encoder = new TextEncoder();
  return {
    enter(key, deadline) {
      const slot = free.pop();
      if (slot === undefined) return undefined;
      const place = keys.subarray(slot * KEY_BYTES, (slot + 1) * KEY_BYTES);
      const { read, written } = encoder.encodeInto(key, place);
      if (read < key.length) {
        free.push(slot);
        return undefined;
      }
      Atomics.store(lengths, slot, written);
      Atomics.store(deadlines, slot, BigInt(Math.max(1, deadline)));
      return slot;
    },
    leave(slot) {
      Atomics.store(deadlines, slot, 0n);
      free.push(slot);
    },
  };
}

/** A call on the board: its attempt's key and deadline. */
export interface BoardEntry {
  key: string;
  deadline: number;
}

/**
 * The calls on `board` now; with `due`, only those whose deadline is before it.
 *
 * @example
 * ```ts
 * const board = createBoard(4);
 * boardWriter(board).enter("t-1/0/1", 1_000);
 * readBoard(board); // [{ key: "t-1/0/1", deadline: 1000 }]
 * readBoard(board, 500); // []
 * ```
 */
export function readBoard(board: SharedArrayBuffer, due = Infinity): BoardEntry[] {
  const { slots, deadlines, lengths, keys } = views(board);
  const decoder = new TextDecoder();
  const entries: BoardEntry[] = [];
  for (let slot = 0; slot < slots; slot++) {
    const deadline = Atomics.load(deadlines, slot);
    if (deadline === 0n || Number(deadline) >= due) continue;
    const start = slot * KEY_BYTES;
    const key = decoder.decode(keys.slice(start, start + Atomics.load(lengths, slot)));
    // The slot changed hands while it was read: the call seen has returned.
    if (Atomics.load(deadlines, slot) !== deadline) continue;
    entries.push({ key, deadline: Number(deadline) });
  }
  return entries;
}
