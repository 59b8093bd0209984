/**
 * PostgreSQL away: Warren keeps taking tasks (they are safe in the broker), answers reads with a
 * clear 503 instead of hanging, and when the database is back every task's record is complete.
 */

import assert from "node:assert/strict";
import { createDatabase } from "./helpers/postgres.ts";
import { startProxy } from "./helpers/proxy.ts";
import { deleteTopology, getJson, postTask, startWarren, waitFor } from "./helpers/warren.ts";

Deno.test("store outage: POSTs go on, reads say 503, and every record is whole after", async () => {
  const db = await createDatabase();
  const target = new URL(db.url);
  const proxy = startProxy({ hostname: target.hostname, port: Number(target.port) });
  target.port = String(proxy.port);
  target.password = "s3cret-pw"; // the test server trusts local users: it goes unused, unsaid
  const warren = await startWarren({ storePath: target.href });
  try {
    const [first] = await postTask(warren.url, "echo", { n: 0 });
    assert.equal(first, 202);

    proxy.pause(); // every connection to PostgreSQL cut, new ones refused
    const ids: string[] = [];
    for (let n = 1; n <= 5; n++) {
      const [status, body] = await postTask(warren.url, "echo", { n });
      assert.equal(status, 202, `a POST while the store is away: ${JSON.stringify(body)}`);
      ids.push(body.id as string);
    }
    const [status, body] = await getJson(`${warren.url}/tasks/${ids[0]}`, {
      signal: AbortSignal.timeout(15_000),
    });
    assert.equal(status, 503, JSON.stringify(body));
    assert.match(String(body.detail), /task store/);
    assert.doesNotMatch(JSON.stringify(body), /postgres:\/\//, "no URL in the answer");

    proxy.resume();
    for (const id of ids) {
      await waitFor(
        async () => {
          const [code, task] = await getJson(`${warren.url}/tasks/${id}`);
          return code === 200 && task.state === "succeeded";
        },
        30_000,
        `task ${id} to be recorded once the store is back`,
      );
    }
    const [, task] = await getJson(`${warren.url}/tasks/${ids[0]}`);
    assert.deepEqual(task.payload, { n: 1 }, "the payload, from the worker's events");
    assert.equal(warren.output().includes("s3cret-pw"), false, "the password is never logged");
    assert.match(warren.output(), /cannot store queued task\(s\) .* they are recorded later/);
  } finally {
    try {
      await warren.stop();
    } finally {
      // Everything goes, even when the stop reports answers the OpenAPI document does not allow.
      await proxy.close();
      await deleteTopology(warren.prefix);
      await db.drop();
    }
  }
});
