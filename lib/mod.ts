/**
 * Warren's public API for handler authors: `import type { Context, HandlerConfig } from "warren"`.
 *
 * @module
 */

export {
  type Context,
  defineHandler,
  type Handler,
  type HandlerConfig,
  PermanentError,
  type ResolvedHandlerConfig,
} from "./handler.ts";
export type { Duration } from "./duration.ts";
export type { JsonSchema } from "./schema.ts";
export type { EventOrigin, TaskError, TaskState } from "./events.ts";
