/**
 * Serving uploaded files to workers over the broker, so that a worker needs nothing but
 * `AMQP_URL`: a worker asks `<prefix>.files` for one chunk of a task's file at a time
 * (`{"task","field","seq"}`, with `reply_to` its direct reply-to and a `correlation_id`), and
 * whichever api node takes the request answers with the chunk's bytes (or the header
 * `x-warren-error`). Any api node can answer, as every node reads the same store.
 *
 * @module
 */

import type { Channel } from "amqplib";
import { Refusal, serveCalls } from "../amqp/rpc.ts";
import type { Topology } from "../amqp/topology.ts";
import { errorMessage, type Logger } from "../log.ts";
import type { FileChunks } from "../store/store.ts";

/** Requests answered at once by one api process. */
const PREFETCH = 8;

/** What {@linkcode serveFiles} needs. */
export interface FileServerDeps {
  names: Topology;
  store: Pick<FileChunks, "readChunk">;
  log: Logger;
}

/**
 * Starts answering requests for file chunks on a channel; call it again on each new connection.
 *
 * @example
 * ```ts
 * import { topology } from "../amqp/topology.ts";
 * import { logger } from "../log.ts";
 * declare const ch: import("amqplib").Channel;
 * declare const store: import("../store/store.ts").TaskStore;
 * await serveFiles(ch, { names: topology("warren"), store, log: logger("files") });
 * ```
 */
export async function serveFiles(ch: Channel, deps: FileServerDeps): Promise<void> {
  await serveCalls(ch, deps.names.filesQueue, PREFETCH, async (body) => {
    const request = parseRequest(body);
    if (!request) throw new Refusal("a malformed request");
    const chunk = await deps.store.readChunk(request.task, request.field, request.seq);
    if (!chunk) throw new Refusal("no such file chunk");
    return chunk;
  }, (error) => {
    deps.log.warn("cannot read a file chunk now ({error})", { error: errorMessage(error) });
    return "the store cannot be read now; try again";
  });
}

function parseRequest(
  content: Uint8Array,
): { task: string; field: string; seq: number } | undefined {
  try {
    const { task, field, seq } = JSON.parse(new TextDecoder().decode(content));
    return typeof task === "string" && typeof field === "string" && Number.isInteger(seq)
      ? { task, field, seq }
      : undefined;
  } catch {
    return undefined;
  }
}
