-- wrk: client-credentials token requests with client_secret_basic over keep-alive.
-- CLIENT_BASIC is "Basic base64(id:secret)", set by run.sh.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = os.getenv("CLIENT_BASIC")
wrk.body = "grant_type=client_credentials"

local failures = 0
function response(status, headers, body)
  if status ~= 200 then failures = failures + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format("p50_us=%d p99_us=%d non200=%d requests=%d\n",
    latency:percentile(50), latency:percentile(99), summary.errors.status, summary.requests))
end
