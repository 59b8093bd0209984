/**
 * A task's Server-Sent Events as a standard EventSource client lives with them: every event has
 * an id, a reconnect resumes after Last-Event-ID, and once the task has ended the client is told
 * to stop (204) instead of reconnecting forever.
 */

import assert from "node:assert/strict";
import { EventSource } from "eventsource";
import { deleteTopology, postTask, startWarren, waitForState } from "./helpers/warren.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One SSE event as it came over the wire. */
interface Received {
  type: string;
  id: string;
  state: string;
}

/** Follows a task with the npm `eventsource` client (the WHATWG algorithm), counting connections. */
function follow(url: string) {
  const received: Received[] = [];
  const statuses: number[] = [];
  const source = new EventSource(url, {
    fetch: async (input, init) => {
      const response = await fetch(input, init);
      statuses.push(response.status);
      return response;
    },
  });
  for (const type of ["queued", "running", "progress", "retrying", "succeeded", "dead"]) {
    source.addEventListener(type, (event) => {
      received.push({ type, id: event.lastEventId, state: JSON.parse(event.data).state });
    });
  }
  return { source, received, statuses };
}

Deno.test("sse: ids, a stop after the end, and a resume after Last-Event-ID", async (t) => {
  const warren = await startWarren();
  try {
    await t.step("a standard client hears each event once and stops after the end", async () => {
      const [, body] = await postTask(warren.url, "steps", { steps: 3, ms: 200 });
      const { source, received, statuses } = follow(`${warren.url}${body.links.events}`);
      try {
        await waitForState(warren.url, body.id, "succeeded");
        // The server closes the stream at the end; the client reconnects once with its
        // Last-Event-ID, hears 204 and stops for good.
        await sleep(4_000);
        assert.equal(source.readyState, EventSource.CLOSED, "the client stopped");
        assert.deepEqual(statuses, [200, 204], "one reconnect, answered 204");
        const types = received.map((event) => event.type);
        assert.equal(types.filter((type) => type === "succeeded").length, 1, types.join(","));
        assert.equal(types.filter((type) => type === "progress").length, 3, types.join(","));
        const ids = received.map((event) => Number(event.id));
        assert.ok(ids.every((id) => Number.isInteger(id) && id > 0), `ids ${ids}`);
        assert.deepEqual(ids, [...ids].sort((a, b) => a - b), "ids grow");
        assert.equal(new Set(ids).size, ids.length, "each id once");
      } finally {
        source.close();
      }
    });

    await t.step("a reconnect resumes after Last-Event-ID, and says how soon", async () => {
      const [, body] = await postTask(warren.url, "steps", { steps: 2, ms: 600 });
      await waitForState(warren.url, body.id, "running");
      const url = `${warren.url}${body.links.events}`;
      const first = await fetch(url);
      const reader = first.body!.pipeThrough(new TextDecoderStream()).getReader();
      const { value } = await reader.read();
      await reader.cancel();
      assert.match(value!, /^retry: \d+$/m, "the stream says when to reconnect");
      const lastId = /^id: (\d+)$/m.exec(value!)![1];
      assert.match(value!, /^event: running$/m);

      const resumed = await fetch(url, { headers: { "last-event-id": lastId } });
      const text = await resumed.text(); // to the end of the task
      assert.ok(!/^event: running$/m.test(text), "the event seen before is not sent again");
      assert.match(text, /^event: progress$/m);
      assert.match(text, /^event: succeeded$/m);
      const finalId = [...text.matchAll(/^id: (\d+)$/gm)].at(-1)![1];
      const after = await fetch(url, { headers: { "last-event-id": finalId } });
      assert.equal(after.status, 204, "nothing more will come");
      await after.body?.cancel();
      const stale = await fetch(url, { headers: { "last-event-id": lastId } });
      const rest = await stale.text();
      assert.match(rest, /^event: succeeded$/m, "an older id gets the end");
    });
  } finally {
    assert.equal(await warren.stop(), 0, warren.output());
    await deleteTopology(warren.prefix);
  }
});
