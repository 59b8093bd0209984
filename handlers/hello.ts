/**
 * Logs the message it got (seed 000's consumer). It needs no import at all: a default-exported
 * function is a handler.
 *
 * @example
 * ```sh
 * curl -X POST localhost:8000/tasks/hello -d '{"message":"hi"}'
 * ```
 */

export default function hello(payload: { message?: string }) {
  const message = payload.message ?? "hello";
  console.log(`hello: got message: ${message}`);
  return { echoed: message };
}
