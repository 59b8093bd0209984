/**
 * Makes a handler that ends its own worker (`Deno.exit`, `close()`) say so first: a worker that
 * ends that way sends no error event, and the supervisor must count it as a crash of the tasks
 * it was running.
 *
 * @module
 */

/**
 * Wraps `Deno.exit` and the worker scope's `close` so each calls `onExit(reason)` before it ends
 * the worker.
 */
export function guardExit(scope: { close(): void }, onExit: (reason: string) => void): void {
  const exit = Deno.exit;
  Object.assign(Deno, {
    exit(code?: number): never {
      onExit(`the handler called Deno.exit(${code ?? ""})`);
      return exit(code);
    },
  });
  const close = scope.close.bind(scope);
  scope.close = () => {
    onExit("the handler called close()");
    close();
  };
}
