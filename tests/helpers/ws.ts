/**
 * WebSocket clients for tests: a standard one that collects messages, and a raw one over TCP
 * that does the handshake itself and reads only when told (a slow client), or sends headers a
 * standard client cannot (an `Origin`).
 *
 * @module
 */

import type { Json } from "./warren.ts";

/** A standard WebSocket and the JSON messages it received so far. */
export interface Client {
  socket: WebSocket;
  messages: Json[];
  /** Waits for a message that `match` accepts (or fails after `timeoutMs`). */
  next(match: (message: Json) => boolean, timeoutMs?: number): Promise<Json>;
  send(message: unknown): void;
  /** Resolves with the close code once the socket closes. */
  closed: Promise<number>;
}

/** Connects to `url` (http:// becomes ws://) offering `protocols`; resolves once open. */
export async function connectWs(url: string, protocols: string[] = []): Promise<Client> {
  const socket = new WebSocket(url.replace(/^http/, "ws"), protocols);
  const messages: Json[] = [];
  const waiters = new Set<() => void>();
  const closed = new Promise<number>((resolve) =>
    socket.addEventListener("close", (event) => resolve(event.code))
  );
  socket.addEventListener("message", (event) => {
    messages.push(JSON.parse(String(event.data)));
    for (const wake of waiters) wake();
  });
  await new Promise<void>((resolve, reject) => {
    socket.addEventListener("open", () => resolve(), { once: true });
    socket.addEventListener("error", () => reject(new Error(`cannot connect to ${url}`)), {
      once: true,
    });
  });
  return {
    socket,
    messages,
    closed,
    send: (message) => socket.send(JSON.stringify(message)),
    next(match, timeoutMs = 10_000) {
      let seen = 0;
      return new Promise<Json>((resolve, reject) => {
        const look = () => {
          for (; seen < messages.length; seen++) {
            if (match(messages[seen])) {
              done();
              return resolve(messages[seen]);
            }
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(
            new Error(`no matching message within ${timeoutMs} ms: ${JSON.stringify(messages)}`),
          );
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(look);
        };
        waiters.add(look);
        look();
      });
    },
  };
}

/** A WebSocket spoken by hand over TCP. */
export interface RawClient {
  /** The handshake's status line, e.g. `HTTP/1.1 101 Switching Protocols`. */
  status: string;
  /** Sends a text frame (masked, as a client must). */
  sendText(text: string): Promise<void>;
  /** Reads frames until a close frame; returns its code and how many bytes came before it. */
  readUntilClose(timeoutMs: number): Promise<{ code: number; bytes: number }>;
  close(): void;
}

/** Opens a TCP connection to `url` and sends a WebSocket handshake with `headers`. */
export async function rawWs(url: string, headers: Record<string, string>): Promise<RawClient> {
  const { hostname, port, pathname } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  const lines = [
    `GET ${pathname} HTTP/1.1`,
    `Host: ${hostname}:${port}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version: 13",
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
  ];
  await conn.write(new TextEncoder().encode(lines.join("\r\n") + "\r\n\r\n"));
  let buffer: Uint8Array = new Uint8Array(0);
  const more = async () => {
    const chunk = new Uint8Array(64 * 1024);
    const n = await conn.read(chunk);
    if (n === null) throw new Error("the server closed the connection");
    buffer = concat(buffer, chunk.subarray(0, n));
  };
  let end = -1;
  while ((end = indexOf(buffer, "\r\n\r\n")) < 0) await more();
  const status = new TextDecoder().decode(buffer.subarray(0, end)).split("\r\n")[0];
  buffer = buffer.subarray(end + 4);
  return {
    status,
    async sendText(text) {
      const payload = new TextEncoder().encode(text);
      if (payload.length > 125) throw new Error("this client sends short frames only");
      const mask = crypto.getRandomValues(new Uint8Array(4));
      const frame = new Uint8Array([
        0x81,
        0x80 | payload.length,
        ...mask,
        ...payload.map((b, i) => b ^ mask[i % 4]),
      ]);
      await conn.write(frame);
    },
    async readUntilClose(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      let bytes = 0;
      while (Date.now() < deadline) {
        while (buffer.length < 2) await more();
        const opcode = buffer[0] & 0x0f;
        let length = buffer[1] & 0x7f;
        let offset = 2;
        if (length === 126) {
          while (buffer.length < 4) await more();
          length = (buffer[2] << 8) | buffer[3];
          offset = 4;
        } else if (length === 127) {
          while (buffer.length < 10) await more();
          length = Number(new DataView(buffer.buffer, buffer.byteOffset + 2, 8).getBigUint64(0));
          offset = 10;
        }
        while (buffer.length < offset + length) await more();
        const payload = buffer.subarray(offset, offset + length);
        buffer = buffer.subarray(offset + length);
        if (opcode === 0x8) return { code: (payload[0] << 8) | payload[1], bytes };
        bytes += length;
      }
      throw new Error(`no close frame within ${timeoutMs} ms (${bytes} bytes read)`);
    },
    close: () => conn.close(),
  };
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function indexOf(bytes: Uint8Array, text: string): number {
  return new TextDecoder("latin1").decode(bytes).indexOf(text);
}
