/**
 * The worker's side of the ledger protocol (`protocol.ts`): it tells the supervisor's ledger what
 * happens to each attempt, and asks it what to do with a copy that may repeat one.
 *
 * @module
 */

import type { TaskEvent } from "../events.ts";
import type { Verdict } from "./ledger.ts";
import type { FromWorker, VerdictMessage } from "./protocol.ts";

/** See {@linkcode createLedgerClient}. */
export interface LedgerClient {
  /** A fresh first attempt was taken: nothing can be known of it (answers "free" at once). */
  begin(key: string): Verdict;
  /** A copy that may repeat an attempt was taken: what should become of it? */
  claim(key: string): Promise<Verdict>;
  /** The handler is called now; the supervisor ends the worker past `timeoutMs` and a grace. */
  started(key: string, timeoutMs: number): void;
  /** The attempt's task was cancelled: the supervisor ends the worker past a grace. */
  cancelling(key: string): void;
  /** The handler's call ended (however late). */
  returned(key: string): void;
  /** The attempt's retry or dead letter is in the broker; `event` records it. */
  decided(key: string, event: TaskEvent): void;
  /** The attempt's outcome is recorded; only its ack may still be missing. */
  settled(key: string): void;
  /** Hands a verdict the supervisor sent to the claim waiting for it. */
  answer(message: VerdictMessage): void;
}

/**
 * Creates the client over a way to post messages to the supervisor.
 *
 * @example
 * ```ts
 * const ledger = createLedgerClient((message) => console.log(message));
 * const verdict = await ledger.claim("id/0/2");
 * ```
 */
export function createLedgerClient(post: (message: FromWorker) => void): LedgerClient {
  const waiting = new Map<number, (verdict: Verdict) => void>();
  let refs = 0;
  return {
    begin(key) {
      post({ type: "begin", key });
      return { kind: "free" };
    },
    claim(key) {
      const ref = ++refs;
      return new Promise((resolve) => {
        waiting.set(ref, resolve);
        post({ type: "claim", key, ref });
      });
    },
    started: (key, timeoutMs) => post({ type: "started", key, timeoutMs }),
    cancelling: (key) => post({ type: "cancelling", key }),
    returned: (key) => post({ type: "returned", key }),
    decided: (key, event) => post({ type: "decided", key, event }),
    settled: (key) => post({ type: "settled", key }),
    answer(message) {
      waiting.get(message.ref)?.(message.verdict);
      waiting.delete(message.ref);
    },
  };
}
