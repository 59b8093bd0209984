/**
 * Ack batching: which acks a channel is sent for deliveries finishing in and out of order. (The
 * channel here only records calls; the integration suites prove the acks against RabbitMQ.)
 */

import assert from "node:assert/strict";
import type { Channel, Message } from "amqplib";
import { createAcks } from "../lib/worker/acks.ts";

function recorder() {
  const calls: string[] = [];
  const ch = {
    ack: (m: Message, multiple = false) =>
      calls.push(`ack ${m.fields.deliveryTag}${multiple ? " multiple" : ""}`),
    nack: (m: Message) => calls.push(`nack ${m.fields.deliveryTag}`),
  } as unknown as Channel;
  return { ch, calls };
}

const delivery = (tag: number) => ({ fields: { deliveryTag: tag } }) as unknown as Message;
const turn = () => new Promise((resolve) => setTimeout(resolve, 5));

Deno.test("acks: a finished run at the head goes out as one multiple ack", async () => {
  const { ch, calls } = recorder();
  const acks = createAcks(ch);
  const d = [1, 2, 3, 4].map(delivery);
  d.forEach(acks.track);
  acks.ack(d[1]);
  acks.ack(d[0]);
  acks.ack(d[2]);
  await turn();
  assert.deepEqual(calls, ["ack 3 multiple"], "4 is still running");
  acks.ack(d[3]);
  await turn();
  assert.deepEqual(calls, ["ack 3 multiple", "ack 4 multiple"]);
});

Deno.test("acks: deliveries behind an unfinished one are acked one by one at once", async () => {
  const { ch, calls } = recorder();
  const acks = createAcks(ch);
  const d = [1, 2, 3].map(delivery);
  d.forEach(acks.track);
  acks.ack(d[1]);
  acks.ack(d[2]);
  await turn();
  assert.deepEqual(calls, ["ack 2", "ack 3"]);
  acks.ack(d[0]);
  await turn();
  assert.deepEqual(calls, ["ack 2", "ack 3", "ack 1 multiple"]);
});

Deno.test("acks: a closed channel is left alone", () => {
  const ch = {
    ack: () => {
      throw new Error("Channel closed");
    },
  } as unknown as Channel;
  const acks = createAcks(ch);
  acks.track(delivery(1));
  acks.ack(delivery(1));
  acks.flush(); // does not throw
});
