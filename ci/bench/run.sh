#!/usr/bin/env bash
# The bench: Databus against a plain reverse proxy, side by side in one run.
#
# Starts on loopback: a small upstream; the baseline, httputil.ReverseProxy
# with a tuned pool; Databus with a passthrough API (security and access log
# off); Databus with the same API plus one jq response transform (target
# "jq"); Databus with the full chain (AES + HMAC + nonce + rate limit + access
# log + jq + response encryption). Drives each in turn, interleaved, for
# BENCH_ROUNDS rounds with `databus bench` (and wrk, when installed, for the
# unsigned targets), and drives the proxy a second time with the full chain's
# signing client (target "proxy-signed": the same AES body and signature
# headers, which the upstream ignores), so the full chain is compared with a
# proxy that carries the same client cost. Then prints req/s, p50, p99 and
# peak RSS per target with the ratios to the proxy, and writes bench.json
# next to the rounds.
#
#   bash ci/bench/run.sh                        # 3 rounds of 10s, concurrency 32
#   BENCH_DURATION=5s BENCH_ROUNDS=1 bash ci/bench/run.sh
#   BENCH_OUT=/tmp/bench bash ci/bench/run.sh   # where the rounds go (default bench-out/)
#   BENCH_GATEWAY_ENV="GOGC=200" bash ci/bench/run.sh   # environment of the gateways only
#   BENCH_PPROF=1 bash ci/bench/run.sh          # then one more profiled pass per gateway:
#                                               # CPU and allocation profiles in the output folder
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${BENCH_DURATION:-10s}
ROUNDS=${BENCH_ROUNDS:-3}
CONC=${BENCH_CONCURRENCY:-32}
OUT=${BENCH_OUT:-bench-out}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

rm -rf "$OUT" && mkdir -p "$OUT"
echo "== building"
go build -o "$WORK/databus" ./cmd/databus
go build -o "$WORK/benchtool" ./ci/bench/benchtool
port() { "$WORK/benchtool" freeport; }

UP=$(port); PROXY=$(port)
PASS=$(port); PASS_ADMIN=$(port)
JQ=$(port); JQ_ADMIN=$(port)
FULL=$(port); FULL_ADMIN=$(port)

