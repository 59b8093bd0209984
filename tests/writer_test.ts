/**
 * The store writer's group commit: one transaction at a time, and the writes that arrive while
 * it runs share the next one.
 */

import assert from "node:assert/strict";
import type { TaskEvent } from "../lib/events.ts";
import type { TaskStore } from "../lib/store/store.ts";
import { createWriter } from "../lib/store/writer.ts";
import { waitFor } from "./helpers/warren.ts";

/** A store whose transactions end when the test says so: it sees only what the writer sends. */
function heldStore() {
  const open: { ids: string[]; commit: () => void }[] = [];
  const store: Pick<TaskStore, "apply"> = {
    apply(events) {
      const done = Promise.withResolvers<void>();
      open.push({ ids: events.map((e) => e.id), commit: done.resolve });
      return done.promise.then(() => []);
    },
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

Deno.test("writer: writes that arrive while a transaction runs share the next one", async () => {
  const { store, open } = heldStore();
  const writer = createWriter(store, () => {});
  const writes = [writer.write([event("t-1", "queued")])];
  await waitFor(() => open.length === 1, 1_000, "the first transaction");
  writes.push(writer.write([event("t-2", "queued")]), writer.write([event("t-3", "queued")]));
  await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(open.length, 1, "one transaction at a time");
  open[0].commit();
  await waitFor(() => open.length === 2, 1_000, "the next transaction");
  assert.deepEqual(open[1].ids, ["t-2", "t-3"], "one transaction for both");
  const flushed = writer.flush();
  open[1].commit();
  await Promise.all([...writes, flushed]);
});
