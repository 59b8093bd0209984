/**
 * Task ids: UUIDv7, so ids sort by creation time and the store's id index grows at its end
 * instead of at random pages (a random UUIDv4 dirties a new page with almost every insert).
 *
 * @module
 */

import { v7 } from "uuid";

/**
 * A new task id.
 *
 * @example
 * ```ts
 * newTaskId(); // "019a8f6e-4c1d-7b2a-9e3f-5a6b7c8d9e0f"
 * ```
 */
export function newTaskId(): string {
  return v7();
}
