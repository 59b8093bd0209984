/**
 * The api's side of the broker: its own link (a confirm channel to publish tasks, a channel for
 * dead-letter operations, the recorder of lifecycle events into the store), and what the routes
 * ask of it: whether a task can be admitted now, publishing it, the dead-letter operations, the
 * counts of a handler's queues.
 *
 * @module
 */

import type { Channel, ChannelModel, ConfirmChannel } from "amqplib";
import { bindChannel, openLink } from "../amqp/connection.ts";
import {
  publishCancelNote,
  publishConfirmed,
  publishEvent,
  publishEvents,
  publishTask,
} from "../amqp/publish.ts";
import {
  countQueues,
  declareAll,
  declareCallbacksQueue,
  migrateEventsQueue,
  type Probe,
  prober,
  type QueueSpec,
  type Topology,
} from "../amqp/topology.ts";
import { deliverCallbacks } from "../callback/deliver.ts";
import { resolveDns } from "../callback/destination.ts";
import { scheduleCallbacks } from "../callback/schedule.ts";
import { readSecret } from "../callback/signature.ts";
import type { Config } from "../config.ts";
import { errorMessage, logger } from "../log.ts";
import type { QueueCounts } from "../status.ts";
import type { TaskStore } from "../store/store.ts";
import type { StoreWriter } from "../store/writer.ts";
import { deadLetterOperations } from "./dead_letters.ts";
import type { ApiDeps } from "./deps.ts";
import { BusyError, UnavailableError } from "./errors.ts";
import { serveFiles } from "./file_server.ts";
import { serveKeys } from "./key_server.ts";
import { recordEvents } from "./recorder.ts";

/** One connection's channels. */
interface Session {
  pub: ConfirmChannel;
  /** For dead-letter operations only: they fetch, ack and put back letters. */
  dead: Channel;
  /** For checks of queues that may be missing. */
  probe: Probe;
}

/** What {@linkcode connectApiBroker} needs. */
export interface ApiBrokerOptions {
  config: Pick<
    Config,
    "amqpUrls" | "prefix" | "publishTimeoutMs" | "maxPending" | "callbacks" | "idempotencyTtlMs"
  >;
  names: Topology;
  /** The handlers: their queues (and subscriptions) are declared on every connect. */
  handlers: QueueSpec[];
  store: TaskStore;
  writer: StoreWriter;
  /** Whether Warren is shutting down (no task is admitted then). */
  stopping(): boolean;
}

