# Warren's container image: `docker build -t warren .` (compose.yaml builds it for you).
FROM denoland/deno:2.9.6

WORKDIR /app
COPY deno.json deno.lock ./
COPY main.ts ./
COPY lib/ lib/
COPY handlers/ handlers/
# Fetch every npm dependency at build time; the worker entry is loaded at run time, cache it too.
RUN deno install --frozen --entrypoint main.ts lib/worker/entry.ts handlers/*.ts \
  && mkdir -p /app/data && chown deno:deno /app/data

USER deno
ENV HOST=0.0.0.0 PORT=8000 WARREN_STORE=/app/data/warren.db
EXPOSE 8000
VOLUME ["/app/data"]
HEALTHCHECK --interval=10s --timeout=3s CMD ["deno", "eval", "const r = await fetch('http://127.0.0.1:8000/healthz'); Deno.exit(r.ok ? 0 : 1)"]
CMD ["task", "start"]
