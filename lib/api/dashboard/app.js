// Warren's dashboard: plain browser JavaScript, no build step. It reads the HTTP API with the
// token it asks for once (kept in sessionStorage) and follows GET /stream for live changes.

const TOKEN_KEY = "warren-token";
const MAX_ROWS = 100;
const $ = (selector) => document.querySelector(selector);

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) ?? "",
  handlers: [],
  tasks: new Map(), // id -> summary
  detailId: undefined,
  deadHandler: undefined,
  stream: undefined,
};

class Unauthorized extends Error {}

/** Calls the api; asks for the token on a 401. */
async function api(path, init = {}) {
  const headers = new Headers(init.headers);
  if (state.token) headers.set("authorization", `Bearer ${state.token}`);
  const response = await fetch(path, { ...init, headers });
  if (response.status === 401) {
    askToken();
    throw new Unauthorized("the API token is missing or wrong");
  }
  const body = response.headers.get("content-type")?.includes("json")
    ? await response.json()
    : null;
  if (!response.ok) throw new Error(body?.detail ?? `${response.status} ${response.statusText}`);
  return body;
}

function askToken(message = "") {
  $("#login-error").textContent = message;
  if (!$("#login").open) $("#login").showModal();
}

$("#login-form").addEventListener("submit", () => {
  state.token = $("#login-token").value.trim();
  sessionStorage.setItem(TOKEN_KEY, state.token);
  start();
});

function say(text) {
  $("#status").textContent = text;
}

const time = (iso) => (iso ? new Date(iso).toLocaleTimeString() : "");
const shortId = (id) => id.slice(-8);

function duration(task) {
  if (!task.started_at) return "";
  const end = task.finished_at ? Date.parse(task.finished_at) : Date.now();
  const ms = end - Date.parse(task.started_at);
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  if (className) td.className = className;
  return td;
}

function button(text, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.addEventListener("click", (event) => {
    event.stopPropagation();
    onClick().catch((error) => say(error.message));
  });
  return b;
}

// Handlers and the chart.

function renderStats(stats) {
  const broker = $("#broker");
  broker.dataset.connected = String(stats.broker.connected);
  broker.textContent = stats.broker.connected ? "broker: connected" : "broker: disconnected";
  $("#events").textContent = `events: ${stats.events_per_minute}/min`;
  const body = $("#handlers tbody");
  body.replaceChildren(...stats.handlers.map((h) => {
    const tr = document.createElement("tr");
    tr.dataset.handler = h.name;
    const workers = h.workers
      ? `${h.workers.consuming}/${h.workers.running}` +
        (h.workers.restarts ? ` (${h.workers.restarts} restarts)` : "")
      : "elsewhere";
    const name = cell(h.name);
    if (h.subscribe.length) {
      const topics = document.createElement("small");
      topics.className = "topics";
      topics.textContent = ` ← ${h.subscribe.join(", ")}`;
      name.append(topics);
    }
    const sandbox = document.createElement("small");
    sandbox.className = "sandbox";
    sandbox.textContent = sandboxText(h.permissions);
    name.append(document.createElement("br"), sandbox);
    tr.append(
      name,
      cell(h.queue?.messages ?? "?"),
      cell(h.queue?.consumers ?? "?"),
      cell(workers, h.workers?.crash_looping ? "bad" : ""),
      cell(h.per_minute.succeeded),
      cell(h.per_minute.failed, h.per_minute.failed ? "bad" : ""),
      cell(h.per_minute.from_events),
    );
    const dead = document.createElement("td");
    dead.append(button(`${h.queue?.dead ?? "?"}`, () => openDead(h.name)));
    dead.firstChild.dataset.dead = h.name;
    tr.append(dead);
    return tr;
  }));
  const select = $("#filters select[name=handler]");
  if (select.options.length !== stats.handlers.length + 1) {
    const current = select.value;
    select.replaceChildren(new Option("all", ""), ...stats.handlers.map((h) => new Option(h.name)));
    select.value = current;
  }
  const bulk = $("#cancel-waiting select[name=handler]");
  if (bulk.options.length !== stats.handlers.length) {
    const current = bulk.value;
    bulk.replaceChildren(...stats.handlers.map((h) => new Option(h.name)));
    if (current) bulk.value = current;
  }
  renderChart(stats.series);
}

/** What a handler's sandbox allows, in a line: "may: net api.example.com; env KEY". */
function sandboxText(permissions) {
  const granted = Object.entries(permissions)
    .filter(([, list]) => list === true || list.length)
    .map(([kind, list]) => `${kind} ${list === true ? "(any)" : list.join(", ")}`);
  return granted.length ? `may: ${granted.join("; ")}` : "sandboxed: broker only";
}

function renderChart(series) {
  const peak = Math.max(1, ...series.map((p) => Math.max(p.succeeded, p.failed)));
  const points = (key) =>
    series.map((p, i) =>
      `${(i / Math.max(1, series.length - 1)) * 600},${118 - (p[key] / peak) * 112}`
    ).join(" ");
  $("#line-succeeded").setAttribute("points", points("succeeded"));
  $("#line-failed").setAttribute("points", points("failed"));
  $("#chart-peak").textContent = String(peak);
}

