/**
 * Warren on many machines, proven on one (`deno task test:cluster`): a RabbitMQ cluster of three
 * nodes of the test's own, a PostgreSQL database of its own, two api processes and two worker
 * processes. Tasks go in alternately through both api nodes while the node leading the task
 * queue stops and starts again, one api process is killed (SIGKILL) and started again, and one
 * worker process is killed. Every task that got a 202 must reach exactly one terminal state, the
 * same on both api nodes, and an SSE client on node B must hear the end of a task POSTed to
 * node A. It prints the counts, and tears everything down.
 */

import assert from "node:assert/strict";
import postgres from "postgres";
import { topology } from "../../lib/amqp/topology.ts";
import { CHAOS_HANDLERS, expectedState, type Mode, produce, sleep } from "../chaos/producer.ts";
import { createDatabase, type TestDatabase } from "../helpers/postgres.ts";
import { type RabbitCluster, startRabbitCluster } from "../helpers/rabbit_cluster.ts";
import {
  type Json,
  type Process,
  readSse,
  type SseEvent,
  startWarren,
  uniquePrefix,
} from "../helpers/warren.ts";

const TASKS = Number(Deno.env.get("CLUSTER_TASKS") ?? 5_000);
/** The whole run, faults and checks included, ends by then. */
const DEADLINE_MS = 6 * 60_000;
/** Enqueue pace: the faults must land while tasks are going in. */
const RATE_PER_SECOND = 200;
const TERMINAL = new Set(["succeeded", "dead"]);

/** The processes of the fleet; api and worker processes are replaced when restarted. */
interface Fleet {
  cluster: RabbitCluster;
  db: TestDatabase;
  prefix: string;
  api: Process[];
  workers: Process[];
  /** Starts one more process of a role, on the fleet's cluster, database and prefix. */
  start(role: "api" | "worker"): Promise<Process>;
}

Deno.test("cluster: nothing accepted is lost when a broker node, an api and a worker die", {
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const started = Date.now();
  const fleet = await startFleet();
  const faults: string[] = [];
  try {
    const members = (await fleet.cluster.quorum(taskQueue(fleet))).members;
    assert.equal(members.length, 3, `the task queue is replicated on every node: ${members}`);
    const watched = await watchOnB(fleet);
    // The chaos suite's handler and producer: alternately to both api nodes.
    const { accepted, refused, done } = produce({
      tasks: TASKS,
      rate: RATE_PER_SECOND,
      deadline: started + DEADLINE_MS,
      target: (n) => fleet.api[n % 2].url,
    });
    await injectFaults(fleet, (name) => faults.push(`${since(started)} ${name}`));
    await done;
    const pending = await awaitTerminal(fleet, accepted, started + DEADLINE_MS);
    const [onA, onB] = await Promise.all(fleet.api.map((api) => listAll(api.url)));
    const steps = await terminalSteps(fleet.db.url, [...accepted.keys()]);
    const count = (state: string) => [...accepted.keys()].filter((id) => onA.get(id) === state);
    const differ = [...accepted.keys()].filter((id) => onA.get(id) !== onB.get(id));
    const wrong = [...accepted].filter(([id, mode]) => onA.get(id) !== expectedState(mode));
    const twice = [...steps].filter(([, n]) => n !== 1);
    console.log(
      `\nfaults:\n  ${faults.join("\n  ")}\n` +
        `cluster: accepted ${accepted.size}, succeeded ${count("succeeded").length}, dead ${
          count("dead").length
        }, lost ${pending.length}, differ between api nodes ${differ.length}, wrong state ${wrong.length}, ` +
        `not exactly one terminal step ${twice.length}, refused ${refused.count}, in ${
          since(started)
        }`,
    );
    assert.ok(accepted.size >= TASKS, `at least ${TASKS} accepted (${accepted.size})`);
    assert.deepEqual(pending.slice(0, 5), [], "every accepted task ended");
    assert.deepEqual(differ.slice(0, 5), [], "both api nodes tell the same state");
    assert.deepEqual(wrong.slice(0, 5), [], "each task reached the state its payload asked for");
    assert.deepEqual(twice.slice(0, 5), [], "each task reached exactly one terminal state");
    const events = await watched;
    assert.equal(events.at(-1)?.event, "succeeded", "B's SSE heard A's task end");
  } finally {
    await stopFleet(fleet);
  }
});

