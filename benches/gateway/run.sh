#!/usr/bin/env bash
# Gateway load benchmark on loopback, one machine, one run, three setups compared as ratios:
#   (a) upstream direct: nginx answering a fixed 200 over HTTP (keep-alive)
#   (b) nginx proxy_pass to (a): TLS on the listener, upstream keep-alive, access log on, no auth
#   (c) rampart gateway to (a): TLS, JWT (EdDSA) + audience + scope check + rate limit + audit log
# wrk -t1 -cCONNS over keep-alive for peak req/s, p50, p99; then latency at half of (c)'s peak
# at a fixed rate with oha (open loop) for (a), (b), (c); then memory with 10,000 idle
# keep-alive TLS connections to (c) and to (b).
# Needs wrk and nginx (Debian packages: apt-get install -y wrk nginx), openssl, curl, python3;
# oha for the half-load part (cargo install --locked oha; skipped with a notice if missing).
# Usage: benches/gateway/run.sh [seconds] [connections]
# Env: IDLE_CONNS (default 10000; 0 skips that part), RAMPART_BIN (use this binary, no build),
# KEEP_TMP=1 (keep the temp dir with configs, logs and the audit log), NO_OHA=1 (skip the
# half-load part), HALF_ROUNDS=N (rounds of (b) and (c) at half load, default 3),
# PERF_OUT=FILE (record `perf record --call-graph dwarf` of the gateway during its peak run, and
# with BARE=1 of the bare proxy's into FILE.bare;
# PERF_CALL_GRAPH=none records flat samples, small files; another value replaces dwarf,16384),
# CALLGRIND=N (instead of the load runs: run the gateway under valgrind's callgrind, send 300
# warm-up then N sequential requests on one connection, print instructions per request;
# repeatable on a noisy machine, user space only),
# HOLD=1 (instead of the load runs: print the three URLs and the token to
# $dir/hold.env, then keep everything running until interrupted, for experiments by hand),
# STRACE=N (instead of the load runs: count the system calls of (b) nginx's workers and of (c)
# the gateway over N sequential requests on one keep-alive connection, after 300 warm-up),
# PIN=1 (the proxy under test, (b) or (c), alone on CPU 1 with one worker; wrk/oha, the
# upstream and the authorization server on CPU 0: the proxy's own throughput and latency,
# without the load generator taking CPU from it),
# POLICY=1 ((c) also decides every request with Cedar policies: [gateway.policy] with a read
# permit on the scope, a client's write permit and a forbid on the client address),
# ROUNDS=N (the peak part measures (b), (c) [and (d)] N times, alternating, and prints each
# round's ratios and their median: on a machine whose speed drifts, ratios of neighbouring runs),
# BARE=1 (also runs (d): crates/rampart/examples/bare_proxy.rs, a TLS reverse proxy of hyper 1 +
# tokio-rustls + hyper's client alone, no checks and no log, the floor of the gateway's stack;
# it gets the same requests as (c), token included; BARE_BIN=path uses that binary, no build).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-10}
conns=${2:-64}
idle_n=${IDLE_CONNS:-10000}
missing=""
for t in wrk nginx openssl curl python3; do command -v "$t" >/dev/null || missing="$missing $t"; done
if [ -n "$missing" ]; then
  echo "missing:$missing (Debian: apt-get install -y wrk nginx openssl curl python3)" >&2
  exit 1
fi
oha=$(command -v oha || true)
[ -z "$oha" ] && [ -x "$HOME/.cargo/bin/oha" ] && oha=$HOME/.cargo/bin/oha
# RAMPART_BIN=path skips the build (e.g. while the work tree does not compile).
if [ -z "${RAMPART_BIN:-}" ]; then cargo build --release --quiet -p rampart; fi
if [ -n "${BARE:-}" ] && [ -z "${BARE_BIN:-}" ]; then
  cargo build --release --quiet -p rampart --example bare_proxy
