/**
 * How a process hears every commit to the PostgreSQL store: its own changes straight from its
 * writes, other nodes' from their notices (the store's LISTEN), each task's in version order. A
 * notice of a version older than one heard already (a node that tells a partly written batch
 * late) is left out, and so is a record that a later commit changed before it was read: that
 * commit's own notice tells it.
 *
 * @module
 */

import { createRecent } from "../recent.ts";
import type { Notice, Told } from "./postgres_write.ts";
import type { TaskChange } from "./store.ts";
import type { TaskRecord } from "./task.ts";

/** Tasks whose last version heard a follower remembers. */
const HEARD_MAX = 10_000;

/** What {@linkcode followStore} needs of the store. */
export interface FollowOptions {
  /** Where the store passes this process's own changes, as it commits them. */
  local: Set<(changes: TaskChange[]) => void>;
  /** Where the store passes the notices of other processes, as it hears them. */
  remote: Set<(notice: Notice) => void>;
  /** Reads the records a notice did not carry. */
  read(ids: string[]): Promise<Map<string, TaskRecord>>;
}

/**
 * Passes every change any process commits to `listener`; returns the function that stops.
 *
 * @example
 * ```ts
 * declare const options: FollowOptions;
 * const stop = followStore(options, (changes) => console.log(changes.length));
 * stop();
 * ```
 */
export function followStore(
  options: FollowOptions,
  listener: (changes: TaskChange[]) => void,
): () => void {
  const heard = createRecent<number>(HEARD_MAX);
  const fresh = (id: string, version: number) => version > (heard.get(id) ?? -1);
  const pass = (changes: TaskChange[]) => {
    const news = changes.filter(({ task }) => fresh(task.id, task.version));
    for (const { task } of news) heard.set(task.id, task.version);
    if (news.length > 0) listener(news);
  };
  options.local.add(pass);

  // Notices are handled one after another, so views hear other nodes' changes in commit order.
  let chain = Promise.resolve();
  const hear = ({ told }: Notice) => {
    if (told.length > 0) {
      chain = chain.then(() => changesTold(told, options.read, fresh)).then(pass);
    }
  };
  options.remote.add(hear);
  return () => {
    options.local.delete(pass);
    options.remote.delete(hear);
  };
}

/** The changes a notice tells, with the records it did not carry read. */
async function changesTold(
  told: Told[],
  read: FollowOptions["read"],
  fresh: (id: string, version: number) => boolean,
): Promise<TaskChange[]> {
  const missing = told.filter((t) => !t.task && fresh(t.id, t.version)).map((t) => t.id);
  const records = missing.length === 0 ? new Map() : await read(missing).catch(() => undefined);
  if (!records) return []; // a change missed by the views, not by the store
  return told.flatMap(({ id, type, steps, version, task: carried }) => {
    const task = carried ?? records.get(id);
    return task?.version === version ? [{ type: type ?? undefined, task, steps }] : [];
  });
}
