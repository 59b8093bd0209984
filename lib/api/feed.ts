/**
 * The live feed: task changes fanned out in-process to whoever watches a task (SSE clients) or
 * every task (the dashboard's stream, metrics).
 *
 * @module
 */

import type { TaskChange } from "../store/store.ts";

/** Called with each change of the watched task, or `undefined` when the feed closes. */
export type FeedListener = (change: TaskChange | undefined) => void;

/** Watchers by task id; see {@linkcode createFeed}. */
export interface Feed {
  /** Watches one task; returns the function that stops watching. */
  subscribe(id: string, listener: FeedListener): () => void;
  /** Watches every task: hears each batch of changes; returns the function that stops it. */
  subscribeAll(listener: (changes: TaskChange[]) => void): () => void;
  /** Tells the watchers of each change's task. */
  publish(changes: TaskChange[]): void;
  /** Calls `listener` when the feed closes; returns the function that forgets it. */
  onClose(listener: () => void): () => void;
  /** Ends every watch (on shutdown). */
  close(): void;
}

/**
 * Creates an empty feed.
 *
 * @example
 * ```ts
 * const feed = createFeed();
 * const stop = feed.subscribe("t-1", (change) => console.log(change?.type));
 * stop();
 * ```
 */
export function createFeed(): Feed {
  const watchers = new Map<string, Set<FeedListener>>();
  const everything = new Set<(changes: TaskChange[]) => void>();
  const closing = new Set<() => void>();
  return {
    onClose(listener) {
      closing.add(listener);
      return () => closing.delete(listener);
    },
    subscribeAll(listener) {
      everything.add(listener);
      return () => everything.delete(listener);
    },
    subscribe(id, listener) {
      let set = watchers.get(id);
      if (!set) watchers.set(id, set = new Set());
      set.add(listener);
      return () => {
        set.delete(listener);
        if (set.size === 0 && watchers.get(id) === set) watchers.delete(id);
      };
    },
    publish(changes) {
      if (changes.length === 0) return;
      for (const listener of everything) listener(changes);
      for (const change of changes) {
        for (const listener of watchers.get(change.task.id) ?? []) listener(change);
      }
    },
    close() {
      for (const set of watchers.values()) for (const listener of set) listener(undefined);
      watchers.clear();
      everything.clear();
      for (const listener of closing) listener();
      closing.clear();
    },
  };
}
