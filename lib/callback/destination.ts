/**
 * Where callbacks may go. A callback URL is given by whoever may POST a task, so without a guard
 * it would let them make Warren send requests inside its own network (SSRF): loopback, private,
 * link-local (cloud metadata at 169.254.169.254), shared and other special addresses are refused
 * unless `WARREN_CALLBACK_ALLOW` lists them (addresses, CIDR ranges or host names). A URL is
 * checked when a task asks for it (its form, and an address written in it) and again before each
 * delivery, on every address its host resolves to.
 *
 * @module
 */

/** What `WARREN_CALLBACK_ALLOW` lets through, parsed. */
export interface Allowance {
  /** Host names allowed whatever they resolve to (lowercase). */
  hosts: Set<string>;
  /** Address ranges allowed. */
  ranges: Range[];
}

/** An address range: its bytes and prefix length. */
interface Range {
  bytes: Uint8Array;
  bits: number;
}

/** Longest callback URL accepted. */
const MAX_URL_LENGTH = 2048;

/**
 * Reads `WARREN_CALLBACK_ALLOW`: a comma-separated list of addresses (`127.0.0.1`, `::1`), CIDR
 * ranges (`10.0.0.0/8`) and host names (`hooks.internal`). Returns what is wrong as a string.
 *
 * @example
 * ```ts
 * const allow = parseAllowance("127.0.0.1, 10.0.0.0/8, hooks.internal");
 * ```
 */
export function parseAllowance(text: string | undefined): Allowance | string {
  const allowance: Allowance = { hosts: new Set(), ranges: [] };
  for (const entry of (text ?? "").split(",").map((e) => e.trim()).filter(Boolean)) {
    const [address, prefix] = entry.split("/");
    const bytes = parseAddress(address);
    if (bytes) {
      const bits = prefix === undefined ? bytes.length * 8 : Number(prefix);
      if (!Number.isInteger(bits) || bits < 0 || bits > bytes.length * 8) {
        return `WARREN_CALLBACK_ALLOW: "${entry}" has a bad prefix length`;
      }
      allowance.ranges.push({ bytes, bits });
    } else if (prefix === undefined && /^[a-z0-9.-]+$/i.test(entry)) {
      allowance.hosts.add(entry.toLowerCase());
    } else {
      return `WARREN_CALLBACK_ALLOW: "${entry}" is not an address, a CIDR range or a host name`;
    }
  }
  return allowance;
}

/**
 * What is wrong with a callback URL as written, or undefined: it must be an absolute `http:` or
 * `https:` URL without credentials, and an address written in it must be allowed.
 *
 * @example
 * ```ts
 * const allow = { hosts: new Set<string>(), ranges: [] };
 * urlProblem("https://example.com/hook", allow); // undefined
 * urlProblem("http://10.0.0.5/hook", allow); // "… a private or special address …"
 * ```
 */
export function urlProblem(text: string, allow: Allowance): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return `the callback URL "${text.slice(0, 100)}" is not an absolute URL`;
  }
  if (text.length > MAX_URL_LENGTH) return `a callback URL is at most ${MAX_URL_LENGTH} characters`;
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return `a callback URL is http: or https: (got ${url.protocol})`;
  }
  if (url.username || url.password) return "a callback URL carries no user or password";
  const host = hostOf(url);
  if (allow.hosts.has(host)) return undefined;
  const literal = host === "localhost" ? parseAddress("127.0.0.1") : parseAddress(host);
  return literal && refused(literal, allow) ? privateProblem(host, host) : undefined;
}

/** Resolves a host name to its addresses (A and AAAA); injected in tests. */
export type Resolve = (host: string) => Promise<string[]>;

/** Resolves with the system's DNS servers: A and AAAA records. */
export const resolveDns: Resolve = async (host) => {
  const lookups = await Promise.allSettled([
    Deno.resolveDns(host, "A"),
    Deno.resolveDns(host, "AAAA"),
  ]);
  return lookups.flatMap((lookup) => lookup.status === "fulfilled" ? lookup.value : []);
};

/**
 * What stops a delivery to `url` now, or undefined: a host that resolves to nothing, or to any
 * address that is not allowed.
 *
 * @example
 * ```ts
 * const allow = { hosts: new Set<string>(), ranges: [] };
 * await destinationProblem(new URL("https://example.com/hook"), allow, resolveDns);
 * ```
 */
