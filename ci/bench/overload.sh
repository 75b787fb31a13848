#!/usr/bin/env bash
# The overload bench: the full-chain gateway (ci/bench/full) driven open-loop
# past its maximum, to see whether it sheds and whether what it admits stays
# fast.
#
# Measures the gateway's maximum (closed loop), then runs at fixed rates with
# `databus bench --rate`: "normal" at half the maximum, "overload" at twice
# it with OVERLOAD_CONCURRENCY connections, then "after" at half again, at
# once. Prints for each: requests/s, 200s and 503s, the p99 of every answer
# and of the successful ones (client side), the server's p99 of the requests
# it admitted (databus_portal_admitted_duration_seconds, queue wait
# included), and the gateway's peak and current RSS.
#
#   bash ci/bench/overload.sh
#   OVERLOAD_DURATION=5s OVERLOAD_CONCURRENCY=1000 bash ci/bench/overload.sh
#   OVERLOAD_GATEWAY=/path/to/databus bash ci/bench/overload.sh   # another build of the gateway
#   OVERLOAD_SETTINGS='maxInFlight: 64' bash ci/bench/overload.sh  # lines added under apiPortal:
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${OVERLOAD_DURATION:-10s}
CONC=${OVERLOAD_CONCURRENCY:-1000}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

go build -o "$WORK/databus" ./cmd/databus
go build -o "$WORK/benchtool" ./ci/bench/benchtool
GW=${OVERLOAD_GATEWAY:-$WORK/databus}
UP=$("$WORK/benchtool" freeport); FULL=$("$WORK/benchtool" freeport); ADMIN=$("$WORK/benchtool" freeport)
cp -r ci/bench/full "$WORK/full"
sed -i "s#127.0.0.1:18091#127.0.0.1:$UP#" "$WORK/full"/apis/*.yaml
if [ -n "${OVERLOAD_SETTINGS:-}" ]; then
  awk -v add="${OVERLOAD_SETTINGS}" '{print} /^apiPortal:/ {n = split(add, l, ";"); for (i = 1; i <= n; i++) print "  " l[i]}' \
    "$WORK/full/databus.yaml" >"$WORK/d.yaml" && mv "$WORK/d.yaml" "$WORK/full/databus.yaml"
fi
"$WORK/benchtool" upstream -addr "127.0.0.1:$UP" & PIDS+=($!)
"$GW" serve --dir "$WORK/full" --listen "127.0.0.1:$FULL" --admin-listen "127.0.0.1:$ADMIN" \
  --storage "$WORK/full.db" --no-watch --log-level warn 2>>"$WORK/full.log" & PIDS+=($!); GW_PID=$!
"$WORK/benchtool" wait "http://127.0.0.1:$UP/" "http://127.0.0.1:$ADMIN/readyz"

BODY='{"orderNo":"A-1001","items":[{"sku":"SKU-1","qty":2},{"sku":"SKU-2","qty":1}]}'
scrape() { curl -s "http://127.0.0.1:$ADMIN/metrics" >"$1"; }
run() { # name concurrency rate|max
  local mode=(--max); [ "$3" = max ] || mode=(--rate "$3")
  scrape "$WORK/$1.before.prom"
  "$WORK/databus" bench bench.full:v1 --url "http://127.0.0.1:$FULL/admin-api/databus/api/portal" \
    --dir "$WORK/full" --app bench-app --body "$BODY" --concurrency "$2" --duration "$DURATION" \
    --timeout 30s "${mode[@]}" --format json >"$WORK/$1.json" || true
  scrape "$WORK/$1.after.prom"
  # The server's own p99 of the requests it admitted (queue wait included),
  # from databus_portal_admitted_duration_seconds between the two scrapes.
  local admitted
  admitted=$("$WORK/benchtool" histq -metric databus_portal_admitted_duration_seconds -q 0.99 \
    "$WORK/$1.before.prom" "$WORK/$1.after.prom" 2>/dev/null || echo "- -")
  python3 - "$1" "$WORK/$1.json" "$GW_PID" $admitted <<'PY'
import json, sys
name, path, pid, admitted_p99, admitted_n = sys.argv[1:6]
r = json.load(open(path))
st = {l.split(':')[0]: int(l.split()[1]) for l in open(f'/proc/{pid}/status') if l.startswith(('VmHWM', 'VmRSS'))}
s = r['status']
print(f"{name:9} {r['rps']:8.0f}/s  200: {s.get('200', 0):7d}  503: {s.get('503', 0):7d}  other: {sum(v for k, v in s.items() if k not in ('200', '503')):6d}"
      f"  p99 all {r['latency']['p99']:9.2f} ms  p99 200s {r['latencySucceeded']['p99']:9.2f} ms"
      f"  server p99 admitted {admitted_p99:>7} ms ({admitted_n} admitted)"
      f"  RSS peak {st['VmHWM'] // 1024} MB now {st['VmRSS'] // 1024} MB", flush=True)
PY
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
run max 32 max
MAX=$(python3 -c "import json; print(int(json.load(open('$WORK/max.json'))['rps']))")
run normal 64 $((MAX / 2))
run overload "$CONC" $((MAX * 2))
run after 64 $((MAX / 2))
sleep 2
echo "settled   RSS $(awk '/VmRSS/ {print int($2 / 1024)}' /proc/$GW_PID/status) MB"
curl -s "http://127.0.0.1:$ADMIN/metrics" | grep -E '^databus_portal_(shed_total|refusals_total|queue_wait_seconds_(sum|count)|in_flight|queued)' || true
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
