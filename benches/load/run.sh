#!/usr/bin/env bash
# Load test of the authorization server over HTTPS on loopback with keep-alive:
# client-credentials tokens per second and introspections per second, with p50/p99.
# Needs wrk (Debian package). Usage: benches/load/run.sh [seconds] [connections] [format]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
conns=${2:-32}
format=${3:-jwt}
command -v wrk >/dev/null || { echo "wrk missing: apt-get install -y wrk"; exit 1; }
cargo build --release --quiet -p rampart
bin=target/release/rampart
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
RAMPART_LOG=warn $bin serve --data-dir "$dir/data" --listen "127.0.0.1:$port" > "$dir/serve.log" 2>&1 &
pid=$!
for _ in $(seq 50); do grep -q "Create a client" "$dir/serve.log" 2>/dev/null && break; sleep 0.1; done
url="https://127.0.0.1:$port"
creds=$($bin client create --data-dir "$dir/data" --name load --scope "orders:read" \
  --audience https://api.example.com/orders --token-format "$format" --json)
id=$(echo "$creds" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
secret=$(echo "$creds" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
export CLIENT_BASIC="Basic $(printf '%s:%s' "$id" "$secret" | base64 -w0)"
sleep 1
export TOKEN=$(curl -s --cacert "$dir/data/tls/ca.pem" -H "Authorization: $CLIENT_BASIC" \
  -d grant_type=client_credentials "$url/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "format: $format; wrk -t1 -c$conns -d${secs}s (keep-alive, TLS 1.3)"
echo "== token (client_credentials)"
wrk -t1 -c"$conns" -d"${secs}s" -s benches/load/token.lua "$url/token" | grep -E "Requests/sec|p50_us|Socket errors"
echo "== introspect"
wrk -t1 -c"$conns" -d"${secs}s" -s benches/load/introspect.lua "$url/introspect" | grep -E "Requests/sec|p50_us|Socket errors"
echo "server RSS: $(ps -o rss= -p $pid) KiB"
