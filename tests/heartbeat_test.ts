/**
 * A handler that blocks its isolate far past the AMQP heartbeat: the broker drops that worker's
 * connection and redelivers the task, yet it runs exactly once and reaches one terminal state.
 */

import assert from "node:assert/strict";
import { AMQP_URL, deleteTopology, postTask, startWarren, waitForState } from "./helpers/warren.ts";

Deno.test("heartbeats: blocking for 3x the heartbeat and more still runs exactly once", async () => {
  const url = new URL(AMQP_URL);
  url.searchParams.set("heartbeat", "1");
  const warren = await startWarren({ env: { AMQP_URL: url.toString() } });
  const log = await Deno.makeTempFile({ suffix: ".log" });
  try {
    const ids: string[] = [];
    // Six tasks on two workers, blocking 3 to 4.5 s: connections drop at many different moments
    // of their close handshakes, which once made a late "error" end a worker.
    for (let i = 0; i < 6; i++) {
      const [status, body] = await postTask(warren.url, "block", { ms: 3_000 + i * 300, log });
      assert.equal(status, 202);
      ids.push(body.id);
    }
    for (const id of ids) {
      const task = await waitForState(warren.url, id, "succeeded", 60_000);
      assert.ok(task.result.blocked >= 3_000);
      assert.equal(task.attempts, 1, `${JSON.stringify(task.history)}\n${warren.output()}`);
    }
    // Give any duplicate time to show itself: a redelivery would have run by now.
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const runs = (await Deno.readTextFile(log)).trim().split("\n");
    assert.deepEqual(runs.sort(), ids.map((id) => `${id} 1`).sort(), "each ran once");
    assert.match(warren.output(), /lost the broker connection/, "the broker did drop it");
  } finally {
    await warren.stop();
    await deleteTopology(warren.prefix);
    await Deno.remove(log);
  }
});
