/**
 * Delivering callbacks: the api consumes the callbacks queue, several at once, and POSTs each
 * task's JSON to its URL, signed (Standard Webhooks). A 2xx answer delivers it. Anything else
 * (another status, no answer within 10 s, no connection) is tried again after a backoff that
 * doubles from `WARREN_CALLBACK_BACKOFF` up to an hour, through the delay cascade, up to
 * `WARREN_CALLBACK_RETRIES` times; a destination that is not allowed is not tried again. Each try
 * is recorded in the task's history, and the message is acked only once the retry (if any) and
 * the record are confirmed, so a restart loses none. A slow receiver holds one of the slots, and
 * nothing else.
 *
 * @module
 */

import type { Channel, ConfirmChannel, ConsumeMessage } from "amqplib";
import { publishCallback, publishEvents } from "../amqp/publish.ts";
import { settle } from "../amqp/settle.ts";
import type { Topology } from "../amqp/topology.ts";
import { backoffMs, NO_JITTER } from "../backoff.ts";
import type { CallbackSettings } from "../config.ts";
import { errorMessage, type Logger } from "../log.ts";
import { type CallbackDelivery, decodeCallback } from "../wire.ts";
import { destinationProblem, type Resolve } from "./destination.ts";
import { signatureHeaders } from "./signature.ts";

/** Callbacks delivered at once by one api process. */
const PREFETCH = 16;
/** How long a receiver has to answer. */
export const POST_TIMEOUT_MS = 10_000;
/** The longest wait between tries. */
const MAX_BACKOFF_MS = 3_600_000;

/** What {@linkcode deliverCallbacks} needs. */
export interface DeliverDeps {
  names: Topology;
  /** The signing key (from `WARREN_WEBHOOK_SECRET`). */
  key: Uint8Array;
  settings: Pick<CallbackSettings, "allow" | "retries" | "backoffMs">;
  /** Where retries and history records are published (confirmed). */
  pub: ConfirmChannel;
  resolve: Resolve;
  timeoutMs: number;
  log: Logger;
}

/** The outcome of one try: delivered, or why not and whether to try again. */
type Outcome = { ok: true } | { ok: false; reason: string; final: boolean };

/**
 * Starts consuming the callbacks queue on a channel; call it again on each new connection.
 *
 * @example
 * ```ts
 * declare const ch: import("amqplib").Channel;
 * declare const deps: DeliverDeps;
 * await deliverCallbacks(ch, deps);
 * ```
 */
export async function deliverCallbacks(ch: Channel, deps: DeliverDeps): Promise<void> {
  await ch.prefetch(PREFETCH);
  await ch.consume(deps.names.callbacksQueue, (message) => {
    if (!message) return void ch.close().catch(() => {}); // the queue was deleted: reconnect
    handle(message, deps).then(
      () => settle(() => ch.ack(message)),
      (error) => {
        deps.log.error("cannot settle a callback ({error}); it is tried again", {
          error: errorMessage(error),
        });
        setTimeout(() => settle(() => ch.nack(message, false, true)), 1000);
      },
    );
  });
}

/** One try of one delivery: POST, then the retry (if any) and the record. */
async function handle(message: ConsumeMessage, deps: DeliverDeps): Promise<void> {
  const delivery = decodeCallback(message);
  if (!delivery) return deps.log.warn("dropped a malformed callback message");
  const outcome = await post(delivery, deps);
  let error: string | undefined;
  if (!outcome.ok) {
    const last = outcome.final || delivery.attempt > deps.settings.retries;
    if (last) {
      error = `${outcome.reason}; not tried again (try ${delivery.attempt})`;
    } else {
      const waitMs = backoffMs(delivery.attempt, {
        minMs: deps.settings.backoffMs,
        maxMs: MAX_BACKOFF_MS,
      }, NO_JITTER);
      const seconds = Math.max(1, Math.ceil(waitMs / 1000));
      const next = { ...delivery, attempt: delivery.attempt + 1 };
      await publishCallback(deps.pub, deps.names, next, seconds, deps.timeoutMs);
      error = `${outcome.reason}; tried again in ${seconds} s`;
    }
    deps.log.warn("callback of task {id} to {origin} failed: {error}", {
      id: delivery.taskId,
      origin: new URL(delivery.url).origin,
      error,
    });
  }
  await record(delivery, error, deps);
}

/** POSTs the task's JSON, signed; says how it went. */
async function post(delivery: CallbackDelivery, deps: DeliverDeps): Promise<Outcome> {
  const url = new URL(delivery.url);
  const refused = await destinationProblem(url, deps.settings.allow, deps.resolve);
  if (refused) return { ok: false, reason: refused, final: true };
  const signature = signatureHeaders(
    deps.key,
    delivery.webhookId,
    Math.floor(Date.now() / 1000),
    delivery.body,
  );
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json", "user-agent": "Warren", ...signature },
      body: delivery.body,
      redirect: "manual", // a redirect could lead anywhere, past the destination check
      signal: AbortSignal.timeout(POST_TIMEOUT_MS),
    });
    await response.body?.cancel();
    return response.ok
      ? { ok: true }
      : { ok: false, reason: `HTTP ${response.status}`, final: false };
  } catch (error) {
    const reason = error instanceof DOMException && error.name === "TimeoutError"
      ? `no answer within ${POST_TIMEOUT_MS / 1000} s`
      : `cannot connect: ${hideUrl(errorMessage(error), delivery.url, url)}`;
    return { ok: false, reason, final: false };
  }
}

/** An error message without the URL, whose path or query may carry a receiver's secret. */
function hideUrl(message: string, text: string, url: URL): string {
  return message.replaceAll(text, url.origin).replaceAll(url.href, url.origin);
}

/** Records the try in the task's history (by the events queue, as workers report). */
function record(
  delivery: CallbackDelivery,
  error: string | undefined,
  deps: DeliverDeps,
): Promise<void> {
  return publishEvents(deps.pub, deps.names, [{
    type: "callback",
    id: delivery.taskId,
    handler: delivery.handler,
    attempt: delivery.attempt,
    ...(delivery.replay ? { replay: delivery.replay } : {}),
    at: Date.now(),
    ...(error ? { error: { message: error } } : {}),
  }], deps.timeoutMs);
}
