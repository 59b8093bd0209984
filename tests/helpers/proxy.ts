/**
 * A TCP proxy for fault injection: Warren talks to the broker through it, and a test cuts the
 * connections or refuses new ones on command.
 *
 * @module
 */

/** A running proxy; see {@linkcode startProxy}. */
export interface Proxy {
  /** The port to point AMQP_URL at (on 127.0.0.1). */
  port: number;
  /** Closes every open connection, as a network failure would. */
  cut(): void;
  /** Cuts, and refuses new connections until {@linkcode Proxy.resume}. */
  pause(): void;
  /** Accepts connections again, and lets stalled bytes flow. */
  resume(): void;
  /** Keeps connections open but stops forwarding bytes, as a hung network would. */
  stall(): void;
  /**
   * Holds back only what the broker sends (deliveries, confirms, heartbeats) until
   * {@linkcode Proxy.resume}, while what clients send still flows.
   */
  holdDownstream(): void;
  /** Delays every chunk the broker sends by `ms` (0 for none), as a slow network would. */
  latency(ms: number): void;
  /** Stops the proxy and closes all it holds. */
  close(): Promise<void>;
}

/**
 * Starts a proxy on a free loopback port to `target`.
 *
 * @example
 * ```ts
 * const proxy = startProxy({ hostname: "127.0.0.1", port: 5672 });
 * const url = `amqp://guest:guest@127.0.0.1:${proxy.port}`;
 * ```
 */
export function startProxy(target: { hostname: string; port: number }): Proxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const pipes = new Set<Promise<unknown>>();
  let paused = false;
  let gate: PromiseWithResolvers<void> | undefined;
  let downstreamGate: PromiseWithResolvers<void> | undefined;
  let delayMs = 0;

  /**
   * Copies bytes from one side to the other, waiting at the gates while stalled (and, from the
   * broker, for the latency).
   */
  const pump = async (from: Deno.Conn, to: Deno.Conn, downstream: boolean) => {
    const buffer = new Uint8Array(64 * 1024);
    while (true) {
      const n = await from.read(buffer);
      if (n === null) return;
      while (gate || (downstream && downstreamGate)) {
        await (gate ?? downstreamGate)!.promise;
      }
      if (downstream && delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      let written = 0;
      while (written < n) written += await to.write(buffer.subarray(written, n));
    }
  };

  const close = (conn: Deno.Conn) => {
    if (!open.delete(conn)) return;
    try {
      conn.close();
    } catch {
      // already closed
    }
  };

  const accepting = (async () => {
    for await (const client of listener) {
      if (paused) {
        client.close();
        continue;
      }
      open.add(client);
      const piping = Deno.connect(target).then((upstream) => {
        open.add(upstream);
        const pair = () => {
          close(client);
          close(upstream);
        };
        return Promise.allSettled([
          pump(client, upstream, false).finally(pair),
          pump(upstream, client, true).finally(pair),
        ]);
      }).catch(() => close(client));
      pipes.add(piping);
      piping.finally(() => pipes.delete(piping));
    }
  })().catch(() => {});

  const cut = () => [...open].forEach(close);
  return {
    port: (listener.addr as Deno.NetAddr).port,
    cut,
    pause() {
      paused = true;
      cut();
    },
    resume() {
      paused = false;
      gate?.resolve();
      gate = undefined;
      downstreamGate?.resolve();
      downstreamGate = undefined;
    },
    stall() {
      gate ??= Promise.withResolvers<void>();
    },
    holdDownstream() {
      downstreamGate ??= Promise.withResolvers<void>();
    },
    latency(ms) {
      delayMs = ms;
    },
    async close() {
      gate?.resolve();
      gate = undefined;
      downstreamGate?.resolve();
      downstreamGate = undefined;
      listener.close();
      cut();
      await accepting;
      await Promise.allSettled([...pipes]);
    },
  };
}

/**
 * A proxy in front of the broker of an AMQP URL; `url` is the same URL pointed at the proxy.
 *
 * @example
 * ```ts
 * const proxy = brokerProxy("amqp://guest:guest@localhost:5672");
 * // start Warren with AMQP_URL = proxy.url, then proxy.cut()
 * ```
 */
export function brokerProxy(amqpUrl: string): Proxy & { url: string } {
  const broker = new URL(amqpUrl);
  const proxy = startProxy({ hostname: broker.hostname, port: Number(broker.port || 5672) });
  const url = new URL(amqpUrl);
  url.hostname = "127.0.0.1";
  url.port = String(proxy.port);
  return { ...proxy, url: url.toString() };
}
