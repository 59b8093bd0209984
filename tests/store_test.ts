/**
 * The task store: events fold into records, state only moves forward in any arrival order, and
 * the SQLite file keeps everything across a reopen.
 */

import assert from "node:assert/strict";
import postgres from "postgres";
import type { TaskEvent } from "../lib/events.ts";
import { openPostgresStore } from "../lib/store/postgres.ts";
import { openSqliteStore } from "../lib/store/sqlite.ts";
import {
  decodeCursor,
  encodeCursor,
  type TaskChange,
  type TaskFilter,
  type TaskStore,
} from "../lib/store/store.ts";
import { createDatabase } from "./helpers/postgres.ts";
import { waitFor } from "./helpers/warren.ts";
import { mergeEvent, type TaskRecord } from "../lib/store/task.ts";

const id = "t-1";
const handler = "echo";
const queued: TaskEvent = { type: "queued", id, handler, attempt: 0, at: 1000, payload: { a: 1 } };
const running: TaskEvent = { type: "running", id, handler, attempt: 1, at: 2000 };
const progress: TaskEvent = { type: "progress", id, handler, attempt: 1, at: 2500, progress: 0.5 };
const succeeded: TaskEvent = {
  type: "succeeded",
  id,
  handler,
  attempt: 1,
  at: 3000,
  result: { ok: true },
};

function fold(events: TaskEvent[]): TaskRecord {
  let record: TaskRecord | undefined;
  for (const event of events) record = mergeEvent(record, event)?.record ?? record;
  return record!;
}

Deno.test("merge: events in order build the record", () => {
  const record = fold([queued, running, progress, succeeded]);
  assert.deepEqual(record, {
    id,
    handler,
    state: "succeeded",
    attempts: 1,
    payload: { a: 1 },
    result: { ok: true },
    error: null,
    progress: 0.5,
    createdAt: 1000,
    startedAt: 2000,
    finishedAt: 3000,
    replays: 0,
    runAt: null,
    history: [
      { state: "queued", attempt: 0, at: 1000 },
      { state: "running", attempt: 1, at: 2000 },
      { state: "succeeded", attempt: 1, at: 3000 },
    ],
    version: 4,
    deadLetter: false,
    event: null,
    files: [],
    callback: null,
    traceId: null,
  });
});

Deno.test("merge: any arrival order gives the same final record", () => {
  const expected = fold([queued, running, progress, succeeded]);
  const orders = [
    [succeeded, running, queued, progress],
    [running, succeeded, queued],
    [queued, succeeded, running, progress],
    [succeeded, queued, running],
  ];
  for (const order of orders) {
    const record = fold(order);
    assert.equal(record.state, "succeeded");
    assert.deepEqual(record.result, { ok: true });
    assert.deepEqual(record.payload, { a: 1 });
    assert.equal(record.createdAt, 1000);
    assert.equal(record.finishedAt, expected.finishedAt);
  }
});

Deno.test("merge: terminal states are final and duplicates change nothing", () => {
  const done = fold([queued, running, succeeded]);
  assert.equal(mergeEvent(done, succeeded), undefined);
  assert.equal(mergeEvent(done, running), undefined);
  assert.equal(mergeEvent(done, progress), undefined);
  const dead: TaskEvent = { ...succeeded, type: "dead", error: { message: "x" } };
  assert.equal(mergeEvent(done, dead), undefined);
});

Deno.test("merge: progress counts only while its attempt runs, and is visible", () => {
  const before = fold([queued]);
  assert.equal(mergeEvent(before, progress), undefined, "not running yet");
  const merged = mergeEvent(fold([queued, running]), progress)!;
  assert.equal(merged.visible, "progress");
  assert.equal(merged.record.progress, 0.5);
  const late = mergeEvent(fold([queued, running]), { ...queued, payload: undefined });
  assert.equal(late, undefined, "a late queued event without news changes nothing");
  const filling = mergeEvent(fold([running]), queued)!;
  assert.equal(filling.visible, undefined, "filling in facts is not a state change");
  assert.equal(filling.record.state, "running");
  assert.deepEqual(filling.record.payload, { a: 1 });
});

