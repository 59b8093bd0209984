/**
 * The store writer's group commit: writes that arrive while the store is busy share one
 * transaction, a store that takes several at once gets several, and two transactions never hold
 * the same task at once.
 */

import assert from "node:assert/strict";
import type { TaskEvent } from "../lib/events.ts";
import type { TaskStore } from "../lib/store/store.ts";
import { createWriter } from "../lib/store/writer.ts";
import { waitFor } from "./helpers/warren.ts";

/** A store whose transactions end when the test says so: it sees only what the writer sends. */
function heldStore(concurrency: number) {
  const open: { ids: string[]; commit: () => void }[] = [];
  const store: TaskStore = {
    concurrency,
    apply(events) {
      const done = Promise.withResolvers<void>();
      open.push({ ids: events.map((e) => e.id), commit: done.resolve });
      return done.promise.then(() => []);
    },
    get: () => Promise.resolve(undefined),
    list: () => Promise.resolve({ tasks: [], next: undefined }),
    dropDeadLetters: () => Promise.resolve(),
    close: () => Promise.resolve(),
  };
  return { store, open };
}

const event = (id: string, type: TaskEvent["type"]): TaskEvent => ({
  type,
  id,
  handler: "h",
  attempt: type === "queued" ? 0 : 1,
  at: 1,
});

Deno.test("writer: a write of a task another transaction holds waits for it; others go on", async () => {
  const { store, open } = heldStore(2);
  const writer = createWriter(store, () => {});
  const committed: string[] = [];
  const write = (e: TaskEvent) => writer.write([e]).then(() => committed.push(`${e.id} ${e.type}`));

  const first = write(event("t-1", "queued"));
  await waitFor(() => open.length === 1, 1_000, "the first transaction");
  const second = write(event("t-1", "running"));
  const third = write(event("t-2", "queued"));
  await waitFor(() => open.length === 2, 1_000, "a second transaction");
  assert.deepEqual(open[1].ids, ["t-2"], "t-2 goes beside t-1's transaction; t-1's write waits");

  open[1].commit();
  await third;
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(open.length, 2, "t-1's second write still waits for its first");

  open[0].commit();
  await first;
  await waitFor(() => open.length === 3, 1_000, "t-1's second write");
  assert.deepEqual(open[2].ids, ["t-1"]);
  open[2].commit();
  await second;
  await writer.flush();
  assert.deepEqual(committed, ["t-2 queued", "t-1 queued", "t-1 running"]);
});

Deno.test("writer: writes that arrive while a transaction runs share the next one", async () => {
  const { store, open } = heldStore(1);
  const writer = createWriter(store, () => {});
  const writes = [writer.write([event("t-1", "queued")])];
  await waitFor(() => open.length === 1, 1_000, "the first transaction");
  writes.push(writer.write([event("t-2", "queued")]), writer.write([event("t-3", "queued")]));
  open[0].commit();
  await waitFor(() => open.length === 2, 1_000, "the next transaction");
  assert.deepEqual(open[1].ids, ["t-2", "t-3"], "one transaction for both");
  const flushed = writer.flush();
  open[1].commit();
  await Promise.all([...writes, flushed]);
});
