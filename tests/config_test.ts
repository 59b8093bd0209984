/**
 * Configuration: defaults, every bad value refused with one line naming it, secrets masked.
 */

import assert from "node:assert/strict";
import { ConfigError, loadConfig, redactUrl, secretsOf } from "../lib/config.ts";
import { parseDuration } from "../lib/duration.ts";
import { redact } from "../lib/log.ts";

Deno.test("config: defaults", () => {
  const { config, warnings } = loadConfig({});
  assert.deepEqual(config.amqpUrls, ["amqp://guest:guest@localhost:5672?heartbeat=5"], "5 s");
  const own = loadConfig({ AMQP_URL: "amqp://u:p@h:5672/v?heartbeat=20" }, []).config;
  assert.deepEqual(own.amqpUrls, ["amqp://u:p@h:5672/v?heartbeat=20"], "a heartbeat stays");
  assert.equal(config.host, "127.0.0.1");
  assert.equal(config.port, 8000);
  assert.equal(config.handlersDir, "./handlers");
  assert.equal(config.prefix, "warren");
  assert.equal(config.storePath, "./data/warren.db");
  assert.equal(config.apiToken, undefined);
  assert.equal(config.role, "all");
  assert.equal(config.maxBodyBytes, 1024 * 1024);
  assert.equal(config.shutdownGraceMs, 30_000);
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /guest account.*only accepts from localhost/);
});

Deno.test("config: environment and flags", () => {
  const { config, warnings } = loadConfig(
    {
      AMQP_URL: "amqps://app:pw@rabbit.internal:5671/prod",
      PORT: "9000",
      WARREN_PREFIX: "shop",
      WARREN_STORE: "/var/lib/warren.db",
      WARREN_API_TOKEN: "0123456789abcdef",
      HOST: "0.0.0.0",
      WARREN_MAX_BODY: "64KiB",
    },
    ["--role=api", "--port", "9100"],
  );
  assert.equal(config.port, 9100, "flags win over the environment");
  assert.equal(config.role, "api");
  assert.equal(config.prefix, "shop");
  assert.equal(config.maxBodyBytes, 65536);
  assert.deepEqual(warnings, []);
});

