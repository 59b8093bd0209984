/**
 * The rules every payload meets, whoever sends it (a POST, a handler's `ctx.enqueue`, any AMQP
 * client): at most `WARREN_MAX_BODY` bytes, JSON (an empty body is `{}`), nested at most
 * {@linkcode MAX_DEPTH} levels, and matching its handler's schema. The api answers a broken rule
 * with a 4xx; a worker ends such a delivery `dead` at once, without running the handler.
 *
 * @module
 */

import { describeViolations, type SchemaViolation, type Validator } from "./schema.ts";

/**
 * Deepest nesting of arrays and objects a payload, result or progress value may have (as
 * serde_json's default). Deeper JSON overflows the stack of recursive readers and writers
 * (`JSON.stringify`, structured clone) somewhere between the producer and a reader.
 */
export const MAX_DEPTH = 128;

/** Why a payload is refused, and the words to say it with. */
export interface PayloadRefusal {
  kind: "too-large" | "not-json" | "too-deep" | "schema";
  detail: string;
  /** For `schema`: each violation. */
  violations?: SchemaViolation[];
}

/** A payload read, or why it cannot be. */
export type PayloadCheck = { ok: true; payload: unknown } | { ok: false; refusal: PayloadRefusal };

const decoder = new TextDecoder();

/**
 * Reads a payload from its bytes and checks it against the rules.
 *
 * @example
 * ```ts
 * const check = readPayload(new TextEncoder().encode('{"n":1}'), { maxBytes: 1024 });
 * if (check.ok) console.log(check.payload); // { n: 1 }
 * ```
 */
export function readPayload(
  bytes: Uint8Array,
  rules: { maxBytes: number; validate?: Validator },
): PayloadCheck {
  if (bytes.byteLength > rules.maxBytes) {
    return refuse(
      "too-large",
      `the payload of ${bytes.byteLength} bytes is over the limit of ${rules.maxBytes} bytes ` +
        "(WARREN_MAX_BODY)",
    );
  }
  const text = decoder.decode(bytes);
  if (tooDeep(text, MAX_DEPTH)) {
    return refuse(
      "too-deep",
      `the payload nests arrays or objects deeper than ${MAX_DEPTH} levels`,
    );
  }
  let payload: unknown;
  try {
    payload = text.trim() === "" ? {} : JSON.parse(text);
  } catch (error) {
    return refuse("not-json", `the payload is not valid JSON: ${(error as Error).message}`);
  }
  const violations = rules.validate?.(payload) ?? [];
  if (violations.length > 0) {
    return {
      ok: false,
      refusal: {
        kind: "schema",
        detail: describeViolations(violations),
        violations,
      },
    };
  }
  return { ok: true, payload };
}

/**
 * A JSON copy of a value a handler hands over (a result, progress, a payload for
 * `ctx.enqueue`): `undefined` is `null`; throws when the value cannot be JSON (BigInt, a cycle)
 * or nests deeper than {@linkcode MAX_DEPTH}.
 *
 * @example
 * ```ts
 * toJson({ at: new Date(0) }); // { at: "1970-01-01T00:00:00.000Z" }
 * ```
 */
export function toJson(value: unknown): unknown {
  if (value === undefined) return null;
  const text = JSON.stringify(value);
  if (text === undefined) return null;
  if (tooDeep(text, MAX_DEPTH)) {
    throw new RangeError(`the value nests arrays or objects deeper than ${MAX_DEPTH} levels`);
  }
  return JSON.parse(text);
}

/**
 * Whether a JSON text nests arrays and objects deeper than `limit`: one pass over the text,
 * brackets inside strings left out. (Text that is not JSON may pass; the parser refuses it.)
 */
export function tooDeep(text: string, limit: number): boolean {
  if (text.length <= limit) return false; // too short to hold limit + 1 brackets
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return false;
}

function refuse(kind: PayloadRefusal["kind"], detail: string): PayloadCheck {
  return { ok: false, refusal: { kind, detail } };
}
