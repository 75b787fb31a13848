#!/usr/bin/env bash
# Registers the example hook service with a Databus gateway, through the
# FATE Flow compatible registry on the admin listener (DESIGN.md section 6):
# the server first, then the four hook services on it.
#
#   examples/hooks/register.sh                    # defaults below
#   ADMIN=http://127.0.0.1:8081 HOOKS_ADDR=127.0.0.1:9300 SERVER=hooks examples/hooks/register.sh
#   DATABUS_ADMIN_TOKEN=... examples/hooks/register.sh   # when admin.tokens is set: a token of role registry (or operator)
set -euo pipefail

ADMIN=${ADMIN:-http://127.0.0.1:8081}     # the gateway's admin listener
HOOKS_ADDR=${HOOKS_ADDR:-127.0.0.1:9300}  # where go run ./examples/hooks listens
SERVER=${SERVER:-hooks}                   # hooks.server in databus.yaml (case-insensitive)

host=${HOOKS_ADDR%:*}
port=${HOOKS_ADDR##*:}
auth=()
if [ -n "${DATABUS_ADMIN_TOKEN:-}" ]; then
  auth=(-H "Authorization: Bearer ${DATABUS_ADMIN_TOKEN}")
fi

# post PATH JSON: POST to the admin listener; fail unless retcode is 0.
post() {
  local answer
  answer=$(curl -sS -X POST "${ADMIN}$1" -H 'Content-Type: application/json' "${auth[@]}" --data "$2") || {
    echo "register.sh: POST $1 failed (is the gateway's admin listener at ${ADMIN}?)" >&2
    exit 1
  }
  echo "POST $1 -> $answer"
  case "$answer" in
    *'"retcode":0'* | *'"retcode": 0'*) ;;
    *) echo "register.sh: POST $1 was refused" >&2; exit 1 ;;
  esac
}

post "/v1/server/${SERVER}/register" "{\"host\":\"${host}\",\"port\":${port},\"protocol\":\"http\"}"
for service in client_authentication site_authentication signature permission; do
  post /v1/service/registry "{\"server_name\":\"${SERVER}\",\"service_name\":\"${service}\",\"uri\":\"/hooks/${service}\",\"method\":\"POST\"}"
done
post /v1/service/query "{\"server_name\":\"${SERVER}\",\"service_name\":\"permission\"}"
