/**
 * Topics and subscriptions: the names events are published under (`order.created`), the AMQP
 * topic patterns handlers subscribe with (`order.*`, `order.#`), and which handlers an event
 * reaches. The broker routes by the same rules (`<prefix>.topics` in `amqp/topology.ts`); the api
 * applies them itself to answer a publish with the tasks it made.
 *
 * A topic is one or more words joined by dots, each word letters, digits, `_` or `-`, at most 255
 * bytes in all. A pattern is the same, where a word may also be `*` (exactly one word) or `#`
 * (zero or more words).
 *
 * @module
 */

const WORD = /^[A-Za-z0-9_-]+$/;
/** AMQP's limit on a routing key (a short string). */
const MAX_BYTES = 255;

/**
 * What is wrong with a topic, or undefined when it is one.
 *
 * @example
 * ```ts
 * topicProblem("order.created"); // undefined
 * topicProblem("order.*"); // 'a topic is words joined by dots …'
 * ```
 */
export function topicProblem(topic: string): string | undefined {
  return checkWords(topic, (word) => WORD.test(word)) ? undefined : `a topic is words joined by ` +
    `dots, each of letters, digits, "_" or "-", at most ${MAX_BYTES} bytes (got "${topic}")`;
}

/**
 * What is wrong with a subscription pattern, or undefined when it is one.
 *
 * @example
 * ```ts
 * patternProblem("order.#"); // undefined
 * patternProblem("order..x"); // 'a pattern is words joined by dots …'
 * ```
 */
export function patternProblem(pattern: string): string | undefined {
  const ok = checkWords(pattern, (word) => word === "*" || word === "#" || WORD.test(word));
  return ok ? undefined : `a pattern is words joined by dots, each of letters, digits, "_" ` +
    `or "-", or "*" (one word) or "#" (any words), at most ${MAX_BYTES} bytes (got "${pattern}")`;
}

function checkWords(text: string, word: (w: string) => boolean): boolean {
  return text.length > 0 && new TextEncoder().encode(text).length <= MAX_BYTES &&
    text.split(".").every(word);
}

/**
 * Whether `topic` matches `pattern`, by AMQP's topic rules.
 *
 * @example
 * ```ts
 * matches("order.*", "order.created"); // true
 * matches("order.#", "order"); // true
 * matches("*.created", "order.paid"); // false
 * ```
 */
export function matches(pattern: string, topic: string): boolean {
  const words = topic.split(".");
  // reach[t]: whether the pattern's words so far can match the topic's first t words.
  let reach = Array.from({ length: words.length + 1 }, (_, t) => t === 0);
  for (const word of pattern.split(".")) {
    const next = new Array<boolean>(words.length + 1).fill(false);
    for (let t = 0; t <= words.length; t++) {
      if (word === "#") next[t] = reach[t] || (t > 0 && next[t - 1]);
      else if (t > 0) next[t] = reach[t - 1] && (word === "*" || word === words[t - 1]);
    }
    reach = next;
  }
  return reach[words.length];
}

/**
 * The handlers an event of `topic` reaches: those with a pattern that matches it, in the order
 * given.
 *
 * @example
 * ```ts
 * subscribersOf([{ name: "email", subscribe: ["order.*"] }], "order.created"); // ["email"]
 * ```
 */
export function subscribersOf(
  handlers: { name: string; subscribe: readonly string[] }[],
  topic: string,
): string[] {
  return handlers.filter((h) => h.subscribe.some((p) => matches(p, topic))).map((h) => h.name);
}