Deno.test("config: each bad value stops start-up with one line naming it", () => {
  const cases: [Record<string, string>, string[], RegExp][] = [
    [{ AMQP_URL: "http://x" }, [], /^AMQP_URL must start with amqp:\/\//],
    [{ AMQP_URL: "not a url" }, [], /^AMQP_URL is not a valid URL/],
    [{ PORT: "80a" }, [], /^PORT must be a whole number from 0 to 65535/],
    [{ PORT: "70000" }, [], /^PORT must be/],
    [{}, ["--port=-1"], /^--port must be/],
    [{ WARREN_PREFIX: "bad prefix!" }, [], /^WARREN_PREFIX must be/],
    [{ WARREN_STORE: "postgres://db" }, [], /^WARREN_STORE needs a host and a database/],
    [{ WARREN_STORE: "postgres://a b/c" }, [], /^WARREN_STORE is not a valid URL/],
    [{ WARREN_STORE: "mysql://db/warren" }, [], /^WARREN_STORE must be a file path .* postgres/],
    [{ WARREN_STORE: " " }, [], /^WARREN_STORE must not be empty/],
    [{ AMQP_URL: "amqp://a:5672,,amqp://b:5672" }, [], /^AMQP_URL has an empty entry/],
    [{ AMQP_URL: "amqp://a:5672,http://b" }, [], /^AMQP_URL must start with amqp:\/\//],
    [{ WARREN_API_TOKEN: "short" }, [], /^WARREN_API_TOKEN must be at least 16/],
    [
      { HOST: "0.0.0.0" },
      [],
      /^HOST=0.0.0.0 is reachable from other machines: set WARREN_API_TOKEN/,
    ],
    [{ WARREN_ROLE: "boss" }, [], /^WARREN_ROLE must be all, api or worker/],
    [{}, ["--role=boss"], /^--role must be all, api or worker/],
    [{}, ["--colour"], /Unknown option '--colour'/],
    [{ WARREN_MAX_BODY: "lots" }, [], /^WARREN_MAX_BODY must be a size/],
    [{ WARREN_SHUTDOWN_GRACE: "soon" }, [], /^WARREN_SHUTDOWN_GRACE must be a duration/],
    [{ WARREN_INSECURE: "maybe" }, [], /^WARREN_INSECURE must be true or false/],
    [{ WARREN_LOG_LEVEL: "loud" }, [], /^WARREN_LOG_LEVEL must be/],
  ];
  for (const [env, args, message] of cases) {
    assert.throws(() => loadConfig(env, args), (error: unknown) => {
      assert.ok(error instanceof ConfigError, `${JSON.stringify(env)} ${args}`);
      assert.match(error.message, message);
      assert.ok(!error.message.includes("\n"), "one line");
      return true;
    });
  }
});

Deno.test("config: a cluster's nodes, and a PostgreSQL store", () => {
  const { config } = loadConfig({
    AMQP_URL: "amqp://app:pw@rabbit-1:5672, amqp://app:pw@rabbit-2:5672?heartbeat=10",
    WARREN_STORE: "postgresql://warren:pw@db:5432/warren",
  });
  assert.deepEqual(config.amqpUrls, [
    "amqp://app:pw@rabbit-1:5672?heartbeat=5",
    "amqp://app:pw@rabbit-2:5672?heartbeat=10",
  ]);
  assert.equal(config.storePath, "postgresql://warren:pw@db:5432/warren");
  assert.equal(loadConfig({ WARREN_STORE: "postgres://db/w" }).config.storePath, "postgres://db/w");
});

Deno.test("config: a non-loopback HOST needs a token or --insecure", () => {
  assert.equal(loadConfig({ HOST: "0.0.0.0" }, ["--insecure"]).config.insecure, true);
  assert.equal(loadConfig({ HOST: "0.0.0.0", WARREN_INSECURE: "1" }).config.insecure, true);
  assert.equal(loadConfig({ HOST: "localhost" }).config.host, "localhost");
  assert.equal(loadConfig({ HOST: "::1" }).config.host, "::1");
});

Deno.test("config: no password shows, of any broker node or of the database", () => {
  const url = "amqp://app:Sup3r%2Fsecret@rabbit:5672";
  assert.equal(redactUrl(url), "amqp://app:***@rabbit:5672");
  const secrets = secretsOf({
    amqpUrls: [url, "amqp://app:n0de2pass@rabbit-2:5672"],
    storePath: "postgres://warren:db-pa55word@db:5432/warren",
    apiToken: "tok-0123456789abcdef",
  });
  assert.ok(secrets.includes("Sup3r/secret") && secrets.includes("Sup3r%2Fsecret"));
  assert.ok(secrets.includes("n0de2pass") && secrets.includes("db-pa55word"));
  assert.deepEqual(
    secretsOf({ amqpUrls: [url], storePath: "./data/warren.db", apiToken: undefined }),
    ["Sup3r%2Fsecret", "Sup3r/secret"],
  );
  assert.equal(
    redact(`failed for ${url} with Sup3r/secret and tok-0123456789abcdef`, secrets),
    "failed for amqp://app:***@rabbit:5672 with *** and ***",
  );
  try {
    loadConfig({ AMQP_URL: "redis://app:hunter22@rabbit" });
    assert.fail("should throw");
  } catch (error) {
    assert.ok(!(error as Error).message.includes("hunter22"));
  }
  try {
    loadConfig({ WARREN_STORE: "postgres://warren:hunter22@db" });
    assert.fail("should throw");
  } catch (error) {
    assert.ok(!(error as Error).message.includes("hunter22"));
  }
});

Deno.test("durations", () => {
  assert.equal(parseDuration("90s"), 90_000);
  assert.equal(parseDuration("1m30s"), 90_000);
  assert.equal(parseDuration("250ms"), 250);
  assert.equal(parseDuration("2h"), 7_200_000);
  assert.equal(parseDuration(1500), 1500);
  assert.equal(parseDuration("1.5s"), 1500);
  assert.equal(parseDuration("soon"), undefined);
  assert.equal(parseDuration("10"), undefined);
  assert.equal(parseDuration(-1), undefined);
});