/** The api's broker; see {@linkcode connectApiBroker}. */
export interface ApiBroker
  extends
    Pick<ApiDeps, "admit" | "enqueue" | "publish" | "cancel" | "recordLater" | "dead" | "inspect"> {
  /** Whether the link is up. */
  connected(): boolean;
  /** Whether the broker blocks publishers (a memory or disk alarm). */
  blocked(): boolean;
  /** Gives the recorder up to two seconds to take in the events the workers sent last. */
  drainEvents(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens the api's link; it connects in the background and reconnects by itself.
 *
 * @example
 * ```ts
 * declare const options: ApiBrokerOptions;
 * const broker = connectApiBroker(options);
 * broker.admit(); // throws while the broker is away
 * ```
 */
export function connectApiBroker(options: ApiBrokerOptions): ApiBroker {
  const { config, names, store, writer } = options;
  const log = logger("amqp");
  let pending = 0;
  const secret = config.callbacks.secret && readSecret(config.callbacks.secret);
  const key = secret instanceof Uint8Array ? secret : undefined;

  const link = openLink<Session>({
    urls: config.amqpUrls,
    name: `warren ${config.prefix} api`,
    log,
    setup: async (model) => {
      const pub = bindChannel(model, await model.createConfirmChannel(), log);
      const declarations = bindChannel(model, await model.createChannel(), log);
      const dead = bindChannel(model, await model.createChannel(), log);
      await declareAll(declarations, names, options.handlers);
      await declareCallbacksQueue(declarations, names);
      await moveLegacyEvents(model, pub, names, config.publishTimeoutMs);
      await startConsumers(model, pub, { ...options, key });
      return { pub, dead, probe: prober(model) };
    },
  });

  /** The live session if a task can be enqueued now; else throws why not. */
  const admit = (): Session => {
    if (options.stopping()) throw new UnavailableError("Warren is shutting down");
    const session = link.session();
    if (!session) throw new UnavailableError("not connected to the broker");
    if (link.blocked()) {
      throw new UnavailableError("the broker is blocking publishers (memory or disk alarm)");
    }
    if (pending >= config.maxPending) {
      throw new BusyError(`${pending} tasks await the broker's confirm (WARREN_MAX_PENDING)`);
    }
    return session;
  };

  /** Publishes what `send` sends if admitted, counting it as pending until confirmed. */
  const confirmed = async (
    id: { kind: "task" | "event"; id: string },
    send: (pub: ConfirmChannel) => Promise<void>,
  ) => {
    const session = admit();
    pending++;
    try {
      await send(session.pub);
    } catch (error) {
      throw new UnavailableError(errorMessage(error), id);
    } finally {
      pending--;
    }
  };

  const dead = deadLetterOperations({
    session: () => link.session(),
    names,
    store,
    writer,
    timeoutMs: config.publishTimeoutMs,
  });

  return {
    connected: () => link.session() !== undefined,
    blocked: () => link.blocked(),
    admit: () => void admit(),
    enqueue: (task, options) =>
      confirmed(
        { kind: "task", id: task.id },
        (pub) => publishTask(pub, names, task, config.publishTimeoutMs, options),
      ),
    publish: (event) =>
      confirmed(
        { kind: "event", id: event.id },
        (pub) => publishEvent(pub, names, event, config.publishTimeoutMs),
      ),
    async cancel(ids) {
      const session = link.session();
      if (!session) throw new UnavailableError("not connected to the broker");
      const note = { kind: "cancel" as const, ids, at: Date.now() };
      await publishCancelNote(session.pub, names, note, config.publishTimeoutMs).catch((error) => {
        throw new UnavailableError(`the cancel was not confirmed: ${errorMessage(error)}`);
      });
    },
    async recordLater(events) {
      const session = link.session();
      if (!session) throw new UnavailableError("not connected to the broker");
      await publishEvents(session.pub, names, events, config.publishTimeoutMs);
    },
    dead,
    async inspect(handler): Promise<QueueCounts | undefined> {
      const session = link.session();
      if (!session) return undefined;
      return await countQueues(session.probe, names, handler).catch(() => undefined);
    },
    async drainEvents() {
      const deadline = Date.now() + 2_000;
      while (Date.now() < deadline) {
        const probe = link.session()?.probe;
        const waiting = await probe?.((ch) => ch.checkQueue(names.eventsQueue))
          .then((reply) => reply.messageCount, () => 0);
        if (!waiting) return;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    close: () => link.close(),
  };
}

/**
 * Starts the api's consumers on a new connection, each on a channel of its own: the recorder of
 * lifecycle events (which schedules callbacks once a task's end is committed), the server of file
 * chunks, and, with a key to sign them, the deliverer of callbacks.
 */
async function startConsumers(
  model: ChannelModel,
  pub: ConfirmChannel,
  options: ApiBrokerOptions & { key: Uint8Array | undefined },
): Promise<void> {
  const { config, names, store, writer, key } = options;
  const channel = async () => bindChannel(model, await model.createChannel(), logger("amqp"));
  const timeoutMs = config.publishTimeoutMs;
  await recordEvents(await channel(), {
    writer,
    names,
    log: logger("recorder"),
    afterCommit: (recorded) =>
      scheduleCallbacks(pub, recorded, { names, store, signing: key !== undefined, timeoutMs }),
  });
  await serveFiles(await channel(), { names, store, log: logger("files") });
  await serveKeys(await channel(), {
    names,
    store,
    idempotency: idempotencySettings(config),
    log: logger("keys"),
  });
  if (!key) return;
  await deliverCallbacks(await channel(), {
    names,
    key,
    settings: config.callbacks,
    pub,
    resolve: resolveDns,
    timeoutMs,
    log: logger("callbacks"),
  });
}

/** Moves the events of an older Warren's classic events queue, if one is there (once). */
async function moveLegacyEvents(
  model: ChannelModel,
  pub: ConfirmChannel,
  names: Topology,
  timeoutMs: number,
): Promise<void> {
  const probe = await model.createChannel();
  probe.on("error", () => {}); // checking a missing queue closes the probe: that is the answer
  const moved = await migrateEventsQueue(
    probe,
    names,
    (message) =>
      publishConfirmed(pub, "", names.eventsQueue, message.content, {
        contentType: message.properties.contentType,
        type: message.properties.type,
        persistent: message.properties.deliveryMode === 2,
      }, timeoutMs),
  );
  if (moved !== undefined) {
    logger("amqp").warn(
      "moved {moved} event message(s) from the classic queue of an older Warren to the " +
        "quorum queue {queue}, and deleted the classic one",
      { moved, queue: names.eventsQueue },
    );
  }
}

/**
 * How long idempotency keys live, and how long a claim holds one: longer than the publish it
 * covers (its confirm's deadline), with room to spare.
 *
 * @example
 * ```ts
 * idempotencySettings({ idempotencyTtlMs: 86_400_000, publishTimeoutMs: 5000 }).leaseMs; // 15000
 * ```
 */
export function idempotencySettings(
  config: Pick<Config, "idempotencyTtlMs" | "publishTimeoutMs">,
): { ttlMs: number; leaseMs: number } {
  return { ttlMs: config.idempotencyTtlMs, leaseMs: 2 * config.publishTimeoutMs + 5_000 };
}
