/**
 * The supervisor: starts each handler's Web Workers, keeps the ledger of their runs, terminates a
 * worker whose handler overran its timeout, restarts a worker that dies (with backoff), tells the
 * api which handlers are consuming or keep dying, and stops them all gracefully.
 *
 * @module
 */

import { backoffMs, NO_JITTER } from "../backoff.ts";
import type { HandlerInfo } from "../handler.ts";
import type { WorkerStatus } from "../status.ts";
import { logger, type LogOptions } from "../log.ts";
import { createLedger } from "./ledger.ts";
import type { FromWorker, ToWorker } from "./protocol.ts";

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
  /** Largest payload a delivery may carry (`WARREN_MAX_BODY`). */
  maxBodyBytes: number;
  log: LogOptions;
}

interface Slot {
  handler: HandlerInfo;
  index: number;
  worker: Worker | undefined;
  /** Names the current worker in the ledger (a new number for every worker started). */
  owner: number;
  consuming: boolean;
  failures: number;
  restartTimer: ReturnType<typeof setTimeout> | undefined;
  stopped: (() => void) | undefined;
}

/** How long a handler may go on after its timeout (and `ctx.signal`) before its worker is ended. */
export const KILL_GRACE_MS = 2_000;
/**
 * Deaths within a minute that make a handler "crash looping" (`WorkerStatus.crashLooping`) in
 * /readyz and /handlers.
 */
export const CRASH_LOOP_DEATHS = 3;

const ENTRY = new URL("./entry.ts", import.meta.url).href;
/** How long a dead worker waits before it is started again: 0.5 s, doubling to 30 s. */
const RESTART_BACKOFF = { minMs: 500, maxMs: 30_000 };

/**
 * Starts `config.workers` Web Workers for every handler.
 *
 * @example
 * ```ts
 * import { discoverHandlers } from "../discover.ts";
 * const supervisor = startSupervisor({
 *   handlers: await discoverHandlers("./handlers"),
 *   amqpUrl: "amqp://guest:guest@localhost:5672",
 *   prefix: "warren",
 *   maxBodyBytes: 1 << 20,
 *   log: { level: "info", format: "text", secrets: [] },
 * });
 * // … later
 * await supervisor.stop(30_000);
 * ```
 */
export function startSupervisor(options: SupervisorOptions): Supervisor {
  const log = logger("supervisor");
  const ledger = createLedger();
  const restarts = new Map<string, number>();
  const deaths = new Map<string, number[]>();
  const lastErrors = new Map<string, string>();
  /** Hard deadlines of running attempts, by key. */
  const deadlines = new Map<string, ReturnType<typeof setTimeout>>();
  let owners = 0;
  const slots: Slot[] = options.handlers.flatMap((handler) =>
    Array.from({ length: handler.config.workers }, (_, index) => ({
      handler,
      index,
      worker: undefined,
      owner: 0,
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
    const owner = ++owners;
    slot.worker = worker;
    slot.owner = owner;
    const send = (message: ToWorker) => {
      if (slot.owner === owner) worker.postMessage(message);
    };
    worker.onmessage = (event: MessageEvent<FromWorker>) => {
      if (slot.owner !== owner) return; // a message from a worker already replaced
      const message = event.data;
      switch (message.type) {
        case "consuming":
          slot.consuming = true;
          // Backoff is for workers that cannot start; a worker killed by a task restarts soon
          // (the ledger bounds how often any one task may do that).
          slot.failures = 0;
          break;
        case "disconnected":
          slot.consuming = false;
          break;
        case "begin":
          ledger.begin(message.key, owner);
          break;
        case "claim":
          ledger.claim(message.key, owner).then((verdict) => {
            if (slot.owner === owner) send({ type: "verdict", ref: message.ref, verdict });
            // The worker died while its claim waited: the attempt is not its to hold.
            else ledger.died(owner, () => undefined);
          });
          break;
        case "started": {
          if (stopping) break; // the shutdown grace bounds it now
          const limit = message.timeoutMs;
          deadlines.set(
            message.key,
            setTimeout(() => {
              deadlines.delete(message.key);
              const reason = `timed out after ${limit} ms and did not stop within ` +
                `${KILL_GRACE_MS} ms of ctx.signal aborting; its worker was terminated`;
              replace(slot, reason, message.key);
            }, limit + KILL_GRACE_MS),
          );
          break;
        }
        case "returned":
          clearTimeout(deadlines.get(message.key));
          deadlines.delete(message.key);
          break;
        case "decided":
          ledger.decide(message.key, message.event);
          break;
        case "settled":
          ledger.settle(message.key);
          break;
        case "exit":
          replace(slot, message.reason);
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
      if (slot.owner === owner) replace(slot, event.message);
    };
    send({
      type: "start",
      handler: slot.handler,
      handlers: options.handlers.map((h) => ({ name: h.name, schema: h.config.schema })),
      maxBodyBytes: options.maxBodyBytes,
      amqpUrl: options.amqpUrl,
      prefix: options.prefix,
      index: slot.index,
      log: options.log,
    });
  };

  /**
   * Ends a slot's worker and starts another after a backoff. `culprit` names the attempt that
   * overran its timeout: only it counts as failed, the others of the worker run again.
   */
  const replace = (slot: Slot, reason: string, culprit?: string) => {
    slot.worker?.terminate();
    slot.worker = undefined;
    slot.consuming = false;
    const owner = slot.owner;
    slot.owner = 0;
    for (const key of ledger.running(owner)) {
      clearTimeout(deadlines.get(key));
      deadlines.delete(key);
    }
    ledger.died(
      owner,
      (key) =>
        culprit === undefined
          ? `its worker died while running it: ${reason}`
          : key === culprit
          ? reason
          : undefined,
    );
    const name = slot.handler.name;
    lastErrors.set(name, reason);
    if (stopping) return slot.stopped?.();
    const now = Date.now();
    deaths.set(name, [...(deaths.get(name) ?? []).filter((at) => at > now - 60_000), now]);
    const delay = backoffMs(++slot.failures, RESTART_BACKOFF, NO_JITTER);
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
        const recent = (deaths.get(handler.name) ?? []).filter((at) => at > Date.now() - 60_000);
        return {
          handler: handler.name,
          workers: mine.length,
          consuming: mine.filter((slot) => slot.consuming).length,
          restarts: restarts.get(handler.name) ?? 0,
          crashLooping: recent.length >= CRASH_LOOP_DEATHS,
          lastError: lastErrors.get(handler.name),
        };
      }),

    async stop(graceMs: number) {
      stopping = true;
      for (const timer of deadlines.values()) clearTimeout(timer);
      deadlines.clear();
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
        slot.owner = 0;
        slot.consuming = false;
      }));
    },
  };
}
