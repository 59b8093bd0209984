/**
 * Sizes in bytes as people write them: `65536`, `512KiB`, `1MiB`, `10MB`.
 *
 * @module
 */

const UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/**
 * A size in bytes (a whole number, or one with a unit), or undefined for anything else (0 too).
 *
 * @example
 * ```ts
 * parseSize("512KiB"); // 524288
 * parseSize(2048); // 2048
 * parseSize("lots"); // undefined
 * ```
 */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === "number") {
    return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  }
  const match = /^(\d+)\s*([a-z]*)$/i.exec(value.trim());
  const unit = match ? UNITS[match[2].toLowerCase()] : undefined;
  if (!match || unit === undefined || Number(match[1]) === 0) return undefined;
  return Number(match[1]) * unit;
}
