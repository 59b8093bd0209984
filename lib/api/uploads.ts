/**
 * File uploads (`multipart/form-data` to a handler with `config.files`): the body is read as a
 * stream, each file is hashed and written to the store in chunks as it comes (never held whole),
 * and the form's other fields make the payload: a field sent as `application/json` is parsed,
 * any other is a string. A file over its size is 413, of a type its spec does not accept 415, a
 * field no spec names or a missing required file 400; a refused upload keeps nothing.
 *
 * @module
 */

// @ts-types="@types/busboy"
import busboy from "busboy";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import type { ReadableStream as NodeWebStream } from "node:stream/web";
import { accepts, CHUNK_BYTES, type FileInfo } from "../files.ts";
import type { ResolvedFileSpec } from "../handler.ts";
import type { FileChunks } from "../store/store.ts";
import { problem } from "./problem.ts";

/** What an upload brings: the payload of its fields, and its files (stored already). */
export interface Upload {
  payload: Record<string, unknown>;
  files: FileInfo[];
}

/** Why an upload is refused: its status and what to say. */
interface Refusal {
  status: 400 | 413 | 415;
  detail: string;
}

/** The fields of a form at most. */
const MAX_FIELDS = 1000;

/**
 * Whether a request's body is a multipart form.
 *
 * @example
 * ```ts
 * isMultipart("multipart/form-data; boundary=x"); // true
 * ```
 */
export function isMultipart(contentType: string | undefined): boolean {
  return contentType?.toLowerCase().trimStart().startsWith("multipart/form-data") ?? false;
}

/**
 * Reads an upload for task `taskId`, storing its files as they come; resolves with the upload, or
 * with the problem+json that refuses it (after deleting whatever it stored).
 *
 * @example
 * ```ts
 * declare const request: Request;
 * declare const store: import("../store/store.ts").TaskStore;
 * const specs = { image: { types: ["image/*"], maxBytes: 1 << 20, required: true } };
 * const upload = await readUpload(request, "t-1", specs, { store, maxFieldBytes: 65536 });
 * ```
 */
export async function readUpload(
  request: Request,
  taskId: string,
  specs: Record<string, ResolvedFileSpec>,
  deps: UploadDeps,
): Promise<Upload | Response> {
  const form = collector(taskId, specs, deps);
  try {
    await parseParts(request, {
      fieldSize: deps.maxFieldBytes,
      fileSize: Math.max(...Object.values(specs).map((s) => s.maxBytes)) + 1,
    }, form);
  } catch (error) {
    form.refuse({
      status: 400,
      detail: `the multipart body cannot be read: ${(error as Error).message}`,
    });
  }
  for (const [field, spec] of Object.entries(specs)) {
    if (spec.required && !form.upload.files.some((f) => f.field === field)) {
      form.refuse({
        status: 400,
        detail: `the file "${field}" is missing: send it as a form field of that name`,
      });
    }
  }
  const refusal = form.refusal();
  if (!refusal) return form.upload;
  await deps.store.deleteFiles(taskId);
  return refusalResponse(refusal);
}

/** What reading an upload needs. */
interface UploadDeps {
  store: FileChunks;
  /** The most bytes of form fields (`WARREN_MAX_BODY`). */
  maxFieldBytes: number;
}

/** Takes a form's parts as they come; `file` resolves once the part is read to its end. */
interface PartHandlers {
  field(name: string, value: string, info: busboy.FieldInfo): void;
  file(field: string, stream: Readable, info: busboy.FileInfo): Promise<void>;
  refuse(refusal: Refusal): void;
}

/** Runs the body through the multipart parser; resolves once every part is taken. */
async function parseParts(
  request: Request,
  limits: { fieldSize: number; fileSize: number },
  handlers: PartHandlers,
): Promise<void> {
  const parser = busboy({
    headers: Object.fromEntries(request.headers),
    limits: { ...limits, fields: MAX_FIELDS },
  });
  const taking: Promise<void>[] = [];
  parser.on("field", handlers.field);
  parser.on("file", (field, stream, info) => void taking.push(handlers.file(field, stream, info)));
  parser.on(
    "fieldsLimit",
    () => handlers.refuse({ status: 400, detail: `a form has at most ${MAX_FIELDS} fields` }),
  );
  const done = new Promise<void>((resolve, reject) => {
    parser.on("close", resolve);
    parser.on("error", reject);
  });
  if (!request.body) throw new Error("there is no body");
  Readable.fromWeb(request.body as NodeWebStream<Uint8Array>).pipe(parser);
  await done;
  await Promise.all(taking);
}

