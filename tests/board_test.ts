/**
 * The board of handler calls a worker shares with its supervisor: calls go on and off it without
 * a message, and the supervisor reads the keys and deadlines the worker wrote.
 */

import assert from "node:assert/strict";
import { boardWriter, createBoard, readBoard } from "../lib/worker/board.ts";
import { createLedgerClient } from "../lib/worker/ledger_client.ts";
import type { FromWorker } from "../lib/worker/protocol.ts";

Deno.test("board: calls go on and off; a full board or a key too long says so", () => {
  const board = createBoard(2);
  const writer = boardWriter(board);
  const a = writer.enter("a/0/1", 1_000);
  const b = writer.enter("b/0/1", 5_000);
  assert.notEqual(a, undefined);
  assert.equal(writer.enter("c/0/1", 1_000), undefined, "full");
  assert.deepEqual(readBoard(board), [
    { key: "a/0/1", deadline: 1_000 },
    { key: "b/0/1", deadline: 5_000 },
  ]);
  assert.deepEqual(readBoard(board, 2_000), [{ key: "a/0/1", deadline: 1_000 }], "only the due");
  writer.leave(a!);
  assert.deepEqual(readBoard(board).map((call) => call.key), ["b/0/1"]);
  assert.equal(writer.enter(`${"x".repeat(200)}/0/1`, 1), undefined, "a key too long");
  const again = writer.enter("é-ü/0/2", 7);
  assert.deepEqual(readBoard(board).find((call) => call.deadline === 7)?.key, "é-ü/0/2");
  writer.leave(again!);
  writer.leave(b!);
  assert.deepEqual(readBoard(board), []);
});

Deno.test("ledger client: a call on the board sends no message; a full board falls back to messages", () => {
  const posted: FromWorker[] = [];
  const board = createBoard(1);
  // One writer for the worker's life, as entry.ts holds it.
  const writer = boardWriter(board);
  const withBoard = createLedgerClient((message) => posted.push(message), () => writer);
  withBoard.started("a/0/1", 30_000);
  assert.deepEqual(posted, [], "on the board, not in a message");
  assert.equal(readBoard(board)[0].key, "a/0/1");
  assert.ok(Math.abs(readBoard(board)[0].deadline - (Date.now() + 30_000)) < 1_000);
  withBoard.started("b/0/1", 30_000); // the board is full
  assert.deepEqual(posted, [{ type: "started", key: "b/0/1", timeoutMs: 30_000 }]);
  withBoard.returned("a/0/1");
  assert.deepEqual(readBoard(board), [], "off the board");
  withBoard.returned("b/0/1");
  withBoard.settled("b/0/1");
  assert.deepEqual(posted.slice(1), [{
    type: "batch",
    messages: [{ type: "returned", key: "b/0/1" }, { type: "settled", key: "b/0/1" }],
  }], "announced by message, so its return is too");
});
