/**
 * JSON Schema validation of payloads (Ajv: JSON Schema draft-07, with string formats).
 *
 * @module
 */

import { Ajv, type ErrorObject } from "ajv";
import addFormats from "ajv-formats";

/** A JSON Schema document. */
export type JsonSchema = Record<string, unknown> | boolean;

/** One reason a payload does not match its schema. */
export interface SchemaViolation {
  /** JSON Pointer to the offending value; `""` is the payload itself. */
  pointer: string;
  message: string;
}

/** Checks a value; returns the violations, or an empty list when it matches. */
export type Validator = (value: unknown) => SchemaViolation[];

/**
 * Violations as one line, for a problem's detail or an error's message.
 *
 * @example
 * ```ts
 * describeViolations([{ pointer: "", message: "must have required property 'n'" }]);
 * // "payload must have required property 'n'"
 * ```
 */
export function describeViolations(violations: SchemaViolation[]): string {
  return violations.map((v) => `${v.pointer || "payload"} ${v.message}`).join("; ");
}

const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false });
// ajv-formats is a CommonJS module whose default export is the plugin function.
(addFormats as unknown as (ajv: Ajv) => void)(ajv);

const cache = new WeakMap<object, Validator>();

/**
 * Compiles a schema into a {@linkcode Validator}; throws when the schema itself is invalid.
 *
 * @example
 * ```ts
 * const validate = compileSchema({ type: "object", required: ["seconds"] });
 * validate({}); // [{ pointer: "", message: "must have required property 'seconds'" }]
 * ```
 */
export function compileSchema(schema: JsonSchema): Validator {
  const key = typeof schema === "object" ? schema : undefined;
  const cached = key && cache.get(key);
  if (cached) return cached;
  const check = ajv.compile(schema);
  const validator: Validator = (value) =>
    check(value) ? [] : (check.errors ?? []).map((error: ErrorObject) => ({
      pointer: error.instancePath,
      message: error.message ?? "is invalid",
    }));
  if (key) cache.set(key, validator);
  return validator;
}
