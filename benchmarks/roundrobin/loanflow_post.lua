-- wrk script: POST loanflow applications from a file of bodies (one JSON per line),
-- each request with its own Idempotency-Key. Env: WRK_BODIES (path), WRK_KEY (API key),
-- WRK_NONCE. Prints one machine-readable RESULT line at the end.
local nthreads = 0
function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
end

function init(args)
  nonce = os.getenv("WRK_NONCE") or tostring(os.time())
  tid = tid or 1
  n = 0
  bodies = {}
  for line in io.lines(os.getenv("WRK_BODIES")) do
    bodies[#bodies + 1] = line
  end
  wrk.method = "POST"
  wrk.path = "/v1/applications"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("WRK_KEY")
end

function request()
  n = n + 1
  -- wrk.format takes these instead of wrk.headers, not beside them
  local headers = {}
  for k, v in pairs(wrk.headers) do headers[k] = v end
  headers["Idempotency-Key"] = string.format("wrk-%s-%d-%d", nonce, tid, n)
  return wrk.format(nil, nil, headers, bodies[1 + (tid * 7919 + n) % #bodies])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT rps=%.1f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f requests=%d non2xx=%d sock_err=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, summary.requests, e.status,
    e.connect + e.read + e.write + e.timeout))
end
