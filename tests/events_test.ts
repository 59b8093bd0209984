/**
 * Publish once, many handlers react (seed 001's order fan-out): `POST /events/{topic}`, events
 * from any AMQP client, a foreign service's own queue on the topics exchange, `ctx.publish`, and
 * a binding left from an earlier config.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { fileURLToPath as fromFileUrl } from "node:url";
import { connect } from "amqplib";
import { eventTaskId, newTaskId } from "../lib/id.ts";
import { parseExposition, sampleValue } from "./helpers/prometheus.ts";
import {
  AMQP_URL,
  deleteTopology,
  getJson,
  type Json,
  postTask,
  startWarren,
  waitFor,
  waitForState,
} from "./helpers/warren.ts";

const TOPICS = fromFileUrl(new URL("./fixtures/topics", import.meta.url));
const HANDLERS = ["analytics", "email", "publisher", "stock"];

async function publish(url: string, topic: string, body: unknown): Promise<[number, Json]> {
  const response = await fetch(`${url}/events/${topic}`, {
    method: "POST",
    body: JSON.stringify(body),
  });
  return [response.status, await response.json()];
}

Deno.test("events: one publish, a task per subscribed handler", async (t) => {
  const warren = await startWarren({ handlersDir: TOPICS });
  const connection = await connect(AMQP_URL);
  const topics = `${warren.prefix}.topics`;
  try {
    const ch = await connection.createConfirmChannel();

    await t.step("POST /events/{topic}: 202 with the tasks; each runs on its own", async () => {
      const [status, body] = await publish(warren.url, "order.created", { order: 1 });
      assert.equal(status, 202, JSON.stringify(body));
      assert.equal(body.topic, "order.created");
      const byHandler = new Map(body.tasks.map((t: Json) => [t.handler, t.id]));
      assert.deepEqual([...byHandler.keys()].sort(), ["analytics", "email", "stock"]);
      assert.equal(new Set(byHandler.values()).size, 3, "an id of its own for each");
      const origin = { id: body.id, topic: "order.created" };
      const email = await waitForState(warren.url, byHandler.get("email") as string, "succeeded");
      assert.deepEqual(email.result, { emailed: 1, event: origin }, "ctx.event tells the event");
      assert.deepEqual(email.event, origin);
      assert.deepEqual(email.payload, { order: 1 });
      const stock = await waitForState(warren.url, byHandler.get("stock") as string, "succeeded");
      assert.deepEqual(stock.result, { reserved: 1, topic: "order.created" });
      const analytics = await waitForState(
        warren.url,
        byHandler.get("analytics") as string,
        "succeeded",
      );
      assert.equal(analytics.attempts, 2, "its retry is the same task");
      assert.deepEqual(analytics.event, origin, "and still knows its event");
      assert.deepEqual(
        analytics.history.map((h: Json) => h.state),
        ["queued", "running", "retrying", "running", "succeeded"],
      );
    });

    await t.step("no subscriber is not an error; patterns pick by words", async () => {
      const [status, body] = await publish(warren.url, "user.signed-up", {});
      assert.equal(status, 202);
      assert.deepEqual(body.tasks, []);
      const [, deep] = await publish(warren.url, "order.paid.twice", { order: 2 });
      assert.deepEqual(deep.tasks.map((t: Json) => t.handler), ["analytics"], "only order.#");
    });

    await t.step("a bad topic is 400, a payload a subscriber refuses 422, a form 415", async () => {
      const [bad, problem] = await publish(warren.url, "order.*", {});
      assert.equal(bad, 400);
      assert.equal(problem.title, "Bad topic");
      const [refused, why] = await publish(warren.url, "order.paid", { no: "order" });
      assert.equal(refused, 422);
      assert.match(why.detail, /subscriber "stock"/);
      const form = new FormData();
      form.append("order", "1");
      for (const path of ["/events/order.paid", "/tasks/email"]) {
        const response = await fetch(`${warren.url}${path}`, { method: "POST", body: form });
        assert.equal(response.status, 415, path);
        assert.match((await response.json()).detail, /send (its|the) payload as JSON/);
      }
    });

    await t.step("an event from another AMQP client fans out the same way", async () => {
      const id = newTaskId();
      const body = Buffer.from(JSON.stringify({ order: 3 }));
      ch.publish(topics, "order.created", body, { messageId: id, persistent: true });
      await ch.waitForConfirms();
      const email = await waitForState(warren.url, eventTaskId(id, "email"), "succeeded");
      assert.deepEqual(email.event, { id, topic: "order.created" }, "recorded by its worker");
      assert.deepEqual(email.payload, { order: 3 });
      await waitForState(warren.url, eventTaskId(id, "stock"), "succeeded");
    });

    await t.step("a foreign service binds its own queue to the topics exchange", async () => {
      const { queue } = await ch.assertQueue("", { exclusive: true });
      await ch.bindQueue(queue, topics, "order.#");
      const [, body] = await publish(warren.url, "order.shipped", { order: 4 });
      const message = await waitFor(
        async () => (await ch.get(queue, { noAck: true })) || undefined,
        10_000,
        "the copy",
      );
      assert.equal(message.properties.messageId, body.id);
      assert.equal(message.fields.routingKey, "order.shipped");
      assert.deepEqual(JSON.parse(message.content.toString()), { order: 4 });
      await ch.deleteQueue(queue);
    });

    await t.step("ctx.publish: a handler's event reaches the subscribers", async () => {
      const [, accepted] = await postTask(warren.url, "publisher", {
        topic: "order.created",
        payload: { order: 5 },
      });
      const done = await waitForState(warren.url, accepted.id, "succeeded");
      const event = done.result.event;
      const email = await waitForState(warren.url, eventTaskId(event, "email"), "succeeded");
      assert.deepEqual(email.result, { emailed: 5, event: { id: event, topic: "order.created" } });
    });

    await t.step("a binding left from an earlier config brings nothing", async () => {
      await ch.bindQueue(`${warren.prefix}.task.email`, topics, "legacy.#");
      const id = newTaskId();
      ch.publish(topics, "legacy.thing", Buffer.from("{}"), { messageId: id, persistent: true });
      await ch.waitForConfirms();
      await waitFor(() => /dropped an event of topic legacy.thing/.test(warren.output()));
      const [status] = await getJson(`${warren.url}/tasks/${eventTaskId(id, "email")}`);
      assert.equal(status, 404);
      await ch.unbindQueue(`${warren.prefix}.task.email`, topics, "legacy.#");
    });

    await t.step("metrics count events published and the tasks events made", async () => {
      const [, handlers] = await getJson(`${warren.url}/handlers`);
      const stock = handlers.handlers.find((h: Json) => h.name === "stock");
      assert.deepEqual(stock.config.subscribe, ["order.*"]);
      const text = await (await fetch(`${warren.url}/metrics`)).text();
      const families = parseExposition(text);
      const published = (topic: string) =>
        sampleValue(families, "warren_events_published_total", { topic });
      assert.equal(published("order.created"), 1);
      assert.equal(published("user.signed-up"), 1);
      const made = (handler: string) =>
        sampleValue(families, "warren_event_tasks_total", { handler });
      assert.equal(made("email"), 3, "from POST, another client and ctx.publish");
      assert.equal(made("publisher"), undefined);
    });
    await ch.close();
  } finally {
    await connection.close();
    assert.equal(await warren.stop(), 0, warren.output());
    await deleteTopology(warren.prefix, HANDLERS);
  }
});
