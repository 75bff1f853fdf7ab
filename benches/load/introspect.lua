-- wrk: RFC 7662 introspection of one valid token, client-authenticated, over keep-alive.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Authorization"] = os.getenv("CLIENT_BASIC")
wrk.body = "token=" .. os.getenv("TOKEN")

done = function(summary, latency, requests)
  io.write(string.format("p50_us=%d p99_us=%d non200=%d requests=%d\n",
    latency:percentile(50), latency:percentile(99), summary.errors.status, summary.requests))
end
