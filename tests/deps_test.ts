/**
 * Dependencies: the server's config (`deno.json`) pins what Warren runs on; the tests' config
 * (`deno.test.json`, with a lockfile of its own) pins the same and adds only the test tools, so a
 * first `deno task start` fetches nothing but what the server needs.
 */

import assert from "node:assert/strict";

const read = async (file: string) =>
  JSON.parse(await Deno.readTextFile(new URL(`../${file}`, import.meta.url)));

Deno.test("dependencies: the tests' config pins what the server's does, and test tools only besides", async () => {
  const server = await read("deno.json");
  const tests = await read("deno.test.json");
  for (const [name, target] of Object.entries(server.imports)) {
    assert.equal(tests.imports[name], target, `${name} is pinned alike in both configs`);
  }
  const extra = Object.keys(tests.imports).filter((name) => !(name in server.imports)).sort();
  assert.deepEqual(extra, ["eventsource", "playwright-core", "standardwebhooks"]);
  for (const key of ["unstable", "allowScripts", "compilerOptions"]) {
    assert.deepEqual(tests[key], server[key], `${key} is the same in both configs`);
  }
  const lock = await Deno.readTextFile(new URL("../deno.lock", import.meta.url));
  for (const tool of extra) {
    assert.ok(!lock.includes(`npm:${tool}@`), `${tool} is not in deno.lock`);
  }
});
