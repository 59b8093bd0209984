/**
 * Signing callbacks as the Standard Webhooks specification says: the headers `webhook-id` (the
 * same on every retry, so receivers can drop repeats), `webhook-timestamp` (seconds) and
 * `webhook-signature` (`v1,` and the base64 HMAC-SHA256 of `id.timestamp.body` under the key the
 * `whsec_…` secret encodes). Any Standard Webhooks library verifies them.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHmac } from "node:crypto";

/** The prefix of a Standard Webhooks secret. */
const PREFIX = "whsec_";

/**
 * Reads a `whsec_<base64>` secret into its key; returns what is wrong as a string.
 *
 * @example
 * ```ts
 * readSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"); // Uint8Array(24)
 * readSecret("hunter2"); // 'WARREN_WEBHOOK_SECRET must be …'
 * ```
 */
export function readSecret(text: string): Uint8Array | string {
  const problem = "WARREN_WEBHOOK_SECRET must be a Standard Webhooks secret: whsec_ and the " +
    "base64 of 24 to 64 random bytes (e.g. `echo whsec_$(openssl rand -base64 32)`)";
  if (!text.startsWith(PREFIX)) return problem;
  const base64 = text.slice(PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) return problem;
  const key = new Uint8Array(Buffer.from(base64, "base64"));
  return key.length >= 24 && key.length <= 64 ? key : problem;
}

/**
 * The headers that sign `body` as message `id` at `timestamp` (seconds).
 *
 * @example
 * ```ts
 * const key = readSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw") as Uint8Array;
 * signatureHeaders(key, "t-1.0", 1_700_000_000, '{"id":"t-1"}')["webhook-signature"]; // "v1,…"
 * ```
 */
export function signatureHeaders(
  key: Uint8Array,
  id: string,
  timestamp: number,
  body: string,
): Record<string, string> {
  const signature = createHmac("sha256", key).update(`${id}.${timestamp}.${body}`)
    .digest("base64");
  return {
    "webhook-id": id,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": `v1,${signature}`,
  };
}