/** Gathers an upload's payload and files from its parts, and the first reason to refuse it. */
function collector(taskId: string, specs: Record<string, ResolvedFileSpec>, deps: UploadDeps) {
  const upload: Upload = { payload: {}, files: [] };
  let refusal: Refusal | undefined;
  let fieldBytes = 0;
  const refuse = (r: Refusal) => void (refusal ??= r);
  const tooBig = (what: string) =>
    refuse({ status: 413, detail: `${what} over ${deps.maxFieldBytes} bytes (WARREN_MAX_BODY)` });
  const take = (name: string, text: string | undefined, type: string) => {
    fieldBytes += text?.length ?? Infinity;
    if (text === undefined || fieldBytes > deps.maxFieldBytes) {
      return tooBig("the form's fields are");
    }
    upload.payload[name] = fieldValue(name, text, type, refuse);
  };
  return {
    upload,
    refuse,
    refusal: () => refusal,
    field(name: string, value: string, info: busboy.FieldInfo) {
      take(name, info.valueTruncated ? undefined : value, info.mimeType);
    },
    async file(field: string, stream: Readable, info: busboy.FileInfo) {
      const spec = specs[field];
      if (!spec && info.mimeType.toLowerCase().startsWith("application/json")) {
        // A JSON field sent as a Blob, which clients name, so that it looks like a file.
        return take(field, await readField(stream, deps.maxFieldBytes), info.mimeType);
      }
      const problem = fileProblem(field, spec, info.mimeType, upload.files);
      if (problem || refusal) {
        if (problem) refuse(problem);
        return void stream.resume(); // read past it, keep nothing
      }
      const file = { taskId, field, filename: info.filename, type: info.mimeType };
      const stored = await storeFile(stream, file, spec, deps);
      if (typeof stored === "string") refuse({ status: 413, detail: stored });
      else upload.files.push(stored);
    },
  };
}

/** A part's text, or undefined when it is over `maxBytes` (it is read to its end either way). */
async function readField(stream: Readable, maxBytes: number): Promise<string | undefined> {
  const decoder = new TextDecoder();
  let text = "";
  let size = 0;
  for await (const data of stream as AsyncIterable<Uint8Array>) {
    size += data.length;
    if (size <= maxBytes) text += decoder.decode(data, { stream: true });
  }
  return size > maxBytes ? undefined : text + decoder.decode();
}

/** A form field's value: JSON when its part says so, else the string. */
function fieldValue(
  name: string,
  value: string,
  type: string,
  refuse: (r: Refusal) => void,
): unknown {
  if (!type.toLowerCase().startsWith("application/json")) return value;
  try {
    return JSON.parse(value);
  } catch {
    refuse({
      status: 400,
      detail: `the field "${name}" is sent as application/json but is not JSON`,
    });
    return value;
  }
}

/** Why a file part cannot be taken, before reading it. */
function fileProblem(
  field: string,
  spec: ResolvedFileSpec | undefined,
  type: string,
  files: FileInfo[],
): Refusal | undefined {
  if (!spec) return { status: 400, detail: `this handler takes no file "${field}"` };
  if (files.some((f) => f.field === field)) {
    return { status: 400, detail: `the file "${field}" is sent twice` };
  }
  if (!accepts(spec.types, type)) {
    return {
      status: 415,
      detail: `the file "${field}" is ${type}; it must be ${spec.types.join(" or ")}`,
    };
  }
  return undefined;
}

/**
 * Writes a file's bytes to the store in chunks, hashing them as they pass; resolves with its
 * info, or with why it is refused (over its size), having read it to its end.
 */
async function storeFile(
  stream: Readable,
  file: { taskId: string; field: string; filename: string; type: string },
  spec: ResolvedFileSpec,
  deps: { store: FileChunks },
): Promise<FileInfo | string> {
  const hash = createHash("sha256");
  let size = 0;
  let seq = 0;
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  const flush = async () => {
    if (pendingBytes === 0) return;
    const chunk = new Uint8Array(pendingBytes);
    let at = 0;
    for (const part of pending) {
      chunk.set(part, at);
      at += part.length;
    }
    pending = [];
    pendingBytes = 0;
    await deps.store.writeChunk(file.taskId, file.field, seq++, chunk);
  };
  for await (const data of stream as AsyncIterable<Uint8Array>) {
    size += data.length;
    if (size > spec.maxBytes) continue; // read to the end, keep nothing more
    hash.update(data);
    for (let at = 0; at < data.length;) {
      const take = Math.min(data.length - at, CHUNK_BYTES - pendingBytes);
      pending.push(data.subarray(at, at + take));
      pendingBytes += take;
      at += take;
      if (pendingBytes === CHUNK_BYTES) await flush();
    }
  }
  if (size > spec.maxBytes) {
    return `the file "${file.field}" is over its limit of ${spec.maxBytes} bytes`;
  }
  await flush();
  const { field, filename, type } = file;
  return { field, filename, type, size, sha256: hash.digest("hex"), chunks: seq };
}

function refusalResponse({ status, detail }: Refusal): Response {
  const [slug, title] = status === 413
    ? ["file-too-large", "File too large"]
    : status === 415
    ? ["unsupported-media-type", "Unsupported media type"]
    : ["bad-upload", "Bad upload"];
  return problem({ slug, title, status, detail });
}