// Recent tasks.

function filters() {
  const form = new FormData($("#filters"));
  return { handler: form.get("handler") || "", state: form.get("state") || "" };
}

function matches(task) {
  const f = filters();
  return (!f.handler || task.handler === f.handler) && (!f.state || task.state === f.state);
}

function renderTasks() {
  const rows = [...state.tasks.values()]
    .filter(matches)
    .sort((a, b) =>
      (b.created_at ?? "").localeCompare(a.created_at ?? "") || b.id.localeCompare(a.id)
    )
    .slice(0, MAX_ROWS);
  $("#tasks tbody").replaceChildren(...rows.map((task) => {
    const tr = document.createElement("tr");
    tr.dataset.id = task.id;
    tr.dataset.state = task.state;
    tr.append(
      cell(shortId(task.id)),
      cell(task.handler),
      cell(task.state, `state state-${task.state}`),
      cell(task.attempts),
      cell(duration(task)),
      cell(time(task.created_at)),
    );
    tr.addEventListener("click", () => openDetail(task.id).catch((error) => say(error.message)));
    return tr;
  }));
}

async function loadTasks() {
  const f = filters();
  const query = new URLSearchParams({ limit: String(MAX_ROWS) });
  if (f.handler) query.set("handler", f.handler);
  if (f.state) query.set("state", f.state);
  const { tasks } = await api(`/tasks?${query}`);
  state.tasks = new Map(tasks.map((t) => [t.id, t]));
  renderTasks();
}

$("#filters").addEventListener("change", () => loadTasks().catch((error) => say(error.message)));

// One task.

async function openDetail(id) {
  const task = await api(`/tasks/${encodeURIComponent(id)}`);
  state.detailId = id;
  const section = $("#detail");
  section.hidden = false;
  section.dataset.state = task.state;
  $("#detail-id").textContent = task.id;
  const facts = {
    handler: task.handler,
    state: task.state,
    attempts: task.attempts,
    replays: task.replays,
    progress: task.progress === null ? "" : JSON.stringify(task.progress),
    created: task.created_at,
    started: task.started_at,
    finished: task.finished_at,
    "runs at": task.run_at,
    event: task.event ? `${task.event.topic} (${task.event.id})` : null,
    files:
      task.files.map((f) => `${f.field}: ${f.filename} (${f.type}, ${f.size} bytes)`).join(", ") ||
      null,
    duration: duration(task),
    trace: task.trace_id,
  };
  $("#detail-facts").replaceChildren(
    ...Object.entries(facts).flatMap(([k, v]) => {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v ?? "";
      if (k === "state") dd.className = `state state-${v}`;
      return [dt, dd];
    }),
  );
  $("#detail-payload").textContent = JSON.stringify(task.payload, null, 2);
  $("#detail-result-box").hidden = task.state !== "succeeded";
  $("#detail-result").textContent = JSON.stringify(task.result, null, 2);
  $("#detail-error-box").hidden = !task.error;
  $("#detail-error").textContent = task.error
    ? (task.error.stack ?? `${task.error.name ?? "Error"}: ${task.error.message}`)
    : "";
  $("#detail-history tbody").replaceChildren(...task.history.map((step) => {
    const tr = document.createElement("tr");
    tr.append(
      cell(time(step.at)),
      cell(step.state, `state state-${step.state}`),
      cell(step.attempt),
      cell(step.replay),
      cell(step.error),
    );
    return tr;
  }));
  const replay = $("#detail-replay");
  replay.hidden = task.state !== "dead";
  replay.onclick = () =>
    api(`/handlers/${task.handler}/dead/${encodeURIComponent(task.id)}/replay`, { method: "POST" })
      .then(() => say(`replayed ${shortId(task.id)}`))
      .then(() => openDetail(task.id))
      .catch((error) => say(error.message));
  showCancel(task);
}

const ENDED = ["succeeded", "dead", "cancelled"];

/** The detail's cancel button: shown while the task has not ended. */
function showCancel(task) {
  const cancel = $("#detail-cancel");
  cancel.hidden = ENDED.includes(task.state);
  cancel.onclick = () =>
    api(`/tasks/${encodeURIComponent(task.id)}/cancel`, { method: "POST" })
      .then((body) =>
        say(body.state === "cancelled" ? `cancelled ${shortId(task.id)}` : "cancel sent")
      )
      .then(() => openDetail(task.id))
      .catch((error) => say(error.message));
}

$("#cancel-waiting").addEventListener("submit", (event) => {
  event.preventDefault();
  const handler = $("#cancel-waiting select[name=handler]").value;
  if (!handler || !confirm(`Cancel every waiting task of ${handler}? This cannot be undone.`)) {
    return;
  }
  api(`/handlers/${encodeURIComponent(handler)}/cancel`, { method: "POST" })
    .then((body) => say(`cancelled ${body.cancelled}${body.more ? " (more are left)" : ""}`))
    .then(() => loadTasks())
    .catch((error) => say(error.message));
});

