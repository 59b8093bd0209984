/**
 * The broker topology: every queue Warren declares is a quorum queue (replicated on a cluster),
 * and the classic events queue of an older Warren is moved over at start-up, losing nothing.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { connect } from "amqplib";
import type { TaskEvent } from "../lib/events.ts";
import { encodeEvents } from "../lib/wire.ts";
import {
  AMQP_URL,
  deleteTopology,
  FIXTURE_HANDLERS,
  startWarren,
  uniquePrefix,
  waitForState,
} from "./helpers/warren.ts";

/** The type of every queue whose name starts with `prefix.`, as the broker lists them. */
function queueTypes(prefix: string): Map<string, string> {
  const { stdout, success } = new Deno.Command("rabbitmqctl", {
    args: ["list_queues", "--quiet", "--no-table-headers", "name", "type"],
    stderr: "null",
  }).outputSync();
  assert.ok(success, "rabbitmqctl list_queues");
  const types = new Map<string, string>();
  for (const line of new TextDecoder().decode(stdout).split("\n")) {
    const [name, type] = line.trim().split(/\s+/);
    if (name?.startsWith(`${prefix}.`)) types.set(name, type);
  }
  return types;
}

Deno.test("topology: every queue Warren declares is a quorum queue (the cancels a stream)", async () => {
  const warren = await startWarren();
  try {
    const types = queueTypes(warren.prefix);
    // A task and a dead-letter queue per handler, 22 delay levels, the events, callbacks, files
    // and keys queues, and the cancels stream.
    assert.equal(types.size, 2 * FIXTURE_HANDLERS.length + 22 + 5, [...types.keys()].join(" "));
    assert.equal(types.get(`${warren.prefix}.cancels`), "stream");
    const classic = [...types].filter(([name, type]) =>
      type !== "quorum" && name !== `${warren.prefix}.cancels`
    );
    assert.deepEqual(classic, [], "no queue is left unreplicated");
    assert.equal(types.get(`${warren.prefix}.events.record`), "quorum");
    assert.equal(types.get(`${warren.prefix}.callbacks`), "quorum");
  } finally {
    assert.equal(await warren.stop(), 0, warren.output());
    await deleteTopology(warren.prefix);
  }
});

Deno.test("topology: an older Warren's classic events queue is moved over at start-up", async () => {
  const prefix = uniquePrefix("legacy");
  const legacy = `${prefix}.events.store`;
  const id = crypto.randomUUID();
  const connection = await connect(AMQP_URL);
  try {
    const ch = await connection.createConfirmChannel();
    await ch.assertExchange(`${prefix}.events`, "topic", { durable: true });
    await ch.assertQueue(legacy, { durable: true }); // classic, as Warren 0.2 declared it
    await ch.bindQueue(legacy, `${prefix}.events`, "task.#");
    const events: TaskEvent[] = [
      { type: "queued", id, handler: "echo", attempt: 0, at: 1_000, payload: { old: true } },
      { type: "succeeded", id, handler: "echo", attempt: 1, at: 2_000, startedAt: 1_500 },
    ];
    ch.sendToQueue(legacy, Buffer.from(encodeEvents(events).body), { persistent: true });
    await ch.waitForConfirms();

    const warren = await startWarren({ prefix });
    try {
      const task = await waitForState(warren.url, id, "succeeded");
      assert.deepEqual(task.payload, { old: true }, "its events were recorded");
      assert.match(warren.output(), /moved 1 event message\(s\) from the classic queue/);
      const probe = await connection.createChannel();
      probe.on("error", () => {}); // a missing queue closes the channel
      const gone = await probe.checkQueue(legacy).then(() => false, () => true);
      assert.ok(gone, "the classic queue is deleted");
    } finally {
      assert.equal(await warren.stop(), 0, warren.output());
      await deleteTopology(prefix);
    }
  } finally {
    await connection.close().catch(() => {});
  }
});
