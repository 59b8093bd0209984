/**
 * Group commit for the task store: writes from everywhere in the process (each POST's "queued"
 * record, each batch of lifecycle events) that arrive while the store is busy go into one
 * transaction, started as soon as a transaction slot is free (one for SQLite; a few for a store
 * that takes several at once, see {@linkcode TaskStore.concurrency}). A write resolves when its
 * transaction committed.
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

/** The tasks a write touches. */
const idsOf = (w: Waiting) => w.events.map((event) => event.id);

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
  store: TaskStore,
  onChanges: (changes: TaskChange[]) => void,
): StoreWriter {
  const limit = store.concurrency ?? 1;
  let waiting: Waiting[] = [];
  /** Tasks in a transaction now, with how many transactions hold each. */
  const inFlight = new Map<string, number>();
  let running = 0;
  const drained: (() => void)[] = [];

  const hold = (ids: string[], by: number) => {
    for (const id of ids) {
      const n = (inFlight.get(id) ?? 0) + by;
      if (n === 0) inFlight.delete(id);
      else inFlight.set(id, n);
    }
  };

  const commit = async (batch: Waiting[]) => {
    try {
      onChanges(await store.apply(batch.flatMap((w) => w.events)));
      for (const w of batch) w.done.resolve();
    } catch (error) {
      for (const w of batch) w.done.reject(error);
    }
  };

  /**
   * Starts a batch of everything waiting while a transaction slot is free. A write that touches
   * a task another transaction holds waits for it (so do later writes of its tasks): concurrent
   * transactions never race on one task, and a task's writes commit in order.
   */
  const cut = () => {
    while (waiting.length > 0 && running < limit) {
      const [batch, rest] = separate(waiting, inFlight);
      if (batch.length === 0) return;
      waiting = rest;
      const ids = batch.flatMap(idsOf);
      hold(ids, 1);
      running++;
      commit(batch).finally(() => {
        hold(ids, -1);
        running--;
        cut();
        if (running === 0 && waiting.length === 0) {
          for (const resolve of drained.splice(0)) resolve();
        }
      });
    }
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
      if (running === 0 && waiting.length === 0) return Promise.resolve();
      return new Promise<void>((resolve) => drained.push(resolve));
    },
  };
}

/** Splits the waiting writes into those free to go now and those behind a busy task. */
function separate(waiting: Waiting[], inFlight: Map<string, number>): [Waiting[], Waiting[]] {
  const batch: Waiting[] = [];
  const rest: Waiting[] = [];
  const blocked = new Set<string>();
  for (const w of waiting) {
    const ids = idsOf(w);
    if (ids.some((id) => inFlight.has(id) || blocked.has(id))) {
      rest.push(w);
      for (const id of ids) blocked.add(id);
    } else {
      batch.push(w);
    }
  }
  return [batch, rest];
}
