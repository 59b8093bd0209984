/**
 * Discovery of handler modules: every `.ts`/`.js` module directly inside the handlers folder is a
 * handler named after its file. Sub-folders (shared helpers) and other files are left alone.
 * Nothing outside that folder is ever loaded as a handler.
 *
 * @module
 */

import { basename, extname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { HandlerError, type HandlerInfo, resolveConfig } from "./handler.ts";

/** File endings of handler modules. */
export const MODULE_EXTENSIONS = [".ts", ".mts", ".js", ".mjs"];

/** Valid handler names: they become routes and queue names. */
export const HANDLER_NAME = /^[a-z0-9][a-z0-9_-]{0,99}$/;

/**
 * Finds, imports and checks every handler in `dir`, sorted by name. Throws a
 * {@linkcode HandlerError} naming the file when a module cannot be a handler.
 *
 * @example
 * ```ts
 * const handlers = await discoverHandlers("./handlers");
 * handlers.map((h) => h.name); // ["countdown", "hello"]
 * ```
 */
export async function discoverHandlers(dir: string): Promise<HandlerInfo[]> {
  const root = resolve(dir);
  let entries: Deno.DirEntry[];
  try {
    entries = await Array.fromAsync(Deno.readDir(root));
  } catch (error) {
    throw new HandlerError(
      `WARREN_HANDLERS: cannot read the handlers folder ${root} (${(error as Error).message})`,
    );
  }
  const files = entries
    .filter((entry) => entry.isFile && MODULE_EXTENSIONS.includes(extname(entry.name)))
    .map((entry) => entry.name)
    .sort();

  const handlers: HandlerInfo[] = [];
  const seen = new Map<string, string>();
  for (const fileName of files) {
    const name = basename(fileName, extname(fileName));
    const where = `handler file ${join(dir, fileName)}`;
    if (!HANDLER_NAME.test(name)) {
      throw new HandlerError(
        `${where}: a handler name may only hold lowercase letters, digits, "-" and "_" ` +
          `(and start with a letter or digit): rename the file`,
      );
    }
    if (seen.has(name)) {
      throw new HandlerError(`${where}: handler "${name}" is already defined by ${seen.get(name)}`);
    }
    seen.set(name, fileName);
    handlers.push(await loadHandler(join(root, fileName), name, where));
  }
  return handlers;
}

async function loadHandler(file: string, name: string, where: string): Promise<HandlerInfo> {
  const moduleUrl = pathToFileURL(file).href;
  let mod: Record<string, unknown>;
  try {
    mod = await import(moduleUrl);
  } catch (error) {
    throw new HandlerError(`${where}: cannot be imported: ${(error as Error).message}`);
  }
  if (typeof mod.default !== "function") {
    throw new HandlerError(
      `${where}: the default export must be the handler function ` +
        "(export default async function (payload, ctx) { ... })",
    );
  }
  return { name, file, moduleUrl, config: resolveConfig(mod.config, where) };
}
