/**
 * Idempotency keys (the IETF httpapi draft's `Idempotency-Key`, as Stripe practises it): a row
 * per (scope, key) with the request's fingerprint, the task it made, a state (`pending` while its
 * task is being published, `done` once the broker confirmed it, with the answer given) and a lease.
 * Both stores decide a claim atomically, so two api nodes never both enqueue under one key.
 *
 * @module
 */

/** A request's claim on a key. */
export interface KeyClaim {
  /** What the key is unique within: `task:<handler>` or `event:<topic>`. */
  scope: string;
  key: string;
  /** SHA-256 of what the request asks (handler, options, body): a repeat must ask the same. */
  fingerprint: string;
  /** The task (or event) id this request would make. */
  taskId: string;
  /** Now, ms since the epoch. */
  now: number;
  /** How long a pending claim holds the key before a repeat may take over. */
  leaseMs: number;
  /** How long the key lives. */
  ttlMs: number;
}

/** What a claim is told. */
export type KeyVerdict =
  /** The key is this request's: enqueue `taskId`. */
  | { kind: "claimed" }
  /** An earlier request's publish was never confirmed and its lease ran out: publish again, as `taskId`. */
  | { kind: "retry"; taskId: string }
  /** An earlier request enqueued it: answer as it was answered. */
  | { kind: "replay"; taskId: string; answer: string }
  /** An earlier request is enqueuing it now, as `taskId`. */
  | { kind: "busy"; taskId: string; retryAfterMs: number }
  /** The key was used for a different request, which made `taskId`. */
  | { kind: "mismatch"; taskId: string };

/** A key's row, as both stores keep it. */
export interface KeyRow {
  fingerprint: string;
  task_id: string;
  state: string;
  answer: string | null;
  lease_until: number;
  expires_at: number;
}

/** What the stores do with keys. */
export interface IdempotencyKeys {
  /** Claims a key, or says why not (see {@linkcode KeyVerdict}). */
  claimKey(claim: KeyClaim): Promise<KeyVerdict>;
  /** Marks a claimed key done: its task is in the broker; `answer` is what repeats are told. */
  completeKey(scope: string, key: string, answer: string): Promise<void>;
  /** Forgets a claim whose request enqueued nothing, so a repeat may try afresh. */
  releaseKey(scope: string, key: string, taskId: string): Promise<void>;
}

/**
 * The verdict on a claim of a key that has a live row (one not expired); `takeOver` moves an
 * expired lease to this request, and says whether it could.
 *
 * @example
 * ```ts
 * const row = { fingerprint: "f", task_id: "t-1", state: "done", answer: "{}", lease_until: 0, expires_at: 9e15 };
 * await verdictOn(row, { scope: "task:hello", key: "k", fingerprint: "f", taskId: "t-2", now: 1, leaseMs: 1, ttlMs: 1 }, () => Promise.resolve(true));
 * // { kind: "replay", taskId: "t-1", answer: "{}" }
 * ```
 */
export async function verdictOn(
  row: KeyRow,
  claim: KeyClaim,
  takeOver: () => Promise<boolean>,
): Promise<KeyVerdict> {
  if (row.fingerprint !== claim.fingerprint) return { kind: "mismatch", taskId: row.task_id };
  if (row.state === "done") {
    return { kind: "replay", taskId: row.task_id, answer: row.answer ?? "" };
  }
  if (row.lease_until > claim.now) {
    return { kind: "busy", taskId: row.task_id, retryAfterMs: row.lease_until - claim.now };
  }
  return await takeOver()
    ? { kind: "retry", taskId: row.task_id }
    : { kind: "busy", taskId: row.task_id, retryAfterMs: claim.leaseMs };
}
