/**
 * Errors as `application/problem+json` (RFC 9457): a type, a title, the status, a detail that
 * says what to do, and any extra members.
 *
 * @module
 */

/** A problem response's body. */
export interface Problem {
  /** A short slug naming the kind of problem; the `type` member is `urn:warren:problem:<slug>`. */
  slug: string;
  title: string;
  status: number;
  detail?: string;
  [member: string]: unknown;
}

/**
 * Builds a problem+json response.
 *
 * @example
 * ```ts
 * const response = problem({ slug: "unknown-handler", title: "Unknown handler", status: 404 });
 * ```
 */
export function problem(body: Problem, headers: HeadersInit = {}): Response {
  const { slug, ...rest } = body;
  return new Response(JSON.stringify({ type: `urn:warren:problem:${slug}`, ...rest }), {
    status: body.status,
    headers: { "content-type": "application/problem+json", ...headers },
  });
}

/** A 503 that tells the client when to try again. */
export function unavailable(detail: string, retryAfterSeconds = 5): Response {
  return problem(
    { slug: "unavailable", title: "Service unavailable", status: 503, detail },
    { "retry-after": String(retryAfterSeconds) },
  );
}
