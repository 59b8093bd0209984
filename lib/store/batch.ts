/**
 * Folding a batch of events into the records they touch, the part every store shares: each
 * task's events in order, from the record the store holds (or none), with the changes watchers
 * should hear of. A store then writes what changed, in one transaction.
 *
 * @module
 */

import type { TaskEvent } from "../events.ts";
import type { TaskChange } from "./store.ts";
import { mergeEvent, type TaskRecord } from "./task.ts";

/** One task of a batch. */
export interface BatchEntry {
  /** The record after the batch's events; undefined if none of them made one. */
  task: TaskRecord | undefined;
  /** The record as the store held it, when it held it. */
  before: TaskRecord | undefined;
  /** The task's events in the batch, in order. */
  events: TaskEvent[];
  /** What watchers should hear of. */
  changes: TaskChange[];
  /** Whether an event changed the record, so it must be written. */
  dirty: boolean;
}

/**
 * Folds each task's events of a batch into its record as `read` gives it.
 *
 * @example
 * ```ts
 * const entries = foldBatch([
 *   { type: "queued", id: "t-1", handler: "hello", attempt: 0, at: 1 },
 *   { type: "running", id: "t-1", handler: "hello", attempt: 1, at: 2 },
 * ], () => undefined);
 * entries.get("t-1")?.task?.state; // "running"
 * ```
 */
export function foldBatch(
  events: TaskEvent[],
  read: (event: TaskEvent) => TaskRecord | undefined,
): Map<string, BatchEntry> {
  const entries = new Map<string, BatchEntry>();
  for (const event of events) {
    let entry = entries.get(event.id);
    if (!entry) {
      entry = refold(read(event), []);
      entries.set(event.id, entry);
    }
    entry.events.push(event);
    fold(entry, event);
  }
  return entries;
}

/** An entry folded anew from `stored` (the row was there after all): the same events, again. */
export function refold(stored: TaskRecord | undefined, events: TaskEvent[]): BatchEntry {
  const entry: BatchEntry = { task: stored, before: stored, events: [], changes: [], dirty: false };
  for (const event of events) {
    entry.events.push(event);
    fold(entry, event);
  }
  return entry;
}

/** Folds one event into a batch entry, noting the change watchers should see. */
function fold(entry: BatchEntry, event: TaskEvent): void {
  const merged = mergeEvent(entry.task, event);
  if (!merged) return;
  entry.task = merged.record;
  entry.dirty = true;
  if (merged.visible || merged.steps.length > 0) {
    entry.changes.push({ type: merged.visible, task: merged.record, steps: merged.steps });
  }
}

/** The changes of a batch, in order. */
export function changesOf(entries: Map<string, BatchEntry>): TaskChange[] {
  return [...entries.values()].flatMap((entry) => entry.changes);
}
