/**
 * A map that remembers only the entries used last: what a store process remembers of the tasks
 * it saw lately (the PostgreSQL store folds a batch from the records it wrote or read last,
 * and hears each task's notices in version order).
 *
 * @module
 */

/** See {@linkcode createRecent}. */
export interface Recent<T> {
  get(id: string): T | undefined;
  /** Remembers a value, forgetting the least recently used one beyond the limit. */
  set(id: string, value: T): void;
  forget(id: string): void;
}

/**
 * A map of the `limit` entries used last.
 *
 * @example
 * ```ts
 * const versions = createRecent<number>(2);
 * versions.set("t-1", 3);
 * versions.get("t-1"); // 3
 * ```
 */
export function createRecent<T>(limit: number): Recent<T> {
  const entries = new Map<string, T>();
  return {
    get(id) {
      const value = entries.get(id);
      if (value !== undefined) {
        // A Map keeps insertion order: move the entry to the end, the most recent.
        entries.delete(id);
        entries.set(id, value);
      }
      return value;
    },
    set(id, value) {
      entries.delete(id);
      entries.set(id, value);
      if (entries.size > limit) entries.delete(entries.keys().next().value!);
    },
    forget(id) {
      entries.delete(id);
    },
  };
}
