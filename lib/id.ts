/**
 * Task ids: UUIDv7, so ids sort by creation time and the store's id index grows at its end
 * instead of at random pages (a random UUIDv4 dirties a new page with almost every insert).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { hex, randomBytes } from "./random.ts";

/**
 * A new task id.
 *
 * @example
 * ```ts
 * newTaskId(); // "019a8f6e-4c1d-7b2a-9e3f-5a6b7c8d9e0f"
 * ```
 */
export function newTaskId(): string {
  const bytes = randomBytes(16);
  const now = Date.now();
  // Within one millisecond a 31-bit counter goes on from a random start (RFC 9562, 6.2 method 1),
  // so ids sort in the order they were made.
  if (now > clock.msecs) {
    clock.msecs = now;
    clock.seq = ((bytes[6] & 0x7f) << 24) | (bytes[7] << 16) | (bytes[8] << 8) | bytes[9];
  } else if (++clock.seq > 0x7fffffff) {
    clock.msecs++;
    clock.seq = 0;
  }
  const { msecs, seq } = clock;
  bytes[0] = msecs / 0x10000000000;
  bytes[1] = msecs / 0x100000000;
  bytes[2] = msecs / 0x1000000;
  bytes[3] = msecs / 0x10000;
  bytes[4] = msecs / 0x100;
  bytes[5] = msecs;
  bytes[6] = 0x70 | (seq >>> 27); // version 7, then the counter's 31 bits
  bytes[7] = seq >>> 19;
  bytes[8] = 0x80 | ((seq >>> 13) & 0x3f); // the variant, 10
  bytes[9] = seq >>> 5;
  bytes[10] = (seq << 3) | (bytes[10] & 0x07);
  return `${hex(bytes, 0, 4)}-${hex(bytes, 4, 6)}-${hex(bytes, 6, 8)}-${hex(bytes, 8, 10)}-${
    hex(bytes, 10)
  }`;
}

/** The time and counter of the last id made. */
const clock = { msecs: -Infinity, seq: 0 };

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/**
 * The id of the task an event makes for one handler: the same wherever and however often it is
 * worked out (each subscriber's copy of the event carries only the event's id), and different
 * for every handler. It is a UUIDv8 made of a SHA-256 of both; an event id that is a UUIDv7 lends
 * it its first 48 bits, its time, so the tasks of an event sort by time as other tasks do.
 *
 * @example
 * ```ts
 * const event = newTaskId();
 * eventTaskId(event, "email") === eventTaskId(event, "email"); // true
 * eventTaskId(event, "email") !== eventTaskId(event, "stock"); // true
 * ```
 */
export function eventTaskId(eventId: string, handler: string): string {
  const time = UUID_V7.test(eventId)
    ? parseInt(eventId.replaceAll("-", "").slice(0, 12), 16)
    : undefined;
  return derivedId(`${eventId}\n${handler}`, time);
}

/**
 * The id of the task a schedule's tick makes: the same on every api process that works it out,
 * so a tick makes one task however many of them do. A UUIDv8 whose first 48 bits are the tick's
 * time.
 *
 * @example
 * ```ts
 * scheduleTaskId("report", 1_767_225_600_000) === scheduleTaskId("report", 1_767_225_600_000); // true
 * idTime(scheduleTaskId("report", 1_767_225_600_000)); // 1767225600000
 * ```
 */
export function scheduleTaskId(handler: string, tick: number): string {
  return derivedId(`schedule\n${handler}\n${tick}`, tick);
}

/** A UUIDv8 of a SHA-256 of `seed`, whose first 48 bits are `time` (ms) when given. */
function derivedId(seed: string, time: number | undefined): string {
  const digest = createHash("sha256").update(seed).digest();
  if (time !== undefined) {
    for (let i = 0; i < 6; i++) digest[i] = Math.floor(time / 2 ** (8 * (5 - i))) & 0xff;
  }
  digest[6] = (digest[6] & 0x0f) | 0x80; // version 8
  digest[8] = (digest[8] & 0x3f) | 0x80; // RFC 9562 variant
  const hex = digest.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20)
  }`;
}

/**
 * When a task id was made (ms since the epoch), for ids that tell: UUIDv7, and UUIDv8 made by
 * {@linkcode eventTaskId} from one; undefined for any other id.
 *
 * @example
 * ```ts
 * idTime(newTaskId()); // about Date.now()
 * idTime("order-42"); // undefined
 * ```
 */
export function idTime(id: string): number | undefined {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[78][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i.test(id)) {
    return undefined;
  }
  const ms = parseInt(id.replaceAll("-", "").slice(0, 12), 16);
  return ms > Date.UTC(2020, 0) && ms < Date.now() + 86_400_000 ? ms : undefined;
}
