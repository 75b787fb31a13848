#!/usr/bin/env bash
# Registers the example feature service in Databus's service registry with
# the FATE Flow calls: the server APIREADER and its services upload, query
# and download.
#
#   ADMIN=http://127.0.0.1:8081 HOST=127.0.0.1 PORT=9300 bash examples/apireader/register.sh
#   DATABUS_ADMIN_TOKEN=... (a registry or operator token, when admin.tokens is set)
set -euo pipefail
ADMIN=${ADMIN:-http://127.0.0.1:8081}
HOST=${HOST:-127.0.0.1}
PORT=${PORT:-9300}
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
