#!/usr/bin/env bash
# Credential stuffing against the sign-in page, one machine, one run, two scenarios:
#   A. defaults: the flood comes from one address (127.0.0.1); per-address throttling
#      answers it with fast 429s after a few failures.
#   B. a botnet: per-address throttling raised out of reach (as if every attempt came from a
#      new address); only the bounded hashing pool stands between the flood and the CPU.
# In both, legitimate users sign in at the same time from another address (127.0.0.2),
# each a new browser (authorize -> login page -> POST /login -> code). First the hashing
# capacity alone is measured (legitimate sign-ins, no flood); the flood then runs with
# wrk -cCONNS, at far more than 100x that capacity. Reported: the flood's rate and status
# mix, the legitimate sign-ins/s, success count, p50/p99 of the password step, and the
# server's peak RSS.
# Needs wrk (Debian: apt-get install -y wrk), python3 with httpx (scripts/test makes .venv).
# Usage: benches/login/run.sh [seconds] [connections]   Env: RAMPART_BIN (no build).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-15}
conns=${2:-256}
command -v wrk >/dev/null || { echo "wrk missing (apt-get install -y wrk)" >&2; exit 1; }
py=.venv/bin/python
[ -x "$py" ] || { echo "run scripts/test once to create .venv" >&2; exit 1; }
if [ -z "${RAMPART_BIN:-}" ]; then cargo build --release --quiet -p rampart; fi
dir=$(mktemp -d)
cp "${RAMPART_BIN:-target/release/rampart}" "$dir/rampart"
bin=$dir/rampart
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export BASE="https://127.0.0.1:$port" CA="$dir/data/tls/ca.pem"
password='legit-user passphrase 2026'
export LEGIT_PASSWORD=$password

start_server() { # config file
  "$bin" serve --config "$1" --data-dir "$dir/data" --listen "127.0.0.1:$port" >"$dir/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 100); do
    curl -sf --cacert "$CA" "$BASE/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server did not start" >&2; cat "$dir/server.log" >&2; exit 1
}
stop_server() { kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""; }
peak_rss() { # pid seconds: highest VmRSS in KiB sampled every 0.2 s
  local max=0 v
  for _ in $(seq $(( $2 * 5 ))); do
    v=$(awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0)
    [ "${v:-0}" -gt "$max" ] && max=$v
    sleep 0.2
  done
  echo "$max"
}

scenario() { # name config
  echo "== scenario $1"
  start_server "$2"
  "$bin" user create --data-dir "$dir/data" --username alice --email alice@example.com \
    --password-stdin <<<"$password" >/dev/null 2>&1 || true
  "$bin" client create --data-dir "$dir/data" --name "Bench web" --client-id bench-web --public \
    --first-party --grant-type authorization_code --redirect-uri http://127.0.0.1:9/cb >/dev/null 2>&1 || true
  echo "-- capacity: legitimate sign-ins alone (4 users, ${secs}s)"
  DURATION=$secs WORKERS=4 "$py" benches/login/legit.py
  # One browser's cookie, CSRF token and request for the flood.
  IFS=$'\t' read -r cookie csrf request < <("$py" - <<'PY'
import os, re, httpx
c = httpx.Client(base_url=os.environ["BASE"], verify=os.environ["CA"])
r = c.get("/authorize", params={"response_type": "code", "client_id": "bench-web",
    "redirect_uri": "http://127.0.0.1:9/cb", "scope": "openid", "state": "s",
    "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", "code_challenge_method": "S256"})
page = c.get(r.headers["location"]).text
csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
req = re.search(r'name="request" value="([^"]+)"', page).group(1)
print("; ".join(f"{k}={v}" for k, v in c.cookies.items()), csrf, req, sep="\t")
PY
)
  echo "-- flood (wrk -t1 -c$conns) with legitimate sign-ins alongside (4 returning users), ${secs}s"
  peak_rss "$server_pid" "$((secs + 2))" >"$dir/rss" &
  rss_pid=$!
  COOKIE="$cookie" CSRF="$csrf" REQUEST="$request" \
    wrk -t1 -c"$conns" -d"${secs}s" --timeout 10s -s benches/login/stuff.lua "$BASE" 2>&1 | grep STUFFING &
  wrk_pid=$!
  DURATION=$secs WORKERS=4 "$py" benches/login/legit.py
  wait "$wrk_pid"
  wait "$rss_pid"
  echo "-- the same flood against first-time users (no device cookie), ${secs}s"
  COOKIE="$cookie" CSRF="$csrf" REQUEST="$request" \
    wrk -t1 -c"$conns" -d"${secs}s" --timeout 10s -s benches/login/stuff.lua "$BASE" 2>&1 | grep STUFFING &
  wrk_pid=$!
  RETURNING=0 DURATION=$secs WORKERS=4 "$py" benches/login/legit.py
  wait "$wrk_pid"
  echo "-- server peak RSS during the flood: $(( $(cat "$dir/rss") / 1024 )) MiB"
  stop_server
}

cat >"$dir/a.toml" <<CONF
CONF
cat >"$dir/b.toml" <<CONF
[login]
address_free_failures = 999999998
address_lockout_after = 999999999
CONF
scenario "A (defaults: the flood from one address)" "$dir/a.toml"
scenario "B (botnet: per-address throttling out of reach)" "$dir/b.toml"
