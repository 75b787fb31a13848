#!/usr/bin/env bash
# Registers the example feature service in Databus's service registry with
# the FATE Flow calls: the server APIREADER and its services upload, query
# and download.
#
#   bash examples/apireader/register.sh          # the walk-through's defaults below
#   ADMIN=http://127.0.0.1:8095 APIREADER_ADDR=127.0.0.1:9310 bash examples/apireader/register.sh
#   DATABUS_ADMIN_TOKEN=... (a registry or operator token, when admin.tokens is set)
# The examples share one convention: ADMIN is the gateway's admin listener,
# <EXAMPLE>_ADDR the host:port the example's service listens on.
set -euo pipefail
ADMIN=${ADMIN:-http://127.0.0.1:8095}                # the walk-through gateway's admin listener
APIREADER_ADDR=${APIREADER_ADDR:-127.0.0.1:9310}     # where go run ./examples/apireader/server listens
HOST=${APIREADER_ADDR%:*}
PORT=${APIREADER_ADDR##*:}
auth=()
if [ -n "${DATABUS_ADMIN_TOKEN:-}" ]; then
  auth=(-H "Authorization: Bearer $DATABUS_ADMIN_TOKEN")
fi
call() { # path body
  local out
  out=$(curl -sS -X POST "${auth[@]}" -H 'Content-Type: application/json' -d "$2" "$ADMIN$1")
  echo "$1 $out"
  case "$out" in *'"retcode":0'*) ;; *) echo "register.sh: $1 was refused" >&2; exit 1 ;; esac
}
call /v1/server/apireader/register "{\"host\": \"$HOST\", \"port\": $PORT, \"protocol\": \"http\"}"
for svc in upload query download; do
  call /v1/service/registry "{\"server_name\": \"apireader\", \"service_name\": \"$svc\", \"uri\": \"/v1/$svc\", \"method\": \"POST\"}"
done
