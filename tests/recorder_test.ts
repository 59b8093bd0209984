/**
 * The recorder acks an event message only once the store committed its events: against the real
 * broker, with a store writer that never finishes, the message stays unacked.
 */

import assert from "node:assert/strict";
import { connect } from "amqplib";
import { declareAll, deleteAll, topology } from "../lib/amqp/topology.ts";
import { recordEvents } from "../lib/api/recorder.ts";
import { publishEvents } from "../lib/amqp/publish.ts";
import type { TaskEvent } from "../lib/events.ts";
import { encodeEvents } from "../lib/wire.ts";
import { logger } from "../lib/log.ts";
import type { StoreWriter } from "../lib/store/writer.ts";
import { AMQP_URL, uniquePrefix, waitFor } from "./helpers/warren.ts";

const event: TaskEvent = { type: "succeeded", id: "t-1", handler: "h", attempt: 1, at: 1 };

/** Runs the recorder with `writer` on one event message; returns what the queue holds after. */
async function recordOnce(writer: StoreWriter, written: TaskEvent[][]): Promise<number> {
  const names = topology(uniquePrefix("recorder"));
  const connection = await connect(AMQP_URL);
  try {
    const admin = await connection.createConfirmChannel();
    await declareAll(admin, names, []);
    const events = await connection.createChannel();
    await recordEvents(events, { writer, names, log: logger("test") });
    await publishEvents(admin, names, [event], 5_000);
    await waitFor(() => written.length > 0, 5_000, "the writer to be handed the event");
    await new Promise((resolve) => setTimeout(resolve, 300)); // time for an ack to go out
    await events.close(); // whatever is unacked goes back to the queue
    let ready = 0;
    await waitFor(async () => {
      ready = (await admin.checkQueue(names.eventsQueue)).messageCount;
      return ready > 0;
    }, 1_000).catch(() => {});
    await deleteAll(admin, names, []);
    return ready;
  } finally {
    await connection.close();
  }
}

Deno.test("recorder: no ack before the store committed; an ack after", async () => {
  const stuck: TaskEvent[][] = [];
  const never: StoreWriter = {
    write: (events) => (stuck.push(events), new Promise(() => {})),
    flush: () => Promise.resolve(),
  };
  assert.equal(await recordOnce(never, stuck), 1, "the message is still the broker's");
  assert.deepEqual(stuck, [[event]]);

  const done: TaskEvent[][] = [];
  const committed: StoreWriter = {
    write: (events) => (done.push(events), Promise.resolve()),
    flush: () => Promise.resolve(),
  };
  assert.equal(await recordOnce(committed, done), 0, "acked once committed");
});

Deno.test("events: the wire form is a JSON array", () => {
  assert.deepEqual(JSON.parse(new TextDecoder().decode(encodeEvents([event]).body)), [event]);
});
