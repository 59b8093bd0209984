/**
 * The wire format: a JSON message that any AMQP client publishes to a handler's queue runs that
 * handler and shows up in GET /tasks (here the client is plain amqplib, as pika would be).
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { connect, type Message } from "amqplib";
import { eventTaskId, newTaskId } from "../lib/id.ts";
import { logger } from "../lib/log.ts";
import { taskOf } from "../lib/worker/task.ts";
import {
  deadLetterProperties,
  readTask,
  republishedProperties,
  taskProperties,
} from "../lib/wire.ts";
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

Deno.test("delivery: headers give attempt, replay, creation time and redeliveries", () => {
  const message = (headers: Record<string, unknown>, messageId?: string) =>
    ({
      content: new Uint8Array(),
      fields: { redelivered: false },
      properties: { headers, messageId, timestamp: 1_700_000_000 },
    }) as unknown as Message;
  const delivery = message({
    "x-warren-attempt": 3,
    "x-warren-replay": 1,
    "x-warren-created-at": 1_700_000_000_123,
    "x-delivery-count": 2,
  }, "t-1");
  const reader = { handler: "h", topicsExchange: "x.topics", newId: newTaskId };
  assert.deepEqual(readTask(delivery, reader), {
    id: "t-1",
    attempt: 3,
    replay: 1,
    createdAt: 1_700_000_000_123,
    fromWarren: true,
    deliveries: 2,
  });
  assert.equal(
    taskOf(delivery, { handler: "h", topicsExchange: "x.topics" }, () => {}, logger("test")).key,
    "t-1/1/3",
  );
  const foreign = readTask(message({}), reader);
  assert.match(foreign.id, /^[0-9a-f-]{36}$/, "an id is made for a message without one");
  assert.equal(foreign.attempt, 1);
  assert.equal(foreign.createdAt, 1_700_000_000_000, "from the AMQP timestamp");
  assert.equal(foreign.fromWarren, false);
});

Deno.test("delivery: a copy of an event is its task for the handler; its retries say so", () => {
  const event = newTaskId();
  const copy = {
    content: new Uint8Array(),
    fields: { redelivered: false, exchange: "x.topics", routingKey: "order.created" },
    properties: { headers: {}, messageId: event, timestamp: 1_700_000_000 },
  } as unknown as Message;
  const email = readTask(copy, { handler: "email", topicsExchange: "x.topics", newId: newTaskId });
  const stock = readTask(copy, { handler: "stock", topicsExchange: "x.topics", newId: newTaskId });
  assert.deepEqual(email.event, { id: event, topic: "order.created" });
  assert.notEqual(email.id, stock.id, "each subscriber's task has an id of its own");
  assert.equal(email.id, eventTaskId(event, "email"), "the id the api answered with");
  assert.equal(email.id.slice(0, 13), event.slice(0, 13), "it sorts by the event's time");

  const retry = {
    content: new Uint8Array(),
    fields: { redelivered: false, exchange: "x.delay.0", routingKey: "1.email" },
    properties: { ...taskProperties(email, { attempt: 2, replay: 0 }) },
  } as unknown as Message;
  const again = readTask(retry, { handler: "email", topicsExchange: "x.topics", newId: newTaskId });
  assert.equal(again.id, email.id);
  assert.deepEqual(again.event, email.event);
  assert.equal(again.attempt, 2);
});

Deno.test("wire: a task published again says so, and its worker asks the ledger first", () => {
  const props = taskProperties({ id: "t-1", createdAt: 1 }, { attempt: 1, replay: 0 }, true);
  assert.equal(props.headers?.["x-warren-again"], 1);
  const message = {
    content: new Uint8Array(),
    fields: { exchange: "p.tasks", routingKey: "hello", redelivered: false },
    properties: props,
  } as unknown as Message;
  const reader = { handler: "hello", topicsExchange: "p.topics", newId: () => "x" };
  assert.equal(readTask(message, reader).again, true);
  const plain = taskProperties({ id: "t-1", createdAt: 1 }, { attempt: 1, replay: 0 });
  assert.equal(plain.headers?.["x-warren-again"], undefined);
  // A first attempt carries no attempt header, and reads as attempt 1; a later one says its number.
  assert.deepEqual(plain.headers, { "x-warren-created-at": 1 });
  assert.equal(readTask({ ...message, properties: plain } as Message, reader).attempt, 1);
  const second = taskProperties({ id: "t-1", createdAt: 1 }, { attempt: 2, replay: 0 });
  assert.equal(readTask({ ...message, properties: second } as Message, reader).attempt, 2);
});

Deno.test("wire: a task's trace goes on through its retry, its dead letter and its replay", () => {
  const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const previousAttempt = "00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01";
  const reader = { handler: "hello", topicsExchange: "p.topics", newId: () => "x" };
  const delivered = (properties: ReturnType<typeof taskProperties>) =>
    ({
      content: new Uint8Array(),
      fields: { exchange: "p.tasks", routingKey: "hello", redelivered: false },
      properties,
    }) as unknown as Message;
  const retry = readTask(
    delivered(taskProperties({ id: "t-1", createdAt: 1, traceparent, previousAttempt }, {
      attempt: 2,
      replay: 0,
    })),
    reader,
  );
  assert.equal(retry.traceparent, traceparent, "every attempt's span has the same parent");
  assert.equal(retry.previousAttempt, previousAttempt, "a retry's span links the one before");
  const letter = deadLetterProperties({
    id: "t-1",
    createdAt: 1,
    attempt: 3,
    replay: 0,
    error: { message: "boom" },
    traceparent,
  }, 5);
  const replay = readTask(delivered(republishedProperties(delivered(letter))), reader);
  assert.equal(replay.traceparent, traceparent, "a replay goes on in the task's trace");
  const forged = readTask(
    delivered({ headers: { traceparent: "00-zz-not-a-trace" }, messageId: "t-2" }),
    reader,
  );
  assert.equal(forged.traceparent, undefined, "a header that is not a traceparent is ignored");
});