/** The stores that keep the contract, each opened afresh (and again, to see what was kept). */
const STORES = {
  sqlite: async (run: (open: () => Promise<TaskStore>) => Promise<void>) => {
    const path = `${await Deno.makeTempDir()}/nested/warren.db`;
    await run(() => openSqliteStore(path));
  },
  postgres: async (run: (open: () => Promise<TaskStore>) => Promise<void>) => {
    const db = await createDatabase();
    try {
      await run(() => openPostgresStore(db.url));
    } finally {
      await db.drop();
    }
  },
};

/**
 * Follows `store` and resolves once it hears what `writer` commits (a store starts listening in
 * the background); the probes written meanwhile are not passed on.
 */
async function following(
  store: TaskStore,
  writer: TaskStore,
  listener: (changes: TaskChange[]) => void,
): Promise<() => void> {
  let listening = false;
  const stop = store.follow!((changes) => {
    listening = true;
    listener(changes.filter((change) => !change.task.id.startsWith("probe-")));
  });
  const probe = async () => {
    await writer.apply([{ ...queued, id: `probe-${crypto.randomUUID()}` }]);
    return listening;
  };
  await waitFor(probe, 5_000, "the store to listen");
  return stop;
}

for (const [kind, withStore] of Object.entries(STORES)) {
  Deno.test(`${kind} store: batches fold, lists filter, a reopen keeps everything`, () =>
    withStore(async (open) => {
      let store = await open();
      const changes = await store.apply([queued, running, progress, succeeded]);
      assert.deepEqual(changes.map((c) => c.type), ["queued", "running", "progress", "succeeded"]);
      assert.deepEqual(changes.at(-1)!.task.result, { ok: true });
      await store.apply([
        { type: "queued", id: "t-2", handler: "other", attempt: 0, at: 5000 },
        { type: "running", id: "t-3", handler, attempt: 1, at: 6000 },
        { type: "dead", id: "t-3", handler, attempt: 1, at: 7000, error: { message: "boom" } },
      ]);
      await store.close();

      store = await open();
      try {
        assert.deepEqual(await store.get(id), fold([queued, running, progress, succeeded]));
        assert.equal(await store.get("missing"), undefined);
        const ids = async (filter: TaskFilter) => (await store.list(filter)).tasks.map((t) => t.id);
        assert.deepEqual(await ids({ limit: 10 }), ["t-3", "t-2", "t-1"], "newest first");
        assert.deepEqual(await ids({ handler, limit: 10 }), ["t-3", "t-1"]);
        assert.deepEqual(await ids({ state: "dead", limit: 10 }), ["t-3"]);
        assert.deepEqual(await ids({ deadLetters: true, limit: 10 }), ["t-3"], "its letter waits");
        const first = await store.list({ limit: 2 });
        assert.deepEqual(first.tasks.map((t) => t.id), ["t-3", "t-2"]);
        assert.ok(first.next !== undefined, "a next page");
        const second = await store.list({ limit: 2, after: first.next });
        assert.deepEqual(second.tasks.map((t) => t.id), ["t-1"]);
        assert.equal(second.next, undefined, "the last page");
        assert.deepEqual(Object.keys(first.tasks[0]).includes("payload"), false, "a summary");
        assert.equal(decodeCursor(encodeCursor(first.next!)), first.next);
        assert.equal(decodeCursor("not-a-cursor"), undefined);
        await store.dropDeadLetters(["t-3"]);
        assert.deepEqual(await ids({ deadLetters: true, limit: 10 }), [], "purged");
        assert.equal((await store.get("t-3"))?.state, "dead", "the task stays dead");
        assert.deepEqual((await store.get("t-3"))?.error, { message: "boom" });
        assert.deepEqual(await store.apply([succeeded]), [], "a duplicate is no change");
      } finally {
        await store.close();
      }
    }));

  Deno.test(`${kind} store: a queued event for a task a worker reported first folds in`, () =>
    withStore(async (open) => {
      let store = await open();
      await store.apply([running]);
      await store.close();
      store = await open(); // nothing in memory: the queued insert meets the row
      try {
        const changes = await store.apply([queued]);
        assert.equal(changes.length, 1);
        assert.equal(changes[0].type, undefined, "filling in facts is no visible change");
        assert.deepEqual(changes[0].steps, [{ state: "queued", attempt: 0, at: 1000 }], "a step");
        const task = await store.get(id);
        assert.equal(task?.state, "running");
        assert.deepEqual(task?.payload, { a: 1 });
        assert.equal(task?.createdAt, 1000);
        assert.equal(task?.startedAt, 2000);
        assert.equal((await store.list({ limit: 10 })).tasks.length, 1);
      } finally {
        await store.close();
      }
    }));

  Deno.test(`${kind} store: an event applied twice, or out of order, changes nothing more`, () =>
    withStore(async (open) => {
      const store = await open();
      try {
        const batch = [queued, running, progress, succeeded];
        await store.apply(batch);
        const once = await store.get(id);
        assert.deepEqual(await store.apply(batch), [], "the same batch again: no change");
        assert.deepEqual(await store.apply([...batch].reverse()), [], "in any order");
        assert.deepEqual(await store.get(id), once);
        const late: TaskEvent = { ...running, attempt: 2, at: 9000 };
        assert.deepEqual(await store.apply([late]), [], "a later attempt cannot reopen it");
        const other: TaskEvent = { ...queued, payload: { a: 2 }, at: 9500 };
        await store.apply([other]);
        assert.deepEqual((await store.get(id))?.payload, { a: 1 }, "a payload is written once");
        assert.equal((await store.get(id))?.state, "succeeded", "state only moves forward");
      } finally {
        await store.close();
      }
    }));

  Deno.test(`${kind} store: a task keeps the event it was made from, across a reopen`, () =>
    withStore(async (open) => {
      const event = { id: "e-1", topic: "order.created" };
      let store = await open();
      await store.apply([{ ...running, id: "t-e", event }]); // another client's: its worker tells
      await store.apply([{ ...queued, id: "t-plain" }]);
      await store.close();
      store = await open();
      try {
        assert.deepEqual((await store.get("t-e"))?.event, event);
        assert.equal((await store.get("t-plain"))?.event, null);
        await store.apply([{ ...succeeded, id: "t-e" }]);
        assert.deepEqual((await store.get("t-e"))?.event, event, "later events keep it");
      } finally {
        await store.close();
      }
    }));

  Deno.test(`${kind} store: file chunks are kept, read back, and deleted with their task`, () =>
    withStore(async (open) => {
      const store = await open();
      try {
        const files = [{
          field: "image",
          filename: "a.png",
          type: "image/png",
          size: 5,
          sha256: "x",
          chunks: 2,
        }];
        await store.apply([{ ...queued, files }, running, succeeded]);
        await store.writeChunk(id, "image", 0, new Uint8Array([1, 2, 3]));
        await store.writeChunk(id, "image", 1, new Uint8Array([4, 5]));
        await store.writeChunk("t-other", "image", 0, new Uint8Array([9]));
        assert.deepEqual(await store.readChunk(id, "image", 1), new Uint8Array([4, 5]));
        assert.equal(await store.readChunk(id, "image", 2), undefined);
        assert.deepEqual((await store.get(id))?.files, files, "the task lists its files");
        assert.equal(await store.delete(id), true);
        assert.equal(await store.get(id), undefined);
        assert.equal(await store.readChunk(id, "image", 0), undefined, "its files went with it");
        assert.deepEqual(await store.readChunk("t-other", "image", 0), new Uint8Array([9]));
        assert.equal(await store.delete(id), false, "a task deleted is no more");
        await store.deleteFiles("t-other");
        assert.equal(await store.readChunk("t-other", "image", 0), undefined);
      } finally {
        await store.close();
      }
    }));

  Deno.test(`${kind} store: pruning deletes ended tasks past a cutoff, with their files`, () =>
    withStore(async (open) => {
      const store = await open();
      try {
        const ended = (task: string, h: string, state: "succeeded" | "dead", at: number) => [
          { type: "queued", id: task, handler: h, attempt: 0, at: at - 2 } as TaskEvent,
          { type: state, id: task, handler: h, attempt: 1, at, startedAt: at - 1 } as TaskEvent,
        ];
        await store.apply([
          ...ended("old-a", "a", "succeeded", 1_000),
          ...ended("old-b", "b", "succeeded", 1_000),
          ...ended("old-dead", "a", "dead", 1_000),
          ...ended("new-a", "a", "succeeded", 9_000),
          { type: "running", id: "running-a", handler: "a", attempt: 1, at: 500 },
        ]);
        await store.writeChunk("old-a", "f", 0, new Uint8Array([1]));
        const rule = { state: "succeeded" as const, before: 5_000 };
        assert.equal(await store.prune({ ...rule, handler: "a" }, 10), 1, "only a's");
        assert.equal(await store.get("old-a"), undefined);
        assert.equal(await store.readChunk("old-a", "f", 0), undefined, "its files too");
        assert.ok(await store.get("old-b"), "b's waits for its own rule");
        assert.equal(await store.prune({ ...rule, except: ["b"] }, 10), 0);
        assert.equal(await store.prune({ ...rule, except: [] }, 10), 1);
        assert.ok(await store.get("old-dead"), "dead tasks have their own rule");
        assert.ok(await store.get("new-a"), "a task that ended later stays");
        assert.ok(await store.get("running-a"), "a task that has not ended stays");
        assert.equal(await store.prune({ state: "dead", before: 5_000, except: [] }, 10), 1);

        const claim = { fingerprint: "f", taskId: "t", leaseMs: 10, ttlMs: 100 };
        await store.claimKey({ ...claim, scope: "task:a", key: "old", now: 0 });
        await store.claimKey({ ...claim, scope: "task:a", key: "new", now: 1_000 });
        assert.equal(await store.pruneKeys(500, 10), 1, "the expired key");
        const again = await store.claimKey({ ...claim, scope: "task:a", key: "new", now: 1_001 });
        assert.equal(again.kind, "busy", "the live one is kept");
      } finally {
        await store.close();
      }
    }));

  Deno.test(`${kind} store: a replay is the next run; its history keeps both`, () =>
    withStore(async (open) => {
      const store = await open();
      try {
        const died: TaskEvent = { ...succeeded, type: "dead", error: { message: "x" } };
        await store.apply([queued, running, died]);
        await store.apply([
          { ...queued, payload: undefined, replay: 1, at: 4000 },
          { ...running, replay: 1, at: 5000 },
          { ...succeeded, replay: 1, at: 6000 },
        ]);
        const task = (await store.get(id))!;
        assert.equal(task.replays, 1);
        assert.equal(task.state, "succeeded");
        assert.deepEqual(
          task.history.map((h) => `${h.state}:${h.attempt}:${h.replay ?? 0}`),
          ["queued:0:0", "running:1:0", "dead:1:0", "queued:0:1", "running:1:1", "succeeded:1:1"],
        );
      } finally {
        await store.close();
      }
    }));
}

