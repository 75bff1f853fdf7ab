-- wrk: keep-alive GETs; with BEARER set (by run.sh) each request carries
-- "Authorization: Bearer $BEARER". No response() callback, so wrk stays as fast as plain wrk.
-- done() prints one machine-readable line that run.sh turns into the table.
local bearer = os.getenv("BEARER")
if bearer ~= nil and bearer ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. bearer
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT rps=%.0f p50_us=%d p99_us=%d requests=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    summary.requests, e.status, e.connect, e.read, e.write, e.timeout))
end
