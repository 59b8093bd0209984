/**
 * The contract check itself (tests/helpers/contract.ts), against a small server that breaks its
 * own document in every way the check must notice.
 */

import assert from "node:assert/strict";
import { startContract } from "./helpers/contract.ts";

const DOCUMENT = {
  openapi: "3.1.0",
  paths: {
    "/things/{id}": {
      get: {
        responses: {
          200: {
            description: "A thing.",
            content: {
              "application/json": {
                schema: { $ref: "#/components/schemas/Thing" },
              },
            },
          },
          202: { description: "Taken, no body." },
          204: { description: "Nothing more." },
        },
      },
    },
  },
  components: {
    schemas: {
      Thing: {
        type: "object",
        properties: { id: { type: "string" } },
        required: ["id"],
        additionalProperties: false,
      },
    },
  },
};

/** Answers as the path asks: a good thing, or one of the ways to break the document. */
function answer(path: string): Response {
  const json = (body: unknown, status = 200, type = "application/json") =>
    new Response(JSON.stringify(body), { status, headers: { "content-type": type } });
  switch (path) {
    case "/openapi.json":
      return json(DOCUMENT);
    case "/things/good":
      return json({ id: "good" });
    case "/things/empty":
      return new Response(null, { status: 204 });
    case "/things/extra":
      return json({ id: "x", secret: true });
    case "/things/missing":
      return json({});
    case "/things/status":
      return json({ id: "x" }, 418);
    case "/things/type":
      return json({ id: "x" }, 200, "text/html");
    case "/things/body":
      return json({ id: "x" }, 202);
    case "/elsewhere":
      return json({}, 200);
    default:
      return json({ detail: "no route" }, 404);
  }
}

Deno.test("contract: every way an answer can break the document is reported", async () => {
  const server = Deno.serve(
    { port: 0, onListen: () => {} },
    (req) => answer(new URL(req.url).pathname),
  );
  const contract = await startContract(`http://127.0.0.1:${server.addr.port}`);
  assert.ok(contract);
  try {
    for (
      const path of [
        "/things/good",
        "/things/empty",
        "/nowhere",
        "/things/extra",
        "/things/missing",
        "/things/status",
        "/things/type",
        "/things/body",
        "/elsewhere",
      ]
    ) {
      const response = await fetch(`${contract.url}${path}`);
      await response.body?.cancel();
    }
    const violations = contract.violations();
    const about = (path: string) => violations.filter((v) => v.includes(` ${path} `));
    for (const path of ["/things/good", "/things/empty", "/nowhere"]) {
      assert.deepEqual(about(path), [], `${path} keeps the document`);
    }
    assert.match(about("/things/extra")[0], /must NOT have additional properties/);
    assert.match(about("/things/missing")[0], /must have required property 'id'/);
    assert.match(about("/things/status")[0], /status 418 is not documented/);
    assert.match(about("/things/type")[0], /content type "text\/html" is not documented/);
    assert.match(about("/things/body")[0], /a body where none is documented/);
    assert.match(about("/elsewhere")[0], /no such operation in the document/);
    assert.equal(violations.length, 6, violations.join("\n"));
  } finally {
    await contract.close();
    await server.shutdown();
  }
});
