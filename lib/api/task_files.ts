/**
 * A task's uploaded files over HTTP (`GET /tasks/{id}/files/{field}`), served from the store by
 * any api node, and deleting a task with its files (`DELETE /tasks/{id}`).
 *
 * @module
 */

import type { Hono } from "hono";
import { isTerminal } from "../events.ts";
import type { FileInfo } from "../files.ts";
import type { FileChunks } from "../store/store.ts";
import type { ApiDeps } from "./deps.ts";
import { problem } from "./problem.ts";

/**
 * Registers the routes of a task's files and its deletion.
 *
 * @example
 * ```ts
 * import { Hono } from "hono";
 * declare const deps: import("./deps.ts").ApiDeps;
 * taskFileRoutes(new Hono(), deps);
 * ```
 */
export function taskFileRoutes(app: Hono, deps: ApiDeps): void {
  app.get("/tasks/:id/files/:field", async (c) => {
    const { id, field } = c.req.param();
    const task = await deps.store.get(id);
    const file = task?.files.find((f) => f.field === field);
    if (!task || !file) {
      return notFound(`no file "${field}" of a task with id "${id}"`);
    }
    return c.body(chunksOf(deps.store, id, file), 200, {
      "content-type": file.type || "application/octet-stream",
      "content-length": String(file.size),
      "content-disposition": `attachment; filename*=UTF-8''${encodeURIComponent(file.filename)}`,
      "x-content-type-options": "nosniff",
      "repr-digest": `sha-256=:${btoa(String.fromCharCode(...hexBytes(file.sha256)))}:`,
    });
  });

  app.delete("/tasks/:id", async (c) => {
    const id = c.req.param("id");
    const task = await deps.store.get(id);
    if (!task) return notFound(`no task with id "${id}"`);
    if (!isTerminal(task.state) || task.deadLetter) {
      return problem({
        slug: "task-not-finished",
        title: "Task not finished",
        status: 409,
        detail: task.deadLetter
          ? "its dead letter waits in the queue: replay or purge it first"
          : `it is ${task.state}: a task is deleted once it has ended`,
      });
    }
    await deps.store.delete(id);
    return c.body(null, 204);
  });
}

/** A file's bytes from the store, a chunk at a time as the client reads. */
function chunksOf(store: FileChunks, id: string, file: FileInfo): ReadableStream<Uint8Array> {
  let seq = 0;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (seq === file.chunks) return controller.close();
      const chunk = await store.readChunk(id, file.field, seq++);
      if (!chunk) return controller.error(new Error(`chunk ${seq - 1} of ${file.field} is gone`));
      controller.enqueue(chunk);
    },
  }, { highWaterMark: 0 });
}

function hexBytes(hex: string): number[] {
  return hex.match(/../g)?.map((pair) => parseInt(pair, 16)) ?? [];
}

function notFound(detail: string): Response {
  return problem({ slug: "not-found", title: "Not found", status: 404, detail });
}
