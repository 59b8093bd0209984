/**
 * The dashboard and the API docs in a real browser (headless Chromium): tasks appear and finish
 * without a reload, events and the tasks they made show, a page follows a task over a WebSocket,
 * a dead task is opened and replayed, dead letters are listed, tasks are cancelled, the page fits
 * a phone, and /docs sends a request with "try it out".
 */

import assert from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import { launchBrowser } from "./helpers/browser.ts";
import { deleteTopology, getJson, startWarren } from "./helpers/warren.ts";

const TOKEN = "dashboard-test-token-0123456789";
const auth = { authorization: `Bearer ${TOKEN}` };
/** The README's screenshot is rewritten only on request (UPDATE_SCREENSHOT=1). */
const SCREENSHOT = Deno.env.get("UPDATE_SCREENSHOT")
  ? fromFileUrl(new URL("../docs/dashboard.png", import.meta.url))
  : await Deno.makeTempFile({ suffix: ".png" });

async function post(url: string, handler: string, payload: unknown): Promise<string> {
  const response = await fetch(`${url}/tasks/${handler}`, {
    method: "POST",
    headers: auth,
    body: JSON.stringify(payload),
  });
  assert.equal(response.status, 202);
  return (await response.json()).id;
}

Deno.test("dashboard: live tasks, a dead task replayed, dead letters, docs try-it-out", {
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const warren = await startWarren({ env: { WARREN_API_TOKEN: TOKEN } });
  let opened: Awaited<ReturnType<typeof launchBrowser>> | undefined;
  try {
    const browser = opened = await launchBrowser();
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });

    await t.step("asks for the token once, then shows handlers and the broker", async () => {
      await page.goto(warren.url);
      await page.waitForSelector("#login[open]");
      await page.fill("#login-token", TOKEN);
      await page.click("#login-form button[type=submit]");
      await page.waitForSelector('#broker[data-connected="true"]');
      await page.waitForSelector('#handlers tr[data-handler="echo"]');
      const stored = await page.evaluate(() => sessionStorage.getItem("warren-token"));
      assert.equal(stored, TOKEN);
      const sandbox = (name: string) =>
        page.textContent(`#handlers tr[data-handler="${name}"] .sandbox`);
      assert.equal(await sandbox("echo"), "sandboxed: broker only", "each handler's sandbox");
      assert.match(
        await sandbox("counted") ?? "",
        /^may: write \/.+; env TMPDIR$|^may: env TMPDIR; write /,
      );
    });

    await t.step("enqueued tasks appear and finish without a reload", async () => {
      const ids = [];
      for (let i = 0; i < 3; i++) ids.push(await post(warren.url, "echo", { i }));
      const slow = await post(warren.url, "steps", { steps: 3, ms: 300 });
      await page.waitForSelector(`#tasks tr[data-id="${slow}"][data-state="running"]`);
      for (const id of ids) {
        await page.waitForSelector(`#tasks tr[data-id="${id}"][data-state="succeeded"]`);
      }
      await page.waitForSelector(`#tasks tr[data-id="${slow}"][data-state="succeeded"]`);
      await page.waitForFunction(
        `Number(document.querySelector('#handlers tr[data-handler="echo"] td:nth-child(5)')` +
          `?.textContent) >= 3`,
      );
    });

    await t.step("events published and the tasks they made show, with their event", async () => {
      const response = await fetch(`${warren.url}/events/fixture.echo.hello`, {
        method: "POST",
        headers: auth,
        body: JSON.stringify({ from: "an event" }),
      });
      assert.equal(response.status, 202);
      const event = await response.json();
      const [task] = event.tasks;
      await page.waitForFunction(
        `document.querySelector("#events")?.textContent === "events: 1/min"`,
      );
      await page.waitForFunction(
        `document.querySelector('#handlers tr[data-handler="echo"] td:nth-child(7)')` +
          `?.textContent === "1"`,
      );
      assert.match(
        await page.textContent('#handlers tr[data-handler="echo"] td:first-child') ?? "",
        /echo ← fixture\.echo\.#/,
      );
      const row = `#tasks tr[data-id="${task.id}"][data-state="succeeded"]`;
      await page.waitForSelector(row);
      await page.click(row);
      await page.waitForSelector('#detail[data-state="succeeded"]');
      assert.match(
        await page.textContent("#detail-facts") ?? "",
        new RegExp(`fixture\\.echo\\.hello \\(${event.id}\\)`),
      );
      await page.click("#detail-close");
    });

    await t.step("a dead task opens with its error and history, and replays", async () => {
      const id = await post(warren.url, "fail", { message: "broken on purpose" });
      const row = `#tasks tr[data-id="${id}"][data-state="dead"]`;
      await page.waitForSelector(row);
      await page.click(row);
      await page.waitForSelector('#detail[data-state="dead"]');
      assert.match(await page.textContent("#detail-error") ?? "", /broken on purpose/);
      assert.match(await page.textContent("#detail-payload") ?? "", /broken on purpose/);
      assert.equal(await page.locator("#detail-history tbody tr").count(), 3);
      await page.click("#detail-replay");
      // The fail handler fails again: the history shows the replay's own run.
      await page.waitForFunction(
        `document.querySelectorAll("#detail-history tbody tr").length >= 6`,
      );
      const [, task] = await getJson(`${warren.url}/tasks/${id}`, { headers: auth });
      assert.equal(task.replays, 1);
      assert.match(await page.textContent("#detail-facts") ?? "", new RegExp(task.trace_id));
    });

    await t.step("dead letters are listed per handler", async () => {
      await page.waitForFunction(
        `document.querySelector('[data-dead="fail"]')?.textContent === "1"`,
      );
      await page.click('[data-dead="fail"]');
      await page.waitForSelector("#dead:not([hidden]) #dead-list tbody tr");
      assert.equal(await page.textContent("#dead-total"), "1");
      await page.mouse.move(0, 0);
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
      assert.ok((await Deno.stat(SCREENSHOT)).size > 10_000, "a screenshot with something in it");
    });

    await t.step(
      "a task is cancelled from its detail, and a handler's waiting ones in bulk",
      async () => {
        const running = await post(warren.url, "steps", { steps: 100, ms: 200 });
        const row = `#tasks tr[data-id="${running}"][data-state="running"]`;
        await page.waitForSelector(row);
        await page.click(row);
        await page.waitForSelector('#detail[data-state="running"] #detail-cancel:not([hidden])');
        await page.click("#detail-cancel");
        await page.waitForSelector(`#tasks tr[data-id="${running}"][data-state="cancelled"]`);
        const waiting = [];
        for (let i = 0; i < 3; i++) {
          const response = await fetch(`${warren.url}/tasks/echo?delay=60`, {
            method: "POST",
            headers: auth,
            body: "{}",
          });
          waiting.push((await response.json()).id);
        }
        page.once("dialog", (dialog) => dialog.accept());
        await page.selectOption("#cancel-waiting select[name=handler]", "echo");
        await page.click("#cancel-waiting button[type=submit]");
        for (const id of waiting) {
          await page.waitForSelector(`#tasks tr[data-id="${id}"][data-state="cancelled"]`);
        }
      },
    );

    await t.step("fits a phone screen", async () => {
      const phone = await browser.newPage({ viewport: { width: 375, height: 740 } });
      await phone.goto(warren.url);
      await phone.evaluate((token) => sessionStorage.setItem("warren-token", token), TOKEN);
      await phone.reload();
      await phone.waitForSelector('#handlers tr[data-handler="echo"]');
      const overflow: number = await phone.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth",
      );
      assert.ok(overflow <= 0, `the page is ${overflow} px wider than the screen`);
      await phone.close();
    });

    await t.step("a page follows a task over GET /ws, the token as a subprotocol", async () => {
      const ws = await browser.newPage();
      await ws.goto(`${warren.directUrl}/healthz`); // a page of the api's own origin
      // The page subscribes to the handler before the task exists, so no step can pass unseen.
      await ws.evaluate((token) =>
        new Promise<void>((resolve, reject) => {
          const page = globalThis as unknown as { seen: Map<string, string[]> };
          page.seen = new Map();
          const socket = new WebSocket(`ws://${location.host}/ws`, [
            "warren",
            `warren.bearer.${token}`,
          ]);
          socket.onerror = () => reject(new Error("the WebSocket failed"));
          socket.onmessage = (message) => {
            const data = JSON.parse(message.data);
            if (data.type === "ready") {
              socket.send(JSON.stringify({ type: "subscribe", handler: "steps" }));
            }
            if (data.type === "subscribed") resolve();
            if (data.type !== "event") return;
            page.seen.set(data.task.id, [...page.seen.get(data.task.id) ?? [], data.event]);
          };
        }), TOKEN);
      const id = await post(warren.url, "steps", { steps: 2, ms: 200 });
      const events = await ws.waitForFunction(
        (task) => {
          const seen = (globalThis as unknown as { seen: Map<string, string[]> }).seen.get(task);
          return seen?.includes("succeeded") ? seen : undefined;
        },
        id,
        { timeout: 15_000 },
      ).then((handle) => handle.jsonValue());
      assert.equal(events?.at(-1), "succeeded");
      assert.ok(events?.includes("progress"), events?.join());
      await ws.close();
    });

    await t.step("/docs renders the API and 'try it out' enqueues a task", async () => {
      const docs = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await docs.goto(`${warren.url}/docs`);
      await docs.click("button.authorize");
      await docs.fill(".auth-container input", TOKEN);
      await docs.click(".auth-btn-wrapper button.authorize");
      await docs.click(".auth-btn-wrapper button.btn-done");
      await docs.click("#operations-tasks-enqueue_echo .opblock-summary");
      // "Try it out" is on from the start (tryItOutEnabled): the body is editable at once.
      await docs.fill(
        "#operations-tasks-enqueue_echo textarea.body-param__text",
        '{"from":"docs"}',
      );
      await docs.click("#operations-tasks-enqueue_echo button.execute");
      const status = docs.locator(
        "#operations-tasks-enqueue_echo .live-responses-table tbody .response-col_status",
      );
      await status.first().waitFor();
      assert.equal((await status.first().textContent())?.trim(), "202");
      const body = JSON.parse(
        await docs.locator(
          "#operations-tasks-enqueue_echo .live-responses-table .response-col_description pre",
        ).first().textContent() ?? "{}",
      );
      const [, task] = await getJson(`${warren.url}/tasks/${body.id}`, { headers: auth });
      assert.deepEqual(task.payload, { from: "docs" }, "the task sent from /docs");
      await docs.close();
    });
  } finally {
    await opened?.close();
    await warren.stop();
    await deleteTopology(warren.prefix);
  }
});
