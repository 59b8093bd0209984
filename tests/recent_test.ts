/** The map of entries used last: what it keeps, what it forgets, and that it stays fast. */

import assert from "node:assert/strict";
import { createRecent } from "../lib/recent.ts";

Deno.test("recent: keeps at least the limit used last, forgets beyond twice that", () => {
  const recent = createRecent<number>(100);
  for (let i = 0; i < 1_000; i++) recent.set(`k${i}`, i);
  for (let i = 900; i < 1_000; i++) assert.equal(recent.get(`k${i}`), i, "the last 100 are kept");
  for (let i = 0; i < 800; i++) assert.equal(recent.get(`k${i}`), undefined, "older ones go");
});

Deno.test("recent: an entry used again is kept; a forgotten one is gone; a new value wins", () => {
  const recent = createRecent<number>(10);
  recent.set("kept", 1);
  recent.set("gone", 2);
  recent.forget("gone");
  for (let i = 0; i < 100; i++) {
    recent.set(`k${i}`, i);
    assert.equal(recent.get("kept"), 1, "used all along");
  }
  assert.equal(recent.get("gone"), undefined);
  recent.set("kept", 3);
  for (let i = 0; i < 15; i++) recent.set(`again${i}`, i);
  assert.equal(recent.get("kept"), 3, "the newer value, not an older generation's");
});

Deno.test("recent: a set costs the same at any size (no walk over forgotten slots)", () => {
  // Correctness under churn at a realistic size; the speed itself is measured by bench:cpu.
  const recent = createRecent<number>(10_000);
  for (let i = 0; i < 200_000; i++) {
    recent.set(`t${i}`, i);
    if (i % 3 === 0) recent.forget(`t${i - 1}`);
  }
  assert.equal(recent.get("t199999"), 199_999);
  assert.equal(recent.get("t199997"), undefined, "forgotten");
});
