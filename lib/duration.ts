/**
 * Durations as people write them: `"500ms"`, `"30s"`, `"2m"`, `"1h"`, `"7d"`, or a number of
 * milliseconds.
 *
 * @module
 */

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** A duration: a number of milliseconds, or a string such as `"90s"`, `"2m"` or `"1h30m"`. */
export type Duration = number | string;

/**
 * Parses a duration into milliseconds, or returns `undefined` when it is not one.
 *
 * @example
 * ```ts
 * parseDuration("1m30s"); // 90_000
 * parseDuration(250); // 250
 * parseDuration("soon"); // undefined
 * ```
 */
export function parseDuration(value: Duration): number | undefined {
  if (typeof value === "number") {
    return Number.isFinite(value) && value >= 0 ? value : undefined;
  }
  const text = value.trim().toLowerCase();
  if (!/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(text)) return undefined;
  let total = 0;
  for (const [, amount, , unit] of text.matchAll(/(\d+(\.\d+)?)(ms|s|m|h|d)/g)) {
    total += Number(amount) * UNITS[unit];
  }
  return Math.round(total);
}

/**
 * A query parameter's time span in milliseconds: bare seconds (`90`, `1.5`) or a duration
 * (`90s`, `2h`); undefined for anything else.
 *
 * @example
 * ```ts
 * parseSecondsOrDuration("90"); // 90000
 * parseSecondsOrDuration("2m"); // 120000
 * ```
 */
export function parseSecondsOrDuration(text: string): number | undefined {
  return /^\d+(\.\d+)?$/.test(text) ? Number(text) * 1000 : parseDuration(text);
}