fi
here=benches/gateway
dir=$(mktemp -d)
# A private copy, so that a rebuild during the run does not swap the binary under it.
cp "${RAMPART_BIN:-target/release/rampart}" "$dir/rampart"
[ -n "${BARE:-}" ] && cp "${BARE_BIN:-target/release/examples/bare_proxy}" "$dir/bare_proxy"
bin=$dir/rampart
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ -n "${KEEP_TMP:-}" ]; then echo "kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# 10,000 connections need more than the usual 1024 descriptors (the limit is inherited).
ulimit -n "$(ulimit -Hn)"
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { # port: until something listens (bounded: 60 s, for the callgrind mode)
  for _ in $(seq 600); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1" >&2; exit 1
}
mkdir -p "$dir/tmp"
chmod 755 "$dir" "$dir/tmp"
temps="client_body_temp_path $dir/tmp/body; proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fcgi; uwsgi_temp_path $dir/tmp/uwsgi; scgi_temp_path $dir/tmp/scgi;"

# (a) the upstream: one nginx worker, a fixed 3-byte 200, no access log.
up_port=$(freeport)
cat > "$dir/upstream.conf" <<CONF
daemon off;
worker_processes 1;
pid $dir/upstream.pid;
error_log $dir/upstream.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  $temps
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:$up_port;
    location / { default_type text/plain; return 200 "ok\n"; }
  }
}
CONF
nginx -e "$dir/upstream.err" -p "$dir" -c "$dir/upstream.conf" &
pids+=($!)
up_pid=$!

# (b) nginx as a TLS reverse proxy with a throwaway self-signed P-256 certificate (wrk and oha
# do not verify certificates); as many workers as cores, like the gateway's runtime.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=127.0.0.1 \
  -keyout "$dir/nginx.key" -out "$dir/nginx.crt" 2>/dev/null
