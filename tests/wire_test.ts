/**
 * The wire format: a JSON message that any AMQP client publishes to a handler's queue runs that
 * handler and shows up in GET /tasks (here the client is plain amqplib, as pika would be).
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { connect } from "amqplib";
import {
  AMQP_URL,
  deleteTopology,
  getJson,
  startWarren,
  waitFor,
  waitForState,
} from "./helpers/warren.ts";

Deno.test("wire: a message from another AMQP client runs its handler", async (t) => {
  const warren = await startWarren();
  const connection = await connect(AMQP_URL);
  try {
    const ch = await connection.createConfirmChannel();
    const queue = `${warren.prefix}.task.echo`;

    await t.step("with a message_id: that is the task id", async () => {
      const id = `raw-${crypto.randomUUID()}`;
      ch.sendToQueue(queue, Buffer.from(JSON.stringify({ from: "pika" })), {
        messageId: id,
        contentType: "application/json",
        persistent: true,
      });
      await ch.waitForConfirms();
      const task = await waitForState(warren.url, id, "succeeded");
      assert.deepEqual(task.payload, { from: "pika" });
      assert.deepEqual(task.result, { echo: { from: "pika" } });
      assert.equal(task.attempts, 1);
    });

    await t.step("without a message_id, through the tasks exchange: Warren names it", async () => {
      ch.publish(
        `${warren.prefix}.tasks`,
        "echo",
        Buffer.from(JSON.stringify({ marker: "no-id" })),
        { persistent: true },
      );
      await ch.waitForConfirms();
      const task = await waitFor(
        async () => {
          const [, body] = await getJson(`${warren.url}/tasks?handler=echo`);
          for (const { links } of body.tasks) {
            const [, task] = await getJson(`${warren.url}${links.self}`);
            if (task.payload?.marker === "no-id") return task;
          }
        },
        15_000,
        "the task without message_id",
      );
      assert.match(task.id, /^[0-9a-f-]{36}$/);
      const done = await waitForState(warren.url, task.id, "succeeded");
      assert.deepEqual(done.result, { echo: { marker: "no-id" } });
    });

    await t.step("a body that is not JSON ends dead, and is not redelivered", async () => {
      const id = `bad-${crypto.randomUUID()}`;
      ch.sendToQueue(queue, Buffer.from("{oops"), { messageId: id, persistent: true });
      await ch.waitForConfirms();
      const task = await waitForState(warren.url, id, "dead");
      assert.match(task.error.message, /payload is not valid JSON/);
      assert.equal(task.attempts, 1, "echo has retries left, yet no second attempt");
      assert.deepEqual(task.history.map((h: { state: string }) => h.state), ["queued", "dead"]);
      const [, handlers] = await getJson(`${warren.url}/handlers`);
      const echo = handlers.handlers.find((h: { name: string }) => h.name === "echo");
      assert.equal(echo.queue.messages, 0);
    });
    await ch.close();
  } finally {
    await connection.close();
    assert.equal(await warren.stop(), 0, warren.output());
    await deleteTopology(warren.prefix);
  }
});