export async function destinationProblem(
  url: URL,
  allow: Allowance,
  resolve: Resolve,
): Promise<string | undefined> {
  const host = hostOf(url);
  if (allow.hosts.has(host)) return undefined;
  const literal = parseAddress(host);
  const addresses = literal
    ? [host]
    : host === "localhost"
    ? ["127.0.0.1", "::1"]
    : await resolve(host);
  if (addresses.length === 0) return `the callback host ${host} does not resolve`;
  for (const address of addresses) {
    const bytes = parseAddress(address);
    if (!bytes || refused(bytes, allow)) return privateProblem(host, address);
  }
  return undefined;
}

function privateProblem(host: string, address: string): string {
  return `the callback host ${host} is ${address}, a private or special address: list it in ` +
    "WARREN_CALLBACK_ALLOW to send callbacks there";
}

/** The URL's host, lowercase, without an IPv6 literal's brackets. */
function hostOf(url: URL): string {
  return url.hostname.toLowerCase().replace(/^\[(.*)\]$/, "$1");
}

/** Ranges no callback goes to unless allowed. */
const SPECIAL: Range[] = [
  "0.0.0.0/8", // "this" network
  "10.0.0.0/8", // private
  "100.64.0.0/10", // shared (carrier-grade NAT)
  "127.0.0.0/8", // loopback
  "169.254.0.0/16", // link-local, cloud metadata
  "172.16.0.0/12", // private
  "192.0.0.0/24", // protocol assignments
  "192.168.0.0/16", // private
  "198.18.0.0/15", // benchmarking
  "224.0.0.0/3", // multicast and reserved, broadcast
  "::/127", // unspecified, loopback
  "::ffff:0:0/96", // IPv4-mapped: checked as IPv4 below
  "64:ff9b::/96", // NAT64
  "fc00::/7", // unique local
  "fe80::/10", // link-local
  "ff00::/8", // multicast
].map((cidr) => {
  const [address, bits] = cidr.split("/");
  return { bytes: parseAddress(address)!, bits: Number(bits) };
});

/** Whether an address is special and not allowed. */
function refused(bytes: Uint8Array, allow: Allowance): boolean {
  const mapped = bytes.length === 16 && inRange(bytes, SPECIAL[11]) ? bytes.subarray(12) : bytes;
  if (allow.ranges.some((range) => inRange(mapped, range) || inRange(bytes, range))) return false;
  return SPECIAL.some((range) => inRange(mapped, range));
}

function inRange(bytes: Uint8Array, range: Range): boolean {
  if (bytes.length !== range.bytes.length) return false;
  for (let bit = 0; bit < range.bits; bit += 8) {
    const take = Math.min(8, range.bits - bit);
    const mask = (0xff << (8 - take)) & 0xff;
    if ((bytes[bit / 8] & mask) !== (range.bytes[bit / 8] & mask)) return false;
  }
  return true;
}

/** An IPv4 or IPv6 address's bytes, or undefined for anything else. */
function parseAddress(text: string): Uint8Array | undefined {
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(text)) {
    const parts = text.split(".").map(Number);
    return parts.every((p) => p <= 255) ? new Uint8Array(parts) : undefined;
  }
  if (!/^[0-9a-f:.]+$/i.test(text) || !text.includes(":")) return undefined;
  let tail: number[] = [];
  let body = text;
  const v4 = /(\d{1,3}(\.\d{1,3}){3})$/.exec(text);
  if (v4) {
    const bytes = parseAddress(v4[1]);
    if (!bytes) return undefined;
    tail = [(bytes[0] << 8) | bytes[1], (bytes[2] << 8) | bytes[3]];
    body = text.slice(0, -v4[1].length).replace(/:$/, "") || ":";
    if (body.endsWith(":") && !body.endsWith("::")) body += ":";
  }
  const halves = body.split("::");
  if (halves.length > 2) return undefined;
  const words = (part: string) => part === "" ? [] : part.split(":").map((w) => parseInt(w, 16));
  const head = words(halves[0]);
  const rest = halves.length === 2 ? words(halves[1]) : [];
  const missing = 8 - head.length - rest.length - tail.length;
  if (missing < 0 || (halves.length === 1 && missing !== 0)) return undefined;
  const all = [...head, ...new Array(halves.length === 2 ? missing : 0).fill(0), ...rest, ...tail];
  if (all.length !== 8 || all.some((w) => !(w >= 0 && w <= 0xffff))) return undefined;
  return new Uint8Array(all.flatMap((w) => [w >> 8, w & 0xff]));
}
