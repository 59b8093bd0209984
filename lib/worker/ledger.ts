/**
 * The ledger of runs in one process: which worker runs which attempt of which task, which
 * attempts have their outcome decided or recorded, and which died with their worker. A delivery
 * that may repeat an attempt seen before (a redelivery, a retry, a replay) asks it first, so that
 *
 * - a copy delivered while the attempt still runs (the broker dropped a connection whose isolate
 *   was blocked past the heartbeat; a retry published twice after a confirm timeout) waits for
 *   that run instead of running twice;
 * - a copy of an attempt whose outcome is recorded (its ack was lost with its channel) is only
 *   acked;
 * - a copy of an attempt whose outcome was decided and confirmed (the retry or dead letter is in
 *   the broker) but not yet recorded, because its worker died in between, records that outcome
 *   and is acked: the attempt never runs twice and never schedules a second retry;
 * - a copy of an attempt whose worker died running it (crash, `Deno.exit`, hard timeout) counts
 *   as a failed attempt with the reason, so a poison message is retried a bounded number of times.
 *
 * Keys name one attempt of one run: see {@linkcode runKey}. The messages that drive the ledger
 * are in `protocol.ts`.
 *
 * @module
 */

import type { TaskEvent } from "../events.ts";
import { createRecent } from "../recent.ts";

/** What became of the earlier delivery of an attempt. */
export type Verdict =
  /** Nothing known here: run it. */
  | { kind: "free" }
  /** Its outcome was recorded: ack the copy and do nothing else. */
  | { kind: "settled" }
  /** Its outcome is in the broker but may not be recorded: record `event`, then ack. */
  | { kind: "decided"; event: TaskEvent }
  /** Its worker died while running it: count the attempt as failed, for this reason. */
  | { kind: "crashed"; reason: string };

/** See {@linkcode createLedger}. */
export interface Ledger {
  /** Notes that `owner` (a worker) took the attempt `key`, knowing nothing of it before. */
  begin(key: string, owner: number): void;
  /**
   * What a copy of `key` that `owner` received should do; unless the answer is "settled", the
   * attempt is `owner`'s from then on. While another worker holds it, the answer waits.
   */
  claim(key: string, owner: number): Promise<Verdict>;
  /** Notes that the attempt's outcome is in the broker; `event` records it. */
  decide(key: string, event: TaskEvent): void;
  /** Notes that the attempt's outcome is recorded; a copy waiting for it hears "settled". */
  settle(key: string): void;
  /**
   * Notes that `owner` died. Its decided attempts wait for a copy to record them; every other
   * attempt it held is released: those `reasonFor` gives a reason for count as crashed, the rest
   * are free to run again.
   */
  died(owner: number, reasonFor: (key: string) => string | undefined): void;
  /** Attempts `owner` holds and has not settled. */
  running(owner: number): string[];
}

/** The key of one attempt of one run of a task. */
export function runKey(id: string, replay: number, attempt: number): string {
  return `${id}/${replay}/${attempt}`;
}

/**
 * The task id of an attempt's key.
 *
 * @example
 * ```ts
 * taskOfKey(runKey("t-1", 0, 2)); // "t-1"
 * ```
 */
export function taskOfKey(key: string): string {
  return key.split("/").slice(0, -2).join("/");
}

/** Settled attempts and crash notes remembered (each, at least; twice that at most). */
const MEMORY = 50_000;

interface Run {
  /** The worker holding it; undefined once that worker died after deciding the outcome. */
  owner: number | undefined;
  /** The outcome's event, once decided. */
  decided: TaskEvent | undefined;
  /** Claims waiting for the holder to let go. */
  waiters: (() => void)[];
}

/**
 * Creates an empty ledger.
 *
 * @example
 * ```ts
 * const ledger = createLedger();
 * ledger.begin("id/0/1", 7);
 * const verdict = ledger.claim("id/0/1", 8); // waits for worker 7
 * ledger.settle("id/0/1");
 * await verdict; // { kind: "settled" }
 * ```
 */
export function createLedger(): Ledger {
  const runs = new Map<string, Run>();
  const settled = createRecent<true>(MEMORY);
  const crashed = createRecent<string>(MEMORY);

  /** Wakes the claims waiting on a run, which then look again. */
  const wake = (run: Run | undefined) => {
    for (const waiter of run?.waiters.splice(0) ?? []) waiter();
  };
  const hold = (key: string, owner: number, decided?: TaskEvent) =>
    runs.set(key, { owner, decided, waiters: runs.get(key)?.waiters ?? [] });

  return {
    begin(key, owner) {
      hold(key, owner);
    },
    async claim(key, owner) {
      while (true) {
        const run = runs.get(key);
        if (run?.owner !== undefined) {
          await new Promise<void>((resolve) => run.waiters.push(resolve));
          continue;
        }
        if (settled.get(key)) return { kind: "settled" };
        if (run?.decided) {
          hold(key, owner, run.decided);
          return { kind: "decided", event: run.decided };
        }
        hold(key, owner);
        const reason = crashed.get(key);
        return reason === undefined ? { kind: "free" } : { kind: "crashed", reason };
      }
    },
    decide(key, event) {
      const run = runs.get(key);
      if (run) run.decided = event;
    },
    settle(key) {
      crashed.forget(key);
      settled.set(key, true);
      const run = runs.get(key);
      runs.delete(key);
      wake(run);
    },
    died(owner, reasonFor) {
      for (const [key, run] of [...runs]) {
        if (run.owner !== owner) continue;
        if (run.decided) {
          run.owner = undefined;
        } else {
          runs.delete(key);
          const reason = reasonFor(key);
          if (reason !== undefined) crashed.set(key, reason);
        }
        wake(run);
      }
    },
    running(owner) {
      return [...runs].filter(([, run]) => run.owner === owner).map(([key]) => key);
    },
  };
}
