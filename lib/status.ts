/**
 * What the parts of Warren report about themselves, as plain data: a handler's workers in this
 * process, and a handler's queues in the broker. A leaf module, so the api, the metrics and the
 * supervisor share these shapes without importing one another.
 *
 * @module
 */

/**
 * How one handler's workers are doing.
 *
 * @example
 * ```ts
 * const status: WorkerStatus = {
 *   handler: "hello",
 *   workers: 2,
 *   consuming: 2,
 *   restarts: 0,
 *   crashLooping: false,
 *   lastError: undefined,
 * };
 * ```
 */
export interface WorkerStatus {
  handler: string;
  /** Workers configured. */
  workers: number;
  /** Workers whose consumer is up right now. */
  consuming: number;
  /** Workers replaced after they died, since start. */
  restarts: number;
  /** Whether its workers keep dying (several deaths in the last minute). */
  crashLooping: boolean;
  /** Why the last worker died or could not start. */
  lastError: string | undefined;
}

/**
 * A handler's queues as the broker counts them; a missing queue counts as empty.
 *
 * @example
 * ```ts
 * const counts: QueueCounts = { messages: 3, consumers: 1, dead: 0 };
 * ```
 */
export interface QueueCounts {
  /** Tasks waiting in the handler's queue. */
  messages: number;
  /** Consumers of the handler's queue. */
  consumers: number;
  /** Tasks in the handler's dead-letter queue. */
  dead: number;
}
