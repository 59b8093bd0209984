/**
 * API docs: GET /openapi.json (the OpenAPI 3.1 document) and GET /docs (Swagger UI, served from
 * the `swagger-ui-dist` package in Deno's cache, nothing fetched from a CDN), whose "try it out"
 * calls this server.
 *
 * @module
 */

import type { Hono } from "hono";
import { getAbsoluteFSPath } from "swagger-ui-dist";
import type { HandlerInfo } from "../handler.ts";
import { openApiDocument } from "./openapi.ts";

const ASSETS: Record<string, string> = {
  "swagger-ui.css": "text/css; charset=utf-8",
  "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
};

/** The version of the API the document names. */
export const API_VERSION = "0.3.0";

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Warren API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#ui",
      deepLinking: true,
      persistAuthorization: true,
      tryItOutEnabled: true,
    });
  </script>
</body>
</html>
`;

/** Registers /openapi.json, /docs and the docs' assets. */
export function docsRoutes(app: Hono, handlers: HandlerInfo[], secured: boolean): void {
  const document = JSON.stringify(openApiDocument(handlers, { secured, version: API_VERSION }));
  const cache = new Map<string, Uint8Array>();

  app.get("/openapi.json", (c) => c.body(document, 200, { "content-type": "application/json" }));
  app.get("/docs", (c) => c.html(PAGE));
  app.get("/docs/:asset", async (c) => {
    const asset = c.req.param("asset");
    const type = ASSETS[asset];
    if (!type) return c.notFound();
    let bytes = cache.get(asset);
    if (!bytes) {
      bytes = await Deno.readFile(`${getAbsoluteFSPath()}/${asset}`);
      cache.set(asset, bytes);
    }
    return c.body(bytes as Uint8Array<ArrayBuffer>, 200, {
      "content-type": type,
      "cache-control": "public, max-age=86400",
    });
  });
}
