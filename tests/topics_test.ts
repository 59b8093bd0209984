/** Topics and subscription patterns: AMQP's topic rules, and what a handler's config accepts. */

import assert from "node:assert/strict";
import { HandlerError, resolveConfig } from "../lib/handler.ts";
import { eventTaskId, newTaskId } from "../lib/id.ts";
import { matches, patternProblem, subscribersOf, topicProblem } from "../lib/topics.ts";

Deno.test("topics: patterns match by AMQP's rules", () => {
  const cases: [string, string, boolean][] = [
    ["order.created", "order.created", true],
    ["order.*", "order.created", true],
    ["order.*", "order.created.late", false],
    ["order.*", "order", false],
    ["order.#", "order", true],
    ["order.#", "order.a.b", true],
    ["#", "anything.at.all", true],
    ["a.#.z", "a.z", true],
    ["a.#.z", "a.b.c.z", true],
    ["a.#.z", "a.b.c", false],
    ["*.created", "order.paid", false],
    ["#.#", "a", true],
  ];
  for (const [pattern, topic, expected] of cases) {
    assert.equal(matches(pattern, topic), expected, `${pattern} ~ ${topic}`);
  }
  const many = "#.".repeat(100) + "x";
  assert.equal(matches(many, "a.".repeat(100) + "x"), true, "no blow-up on many #");
  assert.deepEqual(
    subscribersOf([
      { name: "email", subscribe: ["order.created"] },
      { name: "stock", subscribe: ["order.*", "stock.#"] },
      { name: "quiet", subscribe: [] },
    ], "order.created"),
    ["email", "stock"],
  );
});

Deno.test("topics: what a topic and a pattern may be", () => {
  assert.equal(topicProblem("order.created"), undefined);
  assert.equal(topicProblem("user_signed-up.v2"), undefined);
  for (const bad of ["", "order.*", "order..x", ".order", "a b", "x".repeat(256), "é"]) {
    assert.ok(topicProblem(bad), `topic "${bad}" refused`);
  }
  assert.equal(patternProblem("order.#"), undefined);
  assert.equal(patternProblem("*.created"), undefined);
  for (const bad of ["", "order..x", "order.**", "a#"]) {
    assert.ok(patternProblem(bad), `pattern "${bad}" refused`);
  }
});

Deno.test("handler config: subscribe takes a list of valid patterns", () => {
  assert.deepEqual(resolveConfig({}, "x.ts").subscribe, []);
  assert.deepEqual(
    resolveConfig({ subscribe: ["order.*", "order.*", "stock.#"] }, "x.ts").subscribe,
    ["order.*", "stock.#"],
    "a repeated pattern once",
  );
  assert.throws(
    () => resolveConfig({ subscribe: "order.*" }, "x.ts"),
    (e: Error) =>
      e instanceof HandlerError && /x.ts: config.subscribe must be a list/.test(e.message),
  );
  assert.throws(
    () => resolveConfig({ subscribe: ["order..x"] }, "x.ts"),
    /x.ts: config.subscribe: a pattern is words joined by dots/,
  );
});

Deno.test("event task ids: one per event and handler, the same every time, sorted by time", () => {
  const event = newTaskId();
  assert.equal(eventTaskId(event, "email"), eventTaskId(event, "email"));
  assert.notEqual(eventTaskId(event, "email"), eventTaskId(event, "stock"));
  assert.match(
    eventTaskId(event, "email"),
    /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-/,
  );
  assert.equal(eventTaskId(event, "email").slice(0, 13), event.slice(0, 13), "the event's time");
  assert.match(eventTaskId("not-a-uuid", "email"), /^[0-9a-f-]{36}$/, "any event id works");
});