Deno.test("postgres store: several writers at once fold every task once, and each hears all", async () => {
  await STORES.postgres(async (open) => {
    // Two nodes starting at once both migrate the new database: one waits for the other.
    const [a, b] = await Promise.all([open(), open()]);
    const heard: string[] = [];
    const stop = await following(b, a, (changes) => {
      for (const change of changes) heard.push(`${change.task.id} ${change.task.state}`);
    });
    try {
      // The same 200 tasks' events from two writers at once, in batches that overlap: as two
      // api nodes, or two recorders of redelivered event messages, would write them.
      const events = (n: number): TaskEvent[] => {
        const task = { id: `t-${n}`, handler };
        return [
          { ...task, type: "queued", attempt: 0, at: 1000 + n, payload: { n } },
          { ...task, type: "running", attempt: 1, at: 2000 + n },
          { ...task, type: "succeeded", attempt: 1, at: 3000 + n, result: n, startedAt: 2000 + n },
        ];
      };
      const all = Array.from({ length: 200 }, (_, n) => events(n)).flat();
      const batches = (from: number) =>
        Array.from(
          { length: 20 },
          (_, i) => all.slice((from + i * 30) % 600, (from + i * 30) % 600 + 45),
        );
      await Promise.all([
        ...batches(0).map((batch) => a.apply(batch)),
        ...batches(15).map((batch) => b.apply(batch)),
        a.apply(all),
        b.apply([...all].reverse()),
      ]);
      for (let n = 0; n < 200; n++) {
        const task = await a.get(`t-${n}`);
        assert.equal(task?.state, "succeeded", `t-${n}`);
        assert.equal(task?.result, n);
        assert.deepEqual(task?.payload, { n });
        assert.deepEqual(task?.history.map((h) => h.state), ["queued", "running", "succeeded"]);
      }
      const rows = (await a.list({ limit: 1000 })).tasks.filter((t) => t.id.startsWith("t-"));
      assert.equal(rows.length, 200, "one row per task");
      await waitFor(() => heard.includes("t-199 succeeded"), 5_000, "b to hear a's commits");
    } finally {
      stop();
      await a.close();
      await b.close();
    }
  });
});

