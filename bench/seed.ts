/**
 * `deno task bench:seed [--seconds=10] [--rounds=3] [--connections=32]`: Warren beside the app it
 * replaces. Runs seed 000's FastAPI + aio-pika app (`bench/seed000/`, as the article has it: a
 * producer that publishes with confirms and a consumer in a thread of the same process) and an
 * all-in-one Warren with a no-op handler side by side on this machine, and loads each in turn with
 * wrk for the same time from the same number of connections: `GET /send-message` on the seed,
 * `POST /tasks/noop` on Warren. Reports each one's 202s per second and CPU per request, and the
 * ratio, per round and as the median; writes `bench/results/seed.json`.
 *
 * The seed is given every advantage: no access log and warnings only (the article logs every
 * request), a non-durable classic queue and transient messages (as it declares them), where
 * Warren writes each task to a replicated quorum queue and to its store.
 *
 * Needs Python 3 with FastAPI, uvicorn and aio-pika: `apt-get install python3-fastapi
 * python3-uvicorn python3-aio-pika` (Debian's /usr/bin/python3 is used; `BENCH_PYTHON` names
 * another).
 *
 * @module
 */

import { fileURLToPath as fromFileUrl } from "node:url";
import { connect } from "amqplib";
import { AMQP_URL, uniquePrefix, waitFor } from "../tests/helpers/warren.ts";
import { BODY, countFlag, cpuMs, finish, say, sleep, warren } from "./harness.ts";
import { hasWrk, type LoadResult, postLoad } from "./load.ts";

/** Debian's Python, where apt-get puts the packages (a python3 earlier on the PATH may lack them). */
const PYTHON = Deno.env.get("BENCH_PYTHON") ??
  (await Deno.stat("/usr/bin/python3").then(() => "/usr/bin/python3", () => "python3"));
const SECONDS = countFlag("seconds", 10);
const ROUNDS = countFlag("rounds", 3);
const CONNECTIONS = countFlag("connections", 32);

/** One side's round: 202s per second and the process's CPU per request. */
interface Round {
  perSecond: number;
  cpuUs: number;
  p50Ms: number;
  p99Ms: number;
}

await requirePython();
if (!(await hasWrk())) throw new Error("bench:seed needs wrk: apt-get install wrk");

const queue = `${uniquePrefix("bench")}.seed`;
const seed = await startSeed(queue);
const app = await warren();
const rounds: { seed: Round; warren: Round }[] = [];
try {
  const load = (url: string, method: "GET" | "POST", seconds: number) =>
    postLoad({ generator: "wrk", url, connections: CONNECTIONS, seconds, body: BODY, method });
  const measure = async (pid: number, run: () => Promise<LoadResult>): Promise<Round> => {
    const before = cpuMs(pid);
    const result = await run();
    if (result.failures > 0) throw new Error(`${result.failures} answers were not 202`);
    await sleep(1_000); // let the consumer catch up, so each round starts from an idle process
    const ok = result.requests - result.failures;
    return {
      perSecond: result.perSecond,
      cpuUs: ((cpuMs(pid) - before) * 1000) / ok,
      p50Ms: result.p50Ms,
      p99Ms: result.p99Ms,
    };
  };
  const seedUrl = `${seed.url}/send-message`;
  const warrenUrl = `${app.url}/tasks/noop`;
  say("warm-up: 2 s each");
  await load(seedUrl, "GET", 2);
  await load(warrenUrl, "POST", 2);
  for (let i = 1; i <= ROUNDS; i++) {
    say(`round ${i}/${ROUNDS}: ${SECONDS} s of each, ${CONNECTIONS} connections`);
    const s = await measure(seed.pid, () => load(seedUrl, "GET", SECONDS));
    const w = await measure(app.pid, () => load(warrenUrl, "POST", SECONDS));
    rounds.push({ seed: s, warren: w });
    say(`   seed ${Math.round(s.perSecond)}/s, warren ${Math.round(w.perSecond)}/s`);
  }
} finally {
  await seed.stop();
  await finish(app);
  await deleteSeedQueue(queue);
}

const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
const summary = {
  at: new Date().toISOString(),
  seconds: SECONDS,
  connections: CONNECTIONS,
  rounds,
  seedPerSecond: median(rounds.map((r) => r.seed.perSecond)),
  warrenPerSecond: median(rounds.map((r) => r.warren.perSecond)),
  ratio: median(rounds.map((r) => r.warren.perSecond / r.seed.perSecond)),
  seedCpuUs: median(rounds.map((r) => r.seed.cpuUs)),
  warrenCpuUs: median(rounds.map((r) => r.warren.cpuUs)),
};
const n = (x: number) => Math.round(x).toLocaleString("en");
console.log(`\n${CONNECTIONS} connections, ${ROUNDS} rounds of ${SECONDS} s each (medians)\n`);
console.log(`                         202/s      CPU per request (whole process)`);
console.log(
  `seed 000 (FastAPI)   ${n(summary.seedPerSecond).padStart(9)}      ${n(summary.seedCpuUs)} µs`,
);
console.log(
  `Warren (all-in-one)  ${n(summary.warrenPerSecond).padStart(9)}      ${
    n(summary.warrenCpuUs)
  } µs`,
);
console.log(`Warren / seed        ${summary.ratio.toFixed(2).padStart(9)}x`);
const file = new URL("./results/seed.json", import.meta.url);
await Deno.writeTextFile(file, JSON.stringify(summary, null, 2) + "\n");

/** Fails with what to install unless Python 3 has FastAPI, uvicorn and aio-pika. */
async function requirePython(): Promise<void> {
  const check = await new Deno.Command(PYTHON, {
    args: ["-c", "import fastapi, uvicorn, aio_pika"],
    stdout: "null",
    stderr: "null",
  }).output().catch(() => ({ code: 127 }));
  if (check.code !== 0) {
    throw new Error(
      "bench:seed runs seed 000 with Python 3: apt-get install python3-fastapi python3-uvicorn python3-aio-pika",
    );
  }
}

/** Starts seed 000's app on a free port and waits until it answers. */
async function startSeed(queue: string) {
  const port = 18_000 + Math.floor(Math.random() * 2_000);
  const child = new Deno.Command(PYTHON, {
    args: ["-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", String(port)].concat(
      "--no-access-log",
      "--log-level",
      "warning",
    ),
    cwd: fromFileUrl(new URL("./seed000", import.meta.url)),
    env: { SEED_AMQP_URL: AMQP_URL, SEED_QUEUE: queue, SEED_LOG_LEVEL: "WARNING" },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => (await fetch(url).then((r) => r.text().then(() => r.ok)).catch(() => false)),
    20_000,
    "seed 000 to answer",
  );
  return {
    url,
    pid: child.pid,
    stop: async () => {
      // Its consumer's thread keeps uvicorn from ending on SIGTERM: SIGKILL after a grace.
      child.kill("SIGTERM");
      const killer = setTimeout(() => child.kill("SIGKILL"), 3_000);
      await child.stderr.cancel();
      await child.status;
      clearTimeout(killer);
    },
  };
}

/** Deletes the queue and exchange seed 000 declared. */
async function deleteSeedQueue(queue: string): Promise<void> {
  const connection = await connect(AMQP_URL);
  const ch = await connection.createChannel();
  await ch.deleteQueue(queue);
  await ch.deleteExchange(`${queue}.exchange`);
  await connection.close();
}
