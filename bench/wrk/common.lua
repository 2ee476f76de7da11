-- Shared by the wrk scripts of bench/run_server.sh: the key from DRISK_KEY, and one JSON
-- line of figures at the end (requests/s, latency percentiles in ms, non-2xx, errors).
local M = {}

function M.headers()
  return { ["Authorization"] = "Bearer " .. (os.getenv("DRISK_KEY") or ""),
           ["Content-Type"] = "application/json" }
end

function M.done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "rps": %.1f, "p50_ms": %.3f, "p90_ms": %.3f, ' ..
    '"p99_ms": %.3f, "max_ms": %.3f, "non2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, e.status,
    e.connect + e.read + e.write + e.timeout))
end

return M
