/**
 * Authentication: with WARREN_API_TOKEN set, every route but the health checks needs the token.
 */

import assert from "node:assert/strict";
import { deleteTopology, getJson, postTask, startWarren, waitForState } from "./helpers/warren.ts";

const TOKEN = "test-token-0123456789abcdef";

Deno.test("auth: bearer token on every route but /healthz and /readyz", async () => {
  const warren = await startWarren({ env: { WARREN_API_TOKEN: TOKEN } });
  try {
    assert.equal((await getJson(`${warren.url}/healthz`))[0], 200);
    assert.equal((await getJson(`${warren.url}/readyz`))[0], 200);

    const oneOff = `${TOKEN.slice(0, -1)}${TOKEN.endsWith("f") ? "e" : "f"}`; // same length
    const wrong = [
      undefined,
      "Bearer wrong-token",
      `Bearer ${oneOff}`,
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(0, -1)}`,
      `Basic ${TOKEN}`,
      TOKEN,
    ];
    for (const authorization of wrong) {
      const headers: Record<string, string> = authorization ? { authorization } : {};
      const [status, problem, responseHeaders] = await postTask(warren.url, "echo", {}, headers);
      assert.equal(status, 401, String(authorization));
      assert.equal(problem.status, 401);
      assert.match(problem.detail, /Authorization: Bearer/);
      assert.ok(!JSON.stringify(problem).includes(TOKEN), "the token never shows");
      assert.equal(responseHeaders.get("www-authenticate"), 'Bearer realm="warren"');
      for (const path of ["/tasks", "/handlers", "/tasks/x", "/nowhere"]) {
        assert.equal((await getJson(`${warren.url}${path}`, { headers }))[0], 401, path);
      }
    }

    const auth = { authorization: `Bearer ${TOKEN}` };
    const [status, body] = await postTask(warren.url, "echo", { ok: 1 }, auth);
    assert.equal(status, 202);
    const task = await waitForState(warren.url, body.id, "succeeded", 15_000, { headers: auth });
    assert.deepEqual(task.result, { echo: { ok: 1 } });
    assert.ok(!warren.output().includes(TOKEN), "the token never reaches the log");
  } finally {
    assert.equal(await warren.stop(), 0, warren.output());
    await deleteTopology(warren.prefix);
  }
});
