/**
 * Files uploaded with a task: what is known of each (recorded with the task, carried by its
 * message), how they are cut into chunks for storage and transport, and which media types a
 * handler's spec accepts.
 *
 * @module
 */

/** One uploaded file of a task. */
export interface FileInfo {
  /** The form field it came in: its name in `ctx.files` and its handler's `config.files`. */
  field: string;
  /** The file's own name, as the client sent it. */
  filename: string;
  /** Its media type, as the client sent it. */
  type: string;
  /** Bytes. */
  size: number;
  /** SHA-256 of its bytes, hex. */
  sha256: string;
  /** How many chunks of {@linkcode CHUNK_BYTES} (the last one shorter) it is stored as. */
  chunks: number;
}

/** The size of a stored chunk; the last chunk of a file may be shorter. */
export const CHUNK_BYTES = 256 * 1024;

/**
 * Whether a media type is one of `types` (`image/*` and `*\/*` match many).
 *
 * @example
 * ```ts
 * accepts(["image/*"], "image/png"); // true
 * accepts(["image/png"], "text/plain; charset=utf-8"); // false
 * ```
 */
export function accepts(types: string[], type: string): boolean {
  const [essence] = type.toLowerCase().split(";");
  const [main] = essence.trim().split("/");
  return types.some((t) => t === "*/*" || t === essence.trim() || t === `${main}/*`);
}

/**
 * Reads a list of file infos from untrusted JSON (a message header, a stored column); undefined
 * when it is not one.
 *
 * @example
 * ```ts
 * readFileInfos('[{"field":"a","filename":"a.txt","type":"text/plain","size":1,"sha256":"…","chunks":1}]');
 * ```
 */
export function readFileInfos(text: unknown): FileInfo[] | undefined {
  if (typeof text !== "string") return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  return Array.isArray(value) && value.every(isFileInfo) ? value : undefined;
}

function isFileInfo(value: unknown): value is FileInfo {
  const f = value as Partial<FileInfo> | null;
  const count = (n: unknown) => Number.isSafeInteger(n) && (n as number) >= 0;
  return typeof f === "object" && f !== null && typeof f.field === "string" &&
    typeof f.filename === "string" && typeof f.type === "string" && count(f.size) &&
    typeof f.sha256 === "string" && count(f.chunks);
}
