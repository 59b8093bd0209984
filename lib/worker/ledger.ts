/**
 * The ledger of runs in one process: which worker is running which attempt of which task, which
 * attempts were settled lately, and which died with their worker. It lets a redelivered message
 * find out what happened to the delivery before it, so that
 *
 * - a copy redelivered while the first is still running (the broker dropped a connection whose
 *   isolate was blocked past the heartbeat) waits for that run instead of running twice;
 * - a copy of an attempt that was settled (its ack was lost with its channel) is only acked;
 * - a copy of an attempt whose worker died (crash, `Deno.exit`, hard timeout) counts as a failed
 *   attempt with the reason, so a poison message is retried a bounded number of times.
 *
 * Keys name one attempt of one run: see {@linkcode runKey}.
 *
 * @module
 */

/** What became of the earlier delivery of an attempt. */
export type Verdict =
  /** Nothing known here: run it. */
  | { kind: "free" }
  /** Its outcome was recorded: ack the copy and do nothing else. */
  | { kind: "settled" }
  /** Its worker died while running it: count the attempt as failed, for this reason. */
  | { kind: "crashed"; reason: string };

/** See {@linkcode createLedger}. */
export interface Ledger {
  /** Notes that `owner` (a worker) started the attempt `key`. */
  begin(key: string, owner: number): void;
  /** Notes that the attempt's outcome is recorded; a copy waiting for it hears "settled". */
  settle(key: string): void;
  /**
   * What a redelivered copy of `key` should do. While another delivery of it runs, the answer
   * waits for that run to end.
   */
  claim(key: string): Promise<Verdict>;
  /**
   * Notes that `owner` died; every attempt it had not settled is released: those `reasonFor`
   * gives a reason for count as crashed, the rest are free to run again.
   */
  died(owner: number, reasonFor: (key: string) => string | undefined): void;
  /** Attempts `owner` is running and has not settled. */
  running(owner: number): string[];
}

/** The key of one attempt of one run of a task. */
export function runKey(id: string, replay: number, attempt: number): string {
  return `${id}/${replay}/${attempt}`;
}

/** Settled attempts and crash notes remembered; the oldest are forgotten first. */
const MEMORY = 100_000;

interface Run {
  owner: number;
  waiters: ((verdict: Verdict) => void)[];
}

/**
 * Creates an empty ledger.
 *
 * @example
 * ```ts
 * const ledger = createLedger();
 * ledger.begin("id/0/1", 7);
 * const verdict = ledger.claim("id/0/1"); // waits
 * ledger.settle("id/0/1");
 * await verdict; // { kind: "settled" }
 * ```
 */
export function createLedger(): Ledger {
  const runs = new Map<string, Run>();
  const settled = new Set<string>();
  const crashed = new Map<string, string>();

  const makeRoom = (memory: Set<string> | Map<string, string>) => {
    if (memory.size >= MEMORY) memory.delete(memory.keys().next().value!);
  };
  const release = (key: string, verdict: Verdict) => {
    const run = runs.get(key);
    runs.delete(key);
    for (const waiter of run?.waiters ?? []) waiter(verdict);
  };

  return {
    begin(key, owner) {
      runs.set(key, { owner, waiters: runs.get(key)?.waiters ?? [] });
    },
    settle(key) {
      crashed.delete(key);
      makeRoom(settled);
      settled.add(key);
      release(key, { kind: "settled" });
    },
    claim(key) {
      const run = runs.get(key);
      if (run) return new Promise((resolve) => run.waiters.push(resolve));
      if (settled.has(key)) return Promise.resolve({ kind: "settled" });
      const reason = crashed.get(key);
      if (reason !== undefined) return Promise.resolve({ kind: "crashed", reason });
      return Promise.resolve({ kind: "free" });
    },
    died(owner, reasonFor) {
      for (const [key, run] of [...runs]) {
        if (run.owner !== owner) continue;
        const reason = reasonFor(key);
        if (reason === undefined) {
          release(key, { kind: "free" });
        } else {
          makeRoom(crashed);
          crashed.set(key, reason);
          release(key, { kind: "crashed", reason });
        }
      }
    },
    running(owner) {
      return [...runs].filter(([, run]) => run.owner === owner).map(([key]) => key);
    },
  };
}
