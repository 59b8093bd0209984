/**
 * A contract check: an HTTP proxy in front of a Warren that checks every answer the test suite
 * sees against Warren's own OpenAPI document (GET /openapi.json): the route, the status, the
 * content type and the body's schema. Whatever the document does not list is a violation, so the
 * document cannot drift from what Warren answers.
 *
 * @module
 */

import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

/** A running check; see {@linkcode startContract}. */
export interface Contract {
  /** Where clients talk to Warren through the check. */
  url: string;
  /** Every answer that broke the document so far, one line each. */
  violations(): string[];
  /** Stops the proxy. */
  close(): Promise<void>;
}

/** Pages and their assets: served to browsers, not part of the API the document describes. */
const PAGES = /^\/($|dashboard\/|docs($|\/)|openapi\.json$)/;

type Json = Record<string, unknown>;
interface Operation {
  responses: Record<string, { content?: Record<string, { schema?: Json }> }>;
}
interface Route {
  pattern: RegExp;
  /** Literal paths are tried before templated ones (`/tasks/echo` before `/tasks/{id}`). */
  literal: boolean;
  methods: Record<string, Operation>;
}

/**
 * Reads Warren's document at `target` and starts the proxy on a free loopback port (none when the
 * process serves no document: a worker-only one).
 *
 * @example
 * ```ts
 * const contract = await startContract("http://127.0.0.1:8000");
 * await fetch(`${contract.url}/tasks`);
 * contract.violations(); // []
 * ```
 */
export async function startContract(target: string): Promise<Contract | undefined> {
  const served = await fetch(`${target}/openapi.json`);
  if (!served.ok) {
    await served.body?.cancel();
    return undefined; // a worker-only process: health checks, and no document of them
  }
  const document = await served.json();
  const routes = routesOf(document);
  const check = checker(document);
  const violations: string[] = [];

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    let answer: Response;
    try {
      answer = await fetch(`${target}${url.pathname}${url.search}`, {
        method: req.method,
        headers: req.headers,
        body: req.body ? await req.arrayBuffer() : undefined,
        redirect: "manual",
      });
    } catch {
      // Warren itself is gone (a test killed it): the proxy's own answer, not Warren's.
      return new Response("warren is not answering", { status: 502 });
    }
    if (PAGES.test(url.pathname)) return answer;
    const where = `${req.method} ${url.pathname}${url.search} -> ${answer.status}`;
    const operation = find(routes, url.pathname, req.method.toLowerCase());
    const type = (answer.headers.get("content-type") ?? "").split(";")[0].trim();
    if (type === "text/event-stream") {
      const problem = operation && check(operation, answer.status, type, undefined);
      if (problem) violations.push(`${where}: ${problem}`);
      return answer; // a stream flows as it comes
    }
    const body = new Uint8Array(await answer.arrayBuffer());
    const problem = operation
      ? check(operation, answer.status, type, body)
      : answer.status === 404 || answer.status === 401
      ? undefined // an unknown route: answered, and not an operation to describe
      : "no such operation in the document";
    if (problem) violations.push(`${where}: ${problem}`);
    const headers = new Headers(answer.headers);
    headers.delete("content-length");
    return new Response(answer.status === 204 ? null : body, { status: answer.status, headers });
  });

  return {
    url: `http://127.0.0.1:${server.addr.port}`,
    violations: () => [...violations],
    close: () => server.shutdown(),
  };
}

function routesOf(document: { paths: Record<string, Record<string, Operation>> }): Route[] {
  return Object.entries(document.paths).map(([path, methods]) => ({
    pattern: new RegExp(`^${path.replace(/\{[^}]+\}/g, "[^/]+")}$`),
    literal: !path.includes("{"),
    methods,
  })).sort((a, b) => Number(b.literal) - Number(a.literal));
}

function find(routes: Route[], path: string, method: string): Operation | undefined {
  return routes.find((route) => route.pattern.test(path) && route.methods[method])?.methods[method];
}

/** Checks an answer against its operation; returns what is wrong, or undefined. */
function checker(document: Json) {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  (addFormats as unknown as (ajv: Ajv2020) => void)(ajv);
  const compiled = new Map<Json, ValidateFunction>();
  const validator = (schema: Json) => {
    let validate = compiled.get(schema);
    if (!validate) {
      validate = ajv.compile({ ...schema, components: document.components });
      compiled.set(schema, validate);
    }
    return validate;
  };

  return (
    operation: Operation,
    status: number,
    type: string,
    body: Uint8Array | undefined,
  ): string | undefined => {
    const response = operation.responses[String(status)] ?? operation.responses.default;
    if (!response) return `status ${status} is not documented`;
    const media = response.content;
    if (!media) return body && body.byteLength > 0 ? "a body where none is documented" : undefined;
    // The most specific documented media range wins, as OpenAPI says: image/png, image/*, */*.
    const documented = [type, `${type.split("/")[0]}/*`, "*/*"].find((range) => media[range]);
    if (!documented) return `content type "${type}" is not documented (${Object.keys(media)})`;
    const schema = media[documented].schema;
    if (!schema || body === undefined || !type.endsWith("json")) return undefined;
    let value: unknown;
    try {
      value = JSON.parse(new TextDecoder().decode(body));
    } catch {
      return "the body is not JSON";
    }
    const validate = validator(schema);
    if (validate(value)) return undefined;
    return (validate.errors ?? []).map((e) => `${e.instancePath || "body"} ${e.message}`)
      .join("; ");
  };
}
