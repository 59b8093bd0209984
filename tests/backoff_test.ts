/**
 * The one backoff: exponential, full jitter, bounded.
 */

import assert from "node:assert/strict";
import { backoffMs, NO_JITTER } from "../lib/backoff.ts";

Deno.test("backoff: exponential with full jitter between min and max", () => {
  const backoff = { minMs: 1000, maxMs: 10_000 };
  assert.equal(backoffMs(1, backoff, () => 0.99), 1000, "the first retry waits min");
  assert.equal(backoffMs(3, backoff, () => 0), 1000);
  assert.equal(backoffMs(3, backoff, () => 1), 4000);
  assert.equal(backoffMs(30, backoff, () => 1), 10_000, "capped at max");
  for (let i = 0; i < 100; i++) {
    const ms = backoffMs(5, backoff);
    assert.ok(ms >= 1000 && ms <= 10_000);
  }
});

Deno.test("backoff: without jitter every wait is the ceiling", () => {
  const bounds = { minMs: 100, maxMs: 2_000 };
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6].map((n) => backoffMs(n, bounds, NO_JITTER)),
    [100, 200, 400, 800, 1600, 2000],
  );
});
