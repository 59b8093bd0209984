/**
 * Consuming, against a fake broker that writes down every call: deliveries are acked on their
 * own channel, and a stop cancels, lets the deliveries in hand finish, gets their acks to the
 * broker with one round trip, and only then closes the connection.
 */

import assert from "node:assert/strict";
import type { ChannelModel, ConsumeMessage } from "amqplib";
import type { BrokerLink, LinkOptions } from "../lib/amqp/connection.ts";
import { topology } from "../lib/amqp/topology.ts";
import { logger } from "../lib/log.ts";
import { type Consumer, type ConsumerOptions, startConsumer } from "../lib/worker/consumer.ts";

/** Where a test reaches into the fake broker. */
interface Sink {
  /** Hands the consumer a delivery. */
  deliver?: (m: ConsumeMessage | null) => void;
  /** What the check of the queue's consumer waits for (nothing by default). */
  checked?: Promise<void>;
}

/** A channel whose every method answers at once and is written down in `calls`. */
function fakeChannel(calls: string[], sink: Sink) {
  return new Proxy({}, {
    get(_, name: string) {
      switch (name) {
        case "then":
          return undefined; // not a promise
        case "on":
          return () => {};
        case "consume":
          return (_queue: string, deliver: (m: ConsumeMessage | null) => void) => {
            sink.deliver = deliver;
            calls.push("consume");
            return Promise.resolve({ consumerTag: "c-1" });
          };
        case "checkQueue":
          return () =>
            (sink.checked ?? Promise.resolve()).then(() => ({ consumerCount: 1, messageCount: 0 }));
        case "ack":
          return (m: ConsumeMessage, multiple?: boolean) =>
            calls.push(`ack ${m.fields.deliveryTag}${multiple ? " multiple" : ""}`);
        default:
          return () => {
            if (name === "cancel" || name === "prefetch") calls.push(name);
            return Promise.resolve({});
          };
      }
    },
  });
}

/** A link that connects at once to the fake broker. */
function fakeOpen(calls: string[], sink: Sink) {
  return <S>(options: LinkOptions<S>): BrokerLink<S> => {
    let session: S | undefined;
    const model = {
      createChannel: () => Promise.resolve(fakeChannel(calls, sink)),
      createConfirmChannel: () => Promise.resolve(fakeChannel(calls, sink)),
      close: () => Promise.resolve(),
    } as unknown as ChannelModel;
    const ready = options.setup(model).then((s) => session = s);
    return {
      session: () => session,
      blocked: () => false,
      close: () => ready.then(() => void calls.push("close")),
    };
  };
}

const delivery = (tag: number) => ({ fields: { deliveryTag: tag } }) as unknown as ConsumeMessage;

/** A consumer of queue "h" on the fake broker, handing its deliveries to `onDelivery`. */
function fakeConsumer(
  calls: string[],
  sink: Sink,
  onDelivery: ConsumerOptions["onDelivery"],
): Consumer {
  return startConsumer({
    urls: ["amqp://fake"],
    name: "test",
    names: topology("t"),
    handler: "h",
    subscribe: [],
    prefetch: 2,
    log: logger("test"),
    onDelivery,
    onUp: () => {},
    onDown: () => {},
    open: fakeOpen(calls, sink),
  });
}

Deno.test("consumer: a stop lets the deliveries in hand finish and flushes their acks before closing", async () => {
  const calls: string[] = [];
  const sink: Sink = {};
  const finish = new Map<number, () => void>();
  const consumer = fakeConsumer(
    calls,
    sink,
    (message, ack) =>
      new Promise<void>((resolve) =>
        finish.set(message.fields.deliveryTag, () => {
          ack();
          resolve();
        })
      ),
  );
  while (!sink.deliver) await new Promise((resolve) => setTimeout(resolve, 1));
  sink.deliver(delivery(1));
  sink.deliver(delivery(2));
  const stopping = consumer.stop();
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(!calls.includes("close"), "not closed while deliveries are in hand");
  finish.get(2)!();
  finish.get(1)!();
  await stopping;
  // The acks go out, a round trip on their channel proves the broker has them, then it closes.
  assert.deepEqual(calls.slice(calls.indexOf("cancel")), [
    "cancel",
    "ack 2 multiple",
    "prefetch",
    "close",
  ]);
  assert.equal(consumer.stopped(), true);
});

Deno.test("consumer: a delivery that comes while the connection is still being set up can publish", async () => {
  const calls: string[] = [];
  const checked = Promise.withResolvers<void>();
  const sink: Sink = { checked: checked.promise };
  const channels: unknown[] = [];
  const consumer: Consumer = fakeConsumer(calls, sink, (_message, ack) => {
    channels.push(consumer.channel()); // where its running event goes
    ack();
    return Promise.resolve();
  });
  while (!sink.deliver) await new Promise((resolve) => setTimeout(resolve, 1));
  // The broker delivers as soon as the consumer is registered, before its check came back.
  sink.deliver(delivery(1));
  checked.resolve();
  await new Promise((resolve) => setTimeout(resolve, 10));
  sink.deliver(delivery(2));
  assert.equal(channels.length, 2);
  assert.ok(channels[0], "the first delivery had a channel to publish on");
  assert.equal(channels[0], channels[1], "the session's own confirm channel");
  await consumer.stop();
});
