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
import { basename } from "node:path";
import { brokerHosts, deniedAdvice, workerPermissions } from "../permissions.ts";
import { createBoard, readBoard } from "./board.ts";
import { createDeadlines } from "./deadlines.ts";
import { createHealth } from "./health.ts";
import { createLedger, taskOfKey } from "./ledger.ts";
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
  amqpUrls: string[];
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
  /** The board of handler calls the current worker shares (see `board.ts`). */
  board: SharedArrayBuffer | undefined;
  /** Calls the current worker announced by message (its board was full), not yet returned. */
  announced: Set<string>;
}

/**
 * How long a handler may go on after its timeout or its cancel (and `ctx.signal`) before its
 * worker is ended.
 */
export const KILL_GRACE_MS = 2_000;

const ENTRY = new URL("./entry.ts", import.meta.url).href;
/** How often the boards are read for calls past their deadline. */
const SCAN_MS = 100;

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
 *   amqpUrls: ["amqp://guest:guest@localhost:5672"],
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
  const health = createHealth();
  const deadlines = createDeadlines();
  let owners = 0;
  let stopping = false;
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
      board: undefined,
      announced: new Set<string>(),
    }))
  );

  const broker = brokerHosts(options.amqpUrls);

  /** Starts a slot's worker, under a new owner number, and hands it what it runs. */
  const spawn = (slot: Slot) => {
    const worker = new Worker(workerModule(slot.handler), {
      type: "module",
      name: `${slot.handler.name}#${slot.index}`,
      deno: { permissions: workerPermissions(slot.handler.config.permissions, broker) },
    });
    const owner = ++owners;
    // A slot for every delivery it may hold, and as many for calls that outlive their timeout.
    const board = createBoard(2 * slot.handler.config.prefetch + 8);
    Object.assign(slot, { worker, owner, board, announced: new Set<string>() });
    const alive = () => slot.owner === owner; // false once the worker was replaced
    worker.onmessage = (event: MessageEvent<FromWorker>) => {
      if (alive()) onMessage(slot, owner, event.data);
    };
    worker.onerror = (event: ErrorEvent) => {
      event.preventDefault(); // an uncaught error in a handler must not take down the process
      if (alive()) {
        replace(slot, deniedAdvice(event.message, basename(slot.handler.file)) ?? event.message);
      }
    };
    worker.postMessage(
      {
        type: "start",
        handler: slot.handler,
        handlers: options.handlers.map((h) => ({
          name: h.name,
          schema: h.config.schema,
          subscribe: h.config.subscribe,
          idempotencyKey: h.config.idempotencyKey,
        })),
        maxBodyBytes: options.maxBodyBytes,
        amqpUrls: options.amqpUrls,
        prefix: options.prefix,
        index: slot.index,
        log: options.log,
        board,
      } satisfies ToWorker,
    );
  };

  /** What a worker says: its state, its attempts (for the ledger and the deadlines), its end. */
  const onMessage = (slot: Slot, owner: number, message: FromWorker) => {
    switch (message.type) {
      case "consuming":
        // Backoff is for workers that cannot start; a worker killed by a task restarts soon
        // (the ledger bounds how often any one task may do that).
        Object.assign(slot, { consuming: true, failures: 0 });
        return;
      case "disconnected":
        slot.consuming = false;
        return;
      case "started":
        if (stopping) return; // the shutdown grace bounds it now
        slot.announced.add(message.key);
        return deadlines.arm(message.key, message.timeoutMs + KILL_GRACE_MS, () => {
          replace(slot, overran(message.timeoutMs), message.key);
        });
      case "cancelling":
        return endAfterGrace(slot, message.key);
      case "cancels":
        return endCancelled(new Set(message.ids));
      case "returned":
        slot.announced.delete(message.key);
        return deadlines.clear(message.key);
      case "exit":
        return replace(slot, message.reason);
      case "fatal":
        return replace(slot, message.error);
      case "stopped":
        return slot.stopped?.();
      case "batch":
        for (const each of message.messages) if (slot.owner === owner) onMessage(slot, owner, each);
        return;
      default:
        return toLedger(slot, owner, message);
    }
  };

  /** The ledger's part of the protocol: begin, claim (answered), decided, settled. */
  const toLedger = (
    slot: Slot,
    owner: number,
    message: Extract<FromWorker, { type: "begin" | "claim" | "decided" | "settled" }>,
  ) => {
    switch (message.type) {
      case "begin":
        return ledger.begin(message.key, owner);
      case "decided":
        return ledger.decide(message.key, message.event);
      case "settled":
        return ledger.settle(message.key);
      case "claim":
        ledger.claim(message.key, owner).then((verdict) => {
          const verdictMessage: ToWorker = { type: "verdict", ref: message.ref, verdict };
          if (slot.owner === owner) slot.worker?.postMessage(verdictMessage);
          // The worker died while its claim waited: the attempt is not its to hold.
          else ledger.died(owner, () => undefined);
        });
    }
  };

  /**
   * Ends the worker of `slot` unless the attempt `key` it runs returns within the grace (or its
   * time limit ends it sooner).
   */
  const endAfterGrace = (slot: Slot, key: string) => {
    if (stopping) return; // the shutdown grace bounds it now
    deadlines.arm(key, KILL_GRACE_MS, () => {
      if (!inHandler(slot, key)) return; // it returned, or never called its handler
      const reason = `cancelled, and did not stop within ${KILL_GRACE_MS} ms of ctx.signal ` +
        "aborting; its worker was terminated";
      replace(slot, reason, key);
    });
  };

  /** Whether the worker of `slot` is in the handler call of attempt `key`. */
  const inHandler = (slot: Slot, key: string) =>
    slot.announced.has(key) ||
    (slot.board !== undefined && readBoard(slot.board).some((call) => call.key === key));

  /** Ends the worker of `slot` when a call on its board is past its deadline and the grace. */
  const endOverrun = (slot: Slot) => {
    if (!slot.worker || !slot.board) return;
    const [late] = readBoard(slot.board, Date.now() - KILL_GRACE_MS);
    if (late) replace(slot, overran(slot.handler.config.timeoutMs), late.key);
  };

  /**
   * Arms the grace of each running attempt of a cancelled task. Its own worker arms it too when
   * it hears the cancel; a handler that blocks its thread never lets it, so every worker tells.
   */
  const endCancelled = (ids: Set<string>) => {
    for (const slot of slots) {
      for (const key of ledger.running(slot.owner)) {
        if (ids.has(taskOfKey(key))) endAfterGrace(slot, key);
      }
    }
  };

  /**
   * Ends a slot's worker and starts another after a backoff. `culprit` names the attempt that
   * overran its timeout: only it counts as failed, the others of the worker run again.
   */
  const replace = (slot: Slot, reason: string, culprit?: string) => {
    slot.worker?.terminate();
    const owner = slot.owner;
    Object.assign(slot, { worker: undefined, owner: 0, consuming: false });
    for (const key of ledger.running(owner)) deadlines.clear(key);
    ledger.died(
      owner,
      (key) =>
        culprit === undefined
          ? `its worker died while running it: ${reason}`
          : key === culprit
          ? reason
          : undefined,
    );
    health.died(slot.handler.name, reason, !stopping);
    if (stopping) return slot.stopped?.();
    const delay = backoffMs(++slot.failures, RESTART_BACKOFF, NO_JITTER);
    log.error("worker {worker} died ({reason}); restarting in {delay} ms", {
      worker: `${slot.handler.name}#${slot.index}`,
      reason,
      delay,
    });
    slot.restartTimer = setTimeout(() => {
      slot.restartTimer = undefined;
      if (!stopping) spawn(slot);
    }, delay);
  };

  slots.forEach(spawn);
  const scanner = setInterval(() => {
    if (!stopping) slots.forEach(endOverrun);
  }, SCAN_MS);

  return {
    status: () =>
      options.handlers.map((handler) => {
        const mine = slots.filter((slot) => slot.handler === handler);
        return {
          handler: handler.name,
          workers: mine.length,
          consuming: mine.filter((slot) => slot.consuming).length,
          ...health.of(handler.name),
        };
      }),

    async stop(graceMs: number) {
      stopping = true;
      clearInterval(scanner);
      deadlines.clearAll();
      await Promise.all(slots.map((slot) => stopSlot(slot, graceMs)));
    },
  };
}

/**
 * The module a handler's Web Worker starts from: Warren's worker entry and the handler, both
 * imported statically, so the sandbox needs no read permission to load them (a dynamic import of
 * a file would), and handed to each other.
 */
function workerModule(handler: HandlerInfo): string {
  const source = `import { provide } from ${JSON.stringify(ENTRY)};\n` +
    `import * as handler from ${JSON.stringify(handler.moduleUrl)};\n` +
    "provide(handler);\n";
  return `data:application/javascript;base64,${btoa(source)}`;
}

/** Asks a slot's worker to stop, waits up to `graceMs` for it, then terminates it. */
async function stopSlot(slot: Slot, graceMs: number): Promise<void> {
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
  Object.assign(slot, { worker: undefined, owner: 0, consuming: false });
}

/** Why a worker was ended whose handler overran a time limit of `timeoutMs`. */
function overran(timeoutMs: number): string {
  return `timed out after ${timeoutMs} ms and did not stop within ${KILL_GRACE_MS} ms of ` +
    "ctx.signal aborting; its worker was terminated";
}
