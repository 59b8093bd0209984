/**
 * A resource alarm on the real broker (the memory high watermark set absurdly low): RabbitMQ
 * blocks publishers, POST answers 503 and /readyz stays honest; when the alarm clears,
 * everything resumes by itself. It changes the broker's global state, so it lives in the
 * fault-injection suite, which runs alone.
 */

import assert from "node:assert/strict";
import {
  deleteTopology,
  getJson,
  postTask,
  startWarren,
  waitFor,
  waitForState,
} from "../helpers/warren.ts";

function rabbitmqctl(...args: string[]): string {
  const { success, stdout, stderr } = new Deno.Command("rabbitmqctl", { args }).outputSync();
  const text = new TextDecoder().decode(success ? stdout : stderr);
  if (!success) throw new Error(`rabbitmqctl ${args.join(" ")}: ${text}`);
  return text;
}

Deno.test("blocked: a memory alarm makes POST answer 503; clearing it resumes", async () => {
  const warren = await startWarren();
  const watermark = rabbitmqctl(
    "eval",
    "vm_memory_monitor:get_vm_memory_high_watermark().",
  ).trim().split("\n").at(-1)!;
  try {
    rabbitmqctl("set_vm_memory_high_watermark", "0.0000001");
    const [status, problem, headers] = await waitFor(
      async () => {
        const answer = await postTask(warren.url, "echo", { during: "alarm" });
        return answer[0] === 503 ? answer : undefined;
      },
      20_000,
      "POST to be refused under the alarm",
    );
    assert.equal(status, 503);
    assert.ok(headers.get("retry-after"));
    // The first publish meets the alarm and is never confirmed (the broker may still take it);
    // the broker then tells the connection it is blocked, and later POSTs are refused at once.
    assert.match(problem.detail, /blocking publishers|did not confirm/);
    await waitFor(
      () => warren.output().includes("broker blocked publishing"),
      10_000,
      "the connection.blocked notice",
    );
    const [again, refused] = await postTask(warren.url, "echo", { during: "alarm" });
    assert.equal(again, 503);
    assert.match(refused.detail, /the broker is blocking publishers .*; nothing was enqueued/);
    const [ready, notReady] = await getJson(`${warren.url}/readyz`);
    assert.equal(ready, 503);
    assert.match(notReady.detail, /the broker is blocking publishers/);
  } finally {
    rabbitmqctl("set_vm_memory_high_watermark", /^[\d.]+$/.test(watermark) ? watermark : "0.4");
  }
  try {
    const [status, body] = await waitFor(
      async () => {
        const answer = await postTask(warren.url, "echo", { after: "alarm" });
        return answer[0] === 202 ? answer : undefined;
      },
      30_000,
      "POST to be accepted again",
    );
    assert.equal(status, 202);
    await waitForState(warren.url, body.id, "succeeded", 15_000);
    assert.equal((await getJson(`${warren.url}/readyz`))[0], 200);
  } finally {
    await warren.stop();
    await deleteTopology(warren.prefix);
  }
});
