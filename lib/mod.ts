/**
 * Warren's public API for handler authors: `import type { Context, HandlerConfig } from "warren"`.
 *
 * @module
 */

export {
  type Context,
  defineHandler,
  type FileSpec,
  type Handler,
  type HandlerConfig,
  PermanentError,
  type ResolvedHandlerConfig,
  type TaskFile,
} from "./handler.ts";
export type { Duration } from "./duration.ts";
export type { JsonSchema } from "./schema.ts";
export type { EventOrigin, TaskError, TaskState } from "./events.ts";
