/**
 * One trace per task, end to end through Deno's built-in OpenTelemetry: a loopback OTLP/HTTP
 * receiver collects the spans of a task POSTed with a client's `traceparent` that fails once and
 * then succeeds, calling a server and enqueueing a child on the way; they form one trace, from the
 * HTTP request to the second attempt's return.
 */

import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import { LOOPBACK_PORT } from "./fixtures/tracing/flaky.ts";
import { deleteTopology, postTask, startWarren, waitFor, waitForState } from "./helpers/warren.ts";

const HANDLERS = fromFileUrl(new URL("./fixtures/tracing", import.meta.url));

/** A span as the test reads it from OTLP/JSON. */
interface Span {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  links: { traceId: string; spanId: string }[];
  attributes: Record<string, unknown>;
}

/** An OTLP/HTTP receiver (JSON) that keeps every span it is sent. */
function receiver() {
  const spans: Span[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const body = await req.json();
    if (new URL(req.url).pathname === "/v1/traces") {
      for (const resource of body.resourceSpans ?? []) {
        for (const scope of resource.scopeSpans ?? []) {
          for (const span of scope.spans ?? []) {
            const attributes = Object.fromEntries(
              (span.attributes ?? []).map((a: { key: string; value: Record<string, unknown> }) => [
                a.key,
                Object.values(a.value)[0],
              ]),
            );
            spans.push({ ...span, links: span.links ?? [], attributes });
          }
        }
      }
    }
    return Response.json({});
  });
  return { url: `http://127.0.0.1:${server.addr.port}`, spans, close: () => server.shutdown() };
}

const hex = (bytes: number) =>
  Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0"))
    .join("");

Deno.test("tracing: one trace from the POST through a retry to the handler's calls", async () => {
  const otlp = receiver();
  const loopback = Deno.serve(
    { hostname: "127.0.0.1", port: LOOPBACK_PORT, onListen: () => {} },
    () => new Response("pong"),
  );
  const warren = await startWarren({
    handlersDir: HANDLERS,
    env: {
      OTEL_DENO: "true",
      OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      OTEL_SERVICE_NAME: "warren-test",
    },
  });
  try {
    const [traceId, clientSpan] = [hex(16), hex(8)];
    const [status, accepted] = await postTask(warren.url, "flaky", {}, {
      traceparent: `00-${traceId}-${clientSpan}-01`,
    });
    assert.equal(status, 202);
    const done = await waitForState(warren.url, accepted.id, "succeeded");
    assert.equal(done.trace_id, traceId, "the task JSON carries its trace id");
    const leaf = await waitForState(warren.url, done.result.leaf, "succeeded");
    assert.equal(leaf.trace_id, traceId, "a task it enqueued is in the same trace");
    await warren.stop(); // flushes the spans
    await waitFor(() => otlp.spans.some((s) => s.name === "task leaf"), 10_000, "the spans");

    const mine = otlp.spans.filter((s) => s.traceId === traceId);
    const server = mine.find((s) => s.kind === 2 && s.parentSpanId === clientSpan);
    assert.ok(server, `the POST's server span is the client's child: ${JSON.stringify(mine)}`);
    const attempts = mine.filter((s) => s.name === "task flaky")
      .sort((a, b) =>
        Number(a.attributes["warren.attempt"]) - Number(b.attributes["warren.attempt"])
      );
    assert.equal(attempts.length, 2, "a span per attempt");
    for (const attempt of attempts) assert.equal(attempt.parentSpanId, server.spanId);
    assert.equal(attempts[0].attributes["warren.task.id"], accepted.id);
    assert.deepEqual(
      attempts[1].links.map((l) => l.spanId),
      [attempts[0].spanId],
      "the retry links to the attempt before",
    );
    const call = mine.find((s) =>
      s.kind === 3 && String(s.attributes["url.full"]).includes(String(LOOPBACK_PORT))
    );
    assert.equal(call?.parentSpanId, attempts[1].spanId, "the handler's fetch is in its attempt");
    const child = mine.find((s) => s.name === "task leaf");
    assert.equal(child?.parentSpanId, attempts[1].spanId, "the enqueued task's span too");
  } finally {
    await warren.stop();
    await loopback.shutdown();
    await otlp.close();
    await deleteTopology(warren.prefix, ["flaky", "leaf"]);
  }
});
