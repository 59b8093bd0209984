/**
 * Scheduling callbacks: when the recorder has committed a task's end (`succeeded` or `dead`)
 * whose event names a callback URL, a delivery of the task's JSON goes onto the durable
 * callbacks queue, confirmed, before the event's message is acked. A restart in between brings
 * the event again, and with it the delivery (at least once; receivers drop repeats by
 * `webhook-id`, which is the same each time).
 *
 * @module
 */

import type { ConfirmChannel } from "amqplib";
import { publishCallback, publishEvents } from "../amqp/publish.ts";
import type { Topology } from "../amqp/topology.ts";
import { isTerminal, type TaskEvent, type TaskState } from "../events.ts";
import { taskJson } from "../api/task_json.ts";
import type { TaskStore } from "../store/store.ts";

/** What {@linkcode scheduleCallbacks} needs. */
export interface ScheduleDeps {
  names: Topology;
  store: Pick<TaskStore, "get">;
  /** Whether callbacks can be signed here (`WARREN_WEBHOOK_SECRET` is set). */
  signing: boolean;
  timeoutMs: number;
}

/**
 * Puts a delivery on the callbacks queue for each task end among `events` that names a callback
 * (and is still the task's current run); without a secret to sign with, records in the task's
 * history that its callback was not sent.
 *
 * @example
 * ```ts
 * import { topology } from "../amqp/topology.ts";
 * declare const pub: import("amqplib").ConfirmChannel;
 * declare const store: import("../store/store.ts").TaskStore;
 * declare const events: import("../events.ts").TaskEvent[];
 * await scheduleCallbacks(pub, events, {
 *   names: topology("warren"), store, signing: true, timeoutMs: 5000,
 * });
 * ```
 */
export async function scheduleCallbacks(
  pub: ConfirmChannel,
  events: TaskEvent[],
  deps: ScheduleDeps,
): Promise<void> {
  for (const event of events) {
    if (!event.callback || !isTerminal(event.type as TaskState)) continue;
    const replay = event.replay ?? 0;
    if (!deps.signing) {
      await publishEvents(pub, deps.names, [{
        type: "callback",
        id: event.id,
        handler: event.handler,
        attempt: 1,
        ...(replay ? { replay } : {}),
        at: Date.now(),
        error: { message: "not sent: WARREN_WEBHOOK_SECRET is not set on the api" },
      }], deps.timeoutMs);
      continue;
    }
    const task = await deps.store.get(event.id);
    if (!task || task.replays !== replay || !isTerminal(task.state)) continue; // replayed since
    // Only the event that ended it: a later copy (a worker dropping a cancelled delivery the api
    // ended already) sends nothing more.
    if (task.finishedAt !== event.at) continue;
    await publishCallback(
      pub,
      deps.names,
      {
        webhookId: `${task.id}.${replay}`,
        url: event.callback,
        taskId: task.id,
        handler: task.handler,
        replay,
        body: JSON.stringify(taskJson(task)),
        attempt: 1,
      },
      0,
      deps.timeoutMs,
    );
  }
}