/** Starts the cluster, the database, two worker processes and two api processes. */
async function startFleet(): Promise<Fleet> {
  const cluster = await startRabbitCluster({ size: 3 });
  const db = await createDatabase().catch(async (error) => {
    await cluster.close();
    throw error;
  });
  const prefix = uniquePrefix("cluster");
  const fleet: Fleet = {
    cluster,
    db,
    prefix,
    api: [],
    workers: [],
    start: (role) =>
      startWarren({
        prefix,
        handlersDir: CHAOS_HANDLERS,
        args: [`--role=${role}`],
        env: {
          AMQP_URL: cluster.nodes.map((node) => node.url).join(","),
          WARREN_STORE: db.url,
          WARREN_PUBLISH_TIMEOUT: "3s",
        },
        contract: false, // the producer must see a dead server refuse, not a proxy answer 502
      }),
  };
  try {
    fleet.workers = [await fleet.start("worker"), await fleet.start("worker")];
    fleet.api = [await fleet.start("api"), await fleet.start("api")];
    return fleet;
  } catch (error) {
    await stopFleet(fleet);
    throw error;
  }
}

async function stopFleet(fleet: Fleet): Promise<void> {
  await Promise.all([...fleet.api, ...fleet.workers].map((p) => p.stop().catch(() => {})));
  // Every queue and exchange goes with the cluster's nodes and their folders.
  await fleet.cluster.close();
  await fleet.db.drop();
}

function taskQueue(fleet: Fleet): string {
  return topology(fleet.prefix).taskQueue("chaos");
}

/**
 * POSTs a delayed task to A and follows it on B: it runs while the faults happen, and B's SSE
 * stream must hear its end.
 */
async function watchOnB(fleet: Fleet): Promise<SseEvent[]> {
  const response = await fetch(`${fleet.api[0].url}/tasks/chaos?delay=12`, {
    method: "POST",
    body: JSON.stringify({ mode: "ok" }),
  });
  const task: Json = await response.json();
  assert.equal(response.status, 202);
  return readSse(`${fleet.api[1].url}/tasks/${task.id}/events`, undefined, DEADLINE_MS);
}

/** The faults, in turn, while the producer runs. */
async function injectFaults(fleet: Fleet, note: (name: string) => void): Promise<void> {
  await sleep(3_000);
  const { leader } = await fleet.cluster.quorum(taskQueue(fleet));
  note(`stop ${leader.name}, the task queue's leader`);
  await fleet.cluster.ctl(leader, ["stop_app"]);
  await sleep(5_000);
  note(`start ${leader.name} again`);
  await fleet.cluster.ctl(leader, ["start_app"]);
  await sleep(3_000);
  note("kill -9 api node A and start it again");
  await fleet.api[0].stop("SIGKILL");
  fleet.api[0] = await fleet.start("api");
  await sleep(3_000);
  note("kill -9 one worker process");
  await fleet.workers[0].stop("SIGKILL");
}

/** Waits until every accepted task ended on node A; returns those that did not. */
async function awaitTerminal(
  fleet: Fleet,
  accepted: Map<string, Mode>,
  deadline: number,
): Promise<string[]> {
  let pending = [...accepted.keys()];
  while (Date.now() < deadline) {
    const states = await listAll(fleet.api[0].url);
    pending = pending.filter((id) => !TERMINAL.has(states.get(id) ?? ""));
    if (pending.length === 0) break;
    await sleep(1_000);
  }
  return pending;
}

/** Every task's state as one api node lists them, a page of 1000 at a time. */
async function listAll(url: string): Promise<Map<string, string>> {
  const states = new Map<string, string>();
  let cursor = "";
  do {
    const response = await fetch(`${url}/tasks?handler=chaos&limit=1000&cursor=${cursor}`);
    const page: Json = await response.json();
    assert.equal(response.status, 200, JSON.stringify(page));
    for (const task of page.tasks) states.set(task.id, task.state);
    cursor = page.next_cursor ?? "";
  } while (cursor);
  return states;
}

/** How many terminal steps each task's history holds, read from the shared store itself. */
async function terminalSteps(url: string, ids: string[]): Promise<Map<string, number>> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const rows = await sql`SELECT id, history FROM tasks WHERE id = ANY(${ids})`;
    return new Map(rows.map((row) => {
      const history = JSON.parse(row.history as string) as { state: string }[];
      return [row.id as string, history.filter((step) => TERMINAL.has(step.state)).length];
    }));
  } finally {
    await sql.end();
  }
}

function since(start: number): string {
  return `${((Date.now() - start) / 1000).toFixed(1)}s`;
}
