/**
 * What the HTTP routes need from the rest of Warren, as one interface, so routes stay plain
 * functions of their inputs.
 *
 * @module
 */

import type { TaskEvent } from "../events.ts";
import type { CallbackSettings, Retention } from "../config.ts";
import type { HandlerInfo } from "../handler.ts";
import type { NewEvent, NewTask } from "../amqp/publish.ts";
import type { TaskStore } from "../store/store.ts";
import type { StoreWriter } from "../store/writer.ts";
import type { QueueCounts, WorkerStatus } from "../status.ts";
import type { Feed } from "./feed.ts";
import type { Metrics } from "./metrics.ts";
import type { Rates } from "./rates.ts";

/** The api's view of the rest of Warren. */
export interface ApiDeps {
  handlers: HandlerInfo[];
  /** For reads; writes go through {@linkcode ApiDeps.writer}. */
  store: TaskStore;
  writer: StoreWriter;
  feed: Feed;
  /** Largest accepted request body, in bytes. */
  maxBodyBytes: number;
  /** The longest `?wait=` (`WARREN_MAX_WAIT`), in ms. */
  maxWaitMs: number;
  /** How long ended tasks are kept (unless their handler says otherwise). */
  retention: Retention;
  /**
   * How long an idempotency key lives, and how long a claim on one holds it while its task is
   * being published.
   */
  idempotency: { ttlMs: number; leaseMs: number };
  /** Whether callbacks can be asked for (a secret signs them), and where they may go. */
  callbacks: Pick<CallbackSettings, "secret" | "allow">;
  /** Bearer token every route needs but the public ones (see `app.ts`); undefined for none. */
  apiToken: string | undefined;
  /**
   * Throws an `UnavailableError` or a `BusyError` (see `errors.ts`) when no task can be
   * enqueued now (shutting down, broker away or blocked, too many awaiting their confirm).
   */
  admit(): void;
  /**
   * Puts a task on its queue and resolves once the broker confirmed it; rejects as
   * {@linkcode ApiDeps.admit} throws, or with an `UnavailableError` naming the task when its
   * publish went unconfirmed.
   */
  enqueue(task: NewTask, options: { delaySeconds: number; again?: boolean }): Promise<void>;
  /** Publishes an event on the topics exchange; resolves and rejects as `enqueue` does. */
  publish(event: NewEvent): Promise<void>;
  /**
   * Appends a cancel of these tasks to the cancels stream, which every worker reads; resolves once
   * the broker confirmed it, rejects with an `UnavailableError` while it cannot.
   */
  cancel(ids: string[]): Promise<void>;
  /**
   * Sends events to the store by way of the broker's events queue (confirmed), for the recorder to
   * write when the store is back: what a POST does with its `queued` event while the store is away.
   */
  recordLater(events: TaskEvent[]): Promise<void>;
  /** A handler's dead-letter queue; each call rejects with `UnavailableError` while the broker is away. */
  dead: DeadLetters;
  /** Counts of a handler's queue; undefined while the broker is away. */
  inspect(handler: string): Promise<QueueCounts | undefined>;
  /** Why this process is not ready; empty when it is. */
  notReady(): Promise<string[]>;
  /** Status of this process's workers; undefined when it runs none (role api). */
  workers(): WorkerStatus[] | undefined;
  /** Whether the api's broker connection is up. */
  connected(): boolean;
  metrics: Metrics;
  /** Recent succeeded and failed rates, for the dashboard. */
  rates: Rates;
}

/**
 * The operations on a handler's dead-letter queue. (Listing them reads the store: it never
 * touches the queue, so looking cannot wear a letter out.)
 */
export interface DeadLetters {
  /** Replays one letter (by task id) or all; resolves with the ids replayed. */
  replay(handler: string, id?: string): Promise<string[]>;
  /** Drops every letter; resolves with how many. */
  purge(handler: string): Promise<number>;
}
