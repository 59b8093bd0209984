/**
 * A worker's task for unit tests: no broker, no Web Worker; its acks are counted.
 *
 * @module
 */

import { logger } from "../../lib/log.ts";
import type { Task } from "../../lib/worker/task.ts";

/** A task of handler `h` with the given facts; `acks` counts its acks. */
export function fakeTask(facts: Partial<Task> = {}): Task & { acks: number } {
  const task = {
    id: "t-1",
    handler: "h",
    attempt: 1,
    replay: 0,
    createdAt: 1_000,
    fromWarren: true,
    deliveries: 0,
    key: "t-1/0/1",
    body: new TextEncoder().encode("{}"),
    redelivered: false,
    log: logger("test"),
    startedAt: undefined,
    acks: 0,
    ack() {
      task.acks++;
    },
    ...facts,
  };
  return task;
}
