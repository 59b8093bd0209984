/**
 * Task ids: UUIDv7 (RFC 9562) that sort in the order they were made, even many within one
 * millisecond, and tell when they were made.
 */

import assert from "node:assert/strict";
import { idTime, newTaskId } from "../lib/id.ts";
import { randomBytes } from "../lib/random.ts";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

Deno.test("ids: UUIDv7, unique, in the order made, with their time", () => {
  const before = Date.now();
  const ids = Array.from({ length: 20_000 }, newTaskId);
  const after = Date.now();
  for (const id of ids) assert.match(id, UUID_V7);
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual([...ids].sort(), ids, "sorted as made");
  for (const id of [ids[0], ids.at(-1)!]) {
    const made = idTime(id)!;
    assert.ok(made >= before && made <= after + 1, `${id} tells its time`);
  }
});

Deno.test("random bytes: never handed out twice, across blocks", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 2_000; i++) {
    const bytes = randomBytes(24);
    assert.equal(bytes.length, 24);
    seen.add(bytes.join());
  }
  assert.equal(seen.size, 2_000);
  assert.throws(() => randomBytes(5_000), /at most 4096/);
});
