/**
 * Random bytes from the system's CSPRNG, drawn in blocks: one call to `crypto.getRandomValues`
 * serves many task ids and trace ids (each call crosses into the runtime, which cost a POST more
 * than the bytes themselves). Every byte is handed out once.
 *
 * @module
 */

const BLOCK = 4096;
let pool = new Uint8Array(0);
let used = 0;

/**
 * `n` fresh random bytes (at most 4096), a view that later calls never hand out again.
 *
 * @example
 * ```ts
 * randomBytes(16).length; // 16
 * ```
 */
export function randomBytes(n: number): Uint8Array {
  if (n > BLOCK) throw new RangeError(`randomBytes: at most ${BLOCK} bytes at a time (asked ${n})`);
  if (used + n > pool.length) {
    pool = crypto.getRandomValues(new Uint8Array(BLOCK));
    used = 0;
  }
  used += n;
  return pool.subarray(used - n, used);
}

/** Each byte's two hex digits. */
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

/**
 * Bytes as lowercase hex, from `start` to `end`.
 *
 * @example
 * ```ts
 * hex(new Uint8Array([1, 171])); // "01ab"
 * ```
 */
export function hex(bytes: Uint8Array, start = 0, end = bytes.length): string {
  let text = "";
  for (let i = start; i < end; i++) text += HEX[bytes[i]];
  return text;
}
