/**
 * One call of a handler under its time limit: `ctx.signal` aborts at the deadline, and the
 * attempt fails then even if the handler goes on (the supervisor ends it after a grace).
 *
 * @module
 */

import type { TaskError } from "../events.ts";
import { isPermanent } from "../handler.ts";
import { toJson } from "../payload.ts";
import { describeError } from "../task_error.ts";

/** How an attempt ended. */
export type AttemptResult =
  | { ok: true; result: unknown }
  | { ok: false; error: TaskError; permanent: boolean };

/**
 * Calls `call()` and waits for it, at most until `signal` aborts; `onReturned` hears when the
 * call itself ends, however late. The result must be JSON (nested at most 128 levels); what is
 * not fails the attempt.
 *
 * @example
 * ```ts
 * declare const handler: import("../handler.ts").Handler;
 * declare const ctx: import("../handler.ts").Context;
 * const outcome = await attempt(() => handler({}, ctx), ctx.signal);
 * if (!outcome.ok) console.log(outcome.error.message);
 * ```
 */
export async function attempt(
  call: () => unknown,
  signal: AbortSignal,
  onReturned: () => void = () => {},
): Promise<AttemptResult> {
  const running = Promise.resolve().then(call);
  running.catch(() => {}).finally(onReturned);
  try {
    return { ok: true, result: toJson(await Promise.race([running, aborted(signal)])) };
  } catch (error) {
    return { ok: false, error: describeError(error), permanent: isPermanent(error) };
  }
}

function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}