# The gateways' repositories, pointed at this run's upstream.
for t in passthrough jq full; do
  cp -r "ci/bench/$t" "$WORK/$t"
  sed -i "s#127.0.0.1:18091#127.0.0.1:$UP#" "$WORK/$t"/apis/*.yaml
done

"$WORK/benchtool" upstream -addr "127.0.0.1:$UP" & PIDS+=($!)
"$WORK/benchtool" proxy -addr "127.0.0.1:$PROXY" -to "http://127.0.0.1:$UP" & PIDS+=($!); PROXY_PID=$!
serve() { # dir listen admin
  env ${BENCH_GATEWAY_ENV:-} "$WORK/databus" serve --dir "$1" --listen "127.0.0.1:$2" --admin-listen "127.0.0.1:$3" \
    --storage "$WORK/$(basename "$1").db" --no-watch --log-level warn ${BENCH_PPROF:+--pprof} 2>>"$OUT/$(basename "$1").log" &
}
serve "$WORK/passthrough" "$PASS" "$PASS_ADMIN"; PIDS+=($!); PASS_PID=$!
serve "$WORK/jq" "$JQ" "$JQ_ADMIN"; PIDS+=($!); JQ_PID=$!
serve "$WORK/full" "$FULL" "$FULL_ADMIN"; PIDS+=($!); FULL_PID=$!
"$WORK/benchtool" wait "http://127.0.0.1:$UP/" "http://127.0.0.1:$PROXY/" \
  "http://127.0.0.1:$PASS_ADMIN/readyz" "http://127.0.0.1:$JQ_ADMIN/readyz" "http://127.0.0.1:$FULL_ADMIN/readyz"

# proxy-signed is the proxy process again, driven by the signing client.
declare -A PID_OF=([proxy]=$PROXY_PID [proxy-signed]=$PROXY_PID [passthrough]=$PASS_PID [jq]=$JQ_PID [full]=$FULL_PID)
SIGN=(--dir "$WORK/full" --app bench-app)
BASE=/admin-api/databus/api/portal
BODY='{"orderNo":"A-1001","items":[{"sku":"SKU-1","qty":2},{"sku":"SKU-2","qty":1}]}'
WRK=$(command -v wrk || true)
if [ -n "$WRK" ]; then
  cat >"$WORK/post.lua" <<EOF
wrk.method = "POST"
wrk.body = '$BODY'
wrk.headers["Content-Type"] = "application/json"
EOF
fi

{
  echo "rounds=$ROUNDS"; echo "duration=$DURATION"; echo "concurrency=$CONC"
  echo "cpus=$(getconf _NPROCESSORS_ONLN)"; echo "go=$(go version | cut -d' ' -f3)"
  echo "wrk=${WRK:-absent}"
} >"$OUT/meta.txt"

# CPU seconds (user + system) a server process has used so far.
TCK=$(getconf CLK_TCK)
cpu() { awk -v tck="$TCK" '{printf "%.3f", ($14 + $15) / tck}' "/proc/$1/stat"; }
drive() { # round target api url [signing flags...]
  local r=$1 t=$2 api=$3 url=$4; shift 4
  local c0; c0=$(cpu "${PID_OF[$t]}")
  "$WORK/databus" bench "$api" --url "$url" --max --concurrency "$CONC" --duration "$DURATION" \
    --body "$BODY" --format json "$@" >"$OUT/r$r-$t.json"
  echo "$(cpu "${PID_OF[$t]}") $c0" | awk '{printf "%.3f\n", $1 - $2}' >"$OUT/r$r-$t.cpu"
  printf '   %-12s databus bench %8.0f req/s\n' "$t" "$(grep -m1 '"rps"' "$OUT/r$r-$t.json" | tr -dc '0-9.')"
}
drive_wrk() { # round target api url
  [ -n "$WRK" ] || return 0
  "$WRK" -t2 -c"$CONC" -d"$DURATION" --latency -s "$WORK/post.lua" "$4/${3/://}" >"$OUT/r$1-$2.wrk"
  printf '   %-12s wrk           %8s req/s\n' "$2" "$(awk '/Requests\/sec/ {print $2}' "$OUT/r$1-$2.wrk")"
}

for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r of $ROUNDS"
  drive "$r" proxy bench.pass:v1 "http://127.0.0.1:$PROXY$BASE" --unsigned
  drive_wrk "$r" proxy bench.pass:v1 "http://127.0.0.1:$PROXY$BASE"
  drive "$r" passthrough bench.pass:v1 "http://127.0.0.1:$PASS$BASE" --unsigned
  drive_wrk "$r" passthrough bench.pass:v1 "http://127.0.0.1:$PASS$BASE"
  drive "$r" jq bench.jq:v1 "http://127.0.0.1:$JQ$BASE" --unsigned
  drive_wrk "$r" jq bench.jq:v1 "http://127.0.0.1:$JQ$BASE"
  # The proxy forwards the signed, encrypted request as it is; the upstream
  # ignores both, so this is the proxy's rate under the full chain's client.
  drive "$r" proxy-signed bench.full:v1 "http://127.0.0.1:$PROXY$BASE" "${SIGN[@]}"
  drive "$r" full bench.full:v1 "http://127.0.0.1:$FULL$BASE" "${SIGN[@]}"
done

if [ -n "${BENCH_PPROF:-}" ]; then
  echo "== profiled pass"
  secs=$(( $(echo "$DURATION" | tr -dc '0-9') )); [ "$secs" -gt 0 ] || secs=1
  for t in passthrough jq full; do
    case $t in
      passthrough) admin=$PASS_ADMIN; port=$PASS; api=bench.pass:v1; flags=(--unsigned) ;;
      jq) admin=$JQ_ADMIN; port=$JQ; api=bench.jq:v1; flags=(--unsigned) ;;
      full) admin=$FULL_ADMIN; port=$FULL; api=bench.full:v1; flags=("${SIGN[@]}") ;;
    esac
    "$WORK/benchtool" fetch "http://127.0.0.1:$admin/debug/pprof/profile?seconds=$secs" "$OUT/$t.cpu.pprof" &
    fetcher=$!
    "$WORK/databus" bench "$api" --url "http://127.0.0.1:$port$BASE" --max --concurrency "$CONC" \
      --duration "$DURATION" --body "$BODY" "${flags[@]}" >/dev/null
    wait "$fetcher"
    "$WORK/benchtool" fetch "http://127.0.0.1:$admin/debug/pprof/allocs" "$OUT/$t.allocs.pprof"
    echo "   $t: go tool pprof -top $OUT/$t.cpu.pprof"
  done
fi

# Peak resident memory of each server over the whole run (VmHWM), and at
# the end how much of it is the process's own memory (RssAnon) and how much
# mapped file pages (RssFile: for Databus, the bbolt file's pages, which the
# kernel can reclaim). proxy-signed's figures are the proxy's: one process.
hwm() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
rss_of() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
{
  for t in proxy proxy-signed passthrough jq full; do
    pid=${PID_OF[$t]}
    echo "$t $(hwm "$pid")"
    echo "$t.anon $(rss_of "$pid" RssAnon)"
    echo "$t.file $(rss_of "$pid" RssFile)"
  done
} >"$OUT/rss.txt"

echo
"$WORK/benchtool" report "$OUT"
