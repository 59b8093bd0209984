/**
 * File uploads: a multipart POST's files are streamed into the store, the handler reads them over
 * the broker with their name, type, size and SHA-256, refusals (413, 415, 400, 422) keep nothing,
 * deleting a task deletes its files, and several api nodes on PostgreSQL serve every file.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { DatabaseSync } from "node:sqlite";
import { fileURLToPath as fromFileUrl } from "node:url";
import { launchBrowser } from "./helpers/browser.ts";
import { createDatabase } from "./helpers/postgres.ts";
import {
  deleteTopology,
  fleet,
  getJson,
  type Json,
  startWarren,
  uniquePrefix,
  waitForState,
} from "./helpers/warren.ts";

const HANDLERS = fromFileUrl(new URL("./fixtures/uploads", import.meta.url));

function randomBytes(size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  for (let at = 0; at < size; at += 65536) {
    crypto.getRandomValues(bytes.subarray(at, Math.min(size, at + 65536)));
  }
  return bytes;
}

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

function form(parts: Record<string, string | Blob>): FormData {
  const data = new FormData();
  for (const [name, value] of Object.entries(parts)) {
    if (value instanceof File) data.append(name, value, value.name);
    else data.append(name, value);
  }
  return data;
}

async function upload(url: string, body: FormData | string): Promise<[number, Json]> {
  const response = await fetch(`${url}/tasks/image`, { method: "POST", body });
  return [response.status, await response.json()];
}

/** Rows of stored file chunks, read from the SQLite file beside the running process. */
function storedChunks(storePath: string): number {
  const db = new DatabaseSync(storePath, { readOnly: true });
  try {
    return (db.prepare("SELECT count(*) AS n FROM file_chunks").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

Deno.test("uploads: files stream in, the handler reads them, refusals keep nothing", async (t) => {
  const warren = await startWarren({ handlersDir: HANDLERS });
  try {
    await t.step("a multipart POST: fields make the payload, files reach ctx.files", async () => {
      const bytes = randomBytes(700_000);
      const [status, accepted] = await upload(
        warren.url,
        form({
          title: "a cat",
          tags: new Blob(['["cute","cat"]'], { type: "application/json" }),
          image: new File([bytes], "cat.png", { type: "image/png" }),
          note: new File(["hello"], "note.txt", { type: "text/plain" }),
        }),
      );
      assert.equal(status, 202, JSON.stringify(accepted));
      const task = await waitForState(warren.url, accepted.id, "succeeded");
      assert.deepEqual(task.payload, { title: "a cat", tags: ["cute", "cat"] });
      assert.deepEqual(task.result, {
        title: "a cat",
        tags: ["cute", "cat"],
        filename: "cat.png",
        type: "image/png",
        size: 700_000,
        declared: { size: 700_000, sha256: sha256(bytes) },
        sha256: sha256(bytes),
        note: "hello",
      });
      const image = task.files.find((f: Json) => f.field === "image");
      assert.deepEqual(image, {
        field: "image",
        filename: "cat.png",
        type: "image/png",
        size: 700_000,
        sha256: sha256(bytes),
        link: `/tasks/${accepted.id}/files/image`,
      });
      const download = await fetch(`${warren.url}${image.link}`);
      assert.equal(download.headers.get("content-type"), "image/png");
      assert.match(download.headers.get("content-disposition") ?? "", /cat\.png/);
      assert.equal(sha256(new Uint8Array(await download.arrayBuffer())), sha256(bytes));
      assert.equal(storedChunks(warren.storePath), 3 + 1, "256 KiB chunks: 3 for the image");
    });

    await t.step("a large file is stored and read a chunk at a time", async () => {
      const bytes = randomBytes(40 * 1024 * 1024);
      const [status, accepted] = await upload(
        warren.url,
        form({ title: "big", image: new File([bytes], "big.jpg", { type: "image/jpeg" }) }),
      );
      assert.equal(status, 202);
      const task = await waitForState(warren.url, accepted.id, "succeeded", 60_000);
      assert.equal(task.result.sha256, sha256(bytes), "the handler read every byte, in order");
      assert.equal(task.files[0].size, bytes.length);
    });

    await t.step("a refused upload keeps nothing", async () => {
      const before = storedChunks(warren.storePath);
      const png = new File([randomBytes(300_000)], "x.png", { type: "image/png" });
      const cases: [FormData | string, number, RegExp][] = [
        [
          form({
            title: "t",
            image: png,
            note: new File(["x".repeat(2000)], "n.txt", { type: "text/plain" }),
          }),
          413,
          /"note" is over its limit of 1024 bytes/,
        ],
        [
          form({ title: "t", image: new File(["hi"], "x.txt", { type: "text/plain" }) }),
          415,
          /"image" is text\/plain; it must be image\/png or image\/jpeg/,
        ],
        [form({ title: "t" }), 400, /the file "image" is missing/],
        [form({ title: "t", image: png, other: new File(["x"], "o.bin") }), 400, /no file "other"/],
        [form({ image: png }), 422, /must have required property 'title'/],
        ['{"title":"json"}', 415, /send multipart\/form-data with the file field\(s\) image, note/],
      ];
      for (const [body, status, detail] of cases) {
        const [got, problem] = await upload(warren.url, body);
        assert.equal(got, status, JSON.stringify(problem));
        assert.match(problem.detail, detail);
      }
      assert.equal(storedChunks(warren.storePath), before, "no chunk of a refused upload is kept");
      const [, list] = await getJson(`${warren.url}/tasks?handler=image`);
      assert.equal(list.tasks.length, 2, "and no task");
    });

    await t.step("deleting a task deletes its files; a task not ended is kept", async () => {
      const bytes = randomBytes(1000);
      const [, accepted] = await upload(
        warren.url,
        form({ title: "gone", image: new File([bytes], "g.png", { type: "image/png" }) }),
      );
      await waitForState(warren.url, accepted.id, "succeeded");
      const before = storedChunks(warren.storePath);
      const deleted = await fetch(`${warren.url}/tasks/${accepted.id}`, { method: "DELETE" });
      assert.equal(deleted.status, 204);
      assert.equal(storedChunks(warren.storePath), before - 1);
      const [status] = await getJson(`${warren.url}/tasks/${accepted.id}/files/image`);
      assert.equal(status, 404);
      const [gone] = await getJson(`${warren.url}/tasks/${accepted.id}`);
      assert.equal(gone, 404);
      const later = await fetch(`${warren.url}/tasks/image?delay=60`, {
        method: "POST",
        body: form({ title: "later", image: new File([bytes], "l.png", { type: "image/png" }) }),
      });
      const waiting = await later.json();
      const refused = await fetch(`${warren.url}/tasks/${waiting.id}`, { method: "DELETE" });
      assert.equal(refused.status, 409);
      assert.match((await refused.json()).detail, /once it has ended/);
    });
  } finally {
    assert.equal(await warren.stop(), 0, warren.output());
    await deleteTopology(warren.prefix, ["image"]);
  }
});

Deno.test("uploads: Swagger UI uploads a file with 'try it out'", {
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  const warren = await startWarren({ handlersDir: HANDLERS });
  let browser: Awaited<ReturnType<typeof launchBrowser>> | undefined;
  try {
    browser = await launchBrowser();
    const docs = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await docs.goto(`${warren.url}/docs`);
    const operation = "#operations-tasks-enqueue_image";
    await docs.click(`${operation} .opblock-summary`);
    await docs.fill(`${operation} tr[data-property-name="title"] input`, "from the docs");
    const file = await Deno.makeTempFile({ suffix: ".png" });
    await Deno.writeFile(file, randomBytes(2048));
    await docs.setInputFiles(`${operation} tr[data-property-name="image"] input[type=file]`, file);
    await docs.click(`${operation} button.execute`);
    const status = docs.locator(`${operation} .live-responses-table tbody .response-col_status`);
    await status.first().waitFor();
    assert.equal((await status.first().textContent())?.trim(), "202");
    const body = JSON.parse(
      await docs.locator(`${operation} .live-responses-table .response-col_description pre`)
        .first().textContent() ?? "{}",
    );
    const task = await waitForState(warren.url, body.id, "succeeded");
    assert.equal(task.payload.title, "from the docs");
    assert.equal(task.result.size, 2048);
    assert.equal(task.result.sha256, sha256(await Deno.readFile(file)));
  } finally {
    await browser?.close();
    assert.equal(await warren.stop(), 0, warren.output());
    await deleteTopology(warren.prefix, ["image"]);
  }
});

Deno.test("uploads: on PostgreSQL a worker process reads a file any api node stored", async () => {
  const prefix = uniquePrefix("uploads-nodes");
  const db = await createDatabase();
  const { start, stop } = fleet(prefix, HANDLERS);
  try {
    await start("worker", { WARREN_STORE: ":memory:" }); // it needs no store: AMQP only
    const a = await start("api", { WARREN_STORE: db.url });
    const b = await start("api", { WARREN_STORE: db.url });
    const bytes = randomBytes(600_000);
    const [status, accepted] = await upload(
      a.url,
      form({ title: "shared", image: new File([bytes], "s.png", { type: "image/png" }) }),
    );
    assert.equal(status, 202);
    const task = await waitForState(b.url, accepted.id, "succeeded");
    assert.equal(task.result.sha256, sha256(bytes), "the worker read it over the broker");
    const download = await fetch(`${b.url}/tasks/${accepted.id}/files/image`);
    assert.equal(
      sha256(new Uint8Array(await download.arrayBuffer())),
      sha256(bytes),
      "B serves it",
    );
  } finally {
    await stop(["image"]).finally(() => db.drop());
  }
});
