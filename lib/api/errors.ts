/**
 * The api's domain errors, and the answer each one gets. Routes throw them; the app's `onError`
 * answers them, once, for every route.
 *
 * @module
 */

import { StoreUnavailableError } from "../store/store.ts";
import { problem, unavailable } from "./problem.ts";

/** Nothing can be promised now: the broker is away or blocking, or Warren is shutting down. */
export class UnavailableError extends Error {
  override name = "UnavailableError";
  /**
   * @param mayRunAs The task (or event) whose message left this process without a confirm (the
   * broker may still have it, so it may run), when there is one.
   */
  constructor(message: string, readonly mayRunAs?: { kind: "task" | "event"; id: string }) {
    super(message);
  }
}

/** Too many tasks await the broker's confirm: the client should slow down (429). */
export class BusyError extends Error {
  override name = "BusyError";
}

/**
 * The answer to a domain error, or undefined for any other error (a bug: a 500).
 *
 * @example
 * ```ts
 * import { StoreUnavailableError } from "../store/store.ts";
 * answerTo(new BusyError("10000 tasks await the broker's confirm"))?.status; // 429
 * answerTo(new StoreUnavailableError("the task store cannot be reached"))?.status; // 503
 * answerTo(new Error("a bug")); // undefined
 * ```
 */
export function answerTo(error: unknown): Response | undefined {
  if (error instanceof BusyError) {
    return problem({
      slug: "too-many-requests",
      title: "Too many tasks in flight",
      status: 429,
      detail: `${error.message}; nothing was enqueued, try again shortly`,
    }, { "retry-after": "1" });
  }
  if (error instanceof StoreUnavailableError) {
    return unavailable(`${error.message}; nothing was changed, try again shortly`);
  }
  if (error instanceof UnavailableError) {
    return unavailable(
      error.mayRunAs === undefined
        ? `${error.message}; nothing was enqueued or changed`
        : error.mayRunAs.kind === "task"
        ? `the task was not accepted: ${error.message}; the broker may still have it, so it ` +
          `may run as task ${error.mayRunAs.id}`
        : `the event was not accepted: ${error.message}; the broker may still have it, so ` +
          `its subscribers may get it as event ${error.mayRunAs.id}`,
    );
  }
  return undefined;
}
