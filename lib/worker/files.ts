/**
 * A task's uploaded files as its handler reads them (`ctx.files`): each a stream that fetches
 * the file's chunks from the api over the broker, one at a time as they are read (see
 * `api/file_server.ts`), so the worker needs nothing but its AMQP connection and never holds more
 * than a chunk. A stream whose bytes do not hash to the file's SHA-256 ends in an error.
 *
 * @module
 */

import type { Channel } from "amqplib";
import { createHash } from "node:crypto";
import { openCaller } from "../amqp/rpc.ts";
import type { Topology } from "../amqp/topology.ts";
import type { FileInfo } from "../files.ts";
import type { TaskFile } from "../handler.ts";

/** How long a chunk may take to come. */
const CHUNK_TIMEOUT_MS = 30_000;

/** What reading files needs. */
export interface FileDeps {
  names: Topology;
  /** Opens a channel on the worker's connection. */
  open(): Promise<Channel>;
}

/**
 * The files of task `taskId`, by field name.
 *
 * @example
 * ```ts
 * import { topology } from "../amqp/topology.ts";
 * declare const open: () => Promise<import("amqplib").Channel>;
 * declare const infos: import("../files.ts").FileInfo[];
 * const files = taskFiles("t-1", infos, { names: topology("warren"), open });
 * ```
 */
export function taskFiles(
  taskId: string,
  infos: FileInfo[],
  deps: FileDeps,
): Record<string, TaskFile> {
  const files: Record<string, TaskFile> = {};
  for (const info of infos) {
    const stream = () => fileStream(taskId, info, deps);
    files[info.field] = {
      field: info.field,
      filename: info.filename,
      type: info.type,
      size: info.size,
      sha256: info.sha256,
      stream,
      bytes: async () => new Uint8Array(await new Response(stream()).arrayBuffer()),
    };
  }
  return Object.freeze(files);
}

/** A file's bytes, a chunk per read, checked against its SHA-256 at the end. */
function fileStream(taskId: string, info: FileInfo, deps: FileDeps): ReadableStream<Uint8Array> {
  const hash = createHash("sha256");
  let seq = 0;
  let fetcher: Promise<ChunkFetcher> | undefined;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        if (seq === info.chunks) {
          await (await fetcher)?.close();
          const sha256 = hash.digest("hex");
          if (sha256 !== info.sha256) {
            throw new Error(`file "${info.field}" came with SHA-256 ${sha256}, not ${info.sha256}`);
          }
          return controller.close();
        }
        fetcher ??= chunkFetcher(deps);
        const chunk = await (await fetcher).get({ task: taskId, field: info.field, seq });
        hash.update(chunk);
        seq++;
        controller.enqueue(chunk);
      } catch (error) {
        await (await fetcher?.catch(() => undefined))?.close();
        controller.error(error);
      }
    },
    async cancel() {
      await (await fetcher?.catch(() => undefined))?.close();
    },
  }, { highWaterMark: 0 });
}

interface ChunkFetcher {
  get(request: { task: string; field: string; seq: number }): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** A caller of `<prefix>.files`, on a channel of its own. */
async function chunkFetcher(deps: FileDeps): Promise<ChunkFetcher> {
  const caller = await openCaller(await deps.open(), deps.names.filesQueue, CHUNK_TIMEOUT_MS);
  return {
    async get(request) {
      const body = new TextEncoder().encode(JSON.stringify(request));
      return await caller.call(body, `file "${request.field}"`);
    },
    close: () => caller.close(),
  };
}