Deno.test("postgres store: a node never writes over what another node changed since it looked", async () => {
  await STORES.postgres(async (open) => {
    const [a, b] = [await open(), await open()];
    const heard: string[] = [];
    const stop = await following(b, a, (changes) => {
      for (const { task } of changes) heard.push(`${task.id} ${task.state} v${task.version}`);
    });
    try {
      await a.apply([queued, running]); // a remembers t-1 running
      await b.apply([succeeded]); // b reads the row and ends the task
      // a folds from what it remembers (running): a late retry would move it to retrying there.
      const late: TaskEvent = { ...running, type: "retrying", at: 2500, error: { message: "x" } };
      const other: TaskEvent = { ...queued, id: "t-2" };
      const changes = await a.apply([late, other]);
      const task = (await a.get(id))!;
      assert.equal(task.state, "succeeded", "the end b wrote stays");
      assert.deepEqual(task.result, { ok: true });
      assert.deepEqual(task.history.map((h) => h.state), [
        "queued",
        "running",
        "retrying",
        "succeeded",
      ]);
      assert.equal((await a.get("t-2"))?.state, "queued", "the rest of the batch is written");
      assert.deepEqual(changes.map((c) => `${c.task.id} ${c.task.state}`), [
        "t-2 queued",
        "t-1 succeeded", // folded again from the row as it is: the retry's step, late
      ], "in commit order");
      await waitFor(() => heard.includes(`t-2 queued v1`), 5_000, "b to hear t-2");
      await waitFor(() => heard.includes(`t-1 succeeded v${task.version}`), 5_000, "and t-1");
      assert.ok(
        !heard.some((h) => h.includes("retrying")),
        `never told what was not written: ${heard}`,
      );
    } finally {
      stop();
      await a.close();
      await b.close();
    }
  });
});

