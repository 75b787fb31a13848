#!/usr/bin/env bash
# The scale bench: what the loader costs as the repository grows.
#
# For each size N it generates a repository of N APIs (each start → http →
# end with its own jq response transform and its own rate policy; one
# credential per hundred APIs; security on: HMAC-SHA256 + AES), then
# measures on loopback:
#   - `databus validate`: wall time and peak RSS;
#   - `databus serve` (file watcher on, embedded stores): start to /readyz 200;
#   - a one-file edit reload (an API's description changed): from the write
#     to the new revision being served, and the gateway's own build time;
#   - a same-bytes reload (a file rewritten unchanged), and POST
#     cache/refresh with nothing changed;
#   - RSS serving (after start, after the reloads, peak);
#   - load on one API (`databus bench --max`, signed) alone, then while
#     another API's file is edited once a second (SCALE_RELOAD_EVERY; 0:
#     back to back): throughput and p99 ratios.
# It prints a markdown table and writes scale.json in the output folder.
#
#   bash ci/bench/scale.sh                                # N = 100, 1000, 10000
#   SCALE_SIZES=100 bash ci/bench/scale.sh                # a smoke (~20 s)
#   SCALE_OUT=/tmp/scale bash ci/bench/scale.sh           # output folder (default bench-out/scale)
#   SCALE_RELOADS=3                                       # samples per reload kind (the median is shown)
#   SCALE_LOAD_DURATION=10s SCALE_CONCURRENCY=16          # each of the two load runs
#   SCALE_RELOAD_EVERY=0                                  # edits back to back during the second
#   SCALE_GATEWAY_ENV="GOGC=200" bash ci/bench/scale.sh   # environment of the gateway only
#   SCALE_SERVE_FLAGS="--watch-debounce 50ms"             # more flags of databus serve
set -euo pipefail
cd "$(dirname "$0")/../.."

SIZES=${SCALE_SIZES:-100 1000 10000}
OUT=${SCALE_OUT:-bench-out/scale}
RELOADS=${SCALE_RELOADS:-3}
LOAD=${SCALE_LOAD_DURATION:-10s}
CONC=${SCALE_CONCURRENCY:-16}
EVERY=${SCALE_RELOAD_EVERY:-1s}
WORK=$(mktemp -d)
PIDS=()
GW=
cleanup() {
  for p in "${PIDS[@]}" $GW; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

rm -rf "$OUT" && mkdir -p "$OUT"
echo "== building"
go build -o "$WORK/databus" ./cmd/databus
go build -o "$WORK/benchtool" ./ci/bench/benchtool
B=$WORK/benchtool
port() { "$B" freeport; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# Every generated credential's AES key (benchtool genrepo refers to it).
export DATABUS_SCALE_KEY=scale-key-0123456789abcdef012345
echo "$DATABUS_SCALE_KEY" >"$WORK/app.key"
BASE=/admin-api/databus/api/portal
BODY='{"orderNo":"A-1001","items":[{"sku":"SKU-1","qty":2},{"sku":"SKU-2","qty":1}]}'
mkdir -p "$WORK/none" # databus bench reads no repository: the key and types are given

{
  echo "cpus=$(getconf _NPROCESSORS_ONLN)"; echo "go=$(go version | cut -d' ' -f3)"
  echo "sizes=$SIZES"; echo "reloads=$RELOADS"; echo "loadDuration=$LOAD"; echo "concurrency=$CONC"; echo "reloadEvery=$EVERY"
  echo "security=on (HMAC-SHA256 + AES, rate limits on, access log off)"
  echo "loadavg.start=$(loadavg)"
} >"$OUT/meta.txt"

UP=$(port)
"$B" upstream -addr "127.0.0.1:$UP" & PIDS+=($!)
"$B" wait "http://127.0.0.1:$UP/"

kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

for n in $SIZES; do
  echo "== N=$n (load average $(loadavg))"
  dir=$OUT/n$n; repo=$WORK/repo$n
  mkdir -p "$dir"
  "$B" genrepo -n "$n" -out "$repo" -upstream "127.0.0.1:$UP"

  "$B" measure -out "$dir/validate.json" -- "$WORK/databus" validate "$repo" >"$dir/validate.log" 2>&1 ||
    { echo "validate failed: $dir/validate.log"; tail -5 "$dir/validate.log"; exit 1; }
  echo "   validate $(grep -o '"wallMs": [0-9.]*' "$dir/validate.json" | tr -dc '0-9.') ms"

  PORTAL=$(port); ADMIN=$(port)
  t0=$(date +%s%N)
  env ${SCALE_GATEWAY_ENV:-} "$WORK/databus" serve ${SCALE_SERVE_FLAGS:-} --dir "$repo" --listen "127.0.0.1:$PORTAL" --admin-listen "127.0.0.1:$ADMIN" \
    --storage "$WORK/scale$n.db" --log-level warn 2>>"$dir/serve.log" &
  GW=$!
  "$B" ready -since "$t0" -out "$dir/start.json" "http://127.0.0.1:$ADMIN/readyz"
  echo "   ready after $(grep -o '[0-9.]*' "$dir/start.json" | head -1) ms"
  echo "start $(kib "$GW" VmRSS)" >"$dir/rss.txt"

  admin=http://127.0.0.1:$ADMIN
  edit=$repo/apis/scale.api.$(printf %05d $((n - 1))).yaml
  "$B" reload -admin "$admin" -mode edit -file "$edit" -count "$RELOADS" -out "$dir/edit.json"
  "$B" reload -admin "$admin" -mode same -file "$edit" -count "$RELOADS" -out "$dir/same.json"
  "$B" reload -admin "$admin" -mode refresh -count "$RELOADS" -out "$dir/refresh.json"
  echo "   reloads measured"

  # Load on API 0: a control run, then one during edits of the last API's
  # file, one every $EVERY.
  drive() {
    "$WORK/databus" bench scale.api.00000:v1 --dir "$WORK/none" --url "http://127.0.0.1:$PORTAL$BASE" \
      --app scale-app-000 --key-file "$WORK/app.key" --sign-type HMAC-SHA256 --enc-type AES \
      --max --concurrency "$CONC" --duration "$LOAD" --body "$BODY" --format json >"$1"
  }
  drive "$dir/control.json"
  "$B" reload -admin "$admin" -mode edit -file "$edit" -for "$LOAD" -every "$EVERY" -out "$dir/loop.json" &
  loop=$!
  drive "$dir/during.json"
  wait "$loop"
  echo "reloaded $(kib "$GW" VmRSS)" >>"$dir/rss.txt"
  echo "peak $(kib "$GW" VmHWM)" >>"$dir/rss.txt"

  kill "$GW"; wait "$GW" 2>/dev/null || true; GW=
  rm -rf "$repo" "$WORK/scale$n.db"
done
echo "loadavg.end=$(loadavg)" >>"$OUT/meta.txt"

echo
"$B" scalereport "$OUT"
