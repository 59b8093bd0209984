/**
 * A link's broker nodes: one at a time, the next when the current one is lost, each URL read as
 * amqplib reads it; and a link that starts on a dead node fails over to a live one.
 */

import assert from "node:assert/strict";
import { openLink } from "../lib/amqp/connection.ts";
import { nodeRotation } from "../lib/amqp/nodes.ts";
import { logger } from "../lib/log.ts";

const AMQP_URL = Deno.env.get("AMQP_URL") ?? "amqp://guest:guest@127.0.0.1:5672";

Deno.test("nodes: a rotation moves on in turn, and reads each URL as amqplib would", () => {
  const nodes = nodeRotation([
    "amqp://app:p%40ss@rabbit-1:5673/shop?heartbeat=5",
    "amqps://rabbit-2",
    "amqp://[::1]:5674/%2F",
  ], 0);
  assert.deepEqual({ ...nodes.target }, {
    protocol: "amqp",
    hostname: "rabbit-1",
    port: 5673,
    username: "app",
    password: "p@ss",
    vhost: "shop",
    heartbeat: 5,
    frameMax: undefined,
    channelMax: undefined,
    locale: undefined,
  });
  assert.equal(nodes.current(), "amqp://app:***@rabbit-1:5673/shop?heartbeat=5");
  const target = nodes.target;
  nodes.next();
  assert.equal(nodes.target, target, "the same object: amqplib's recovery holds it");
  assert.equal(target.protocol, "amqps");
  assert.equal(target.hostname, "rabbit-2");
  assert.equal(target.port, undefined, "amqplib picks the scheme's port");
  assert.equal(target.username, "guest", "no user means guest, as in amqplib");
  assert.equal(target.vhost, "/");
  nodes.next();
  assert.equal(target.hostname, "::1");
  assert.equal(target.vhost, "%2F", "amqplib unescapes the vhost itself");
  nodes.next();
  assert.equal(target.hostname, "rabbit-1", "back to the first");
  assert.throws(() => nodeRotation([]), /at least one broker URL/);
});

Deno.test("nodes: a link whose first node is down connects to the next", async () => {
  // Port 1 refuses at once: the first node is down.
  const link = openLink({
    urls: ["amqp://guest:guest@127.0.0.1:1", AMQP_URL],
    firstNode: 0,
    name: "warren test nodes",
    log: logger("test"),
    backoff: { min: 10, max: 50 },
    setup: async (model) => ({ ch: await model.createChannel() }),
  });
  try {
    const deadline = Date.now() + 10_000;
    while (!link.session() && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.ok(link.session(), "connected through the second node");
    await link.session()!.ch.checkExchange("amq.direct");
  } finally {
    await link.close();
  }
});