Deno.test("postgres store: a dead letter dropped on one node is not restored by another", async () => {
  await STORES.postgres(async (open) => {
    const [a, b] = [await open(), await open()];
    try {
      const died: TaskEvent = { ...succeeded, type: "dead", error: { message: "x" } };
      await a.apply([queued, running, died]); // a remembers t-1 dead, its letter waiting
      await b.dropDeadLetters([id]);
      await a.apply([{ ...queued, at: 900 }]); // a new fact: it was enqueued earlier
      const task = (await b.get(id))!;
      assert.equal(task.createdAt, 900, "the fact is written");
      assert.equal(task.deadLetter, false, "the letter stays dropped");
    } finally {
      await a.close();
      await b.close();
    }
  });
});

Deno.test("postgres store: a notice older than one heard already is left out", async () => {
  const db = await createDatabase();
  const [a, b] = [await openPostgresStore(db.url), await openPostgresStore(db.url)];
  const sql = postgres(db.url, { max: 1, onnotice: () => {} });
  const heard: number[] = [];
  const stop = await following(a, b, (changes) => {
    for (const { task } of changes) heard.push(task.version);
  });
  try {
    const [first] = await b.apply([queued]);
    await b.apply([running]);
    await waitFor(() => heard.length === 2, 5_000, "both changes");
    // A node that tells a change late (after a write that was only partly done) may send an
    // older version after a newer one.
    const stale = { ...first, id, version: first.task.version };
    const told = JSON.stringify({ from: "another node", told: [stale] });
    await sql`SELECT pg_notify('warren_tasks', ${told})`;
    await b.apply([progress]);
    await waitFor(() => heard.length === 3, 5_000, "the next change");
    assert.deepEqual(heard, [1, 2, 3]);
  } finally {
    stop();
    await sql.end();
    await a.close();
    await b.close();
    await db.drop();
  }
});

