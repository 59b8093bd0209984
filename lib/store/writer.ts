/**
 * Group commit for the task store: writes from everywhere in the process (each POST's "queued"
 * record, each batch of lifecycle events) that arrive while the store is busy go into one
 * transaction, started as soon as the one before it ends. A write resolves when its transaction
 * committed.
 *
 * @module
 */

import { createFlusher } from "../flusher.ts";
import type { TaskEvent } from "../events.ts";
import type { TaskChange, TaskStore } from "./store.ts";

/** See {@linkcode createWriter}. */
export interface StoreWriter {
  /** Folds events into the store with the next group commit. */
  write(events: TaskEvent[]): Promise<void>;
  /** Commits whatever is waiting. */
  flush(): Promise<void>;
}

/** Commits at most this often: under load, writes gather for up to 2 ms. */
const COMMIT_INTERVAL_MS = 2;

interface Waiting {
  events: TaskEvent[];
  done: PromiseWithResolvers<void>;
}

/**
 * Creates a writer over a store; `onChanges` hears every change that watchers should see.
 *
 * @example
 * ```ts
 * import { openSqliteStore } from "./sqlite.ts";
 * import { createFeed } from "../api/feed.ts";
 * const feed = createFeed();
 * const writer = createWriter(await openSqliteStore(":memory:"), (changes) => feed.publish(changes));
 * await writer.write([{ type: "queued", id: "t-1", handler: "hello", attempt: 0, at: Date.now() }]);
 * ```
 */
export function createWriter(
  store: Pick<TaskStore, "apply">,
  onChanges: (changes: TaskChange[]) => void,
): StoreWriter {
  let waiting: Waiting[] = [];
  let running = false;
  const drained: (() => void)[] = [];

  const commit = async (batch: Waiting[]) => {
    try {
      onChanges(await store.apply(batch.flatMap((w) => w.events)));
      for (const w of batch) w.done.resolve();
    } catch (error) {
      for (const w of batch) w.done.reject(error);
    }
  };

  /** Starts a transaction of everything waiting, unless one runs: it starts the next. */
  const cut = () => {
    if (running || waiting.length === 0) return;
    const batch = waiting;
    waiting = [];
    running = true;
    commit(batch).finally(() => {
      running = false;
      cut();
      if (!running) { for (const resolve of drained.splice(0)) resolve(); }
    });
  };

  const schedule = createFlusher(cut, COMMIT_INTERVAL_MS);

  return {
    write(events) {
      const done = Promise.withResolvers<void>();
      waiting.push({ events, done });
      schedule();
      return done.promise;
    },
    flush() {
      cut();
      if (!running) return Promise.resolve();
      return new Promise<void>((resolve) => drained.push(resolve));
    },
  };
}
