/**
 * The ceiling: what the broker itself does with a raw amqplib publisher (confirm channel,
 * persistent messages) and a raw consumer (manual acks) on the same kind of queue Warren uses.
 * Warren cannot beat it; every other figure is read as a fraction of it.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { connect } from "amqplib";

/** Options of {@linkcode measureCeiling}. */
export interface CeilingOptions {
  amqpUrl: string;
  queue: string;
  messages: number;
  body: Uint8Array;
  /** Unconfirmed publishes in flight at most. */
  window: number;
  prefetch: number;
}

/** What {@linkcode measureCeiling} measured. */
export interface Ceiling {
  perSecond: number;
  /** The broker's product and version, as it announced them. */
  broker: string;
}

/** Publishes and consumes `messages` messages; returns messages per second end to end. */
export async function measureCeiling(options: CeilingOptions): Promise<Ceiling> {
  const producer = await connect(options.amqpUrl);
  const consumer = await connect(options.amqpUrl);
  try {
    const setup = await producer.createChannel();
    await setup.assertQueue(options.queue, {
      durable: true,
      arguments: { "x-queue-type": "quorum" },
    });
    await setup.purgeQueue(options.queue);
    await setup.close();

    const sub = await consumer.createChannel();
    await sub.prefetch(options.prefetch);
    let received = 0;
    const allReceived = Promise.withResolvers<void>();
    await sub.consume(options.queue, (msg) => {
      if (!msg) return;
      sub.ack(msg);
      if (++received === options.messages) allReceived.resolve();
    });

    const pub = await producer.createConfirmChannel();
    const body = Buffer.from(options.body);
    const started = performance.now();
    let inFlight = 0;
    let sent = 0;
    let failed = 0;
    const allConfirmed = Promise.withResolvers<void>();
    let confirmed = 0;
    let slot: PromiseWithResolvers<void> | undefined;
    while (sent < options.messages) {
      if (inFlight >= options.window) {
        slot = Promise.withResolvers<void>();
        await slot.promise;
      }
      inFlight++;
      sent++;
      pub.publish("", options.queue, body, { persistent: true }, (error: unknown) => {
        if (error) failed++;
        inFlight--;
        slot?.resolve();
        if (++confirmed === options.messages) allConfirmed.resolve();
      });
    }
    await allConfirmed.promise;
    await allReceived.promise;
    const seconds = (performance.now() - started) / 1000;
    if (failed > 0) throw new Error(`ceiling: ${failed} publishes were not confirmed`);
    await sub.close();
    await pub.deleteQueue(options.queue);
    await pub.close();
    const server = producer.connection.serverProperties;
    return { perSecond: options.messages / seconds, broker: `${server.product} ${server.version}` };
  } finally {
    await producer.close();
    await consumer.close();
  }
}