Deno.test("postgres store: a node alone tells nobody; once another says hello, it tells", async () => {
  const db = await createDatabase();
  const raw = postgres(db.url, { max: 1, onnotice: () => {} });
  const notices: { from: string; told: unknown[] }[] = [];
  const subscription = await raw.listen(
    "warren_tasks",
    (payload) => notices.push(JSON.parse(payload)),
  );
  const a = await openPostgresStore(db.url);
  let b: TaskStore | undefined;
  try {
    await waitFor(() => notices.length > 0, 5_000, "a's hello");
    assert.deepEqual(notices[0].told, [], "a hello tells nothing");
    await a.apply([queued]);
    await a.apply([running]);
    assert.equal(notices.filter((n) => n.told.length > 0).length, 0, "alone, a tells nobody");

    const heardOnA: string[] = [];
    const stopA = a.follow!((changes) => heardOnA.push(...changes.map((c) => c.task.id)));
    b = await openPostgresStore(db.url);
    const heardOnB: string[] = [];
    const stopB = b.follow!((changes) => heardOnB.push(...changes.map((c) => c.task.state)));
    // Each tells the other within a round trip of b's start, not at the next hello five seconds
    // on: a, idle, answers b's hello.
    await waitFor(
      async () => {
        await b!.apply([{ ...queued, id: `t-${crypto.randomUUID()}` }]);
        return heardOnA.some((task) => task !== id);
      },
      1_000,
      "a to hear b",
    );
    await waitFor(
      async () => {
        await a.apply([{ ...progress, at: 2500 + heardOnB.length }]);
        return heardOnB.includes("running");
      },
      1_000,
      "b to hear a",
    );
    stopA();
    stopB();
  } finally {
    await subscription.unlisten();
    await raw.end();
    await a.close();
    await b?.close();
    await db.drop();
  }
});

Deno.test("merge: a replay starts a new run of a dead task; the old run's events stay out", () => {
  const died = fold([queued, running, { ...succeeded, type: "dead", error: { message: "x" } }]);
  const replayed = mergeEvent(died, { ...queued, payload: undefined, replay: 1, at: 4000 })!;
  assert.equal(replayed.visible, "queued");
  const record = replayed.record;
  assert.equal(record.state, "queued");
  assert.equal(record.attempts, 0);
  assert.equal(record.replays, 1);
  assert.equal(record.error, null);
  assert.equal(record.finishedAt, null);
  assert.equal(mergeEvent(record, { ...running, at: 4500 }), undefined, "replay 0 is over");
  const done = [{ ...running, replay: 1, at: 5000 }, { ...succeeded, replay: 1, at: 6000 }]
    .reduce((r, e) => mergeEvent(r, e as TaskEvent)?.record ?? r, record);
  assert.equal(done.state, "succeeded");
  assert.equal(done.attempts, 1);
  assert.deepEqual(
    done.history.map((h) => `${h.state}:${h.attempt}:${h.replay ?? 0}`),
    ["queued:0:0", "running:1:0", "dead:1:0", "queued:0:1", "running:1:1", "succeeded:1:1"],
  );
});