$("#detail-close").addEventListener("click", () => {
  $("#detail").hidden = true;
  state.detailId = undefined;
});

// Dead letters.

async function openDead(handler) {
  const body = await api(`/handlers/${handler}/dead?limit=100`);
  state.deadHandler = handler;
  $("#dead").hidden = false;
  $("#dead-handler").textContent = handler;
  $("#dead-total").textContent = String(body.total);
  $("#dead-list tbody").replaceChildren(...body.tasks.map((letter) => {
    const tr = document.createElement("tr");
    tr.dataset.id = letter.id;
    tr.append(
      cell(shortId(letter.id)),
      cell(letter.error.message),
      cell(letter.attempts),
      cell(time(letter.failed_at)),
    );
    const actions = document.createElement("td");
    actions.append(button("Replay", async () => {
      await api(`/handlers/${handler}/dead/${encodeURIComponent(letter.id)}/replay`, {
        method: "POST",
      });
      say(`replayed ${shortId(letter.id)}`);
      await openDead(handler);
    }));
    tr.append(actions);
    tr.addEventListener("click", () => openDetail(letter.id).catch((error) => say(error.message)));
    return tr;
  }));
}

$("#dead-replay-all").addEventListener(
  "click",
  () =>
    api(`/handlers/${state.deadHandler}/dead/replay`, { method: "POST" })
      .then((body) => say(`replayed ${body.replayed}`))
      .then(() => openDead(state.deadHandler))
      .catch((error) => say(error.message)),
);

$("#dead-purge").addEventListener("click", () => {
  if (!confirm(`Drop every dead letter of ${state.deadHandler}? This cannot be undone.`)) return;
  api(`/handlers/${state.deadHandler}/dead`, { method: "DELETE" })
    .then((body) => say(`purged ${body.purged}`))
    .then(() => openDead(state.deadHandler))
    .catch((error) => say(error.message));
});

$("#dead-close").addEventListener("click", () => {
  $("#dead").hidden = true;
  state.deadHandler = undefined;
});

// The live stream: Server-Sent Events read with fetch, so the token can go in a header.

async function follow() {
  state.stream?.abort();
  const controller = new AbortController();
  state.stream = controller;
  while (!controller.signal.aborted) {
    try {
      const headers = state.token ? { authorization: `Bearer ${state.token}` } : {};
      const response = await fetch("/stream", { headers, signal: controller.signal });
      if (response.status === 401) return askToken("the token was refused");
      say("live");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          handle(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
      say(`reconnecting: ${error.message}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 2000));
  }
}

function handle(block) {
  let event = "message";
  let data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data += line.slice(5).trim();
  }
  if (!data) return;
  const value = JSON.parse(data);
  if (event === "stats") renderStats(value);
  if (event === "tasks") {
    for (const task of value) state.tasks.set(task.id, task);
    if (state.tasks.size > MAX_ROWS * 5) {
      const keep = [...state.tasks.values()]
        .sort((a, b) => (b.created_at ?? "").localeCompare(a.created_at ?? ""))
        .slice(0, MAX_ROWS * 2);
      state.tasks = new Map(keep.map((t) => [t.id, t]));
    }
    renderTasks();
    if (state.detailId && value.some((t) => t.id === state.detailId)) {
      openDetail(state.detailId).catch((error) => say(error.message));
    }
  }
}

// Schedules.

/** When a schedule's time is: the date too, unless it is today. */
function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return date.toDateString() === new Date().toDateString()
    ? date.toLocaleTimeString()
    : date.toLocaleString();
}

async function loadSchedules() {
  const { schedules } = await api("/schedules");
  $("#schedules").hidden = schedules.length === 0;
  $("#schedule-list tbody").replaceChildren(...schedules.map((s) => {
    const tr = document.createElement("tr");
    tr.dataset.handler = s.handler;
    const task = document.createElement("td");
    if (s.last_run) {
      task.append(button(shortId(s.last_run.task_id), () => openDetail(s.last_run.task_id)));
    }
    tr.append(
      cell(s.handler),
      cell(s.timezone ? `${s.cron} (${s.timezone})` : s.cron),
      cell(when(s.next_run)),
      cell(
        s.last_run
          ? when(s.last_run.at) + (s.last_run.missed ? ` (+${s.last_run.missed} missed)` : "")
          : "never",
      ),
      task,
    );
    return tr;
  }));
}

/** Keeps the schedules fresh: their next and last runs move each tick. */
function followSchedules() {
  const refresh = () => loadSchedules().catch(() => {});
  setInterval(refresh, 5_000);
  return refresh();
}

async function start() {
  try {
    await loadTasks();
    await followSchedules();
    follow();
  } catch (error) {
    if (!(error instanceof Unauthorized)) say(error.message);
  }
}

start();
