/**
 * Callbacks, in parts: where they may go (the SSRF guard, with a resolver that says what a test
 * wants), and their signatures, proven by the `standardwebhooks` library.
 */

import assert from "node:assert/strict";
import { Webhook } from "standardwebhooks";
import {
  type Allowance,
  destinationProblem,
  parseAllowance,
  urlProblem,
} from "../lib/callback/destination.ts";
import { readSecret, signatureHeaders } from "../lib/callback/signature.ts";

const NONE = parseAllowance("") as Allowance;
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

Deno.test("callback URLs: the form, and addresses written in them", () => {
  assert.equal(urlProblem("https://hooks.example.com/warren?k=1", NONE), undefined);
  assert.match(urlProblem("/relative", NONE)!, /not an absolute URL/);
  assert.match(urlProblem("ftp://example.com/x", NONE)!, /http: or https:/);
  assert.match(urlProblem("https://user:pw@example.com/", NONE)!, /no user or password/);
  assert.match(urlProblem("https://example.com/" + "x".repeat(3000), NONE)!, /at most 2048/);
  for (
    const url of [
      "http://127.0.0.1:8000/",
      "http://localhost/",
      "http://10.1.2.3/",
      "http://172.20.0.1/",
      "http://192.168.1.1/",
      "http://169.254.169.254/latest/meta-data",
      "http://100.64.0.1/",
      "http://0.0.0.0/",
      "http://[::1]/",
      "http://[fd00::1]/",
      "http://[fe80::1]/",
      "http://[::ffff:127.0.0.1]/",
      "http://2130706433/", // 127.0.0.1 written as a number
      "http://0x7f.1/",
    ]
  ) {
    assert.match(
      urlProblem(url, NONE) ?? "",
      /private or special address.*WARREN_CALLBACK_ALLOW/,
      url,
    );
  }
  assert.equal(urlProblem("http://8.8.8.8/", NONE), undefined);
  assert.equal(urlProblem("http://[2001:4860:4860::8888]/", NONE), undefined);
});

Deno.test("callback URLs: WARREN_CALLBACK_ALLOW lets addresses, ranges and hosts through", () => {
  const allow = parseAllowance("127.0.0.1, 10.0.0.0/8, ::1, hooks.internal") as Allowance;
  assert.equal(urlProblem("http://127.0.0.1:9000/hook", allow), undefined);
  assert.equal(urlProblem("http://10.200.3.4/hook", allow), undefined);
  assert.equal(urlProblem("http://[::1]/hook", allow), undefined);
  assert.equal(urlProblem("http://[::ffff:10.0.0.1]/hook", allow), undefined, "mapped IPv4");
  assert.match(urlProblem("http://127.0.0.2/hook", allow)!, /private/, "only that address");
  assert.match(urlProblem("http://192.168.0.1/", allow)!, /private/);
  for (const bad of ["10.0.0.0/33", "::1/200", "not a host!", "1.2.3.4/x"]) {
    assert.match(String(parseAllowance(bad)), /WARREN_CALLBACK_ALLOW: /, bad);
  }
});

Deno.test("callback destinations: every address a host resolves to must be allowed", async () => {
  const resolver = (table: Record<string, string[]>) => (host: string) =>
    Promise.resolve(table[host] ?? []);
  const resolve = resolver({
    "public.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
    "sneaky.example": ["93.184.215.14", "10.0.0.7"],
    "hooks.internal": ["10.0.0.8"],
  });
  const check = (url: string, allow = NONE) => destinationProblem(new URL(url), allow, resolve);
  assert.equal(await check("https://public.example/hook"), undefined);
  assert.match((await check("https://sneaky.example/hook"))!, /is 10\.0\.0\.7, a private/);
  assert.match((await check("https://nowhere.example/hook"))!, /does not resolve/);
  assert.match((await check("https://hooks.internal/"))!, /private/);
  const byHost = parseAllowance("hooks.internal") as Allowance;
  assert.equal(await check("https://hooks.internal/", byHost), undefined);
  assert.match((await check("http://localhost:8080/"))!, /localhost is 127\.0\.0\.1/);
});

Deno.test("callback signatures: Standard Webhooks, as its own library verifies them", () => {
  const key = readSecret(SECRET);
  assert.ok(key instanceof Uint8Array);
  const body = JSON.stringify({ id: "t-1", state: "succeeded", result: { ok: true } });
  const now = Math.floor(Date.now() / 1000);
  const headers = signatureHeaders(key, "t-1.0", now, body);
  assert.equal(headers["webhook-id"], "t-1.0");
  assert.match(headers["webhook-signature"], /^v1,[A-Za-z0-9+/]+=*$/);
  assert.deepEqual(new Webhook(SECRET).verify(body, headers), JSON.parse(body));
  assert.throws(() => new Webhook(SECRET).verify(body.replace("true", "false"), headers));
  const other = readSecret("whsec_" + btoa("another secret of 24 bytes")) as Uint8Array;
  assert.throws(() =>
    new Webhook(SECRET).verify(body, signatureHeaders(other, "t-1.0", now, body))
  );
  for (const bad of ["hunter2", "whsec_", "whsec_!!!", "whsec_" + btoa("short")]) {
    assert.match(String(readSecret(bad)), /WARREN_WEBHOOK_SECRET must be/, bad);
  }
});