Deno.test("merge: retrying carries the error and when the next attempt runs", () => {
  const retrying: TaskEvent = {
    type: "retrying",
    id,
    handler,
    attempt: 1,
    at: 2500,
    error: { message: "flaky" },
    runAt: 3500,
  };
  const record = fold([queued, running, retrying]);
  assert.equal(record.state, "retrying");
  assert.equal(record.runAt, 3500);
  assert.equal(record.error?.message, "flaky");
  const next = fold([queued, running, retrying, { ...running, attempt: 2, at: 3600 }]);
  assert.equal(next.state, "running");
  assert.equal(next.attempts, 2);
  assert.equal(next.runAt, null);
  assert.equal(mergeEvent(next, retrying), undefined, "a late retrying of attempt 1 is history");
});

Deno.test("merge: a later attempt's events never reopen a task that ended", () => {
  const done = fold([queued, running, succeeded]);
  for (const late of [{ ...running, attempt: 2, at: 4000 }, { ...running, replay: 0, at: 5000 }]) {
    assert.equal(mergeEvent(done, late), undefined, `running ${late.attempt}`);
  }
  const dead: TaskEvent = {
    ...succeeded,
    type: "dead",
    attempt: 2,
    at: 6000,
    error: { message: "x" },
  };
  assert.equal(mergeEvent(done, dead), undefined, "a later dead");
  const died = fold([queued, running, { ...succeeded, type: "dead", error: { message: "x" } }]);
  const rerun = mergeEvent(died, { ...running, attempt: 2, at: 7000 });
  assert.equal(rerun, undefined, "a dead task stays dead until it is replayed");
  assert.equal(fold([queued, running, succeeded, { ...running, attempt: 2 }]).state, "succeeded");
});

Deno.test("merge: progress from an earlier attempt is ignored once a later one runs", () => {
  const retrying: TaskEvent = { ...running, type: "retrying", at: 2200, error: { message: "x" } };
  const second = fold([queued, running, retrying, { ...running, attempt: 2, at: 3000 }]);
  assert.equal(mergeEvent(second, { ...progress, attempt: 1, at: 3100 }), undefined);
  const own = mergeEvent(second, { ...progress, attempt: 2, at: 3200 })!;
  assert.equal(own.record.progress, 0.5);
});

Deno.test("merge: an outcome fills in its attempt's lost running step and start", () => {
  const outcome = { ...succeeded, startedAt: 2000 };
  const merged = mergeEvent(fold([queued]), outcome)!;
  assert.equal(merged.record.startedAt, 2000);
  assert.deepEqual(merged.steps.map((s) => `${s.state}:${s.attempt}@${s.at}`), [
    "running:1@2000",
    "succeeded:1@3000",
  ]);
  assert.deepEqual(merged.record.history.map((h) => h.state), ["queued", "running", "succeeded"]);
  const retried = mergeEvent(merged.record, { ...running, at: 2000 });
  assert.equal(retried, undefined, "the running event arriving late adds nothing more");
});

Deno.test("merge: a task another AMQP client published gets its queued step", () => {
  const foreign: TaskEvent = { ...running, createdAt: 500 };
  const merged = mergeEvent(undefined, foreign)!;
  assert.deepEqual(merged.steps.map((s) => s.state), ["queued", "running"]);
  assert.equal(merged.record.createdAt, 500);
  const again = mergeEvent(merged.record, { ...succeeded, createdAt: 500, startedAt: 2000 })!;
  assert.deepEqual(again.steps.map((s) => s.state), ["succeeded"], "each step once");
});
