/**
 * Idempotency keys: a repeat of a POST with its `Idempotency-Key` makes no second task, on one
 * api process (SQLite) and on two (PostgreSQL, the store deciding); a key used for another
 * request is 422; a request in flight is 409 until its lease runs out, and then a repeat
 * publishes again under the same task id (the confirm-timeout gap); a handler derives keys from
 * its payload; keys expire.
 */

import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import { Buffer } from "node:buffer";
import { connect } from "amqplib";
import postgres from "postgres";
import { fingerprint } from "../lib/idempotency.ts";
import { createDatabase } from "./helpers/postgres.ts";
import {
  AMQP_URL,
  deleteTopology,
  fleet,
  getJson,
  type Json,
  startWarren,
  uniquePrefix,
  waitFor,
  waitForState,
} from "./helpers/warren.ts";

const HANDLERS = fromFileUrl(new URL("./fixtures/keys", import.meta.url));
const NAMES = ["note", "order", "relay"];

async function post(
  url: string,
  path: string,
  body: unknown,
  key?: string,
): Promise<[number, Json, Headers]> {
  const response = await fetch(`${url}${path}`, {
    method: "POST",
    headers: key ? { "idempotency-key": key } : {},
    body: JSON.stringify(body),
  });
  return [response.status, await response.json(), response.headers];
}

async function tasksOf(url: string, handler: string): Promise<string[]> {
  const [, page] = await getJson(`${url}/tasks?handler=${handler}&limit=1000`);
  return page.tasks.map((t: Json) => t.id);
}

