/**
 * The worker's side of the ledger protocol (`protocol.ts`): it tells the supervisor's ledger what
 * happens to each attempt, and asks it what to do with a copy that may repeat one.
 *
 * @module
 */

import type { TaskEvent } from "../events.ts";
import type { BoardWriter } from "./board.ts";
import type { Verdict } from "./ledger.ts";
import type { FromWorker, VerdictMessage } from "./protocol.ts";

/** See {@linkcode createLedgerClient}. */
export interface LedgerClient {
  /** A fresh first attempt was taken: nothing can be known of it (answers "free" at once). */
  begin(key: string): Verdict;
  /** A copy that may repeat an attempt was taken: what should become of it? */
  claim(key: string): Promise<Verdict>;
  /**
   * The handler is called now; the supervisor ends the worker past `timeoutMs` and a grace. It
   * reads this off the board (see `board.ts`), or from a message when the board is full.
   */
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
 * Creates the client over a way to post messages to the supervisor, and the board it shares with
 * it (once the worker has it).
 *
 * @example
 * ```ts
 * const ledger = createLedgerClient((message) => console.log(message));
 * const verdict = await ledger.claim("id/0/2");
 * ```
 */
export function createLedgerClient(
  post: (message: FromWorker) => void,
  board: () => BoardWriter | undefined = () => undefined,
): LedgerClient {
  const waiting = new Map<number, (verdict: Verdict) => void>();
  let refs = 0;
  /** The board's slot of each call on it. */
  const onBoard = new Map<string, number>();
  // `begin` (and `returned`, for a call announced by message) waits for the end of the turn, or
  // for the next message that cannot: under load one turn begins many attempts. The order of the
  // messages never changes.
  let pending: FromWorker[] = [];
  const flush = () => {
    if (pending.length === 0) return;
    const messages = pending;
    pending = [];
    post(messages.length === 1 ? messages[0] : { type: "batch", messages });
  };
  const later = (message: FromWorker) => {
    if (pending.push(message) === 1) queueMicrotask(flush);
  };
  /**
   * Sent at once: `started` (when the board is full) before a handler that may block its thread,
   * the rest before acks.
   */
  const now = (message: FromWorker) => {
    pending.push(message);
    flush();
  };
  return {
    begin(key) {
      later({ type: "begin", key });
      return { kind: "free" };
    },
    claim(key) {
      const ref = ++refs;
      return new Promise((resolve) => {
        waiting.set(ref, resolve);
        now({ type: "claim", key, ref });
      });
    },
    started(key, timeoutMs) {
      const slot = board()?.enter(key, Date.now() + timeoutMs);
      if (slot === undefined) return now({ type: "started", key, timeoutMs });
      onBoard.set(key, slot);
    },
    cancelling: (key) => now({ type: "cancelling", key }),
    returned(key) {
      const slot = onBoard.get(key);
      if (slot === undefined) return later({ type: "returned", key });
      onBoard.delete(key);
      board()?.leave(slot);
    },
    decided: (key, event) => now({ type: "decided", key, event }),
    settled: (key) => now({ type: "settled", key }),
    answer(message) {
      waiting.get(message.ref)?.(message.verdict);
      waiting.delete(message.ref);
    },
  };
}
