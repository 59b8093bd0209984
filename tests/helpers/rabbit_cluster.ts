/**
 * A RabbitMQ cluster of a test's own on this machine: Debian's `rabbitmq-server` started as more
 * nodes beside the default one, each with its own name, ports, folders and config file, joined
 * into one cluster, and torn down after (see DESIGN.md for the facts that make this work).
 *
 * @module
 */

/** One node of a test cluster. */
export interface RabbitNode {
  /** Its Erlang node name, e.g. `warren1-ab12cd@localhost`. */
  name: string;
  /** Its AMQP URL. */
  url: string;
}

/** A running test cluster; see {@linkcode startRabbitCluster}. */
export interface RabbitCluster {
  nodes: RabbitNode[];
  /** Runs `rabbitmqctl` (or another CLI tool) against a node; returns what it printed. */
  ctl(node: RabbitNode, args: string[], tool?: string): Promise<string>;
  /** The node that leads a quorum queue now, and the queue's members. */
  quorum(queue: string): Promise<{ leader: RabbitNode; members: string[] }>;
  /** Stops every node and deletes its folders. */
  close(): Promise<void>;
}

/** Options of {@linkcode startRabbitCluster}. */
export interface ClusterOptions {
  size?: number;
  /** AMQP port of the first node; the others follow. Distribution ports are 20000 above. */
  basePort?: number;
}

/**
 * Starts `size` nodes, joins them into one cluster, and waits until each runs.
 *
 * @example
 * ```ts
 * const cluster = await startRabbitCluster({ size: 3 });
 * try {
 *   // … AMQP_URL: cluster.nodes.map((node) => node.url).join(",") …
 * } finally {
 *   await cluster.close();
 * }
 * ```
 */
export async function startRabbitCluster(options: ClusterOptions = {}): Promise<RabbitCluster> {
  const size = options.size ?? 3;
  const basePort = options.basePort ?? 5781;
  const suffix = crypto.randomUUID().slice(0, 6);
  const base = await Deno.makeTempDir({ prefix: "warren-rabbit-" });
  const nodes = Array.from({ length: size }, (_, i) => ({
    name: `warren${i + 1}-${suffix}@localhost`,
    url: `amqp://guest:guest@127.0.0.1:${basePort + i}`,
    port: basePort + i,
    dir: `${base}/node${i + 1}`,
  }));
  const ctl = (node: RabbitNode, args: string[], tool = "rabbitmqctl") =>
    run(tool, ["-n", node.name, ...args]);
  const cluster: RabbitCluster = {
    nodes: nodes.map(({ name, url }) => ({ name, url })),
    ctl,
    async quorum(queue) {
      const text = await ctl(nodes[0], [
        "list_queues",
        "name",
        "leader",
        "members",
        "--formatter",
        "json",
        "-q",
      ]);
      const rows = JSON.parse(text) as { name: string; leader: string; members: string[] }[];
      const row = rows.find((r) => r.name === queue);
      const leader = nodes.find((node) => node.name === row?.leader);
      if (!row || !leader) throw new Error(`queue ${queue} has no leader in ${text}`);
      return { leader, members: row.members };
    },
    async close() {
      await Promise.all(nodes.map((node) => stopNode(node)));
      await Deno.remove(base, { recursive: true }).catch(() => {});
    },
  };
  try {
    for (const node of nodes) await prepare(node);
    await run("chown", ["-R", "rabbitmq:rabbitmq", base]);
    await Promise.all(nodes.map((node) => startNode(node)));
    for (const node of nodes.slice(1)) {
      await ctl(node, ["stop_app"]);
      await ctl(node, ["join_cluster", nodes[0].name]);
      await ctl(node, ["start_app"]);
    }
    return cluster;
  } catch (error) {
    await cluster.close();
    throw error;
  }
}

interface NodeSetup extends RabbitNode {
  port: number;
  dir: string;
}

async function prepare(node: NodeSetup): Promise<void> {
  await Deno.mkdir(`${node.dir}/log`, { recursive: true });
  await Deno.writeTextFile(
    `${node.dir}/rabbitmq.conf`,
    [`listeners.tcp.local = 127.0.0.1:${node.port}`, "loopback_users = none", ""].join("\n"),
  );
  await Deno.writeTextFile(`${node.dir}/plugins`, "[].\n");
}

async function startNode(node: NodeSetup): Promise<void> {
  await run("rabbitmq-server", ["-detached"], {
    RABBITMQ_NODENAME: node.name,
    RABBITMQ_NODE_PORT: String(node.port),
    RABBITMQ_DIST_PORT: String(node.port + 20_000),
    RABBITMQ_MNESIA_BASE: `${node.dir}/mnesia`,
    RABBITMQ_LOG_BASE: `${node.dir}/log`,
    RABBITMQ_PID_FILE: `${node.dir}/pid`,
    RABBITMQ_ENABLED_PLUGINS_FILE: `${node.dir}/plugins`,
    RABBITMQ_CONFIG_FILE: `${node.dir}/rabbitmq.conf`,
  });
  // await_startup answers at once while the node's VM is not up yet: ask until it is.
  const deadline = Date.now() + 90_000;
  while (true) {
    try {
      await run("rabbitmqctl", ["-n", node.name, "await_startup", "--timeout", "60"]);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

/** Stops a node: politely, else by its pid. */
async function stopNode(node: NodeSetup): Promise<void> {
  try {
    await run("rabbitmqctl", ["-n", node.name, "stop", `${node.dir}/pid`], {}, 60_000);
  } catch {
    const pid = await Deno.readTextFile(`${node.dir}/pid`).catch(() => "");
    if (/^\d+$/.test(pid.trim())) {
      try {
        Deno.kill(Number(pid.trim()), "SIGKILL");
      } catch {
        // gone already
      }
    }
  }
}

/** Runs a command; throws with its output when it fails or outlasts `timeoutMs`. */
async function run(
  command: string,
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 120_000,
): Promise<string> {
  const output = await new Deno.Command(command, {
    args,
    env: { PATH: `${Deno.env.get("PATH")}:/usr/sbin:/sbin`, ...env },
    stdin: "null",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const text = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    const error = new TextDecoder().decode(output.stderr);
    throw new Error(`${command} ${args.join(" ")} failed (${output.code}): ${error || text}`);
  }
  return text;
}
