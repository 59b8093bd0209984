/**
 * Which other processes share the PostgreSQL store. A store tells its commits (NOTIFY) only
 * while it hears another one, so one api process alone does not pay for notices nobody reads (a
 * tenth of the CPU a task costs). Each store says hello on the channel when it starts listening
 * and every few seconds, and answers the first word it hears from a store it does not know, so
 * two stores know each other within a round trip of the later one's start. (What the others
 * commit in that round trip, the newcomer's views do not hear: a task's SSE reads the store again
 * at its next keep-alive.)
 *
 * @module
 */

/** A store says hello this often… */
const HELLO_MS = 5_000;
/** …and another store counts as gone when it said nothing for this long. */
const GONE_MS = 3 * HELLO_MS;

/** See {@linkcode createPeers}. */
export interface Peers {
  /** Whether another store was heard lately. */
  present(): boolean;
  /** Notes that `from` said something; answers a store it did not know. */
  heard(from: string): void;
  /** Says hello now and every few seconds: call it once the store listens. */
  greet(): void;
  /** Stops saying hello. */
  stop(): void;
}

/**
 * Keeps track of who else says hello, and says it through `hello` once greeting.
 *
 * @example
 * ```ts
 * const peers = createPeers(() => Promise.resolve());
 * peers.greet();
 * peers.heard("another-store");
 * peers.present(); // true
 * peers.stop();
 * ```
 */
export function createPeers(hello: () => Promise<void>): Peers {
  const lastHeard = new Map<string, number>();
  const say = () => void hello().catch(() => {}); // the next hello tries again
  let timer: ReturnType<typeof setInterval> | undefined;
  return {
    present() {
      const now = Date.now();
      for (const [from, at] of lastHeard) if (now - at > GONE_MS) lastHeard.delete(from);
      return lastHeard.size > 0;
    },
    heard(from) {
      const known = lastHeard.has(from);
      lastHeard.set(from, Date.now());
      if (!known) say();
    },
    greet() {
      timer ??= setInterval(say, HELLO_MS);
      say();
    },
    stop: () => clearInterval(timer),
  };
}
