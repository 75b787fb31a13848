#!/usr/bin/env bash
# The bench targets on fixed loopback ports, for `databus bench` by hand:
# the bench upstream and three gateways serving the bench repositories, whose
# APIs, credential and rate policy exist to be measured (the full chain's
# policy allows 100,000,000 a minute, so a run measures the API, not the
# rate limiter). Stops them all on Ctrl-C. The README's bench examples run
# against these.
#
#   bash ci/bench/serve.sh          # then, in another terminal, the printed commands
#
#   127.0.0.1:18091  the upstream every bench API calls (the port the repositories name)
#   127.0.0.1:18092  passthrough: bench.pass:v1, security, rate limits and access log off (admin 18093)
#   127.0.0.1:18094  jq: bench.jq:v1, the same plus one jq response transform (admin 18095)
#   127.0.0.1:18096  full: bench.full:v1, AES + HMAC + nonce + rate limit + access log + jq (admin 18097)
#
# Runtime data (the access logs) goes to a temporary folder removed at exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== building"
go build -o "$WORK/databus" ./cmd/databus
go build -o "$WORK/benchtool" ./ci/bench/benchtool

"$WORK/benchtool" upstream -addr 127.0.0.1:18091 & PIDS+=($!)
serve() { # target listen admin
  "$WORK/databus" serve --dir "ci/bench/$1" --listen "127.0.0.1:$2" --admin-listen "127.0.0.1:$3" \
    --storage "$WORK/$1.db" --no-watch --log-level warn &
  PIDS+=($!)
}
serve passthrough 18092 18093
serve jq 18094 18095
serve full 18096 18097
"$WORK/benchtool" wait http://127.0.0.1:18091/ http://127.0.0.1:18093/readyz \
  http://127.0.0.1:18095/readyz http://127.0.0.1:18097/readyz

BASE=/admin-api/databus/api/portal
BODY='{"orderNo":"A-1001","items":[{"sku":"SKU-1","qty":2}]}'
cat <<EOT
== ready: the bench targets are up (Ctrl-C stops them)
go run ./cmd/databus bench bench.full --dir ci/bench/full --app bench-app --url http://127.0.0.1:18096$BASE --body '$BODY' --rate 200 --duration 10s
go run ./cmd/databus bench bench.full --dir ci/bench/full --app bench-app --url http://127.0.0.1:18096$BASE --body '$BODY' --max --concurrency 32 --format json
go run ./cmd/databus bench bench.pass:v1 --unsigned --url http://127.0.0.1:18092$BASE --body '$BODY' --max
go run ./cmd/databus bench bench.jq:v1 --unsigned --url http://127.0.0.1:18094$BASE --body '$BODY' --max
EOT
wait
