#!/usr/bin/env bash
# Know a change is safe before merge, end to end on the sample repository:
#
#   1. the sample repository is copied into a fresh git repository (commit
#      "base") and served with access-log capture on, its traffic exported
#      as JSON lines;
#   2. signed, encrypted calls of every sample API make that traffic;
#   3. a pull-request-like commit changes order.quote's response transform
#      (it drops the approval field);
#   4. databus test, databus replay and databus diff --traffic each judge
#      the change: the first two must fail it, the third must flag it as
#      breaking for its callers; replaying the base commit must find every
#      replayable record identical (the self-check).
#
#   bash ci/know-before-merge.sh              # prints each command and its report
#   KBM_KEEP=1 bash ci/know-before-merge.sh   # keep the work folder to look around
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KBM_KEEP:-}" ]; then echo "work folder kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

go build -o "$WORK/databus" ./cmd/databus
go build -o "$WORK/benchtool" ./ci/bench/benchtool
DB="$WORK/databus"
PORTAL=$("$WORK/benchtool" freeport); ADMIN=$("$WORK/benchtool" freeport)
REPO="$WORK/repo"
mkdir -p "$REPO/examples"
cp -r databus.yaml apis credentials policies tests "$REPO/"
cp -r examples/secrets "$REPO/examples/"
# The sample's http steps call the admin listener on 127.0.0.1:8081 (a demo
# upstream): here it listens on a port of its own.
sed -i "s#127.0.0.1:8081#127.0.0.1:$ADMIN#" "$REPO"/apis/*.yaml
# The sample keeps every request whole (storage.accessLog.capture); here its
# records are also exported as JSON lines.
sed -i "s#  accessLog: {retentionDays: 7,#  accessLog: {export: 'file:$WORK/access.jsonl', retentionDays: 7,#" "$REPO/databus.yaml"
grep -q "export: 'file:" "$REPO/databus.yaml"
git -C "$REPO" init -q -b main
git -C "$REPO" -c user.email=ci@databus.invalid -c user.name=ci add -A
git -C "$REPO" -c user.email=ci@databus.invalid -c user.name=ci commit -qm base

echo "== 1. serve the sample repository with capture on (portal :$PORTAL, admin :$ADMIN)"
"$DB" serve --dir "$REPO" --listen "127.0.0.1:$PORTAL" --admin-listen "127.0.0.1:$ADMIN" \
  --storage "$WORK/databus.db" --no-watch --log-level warn 2>>"$WORK/serve.log" & PIDS+=($!); GW=$!
"$WORK/benchtool" wait "http://127.0.0.1:$ADMIN/readyz"

echo "== 2. traffic: signed, encrypted calls of every sample API"
URL="http://127.0.0.1:$PORTAL/admin-api/databus/api/portal"
call() { "$DB" call "$1" --url "$URL" --dir "$REPO" --app demo-app --body "$2" >/dev/null || true; }
for n in Ada Grace Linus Ken Barbara; do call demo.hello:v1 "{\"name\":\"$n\"}"; done
call demo.health:v1 '{}'
for i in 1 2 3 4 5 6 7 8 9 10 11 12; do   # policy strict: the 11th and 12th are refused (429)
  call order.quote:v1 "{\"orderNo\":\"Q-10$i\",\"items\":[{\"sku\":\"A\",\"qty\":$i,\"price\":$((i * 120)).5}]}"
done
call demo.hello:v1 '{"name":""}'                                      # the input schema refuses it (400)
"$DB" call demo.hello:v1 --url "$URL" --app demo-app --key 0000000000000000 --body '{"name":"Eve"}' >/dev/null || true   # wrong key (400)
kill -TERM "$GW"; wait "$GW" 2>/dev/null || true; PIDS=()
echo "   $(wc -l <"$WORK/access.jsonl") records exported to access.jsonl"

echo "== 3. the pull request: order.quote's response transform drops a field"
sed -i "s#  response: '{orderNo: .request.body.orderNo, total: .steps.price.total, approval: (.steps.approve // \"not needed\")}'#  response: '{orderNo: .request.body.orderNo, total: .steps.price.total}'#" "$REPO/apis/order.quote.yaml"
git -C "$REPO" diff --stat
git -C "$REPO" -c user.email=ci@databus.invalid -c user.name=ci commit -qam "order.quote: simplify the answer"

status=0
expect() { # want-exit label command...
  local want=$1 label=$2; shift 2
  echo "\$ ${*#"$DB "}" | sed "s#$WORK/##g; s#$REPO#repo#g"
  set +e; "$@" >"$WORK/out" 2>&1; local got=$?; set -e
  sed "s#$WORK/##g" "$WORK/out" | head -n 60
  if [ "$got" != "$want" ]; then echo "!! $label: exit $got, want $want"; status=1; fi
}
echo "== 4a. databus validate: the change is well formed"
expect 0 validate "$DB" validate "$REPO"
echo "== 4b. databus test: the contract tests catch it"
expect 1 test "$DB" test "$REPO"
echo "== 4c. databus replay: yesterday's traffic against the change"
expect 1 replay "$DB" replay --from "$WORK/access.jsonl" --dir "$REPO" --rev HEAD
echo "== 4d. databus replay of the base commit: the self-check (every replayable record identical)"
expect 0 self-check "$DB" replay --from "$WORK/access.jsonl" --dir "$REPO" --rev HEAD~1
echo "== 4e. databus diff --traffic: who calls what changed"
expect 1 diff "$DB" diff HEAD~1 HEAD --dir "$REPO" --traffic "$WORK/access.jsonl" --fail-on breaking
exit $status
