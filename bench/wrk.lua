-- wrk script for Warren's enqueue benchmark: POSTs a task (or, with WRK_METHOD=GET, GETs the
-- URL) and counts answers that are not 202.
wrk.method = os.getenv("WRK_METHOD") or "POST"
if wrk.method == "POST" then
  wrk.body = os.getenv("WRK_BODY") or '{"n":1}'
  wrk.headers["Content-Type"] = "application/json"
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  not202 = 0
end

function response(status, headers, body)
  if status ~= 202 then
    not202 = not202 + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("not202")
  end
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    'WRK_JSON {"requests":%d,"not202":%d,"errors":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, bad, errors, summary.duration,
    latency:percentile(50), latency:percentile(99)))
end