Deno.test("idempotency: a repeat with its key makes no second task (SQLite)", async (t) => {
  const warren = await startWarren({
    handlersDir: HANDLERS,
    env: { WARREN_IDEMPOTENCY_TTL: "2s" },
  });
  try {
    await t.step("the same key and body: the first answer again, marked", async () => {
      const [first, accepted, headers] = await post(warren.url, "/tasks/note", { n: 1 }, "k-1");
      assert.equal(first, 202);
      assert.equal(headers.get("idempotent-replayed"), null);
      const [again, repeat, repeatHeaders] = await post(warren.url, "/tasks/note", { n: 1 }, "k-1");
      assert.equal(again, 202);
      assert.deepEqual(repeat, accepted, "the same answer");
      assert.equal(repeatHeaders.get("idempotent-replayed"), "true");
      assert.equal(repeatHeaders.get("location"), `/tasks/${accepted.id}`);
      await waitForState(warren.url, accepted.id, "succeeded");
      assert.deepEqual(await tasksOf(warren.url, "note"), [accepted.id], "one task");
    });

    await t.step("the same key with another body is 422; a bad key 400", async () => {
      const [status, problem] = await post(warren.url, "/tasks/note", { n: 2 }, "k-1");
      assert.equal(status, 422);
      assert.match(problem.detail, /used for a different request/);
      const [bad] = await post(warren.url, "/tasks/note", {}, "x".repeat(300));
      assert.equal(bad, 400);
    });

    await t.step(
      "keys are scoped: the same key on another handler or topic is its own",
      async () => {
        const [status, accepted] = await post(warren.url, "/tasks/order", { order_id: 7 }, "k-1");
        assert.equal(status, 202);
        const [, event] = await post(warren.url, "/events/note.added", { n: 1 }, "k-1");
        const [, again, headers] = await post(warren.url, "/events/note.added", { n: 1 }, "k-1");
        assert.deepEqual(again, event, "an event's repeat is its first answer");
        assert.equal(headers.get("idempotent-replayed"), "true");
        assert.notEqual(event.id, accepted.id);
      },
    );

    await t.step("a handler derives the key from its payload when no header is sent", async () => {
      const [, first] = await post(warren.url, "/tasks/order", { order_id: 42 });
      const [, second, headers] = await post(warren.url, "/tasks/order", { order_id: 42 });
      assert.equal(second.id, first.id);
      assert.equal(headers.get("idempotent-replayed"), "true");
      const [, other] = await post(warren.url, "/tasks/order", { order_id: 43 });
      assert.notEqual(other.id, first.id);
    });

    await t.step("ctx.enqueue of one order twice makes one task", async () => {
      const [, accepted] = await post(warren.url, "/tasks/relay", { order_id: 500 });
      const done = await waitForState(warren.url, accepted.id, "succeeded");
      assert.equal(done.result.second, done.result.first);
      const [, direct, headers] = await post(warren.url, "/tasks/order", { order_id: 500 });
      assert.equal(direct.id, done.result.first, "a POST of it too");
      assert.equal(headers.get("idempotent-replayed"), "true");
    });

    await t.step("another AMQP client's repeat of an order is dropped unrun", async () => {
      const connection = await connect(AMQP_URL);
      try {
        const ch = await connection.createConfirmChannel();
        const queue = `${warren.prefix}.task.order`;
        const body = Buffer.from(JSON.stringify({ order_id: 900 }));
        for (const id of ["raw-900-a", "raw-900-b"]) {
          ch.sendToQueue(queue, body, { messageId: id, persistent: true });
        }
        await ch.waitForConfirms();
        await waitForState(warren.url, "raw-900-a", "succeeded");
        await waitFor(async () => (await ch.checkQueue(queue)).messageCount === 0, 10_000);
        await new Promise((resolve) => setTimeout(resolve, 500));
        const [missing] = await getJson(`${warren.url}/tasks/raw-900-b`);
        assert.equal(missing, 404, "the repeat left no task");
        assert.match(warren.output(), /dropped: another task holds this payload's idempotency key/);
        const [, posted] = await post(warren.url, "/tasks/order", { order_id: 900 });
        assert.equal(posted.id, "raw-900-a", "a POST of it names the first");
        await ch.close();
      } finally {
        await connection.close();
      }
    });

    await t.step("a key expires after WARREN_IDEMPOTENCY_TTL", async () => {
      const [, first] = await post(warren.url, "/tasks/note", { n: 3 }, "k-expiring");
      await new Promise((resolve) => setTimeout(resolve, 2_500));
      const [status, later, headers] = await post(
        warren.url,
        "/tasks/note",
        { n: 3 },
        "k-expiring",
      );
      assert.equal(status, 202);
      assert.notEqual(later.id, first.id, "a new task");
      assert.equal(headers.get("idempotent-replayed"), null);
    });
  } finally {
    assert.equal(await warren.stop(), 0, warren.output());
    await deleteTopology(warren.prefix, NAMES);
  }
});

Deno.test("idempotency: two api nodes on PostgreSQL make one task per key", async (t) => {
  const prefix = uniquePrefix("keys-nodes");
  const db = await createDatabase();
  const sql = postgres(db.url, { onnotice: () => {} });
  const { start, stop } = fleet(prefix, HANDLERS);
  try {
    await start("worker");
    const a = await start("api", { WARREN_STORE: db.url });
    const b = await start("api", { WARREN_STORE: db.url });

    await t.step("the same key sent to both at once: one task; every 202 names it", async () => {
      const answers = await Promise.all(
        Array.from(
          { length: 12 },
          (_, i) => post(i % 2 ? b.url : a.url, "/tasks/note", { race: true }, "race-key"),
        ),
      );
      const accepted = answers.filter(([status]) => status === 202).map(([, body]) => body.id);
      assert.ok(accepted.length >= 1, JSON.stringify(answers.map(([s, body]) => [s, body])));
      assert.equal(new Set(accepted).size, 1, "one task id in every 202");
      for (const [status, body, headers] of answers) {
        assert.ok(status === 202 || status === 409, `${status} ${JSON.stringify(body)}`);
        if (status === 409) assert.ok(Number(headers.get("retry-after")) >= 1);
      }
      await waitForState(a.url, accepted[0], "succeeded");
      const race = (await tasksOf(b.url, "note")).length;
      assert.equal(race, 1, "one task in the store");
    });

    await t.step(
      "a request in flight is 409; once its lease runs out, a repeat publishes it again under its id",
      async () => {
        // As if an api node claimed the key, published, and never heard the broker's confirm.
        const body = JSON.stringify({ lost: "confirm" });
        const print = fingerprint(["note", 0, null], new TextEncoder().encode(body));
        const now = Date.now();
        await sql`INSERT INTO idempotency_keys
                  (scope, key, fingerprint, task_id, state, lease_until, expires_at)
                VALUES ('task:note', 'lost-confirm', ${print}, 'orphan-task-1', 'pending',
                        ${now + 60_000}, ${now + 3_600_000})`;
        const busy = await fetch(`${b.url}/tasks/note`, {
          method: "POST",
          headers: { "idempotency-key": "lost-confirm" },
          body,
        });
        assert.equal(busy.status, 409);
        assert.ok(Number(busy.headers.get("retry-after")) > 1);
        await busy.body?.cancel();
        await sql`UPDATE idempotency_keys SET lease_until = ${now - 1} WHERE key = 'lost-confirm'`;
        const retried = await fetch(`${a.url}/tasks/note`, {
          method: "POST",
          headers: { "idempotency-key": "lost-confirm" },
          body,
        });
        assert.equal(retried.status, 202);
        assert.equal(
          (await retried.json()).id,
          "orphan-task-1",
          "the task the first request named",
        );
        await waitForState(b.url, "orphan-task-1", "succeeded");
        const [row] = await sql`SELECT state FROM idempotency_keys WHERE key = 'lost-confirm'`;
        assert.equal(row.state, "done");
      },
    );
  } finally {
    await sql.end();
    await stop(NAMES).finally(() => db.drop());
  }
});
