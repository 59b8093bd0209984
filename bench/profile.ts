/**
 * `deno task bench:profile [--seconds=10] [--top=25] [--role=api]`: where a process's CPU time
 * goes, function by function. Starts an all-in-one Warren (or an api-only one) with V8's
 * inspector on, attaches V8's sampling profiler to its main thread (Deno's inspector does not
 * list Web Workers; `--v8-flags=--prof` reaches those), POSTs no-op tasks at it with wrk (or
 * fetch) for a few seconds, and prints each thread's hottest functions by self time, and the same
 * time by where the code comes from (Warren's modules, each npm package, Deno's runtime). The
 * profiles are written to `bench/results/profile-<thread>.cpuprofile` for Chrome DevTools or
 * speedscope.
 *
 * @module
 */

import { apiOnly, BODY, CONNECTIONS, countFlag, finish, say, warren } from "./harness.ts";
import { hasWrk, postLoad } from "./load.ts";

const SECONDS = countFlag("seconds", 10);
/** `--role=api`: an api-only Warren, so the profile shows enqueueing alone. */
const API_ONLY = Deno.args.includes("--role=api");
const TOP = countFlag("top", 25);

/** One node of a V8 CPU profile (the fields this report reads). */
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
}

/** A DevTools protocol session over the inspector's WebSocket. */
interface Session {
  send(method: string, params?: Record<string, unknown>): Promise<Record<string, unknown>>;
  close(): void;
}

async function connect(url: string): Promise<Session> {
  const socket = new WebSocket(url);
  const pending = new Map<number, (result: Record<string, unknown>) => void>();
  let next = 1;
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.id !== undefined) pending.get(message.id)?.(message.result ?? {});
  };
  await new Promise((resolve, reject) => {
    socket.onopen = resolve;
    socket.onerror = reject;
  });
  return {
    send: (method, params = {}) =>
      new Promise((resolve) => {
        const id = next++;
        pending.set(id, resolve);
        socket.send(JSON.stringify({ id, method, params }));
      }),
    close: () => socket.close(),
  };
}

/** Where a function's code comes from: Warren's own module, an npm package, or Deno's runtime. */
function origin(url: string): string {
  const npm = /\/npm\/registry\.npmjs\.org\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (npm) return `npm:${npm[1]}`;
  const own = /\/(lib\/.+|main\.ts|bench\/.+)$/.exec(url);
  if (own) return own[1];
  if (url.startsWith("ext:") || url.startsWith("node:")) return url.split("/")[0] + " (runtime)";
  return url === "" ? "(V8: gc, idle, native)" : url;
}

/** Self time per key, in ms, from the profile's samples. */
function selfTimes(profile: CpuProfile, key: (node: ProfileNode) => string): Map<string, number> {
  const total = profile.endTime - profile.startTime; // µs
  const hits = profile.nodes.reduce((sum, node) => sum + (node.hitCount ?? 0), 0);
  const times = new Map<string, number>();
  for (const node of profile.nodes) {
    const ms = ((node.hitCount ?? 0) / hits) * total / 1000;
    times.set(key(node), (times.get(key(node)) ?? 0) + ms);
  }
  return times;
}

function report(thread: string, profile: CpuProfile, tasks: number): void {
  const idle = (node: ProfileNode) => ["(idle)", "(program)"].includes(node.callFrame.functionName);
  const busy = { ...profile, nodes: profile.nodes.filter((node) => !idle(node)) };
  const hitsBusy = busy.nodes.reduce((sum, node) => sum + (node.hitCount ?? 0), 0);
  const hitsAll = profile.nodes.reduce((sum, node) => sum + (node.hitCount ?? 0), 0);
  const busyMs = (profile.endTime - profile.startTime) / 1000 * hitsBusy / hitsAll;
  const us = (ms: number) => `${((ms * 1000) / tasks).toFixed(1).padStart(6)} µs`;
  const table = (title: string, key: (node: ProfileNode) => string) => {
    const times = [...selfTimes(profile, key)].filter(([name]) => !/^\((idle|program)\)/.test(name))
      .sort((a, b) => b[1] - a[1]).slice(0, TOP);
    console.log(`\n${thread}: ${title} (self time per task)`);
    for (const [name, ms] of times) console.log(`  ${us(ms)}  ${name}`);
  };
  console.log(`\n== ${thread}: ${us(busyMs)} of JavaScript and GC per task (sampled)`);
  table("by origin", (node) => origin(node.callFrame.url));
  table("hottest functions", (node) => {
    const { functionName, url, lineNumber } = node.callFrame;
    return `${functionName || "(anonymous)"} ${origin(url)}${url ? `:${lineNumber + 1}` : ""}`;
  });
}

const port = 9300 + Math.floor(Math.random() * 500);
const inspect = { denoFlags: [`--inspect=127.0.0.1:${port}`] };
const app = API_ONLY ? await apiOnly(inspect) : await warren({}, [], inspect);
const sessions: { thread: string; session: Session }[] = [];
try {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as {
    title: string;
    url: string;
    webSocketDebuggerUrl: string;
  }[];
  for (const [i, target] of targets.entries()) {
    const session = await connect(target.webSocketDebuggerUrl);
    await session.send("Profiler.enable");
    await session.send("Profiler.setSamplingInterval", { interval: 500 });
    await session.send("Profiler.start");
    const thread = i === 0 ? "main" : `worker${i}`;
    sessions.push({ thread, session });
    say(`profiling ${thread}: ${target.title} ${target.url}`);
  }

  const generator = await hasWrk() ? "wrk" : "deno-fetch";
  say(`${SECONDS} s of POST /tasks/noop from ${CONNECTIONS} connections (${generator})`);
  const load = await postLoad({
    generator,
    url: `${app.url}/tasks/noop`,
    connections: CONNECTIONS,
    seconds: SECONDS,
    body: BODY,
  });
  const tasks = load.requests - load.failures;
  console.log(`${tasks} tasks at ${Math.round(load.perSecond)} POST/s`);
  await Deno.mkdir(new URL("./results/", import.meta.url), { recursive: true });
  for (const { thread, session } of sessions) {
    const { profile } = await session.send("Profiler.stop") as { profile: CpuProfile };
    const file = new URL(`./results/profile-${thread}.cpuprofile`, import.meta.url);
    await Deno.writeTextFile(file, JSON.stringify(profile));
    report(thread, profile, tasks);
  }
} finally {
  for (const { session } of sessions) session.close();
  await finish(app);
}
