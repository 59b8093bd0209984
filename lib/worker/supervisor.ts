/**
 * The supervisor: starts each handler's Web Workers, restarts a worker that dies (with backoff),
 * tells the api which handlers are consuming, and stops them all gracefully.
 *
 * @module
 */

import type { HandlerInfo } from "../handler.ts";
import { logger, type LogOptions } from "../log.ts";
import type { FromWorker, ToWorker } from "./protocol.ts";

/** How one handler's workers are doing. */
export interface WorkerStatus {
  handler: string;
  /** Workers configured. */
  workers: number;
  /** Workers whose consumer is up right now. */
  consuming: number;
  /** Workers replaced after they died, since start. */
  restarts: number;
  /** Why the last worker died or could not start. */
  lastError: string | undefined;
}

/** The running set of workers; see {@linkcode startSupervisor}. */
export interface Supervisor {
  status(): WorkerStatus[];
  /** Stops consuming, waits up to `graceMs` for in-flight tasks, then terminates every worker. */
  stop(graceMs: number): Promise<void>;
}

/** Options of {@linkcode startSupervisor}. */
export interface SupervisorOptions {
  handlers: HandlerInfo[];
  amqpUrl: string;
  prefix: string;
  log: LogOptions;
}

interface Slot {
  handler: HandlerInfo;
  index: number;
  worker: Worker | undefined;
  consuming: boolean;
  failures: number;
  restartTimer: ReturnType<typeof setTimeout> | undefined;
  stopped: (() => void) | undefined;
}

const ENTRY = new URL("./entry.ts", import.meta.url).href;
const RESTART_MIN_MS = 500;
const RESTART_MAX_MS = 30_000;

/**
 * Starts `config.workers` Web Workers for every handler.
 *
 * @example
 * ```ts
 * const supervisor = startSupervisor({ handlers, amqpUrl, prefix: "warren", log });
 * // ... later
 * await supervisor.stop(30_000);
 * ```
 */
export function startSupervisor(options: SupervisorOptions): Supervisor {
  const log = logger("supervisor");
  const restarts = new Map<string, number>();
  const lastErrors = new Map<string, string>();
  const slots: Slot[] = options.handlers.flatMap((handler) =>
    Array.from({ length: handler.config.workers }, (_, index) => ({
      handler,
      index,
      worker: undefined,
      consuming: false,
      failures: 0,
      restartTimer: undefined,
      stopped: undefined,
    }))
  );
  let stopping = false;

  const spawn = (slot: Slot) => {
    const name = `${slot.handler.name}#${slot.index}`;
    const worker = new Worker(ENTRY, { type: "module", name });
    slot.worker = worker;
    worker.onmessage = (event: MessageEvent<FromWorker>) => {
      const message = event.data;
      switch (message.type) {
        case "consuming":
          slot.consuming = true;
          slot.failures = 0;
          break;
        case "disconnected":
          slot.consuming = false;
          break;
        case "fatal":
          replace(slot, message.error);
          break;
        case "stopped":
          slot.stopped?.();
          break;
      }
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault(); // an uncaught error in a handler must not take down the process
      replace(slot, event.message);
    };
    const start: ToWorker = {
      type: "start",
      handler: slot.handler,
      handlers: options.handlers.map((h) => h.name),
      amqpUrl: options.amqpUrl,
      prefix: options.prefix,
      index: slot.index,
      log: options.log,
    };
    worker.postMessage(start);
  };

  const replace = (slot: Slot, reason: string) => {
    slot.worker?.terminate();
    slot.worker = undefined;
    slot.consuming = false;
    const name = slot.handler.name;
    lastErrors.set(name, reason);
    if (stopping) return slot.stopped?.();
    const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** slot.failures++);
    log.error("worker {worker} died ({reason}); restarting in {delay} ms", {
      worker: `${name}#${slot.index}`,
      reason,
      delay,
    });
    restarts.set(name, (restarts.get(name) ?? 0) + 1);
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (!stopping) spawn(slot);
    }, delay);
  };

  slots.forEach(spawn);

  return {
    status: () =>
      options.handlers.map((handler) => {
        const mine = slots.filter((slot) => slot.handler === handler);
        return {
          handler: handler.name,
          workers: mine.length,
          consuming: mine.filter((slot) => slot.consuming).length,
          restarts: restarts.get(handler.name) ?? 0,
          lastError: lastErrors.get(handler.name),
        };
      }),

    async stop(graceMs: number) {
      stopping = true;
      await Promise.all(slots.map(async (slot) => {
        clearTimeout(slot.restartTimer);
        const worker = slot.worker;
        if (!worker) return;
        let timer: ReturnType<typeof setTimeout> | undefined;
        await new Promise<void>((resolve) => {
          slot.stopped = resolve;
          timer = setTimeout(resolve, graceMs);
          worker.postMessage({ type: "stop" } satisfies ToWorker);
        });
        clearTimeout(timer);
        worker.terminate();
        slot.worker = undefined;
        slot.consuming = false;
      }));
    },
  };
}
