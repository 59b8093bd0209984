/**
 * Warren's entry point: `deno task start [--role=all|api|worker] [--host H] [--port P] [--insecure]`.
 *
 * Reads the config, discovers the handlers, starts the roles and stops gracefully on SIGINT or
 * SIGTERM. A bad setting stops start-up with one line naming it, and exit code 2.
 *
 * @module
 */

import { ConfigError, loadConfig, secretsOf } from "./lib/config.ts";
import { discoverHandlers } from "./lib/discover.ts";
import { HandlerError } from "./lib/handler.ts";
import { errorMessage, logger, redact, setupLogging } from "./lib/log.ts";
import { startWarren } from "./lib/runtime.ts";

async function main(): Promise<number> {
  let secrets: string[] = [];
  try {
    const { config, warnings } = loadConfig(Deno.env.toObject(), Deno.args);
    secrets = secretsOf(config);
    const logOptions = { level: config.logLevel, format: config.logFormat, secrets };
    setupLogging(logOptions);
    const log = logger("main");
    for (const warning of warnings) log.warn(warning);

    const handlers = await discoverHandlers(config.handlersDir);
    const warren = await startWarren(config, handlers, logOptions);

    const stopped = Promise.withResolvers<void>();
    const onSignal = () => stopped.resolve();
    Deno.addSignalListener("SIGINT", onSignal);
    Deno.addSignalListener("SIGTERM", onSignal);
    await stopped.promise;
    await warren.stop();
    return 0;
  } catch (error) {
    if (error instanceof ConfigError || error instanceof HandlerError) {
      console.error(`warren: ${redact(error.message, secrets)}`);
      return 2;
    }
    if (error instanceof Deno.errors.AddrInUse) {
      console.error(
        `warren: HOST/PORT is already in use (${redact(errorMessage(error), secrets)})`,
      );
      return 2;
    }
    console.error(`warren: ${redact(errorMessage(error), secrets)}`);
    return 1;
  }
}

Deno.exit(await main());