px_port=$(freeport)
nginx_workers=auto
[ -n "${PIN:-}" ] && nginx_workers=1
cat > "$dir/proxy.conf" <<CONF
daemon off;
worker_processes $nginx_workers;
worker_rlimit_nofile 20000;
pid $dir/proxy.pid;
error_log $dir/proxy.err warn;
events { worker_connections 20000; }
http {
  access_log $dir/proxy-access.log;
  $temps
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  upstream backend { server 127.0.0.1:$up_port; keepalive 64; }
  server {
    listen 127.0.0.1:$px_port ssl;
    ssl_certificate $dir/nginx.crt;
    ssl_certificate_key $dir/nginx.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    location / {
      proxy_pass http://backend;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
CONF
nginx -e "$dir/proxy.err" -p "$dir" -c "$dir/proxy.conf" &
pids+=($!)
px_pid=$!

# (c) the authorization server (only to issue the token and serve its keys), then the gateway.
as_port=$(freeport)
RAMPART_LOG=warn $bin serve --data-dir "$dir/data" --listen "127.0.0.1:$as_port" > "$dir/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "issuer:" "$dir/serve.log" 2>/dev/null && break; sleep 0.1; done
wait_port "$as_port"
issuer="https://127.0.0.1:$as_port"
creds=$($bin client create --data-dir "$dir/data" --name bench --scope "orders:read" \
  --audience api://orders --ttl 3600 --json)
id=$(echo "$creds" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
secret=$(echo "$creds" | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_secret"])')
token=""
for _ in $(seq 20); do
  token=$(curl -s --cacert "$dir/data/tls/ca.pem" -u "$id:$secret" -d grant_type=client_credentials \
    "$issuer/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])' 2>/dev/null) && break
  sleep 0.5
done
[ -n "$token" ] || { echo "no token from $issuer" >&2; cat "$dir/serve.log" >&2; exit 1; }
gw_port=$(freeport)
adm_port=$(freeport)
cat > "$dir/gateway.toml" <<CONF
[gateway]
listen = "127.0.0.1:$gw_port"
admin_listen = "127.0.0.1:$adm_port"
${PIN:+workers = 1}

# The listener closes a keep-alive connection that sends no request within header_read_timeout
# (default 10 s): raised so that 10,000 connections stay open while they are being opened and
# measured; max_connections (default 10,000) raised so that the 10,000 fit with a margin.
[gateway.limits]
header_read_timeout = 120
max_connections = 12000

[[gateway.issuers]]
issuer = "$issuer"
ca_file = "$dir/data/tls/ca.pem"

[[gateway.routes]]
id = "orders"
match = { path_prefix = "/orders" }
upstreams = ["http://127.0.0.1:$up_port"]
auth = ["jwt"]
audience = "api://orders"
require_scopes = ["orders:read"]
rate_limit = { key = "client_id", per_second = 1000000, burst = 1000000 }
CONF
if [ -n "${POLICY:-}" ]; then
  cat > "$dir/policies.cedar" <<'CEDAR'
@id("read-orders")
permit(principal, action in Rampart::Action::"read", resource == Rampart::Route::"orders")
when { principal.scopes.contains("orders:read") };
@id("billing-writes")
permit(principal == Rampart::Client::"billing", action, resource == Rampart::Route::"orders");
@id("deletes-from-inside-only")
forbid(principal, action == Rampart::Action::"DELETE", resource)
unless { context.client_ip.isInRange(ip("10.0.0.0/8")) };
CEDAR
  printf '\n[gateway.policy]\nfile = "%s"\n' "$dir/policies.cedar" >> "$dir/gateway.toml"
fi
# Audit log (one JSON line per request) to a file, as a deployment would ship it.
gw_cmd=("$bin")
if [ -n "${CALLGRIND:-}" ]; then
  command -v valgrind >/dev/null || { echo "CALLGRIND needs valgrind (apt-get install -y valgrind)" >&2; exit 1; }
  gw_cmd=(valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.%p.out" "$bin")
fi
RAMPART_LOG=warn "${gw_cmd[@]}" gateway --config "$dir/gateway.toml" --data-dir "$dir/data" \
  > "$dir/gateway-audit.log" 2> "$dir/gateway.err" &
pids+=($!)
gw_pid=$!
for _ in $(seq 600); do grep -q "^gateway admin:" "$dir/gateway-audit.log" 2>/dev/null && break; sleep 0.1; done
wait_port "$gw_port"
wait_port "$up_port"
wait_port "$px_port"
if [ -n "${BARE:-}" ]; then
  bare_port=$(freeport)
  "$dir/bare_proxy" "127.0.0.1:$bare_port" "127.0.0.1:$up_port" "$dir/nginx.crt" "$dir/nginx.key" \
    "$( [ -n "${PIN:-}" ] && echo 1 || nproc)" > "$dir/bare.log" 2>&1 &
  pids+=($!)
  bare_pid=$!
  wait_port "$bare_port"
fi

loadgen=()
if [ -n "${PIN:-}" ]; then
  pin() { # cpu pid...: every thread of these processes and of their children
    local cpu=$1; shift
    for p in "$@"; do
      for q in "$p" $(pgrep -P "$p"); do taskset -a -p -c "$cpu" "$q" > /dev/null; done
    done
  }
  pin 0 "${pids[@]}"
  pin 1 "$gw_pid" "$px_pid" ${bare_pid:-}
  loadgen=(taskset -c 0)
fi

url_a="http://127.0.0.1:$up_port/orders/1"
url_b="https://127.0.0.1:$px_port/orders/1"
url_c="https://127.0.0.1:$gw_port/orders/1"
check() { # name url [bearer]: one request must give 200
  local code
  code=$(curl -sk -o /dev/null -w '%{http_code}' ${3:+-H "Authorization: Bearer $3"} "$2")
  [ "$code" = 200 ] || { echo "setup $1: $2 answered $code, not 200" >&2; cat "$dir/gateway.err" >&2; exit 1; }
}
check a "$url_a"; check b "$url_b"; check c "$url_c" "$token"
[ -n "${BARE:-}" ] && url_d="https://127.0.0.1:$bare_port/orders/1" && check d "$url_d" "$token"
code=$(curl -sk -o /dev/null -w '%{http_code}' "$url_c")
[ "$code" = 401 ] || { echo "gateway without a token answered $code, not 401" >&2; exit 1; }

if [ -n "${CALLGRIND:-}" ]; then
  python3 $here/seq_requests.py "$gw_port" 300 "$token" > /dev/null
  callgrind_control -z "$gw_pid" > /dev/null 2>&1
  python3 $here/seq_requests.py "$gw_port" "$CALLGRIND" "$token" > /dev/null
  callgrind_control -d "$gw_pid" > /dev/null 2>&1
  sleep 1
  total=$(callgrind_annotate "$dir"/callgrind.*.out.1 2>/dev/null | grep 'PROGRAM TOTALS' | tr -d ',' | awk '{print $1}')
  echo "callgrind: $total instructions (user space, all gateway threads) for $CALLGRIND requests:" \
    "$((total / CALLGRIND)) per request"
  exit 0
fi
if [ -n "${HOLD:-}" ]; then
  printf 'url_a=%s\nurl_b=%s\nurl_c=%s\ntoken=%s\ngw_pid=%s\nproxy_pid=%s\nadmin=http://127.0.0.1:%s\n' \
    "$url_a" "$url_b" "$url_c" "$token" "$gw_pid" "$px_pid" "$adm_port" > "$dir/hold.env"
  echo "running; settings in $dir/hold.env (source it); stop with Ctrl-C or kill $$ (TERM)"
  while kill -0 "$gw_pid" 2>/dev/null; do sleep 1; done
  echo "GATEWAY DIED" >&2; cat "$dir/gateway.err" >&2; exit 1
fi
if [ -n "${STRACE:-}" ]; then
  command -v strace >/dev/null || { echo "STRACE needs strace (apt-get install -y strace)" >&2; exit 1; }
  count_syscalls() { # name port pid...: system calls per request over $STRACE sequential requests
    local name=$1 port=$2; shift 2
    python3 $here/seq_requests.py "$port" 300 "$token" > /dev/null
    local args=()
    for p in "$@"; do for t in /proc/"$p"/task/*; do args+=(-p "${t##*/}"); done; done
    strace -c -f -o "$dir/strace.$name" "${args[@]}" 2> /dev/null &
    local st=$!
    sleep 1
    python3 $here/seq_requests.py "$port" "$STRACE" "$token" > /dev/null
    kill -INT "$st"; wait "$st" 2>/dev/null || true
    echo "($name) system calls per request over $STRACE requests:"
    awk -v n="$STRACE" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" { name=$NF; calls=$4; if ($5 ~ /^[0-9]+$/ && NF == 6) calls=$4;
      printf "  %-20s %6.2f\n", name, calls / n; total += calls }
      END { printf "  %-20s %6.2f\n", "total", total / n }' "$dir/strace.$name"
  }
  count_syscalls b "$px_port" $(pgrep -P "$px_pid")
  count_syscalls c "$gw_port" "$gw_pid"
  exit 0
fi
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(uname -r)"
echo "versions: $(nginx -v 2>&1 | cut -d: -f2 | xargs), wrk $(wrk -v 2>&1 | head -1 | cut -d' ' -f2), oha: ${oha:+$($oha --version)}"
echo "wrk -t1 -c$conns -d${secs}s, keep-alive, after a 2 s warm-up each; $( [ -n "${PIN:-}" ] && echo "PIN: the proxy under test alone on CPU 1 (one worker), everything else on CPU 0" || echo "all processes share the cores")"
declare -A rps p50 p99
cpu_ms() { # pid [user|system]: CPU time (user+system, or one of them, ms) of the process and its children (nginx workers)
  python3 - "$1" "${2:-both}" <<'PY'
import os, sys
tick = os.sysconf("SC_CLK_TCK"); todo = [int(sys.argv[1])]; total = 0; part = sys.argv[2]
while todo:
    p = todo.pop()
    try:
        f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
        total += (int(f[11]) if part != "system" else 0) + (int(f[12]) if part != "user" else 0)
        for t in os.listdir(f"/proc/{p}/task"):
            todo += [int(c) for c in open(f"/proc/{p}/task/{t}/children").read().split()]
    except OSError:
        pass
print(total * 1000 // tick)
PY
}
declare -A front
front[a]=$up_pid; front[b]=$px_pid; front[c]=$gw_pid; front[d]=${bare_pid:-}
run_wrk() { # name url bearer
  BEARER=$3 "${loadgen[@]}" wrk -t1 -c"$conns" -d2s -s $here/report.lua "$2" > /dev/null
  local out c0 u0 c1 u1 s0 s1
  c0=$(cpu_ms "${front[$1]}"); u0=$(cpu_ms "$up_pid"); s0=$(cpu_ms "${front[$1]}" system)
  local perf_pid=""
  if { [ "$1" = c ] || [ "$1" = d ]; } && [ -n "${PERF_OUT:-}" ]; then
    local graph=(--call-graph "${PERF_CALL_GRAPH:-dwarf,16384}")
    [ "${PERF_CALL_GRAPH:-}" = none ] && graph=()
    local perf_file=$PERF_OUT
    [ "$1" = d ] && perf_file=$PERF_OUT.bare
    perf record -F 499 "${graph[@]}" -o "$perf_file" -p "${front[$1]}" -- sleep "$secs" 2> /dev/null &
    perf_pid=$!
  fi
  out=$(BEARER=$3 timeout $((secs + 30)) "${loadgen[@]}" wrk -t1 -c"$conns" -d"${secs}s" --timeout 5s -s $here/report.lua "$2")
  if [ -n "$perf_pid" ]; then wait "$perf_pid" || true; fi
  c1=$(cpu_ms "${front[$1]}"); u1=$(cpu_ms "$up_pid"); s1=$(cpu_ms "${front[$1]}" system)
  echo "$out" | grep -E "Non-2xx|Socket errors" || true
  local line
  line=$(echo "$out" | grep '^RESULT')
  local n
  n=$(echo "$line" | sed -E 's/.*requests=([0-9]+).*/\1/')
  echo "($1) $line"
  echo "($1) CPU: front process $(( (c1 - c0) * 1000000 / n / 1000 )) us/request (kernel $(( (s1 - s0) * 1000000 / n / 1000 )) us; $(( (c1 - c0) / secs / 10 ))% of one core)$( [ "$1" != a ] && echo ", upstream $(( (u1 - u0) * 1000000 / n / 1000 )) us/request")"
  rps[$1]=$(echo "$line" | sed -E 's/.*rps=([0-9]+).*/\1/')
  p50[$1]=$(echo "$line" | sed -E 's/.*p50_us=([0-9]+).*/\1/')
  p99[$1]=$(echo "$line" | sed -E 's/.*p99_us=([0-9]+).*/\1/')
}
echo "== peak (closed loop, wrk)"
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }
ratio() { echo "scale=3; $1/$2" | bc; }
rounds=${ROUNDS:-1}
setups="a b c"
[ -n "${BARE:-}" ] && setups="a b c d"
run_wrk a "$url_a" ""
ratios_cb=(); ratios_db=(); ratios_cd=(); all_b=(); all_c=(); all_d=()
for round in $(seq "$rounds"); do
  [ "$rounds" -gt 1 ] && echo "round $round of $rounds:"
  run_wrk b "$url_b" ""
  run_wrk c "$url_c" "$token"
  all_b+=("${rps[b]}"); all_c+=("${rps[c]}"); ratios_cb+=("$(ratio "${rps[c]}" "${rps[b]}")")
  if [ -n "${BARE:-}" ]; then
    run_wrk d "$url_d" "$token"
    all_d+=("${rps[d]}")
    ratios_db+=("$(ratio "${rps[d]}" "${rps[b]}")"); ratios_cd+=("$(ratio "${rps[c]}" "${rps[d]}")")
  fi
done
kill -0 "$gw_pid" 2>/dev/null || { echo "GATEWAY DIED" >&2; cat "$dir/gateway.err" >&2; exit 1; }
printf '%-28s %10s %9s %9s\n' setup "req/s" "p50 ms" "p99 ms"
for s in $setups; do
  case $s in a) n="(a) upstream direct, HTTP";; b) n="(b) nginx proxy, TLS";; c) n="(c) rampart gateway, TLS+JWT";;
    d) n="(d) bare hyper proxy, TLS";; esac
  printf '%-28s %10s %9.2f %9.2f\n' "$n" "${rps[$s]}" "$(echo "${p50[$s]}/1000" | bc -l)" "$(echo "${p99[$s]}/1000" | bc -l)"
done
echo "ratio (c)/(b) req/s: $(ratio "${rps[c]}" "${rps[b]}")   (c)/(a): $(ratio "${rps[c]}" "${rps[a]}")"
if [ -n "${BARE:-}" ]; then
  echo "ratio (d)/(b) req/s: $(ratio "${rps[d]}" "${rps[b]}")   (c)/(d): $(ratio "${rps[c]}" "${rps[d]}")"
fi
if [ "$rounds" -gt 1 ]; then
  # Each round's ratio compares setups measured seconds apart; the median of those is what
  # is left of the machine's drift over the whole run.
  echo "over $rounds alternating rounds (the table above is the last round):"
  echo "  (b) req/s ${all_b[*]}; (c) req/s ${all_c[*]}${BARE:+; (d) req/s ${all_d[*]}}"
  echo "  (c)/(b) per round ${ratios_cb[*]}, median $(median "${ratios_cb[@]}")"
  if [ -n "${BARE:-}" ]; then
    echo "  (d)/(b) per round ${ratios_db[*]}, median $(median "${ratios_db[@]}")"
    echo "  (c)/(d) per round ${ratios_cd[*]}, median $(median "${ratios_cd[@]}")"
  fi
fi
audit_lines=$(wc -l < "$dir/gateway-audit.log")
echo "gateway audit log: $audit_lines lines; $(curl -s "http://127.0.0.1:$adm_port/metrics" | grep -E '^rampart_gateway_audit_dropped_total' || echo 'rampart_gateway_audit_dropped_total absent (nothing dropped)')"
echo "gateway stderr: $(grep -c . "$dir/gateway.err" || true) lines$(grep -m3 -iE 'error|panic' "$dir/gateway.err" | sed 's/^/ | /' || true)"

if [ -n "$oha" ] && [ -z "${NO_OHA:-}" ]; then
  rate=$(( ${rps[c]} / 2 ))
  echo "== half of (c)'s peak: $rate req/s for 10 s (open loop, oha -q $rate -c $conns, latency-corrected)"
  declare -A h50 h99
  run_oha() { # name url [bearer]
    local js
    js=$(timeout 60 "${loadgen[@]}" "$oha" --no-tui --output-format json --insecure --latency-correction -q "$rate" -z 10s \
      -c "$conns" ${3:+-H "Authorization: Bearer $3"} "$2")
    local line
    line=$(echo "$js" | python3 -c '
import json,sys
d=json.load(sys.stdin); p=d["latencyPercentiles"]; s=d["summary"]
codes=d.get("statusCodeDistribution",{}); errs=d.get("errorDistribution",{})
print("%.3f %.3f %.0f %s %s" % (p["p50"]*1000, p["p99"]*1000, s["requestsPerSec"],
  ",".join("%s:%s"%kv for kv in codes.items()) or "-", sum(errs.values())))')
    read -r h50[$1] h99[$1] got codes errs <<< "$line"
    echo "($1) p50 ${h50[$1]} ms  p99 ${h99[$1]} ms  achieved ${got} req/s  status ${codes}  errors ${errs}"
  }
  run_oha a "$url_a"
  # (b) and (c) alternate for HALF_ROUNDS rounds: one 10 s run's p99 on shared cores moves by
  # milliseconds, so the median of the per-round differences is reported.
  diffs50=(); diffs99=()
  for round in $(seq "${HALF_ROUNDS:-3}"); do
    echo "round $round:"
    run_oha b "$url_b"
    run_oha c "$url_c" "$token"
    diffs50+=("$(echo "${h50[c]}-${h50[b]}" | bc)"); diffs99+=("$(echo "${h99[c]}-${h99[b]}" | bc)")
  done
  echo "added by the gateway over (b) at half load, per round: p50 ${diffs50[*]} ms; p99 ${diffs99[*]} ms"
  echo "median added over (b): p50 $(median "${diffs50[@]}") ms, p99 $(median "${diffs99[@]}") ms;" \
    "last round over (a): p50 $(echo "${h50[c]}-${h50[a]}" | bc) ms, p99 $(echo "${h99[c]}-${h99[a]}" | bc) ms"
elif [ -n "${NO_OHA:-}" ]; then
  echo "== half-load latency skipped (NO_OHA)"
else
  echo "== half-load latency skipped: oha not installed (cargo install --locked oha)"
fi

[ "$idle_n" -gt 0 ] || exit 0
echo "== $idle_n idle keep-alive TLS connections (one GET each, then idle; RSS from /proc)"
echo "(c) rampart gateway:"
timeout 200 python3 $here/idle_conns.py "$gw_port" /orders/1 "$gw_pid" "$idle_n" "$token" || echo "idle test (c) failed"
kill -0 "$gw_pid" 2>/dev/null || { echo "GATEWAY DIED" >&2; cat "$dir/gateway.err" >&2; exit 1; }
echo "(b) nginx proxy (master + workers):"
timeout 200 python3 $here/idle_conns.py "$px_port" /orders/1 "$px_pid" "$idle_n" || echo "idle test (b) failed"
echo "gateway stderr after the idle test: $(grep -c . "$dir/gateway.err" || true) lines$(grep -m3 -iE 'warn|error|panic' "$dir/gateway.err" | sed 's/^/ | /' || true)"
