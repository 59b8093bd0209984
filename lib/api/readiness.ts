/**
 * Readiness (GET /readyz): why this process should get no traffic now, from what it runs. Not
 * ready while draining, while its broker link is down or blocked, while a handler's workers keep
 * dying or none consumes; an api-only process asks the broker whether each queue has a consumer.
 *
 * @module
 */

import type { Topology } from "../amqp/topology.ts";
import type { QueueCounts, WorkerStatus } from "../status.ts";

/** What readiness reads. */
export interface ReadinessSources {
  stopping(): boolean;
  /** The api's broker link; undefined in a worker-only process. */
  broker: {
    connected(): boolean;
    blocked(): boolean;
    inspect(handler: string): Promise<QueueCounts | undefined>;
  } | undefined;
  /** This process's workers; undefined in an api-only process. */
  workers: (() => WorkerStatus[]) | undefined;
  handlers: string[];
  names: Topology;
}

/**
 * The reasons this process is not ready; empty when it is.
 *
 * @example
 * ```ts
 * declare const sources: ReadinessSources;
 * const notReady = readiness(sources);
 * (await notReady()).length === 0; // ready
 * ```
 */
export function readiness(sources: ReadinessSources): () => Promise<string[]> {
  const { broker, workers } = sources;
  return async () => {
    const reasons: string[] = [];
    if (sources.stopping()) reasons.push("draining: shutting down, in-flight tasks are finishing");
    if (broker && !broker.connected()) reasons.push("not connected to the broker");
    if (broker?.blocked()) reasons.push("the broker is blocking publishers (memory or disk alarm)");
    if (workers) {
      for (const status of workers()) reasons.push(...workerReasons(status));
    } else if (broker?.connected()) {
      for (const handler of sources.handlers) {
        const counts = await broker.inspect(handler);
        if (counts?.consumers === 0) {
          reasons.push(
            `handler ${handler}: no consumer on queue ${sources.names.taskQueue(handler)}`,
          );
        }
      }
    }
    return reasons;
  };
}

function workerReasons(status: WorkerStatus): string[] {
  const reasons: string[] = [];
  if (status.crashLooping) {
    reasons.push(`handler ${status.handler}: its workers keep dying (last: ${status.lastError})`);
  }
  if (status.consuming === 0) {
    const why = status.lastError ? ` (last error: ${status.lastError})` : "";
    reasons.push(`handler ${status.handler}: no worker consuming${why}`);
  }
  return reasons;
}
