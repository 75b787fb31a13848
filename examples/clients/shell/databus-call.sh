#!/usr/bin/env bash
# databus-call.sh: call a Databus portal API from the shell (bash, curl, openssl).
#
# Signs the request (HMAC-SHA256, SHA256 or MD5), encrypts the body with AES
# in ECB mode (AES-128/192/256 by key length, PKCS#5 padding, standard
# Base64), sends it, decrypts the answer and prints the envelope JSON.
#
# Supported encryption types: AES and NONE. AES-GCM and DES are NOT
# supported: `openssl enc` has no AEAD (GCM) mode, and DES needs OpenSSL 3's
# legacy provider, which is not portable. Use the Java or Go client for them.
#
# Usage:
#   databus-call.sh --url BASEURL --app ID --key KEY --api CODE[:VERSION] --body JSON
#
# Every flag has an environment variable; a flag wins over its variable:
#   --url URL             DATABUS_URL        portal base URL
#                                            (default http://127.0.0.1:8080/admin-api/databus/api/portal)
#   --app ID              DATABUS_APP        appId (ZT-App-Id)
#   --key KEY             DATABUS_KEY        encryption key (its UTF-8 bytes; 16, 24 or 32 bytes)
#   --key-file PATH       DATABUS_KEY_FILE   file holding the key (one trailing newline dropped)
#   --sign-key K          DATABUS_SIGN_KEY   HMAC key (default: the encryption key)
#   --sign-key-file PATH  DATABUS_SIGN_KEY_FILE
#   --sign-type T         DATABUS_SIGN_TYPE  HMAC-SHA256 (default) | SHA256 | MD5
#   --enc-type T          DATABUS_ENC_TYPE   AES (default) | NONE
#   --api CODE[:VERSION]  DATABUS_API        e.g. demo.hello:v1 (version defaults to v1)
#   --body JSON           DATABUS_BODY       request body, plaintext
#   --body-file PATH      DATABUS_BODY_FILE  file holding the body (its exact bytes)
#   --method M            DATABUS_METHOD     HTTP method (default POST)
#   --query QUERY         DATABUS_QUERY      query string as sent, URL-encoded: 'page=1&tag=a%20b'
#   --tenant ID           DATABUS_TENANT     ZT-Tenant-Id
#   --nonce N             DATABUS_NONCE      fixed nonce (default: 16 random hex digits)
#   --timestamp MS        DATABUS_TIMESTAMP  fixed timestamp in ms (default: now)
#   -v, --verbose         DATABUS_VERBOSE=1  print the sign string, headers and wire body to stderr
#
# Exit status: 0 when the envelope's code is 200, 1 for any other code,
# 2 for a usage error or a missing tool, 3 when the call fails or the answer
# cannot be read.
#
# Keys given with --key are visible in the process list; --key-file and
# DATABUS_KEY keep them out of this script's arguments, but openssl receives
# the keys as hex arguments (-K, -macopt hexkey:) while it runs: on a shared
# machine, use a client library instead of this script for production keys.

set -euo pipefail

prog=${0##*/}
die() { echo "$prog: $*" >&2; exit 2; }
fail() { echo "$prog: $*" >&2; exit 3; }

usage() {
	sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'
}

for tool in curl openssl; do
	command -v "$tool" >/dev/null 2>&1 ||
		die "$tool is required but was not found on PATH (install it: apt-get install $tool, yum install $tool, brew install $tool)"
done
for tool in od tr awk sed sort head cat cp mkdir mktemp date; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool (a POSIX utility) is required but was not found on PATH"
done

url=${DATABUS_URL:-http://127.0.0.1:8080/admin-api/databus/api/portal}
app=${DATABUS_APP:-}
key=${DATABUS_KEY:-}
key_file=${DATABUS_KEY_FILE:-}
sign_key=${DATABUS_SIGN_KEY:-}
sign_key_file=${DATABUS_SIGN_KEY_FILE:-}
sign_type=${DATABUS_SIGN_TYPE:-HMAC-SHA256}
enc_type=${DATABUS_ENC_TYPE:-AES}
api=${DATABUS_API:-}
body=${DATABUS_BODY:-}
body_file=${DATABUS_BODY_FILE:-}
method=${DATABUS_METHOD:-POST}
query=${DATABUS_QUERY:-}
tenant=${DATABUS_TENANT:-}
nonce=${DATABUS_NONCE:-}
timestamp=${DATABUS_TIMESTAMP:-}
verbose=${DATABUS_VERBOSE:-}

while [ $# -gt 0 ]; do
	flag=$1
	case $flag in
	-h | --help) usage; exit 0 ;;
	-v | --verbose) verbose=1; shift; continue ;;
	--*=*) val=${flag#*=}; flag=${flag%%=*}; shift ;;
	--*)
		[ $# -ge 2 ] || die "$flag needs a value"
		val=$2; shift 2 ;;
	*) die "unexpected argument: $flag (see --help)" ;;
	esac
	case $flag in
	--url) url=$val ;;
	--app) app=$val ;;
	--key) key=$val ;;
	--key-file) key_file=$val ;;
	--sign-key) sign_key=$val ;;
	--sign-key-file) sign_key_file=$val ;;
	--sign-type) sign_type=$val ;;
	--enc-type) enc_type=$val ;;
	--api) api=$val ;;
	--body) body=$val ;;
	--body-file) body_file=$val ;;
	--method) method=$val ;;
	--query) query=$val ;;
	--tenant) tenant=$val ;;
	--nonce) nonce=$val ;;
	--timestamp) timestamp=$val ;;
	*) die "unknown flag: $flag (see --help)" ;;
	esac
done

[ -n "$app" ] || die "the appId is required: --app ID or DATABUS_APP"
[ -n "$api" ] || die "the API is required: --api CODE[:VERSION] or DATABUS_API"
sign_type=$(printf '%s' "$sign_type" | tr '[:lower:]' '[:upper:]')
enc_type=$(printf '%s' "$enc_type" | tr '[:lower:]' '[:upper:]')
case $sign_type in
MD5) dgst=-md5 ;;
SHA256) dgst=-sha256 ;;
HMAC-SHA256) dgst=-sha256 ;;
*) die "unknown signature type $sign_type (HMAC-SHA256, SHA256 or MD5)" ;;
esac
case $enc_type in
AES | NONE) ;;
AES-GCM | DES) die "encryption type $enc_type is not supported by the shell client (openssl enc has no portable $enc_type); use the Java or Go client" ;;
*) die "unknown encryption type $enc_type (AES or NONE here)" ;;
esac
method=$(printf '%s' "$method" | tr '[:lower:]' '[:upper:]')

tmp=$(mktemp -d "${TMPDIR:-/tmp}/databus-call.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# hexof FILE: the bytes of FILE as lowercase hex, on one line.
hexof() { od -An -v -tx1 "$1" | tr -d ' \n'; }

# keyhex VALUE FILE: the key as hex, from a value (UTF-8 bytes) or a file
# (one trailing "\n", then one "\r", dropped: the gateway reads file: secrets so).
keyhex() {
	local value=$1 file=$2 h
	if [ -n "$value" ] && [ -n "$file" ]; then
		die "give a key or a key file, not both"
	fi
	if [ -n "$file" ]; then
		[ -r "$file" ] || die "cannot read key file $file"
		h=$(hexof "$file")
		h=${h%0a}
		h=${h%0d}
		printf '%s' "$h"
	elif [ -n "$value" ]; then
		printf '%s' "$value" >"$tmp/k"
		hexof "$tmp/k"
	fi
}

key_hex=$(keyhex "$key" "$key_file")
sign_key_hex=$(keyhex "$sign_key" "$sign_key_file")
[ -n "$sign_key_hex" ] || sign_key_hex=$key_hex

if [ "$enc_type" = AES ]; then
	[ -n "$key_hex" ] || die "the encryption key is required: --key, --key-file, DATABUS_KEY or DATABUS_KEY_FILE"
	case $((${#key_hex} / 2)) in
	16) aes=-aes-128-ecb ;;
	24) aes=-aes-192-ecb ;;
	32) aes=-aes-256-ecb ;;
	*) die "AES key must be 16, 24 or 32 bytes, got $((${#key_hex} / 2))" ;;
	esac
fi
if [ "$sign_type" = HMAC-SHA256 ] && [ -z "$sign_key_hex" ]; then
	die "HMAC-SHA256 needs a key: --sign-key or --key"
fi

# The plaintext body, byte for byte: it is both signed and encrypted.
if [ -n "$body" ] && [ -n "$body_file" ]; then
	die "give --body or --body-file, not both"
elif [ -n "$body_file" ]; then
	[ -r "$body_file" ] || die "cannot read body file $body_file"
	cat -- "$body_file" >"$tmp/body"
else
	printf '%s' "$body" >"$tmp/body"
fi

if [ -z "$timestamp" ]; then
	timestamp=$(date +%s%3N 2>/dev/null || true)
	case $timestamp in
	'' | *[!0-9]*) timestamp="$(date +%s)000" ;; # no %N (BSD/macOS date): whole seconds
	esac
fi
[ -n "$nonce" ] || nonce=$(openssl rand -hex 8)
[ ${#nonce} -ge 8 ] || die "the nonce must have at least 8 characters"

code=${api%%:*}
version=v1
case $api in *:?*) version=${api#*:} ;; esac

# --- the string to sign -----------------------------------------------------
# Fields: appId, timestamp, nonce, body (left out when empty) and every query
# parameter, decoded ('+' is a space, %XX a byte), the values of a repeated key
# joined with ',', "signature" skipped; sorted by key in byte order (LC_ALL=C);
# key=value joined with '&'. Each value is kept in a file so that the bytes
# (the body above all) are signed exactly as they are sent.

# urldecode STRING: percent-decoding as the gateway does it (Go url.ParseQuery).
urldecode() {
	local s=${1//+/ }
	case $s in *%*) ;; *) printf '%s' "$s"; return ;; esac
	# Every % must start a two-digit hex escape.
	if printf '%s' "$s" | awk '{ s = $0; gsub(/%[0-9A-Fa-f][0-9A-Fa-f]/, "", s); exit (index(s, "%") > 0) }'; then
		:
	else
		die "bad percent escape in query: $1"
	fi
	s=${s//\\/\\\\}
	printf '%b' "${s//%/\\x}"
}

# One file per field, named "k" + the hex of the key: the names sort (LC_ALL=C)
# in the byte order of the keys, since hex digits keep that order; and no
# associative arrays are needed (they are bash 4 only).
mkdir "$tmp/f"
field() { # field KEY: sets $fv to the file holding KEY's value
	printf '%s' "$1" >"$tmp/k"
	fv="$tmp/f/k$(hexof "$tmp/k")"
	[ -e "$fv.key" ] || cp "$tmp/k" "$fv.key"
}

field appId; printf '%s' "$app" >"$fv"
field timestamp; printf '%s' "$timestamp" >"$fv"
field nonce; printf '%s' "$nonce" >"$fv"
if [ -s "$tmp/body" ]; then
	field body; cp "$tmp/body" "$fv"
fi
query=${query#\?}
case $query in *\;*) die "a query with ';' is refused by the gateway; encode it as %3B" ;; esac
if [ -n "$query" ]; then
	IFS='&' read -r -a pieces <<<"$query"
	for piece in "${pieces[@]}"; do
		[ -n "$piece" ] || continue
		k=${piece%%=*}
		v=
		case $piece in *=*) v=${piece#*=} ;; esac
		k=$(urldecode "$k")
		[ "$k" != signature ] || continue
		case $k in appId | timestamp | nonce | body)
			die "query parameter name $k is reserved by the signature (appId, timestamp, nonce, body)" ;;
		esac
		field "$k"
		if [ -e "$fv" ]; then
			printf ',' >>"$fv"
		fi
		urldecode "$v" >>"$fv"
	done
fi

# key=value joined with '&', in byte order of the keys, into $tmp/sign.
first=1
for name in $(for f in "$tmp"/f/k*; do
	case $f in *.key) ;; *) printf '%s\n' "${f##*/}" ;; esac
done | LC_ALL=C sort); do
	[ $first = 1 ] || printf '&'
	first=0
	cat "$tmp/f/$name.key"
	printf '='
	cat "$tmp/f/$name"
done >"$tmp/sign"

if [ "$sign_type" = HMAC-SHA256 ]; then
	signature=$(openssl dgst -sha256 -mac HMAC -macopt "hexkey:$sign_key_hex" <"$tmp/sign" | awk '{ print $NF }')
else
	signature=$(openssl dgst "$dgst" <"$tmp/sign" | awk '{ print $NF }')
fi
[ -n "$signature" ] || fail "openssl dgst produced no signature"

# --- the body on the wire ---------------------------------------------------
headers=(-H "ZT-App-Id: $app" -H "ZT-Timestamp: $timestamp" -H "ZT-Nonce: $nonce" -H "ZT-Signature: $signature")
[ -z "$tenant" ] || headers+=(-H "ZT-Tenant-Id: $tenant")
data=()
if [ -s "$tmp/body" ]; then
	if [ "$enc_type" = AES ]; then
		openssl enc "$aes" -e -K "$key_hex" -nosalt -base64 -A <"$tmp/body" >"$tmp/wire" ||
			fail "openssl enc failed"
		headers+=(-H "Content-Type: text/plain; charset=utf-8")
	else
		cp "$tmp/body" "$tmp/wire"
		headers+=(-H "Content-Type: application/json")
	fi
	data=(--data-binary "@$tmp/wire")
fi

target="${url%/}/$code/$version"
[ -z "$query" ] || target="$target?$query"

if [ -n "$verbose" ]; then
	{
		echo "> $method $target"
		printf '> sign string: '; cat "$tmp/sign"; echo
		echo "> ZT-App-Id: $app"
		echo "> ZT-Timestamp: $timestamp"
		echo "> ZT-Nonce: $nonce"
		echo "> ZT-Signature: $signature"
		if [ -s "$tmp/body" ]; then printf '> body on the wire: '; cat "$tmp/wire"; echo; fi
	} >&2
fi

# -H 'Expect:' stops curl from waiting for "100 Continue" on larger bodies.
meta=$(curl -sS -X "$method" "${headers[@]}" -H 'Expect:' ${data[@]+"${data[@]}"} \
	-o "$tmp/answer" -w '%{http_code} %{content_type}' -- "$target") ||
	fail "the request to $target failed"
status=${meta%% *}
content_type=${meta#* }
[ -z "$verbose" ] || echo "< HTTP $status, Content-Type: $content_type" >&2

# --- the answer -------------------------------------------------------------
# text/plain: the envelope encrypted with the caller's key (Base64);
# application/json: plaintext (errors raised before the credential is known).
ct_lower=$(printf '%s' "$content_type" | tr '[:upper:]' '[:lower:]')
case $ct_lower in
text/plain*)
	if [ "$enc_type" = AES ]; then
		# One Base64 line (white space removed, as the gateway ignores it), newline-terminated.
		{ tr -d ' \r\n\t' <"$tmp/answer"; echo; } >"$tmp/answer.b64"
		openssl enc "$aes" -d -K "$key_hex" -nosalt -base64 -A <"$tmp/answer.b64" >"$tmp/envelope" 2>"$tmp/err" ||
			fail "HTTP $status: the answer does not decrypt with this key ($(head -n1 "$tmp/err"))"
	else
		cp "$tmp/answer" "$tmp/envelope"
	fi
	;;
*) cp "$tmp/answer" "$tmp/envelope" ;;
esac

cat "$tmp/envelope"
echo

# The envelope starts {"code":NNN,...}; code equals the HTTP status.
env_code=$(sed -n 's/^[[:space:]]*{[[:space:]]*"code"[[:space:]]*:[[:space:]]*\([0-9][0-9]*\).*/\1/p' "$tmp/envelope" | head -n1)
[ -n "$env_code" ] || fail "HTTP $status: the answer is not an envelope"
[ "$env_code" = "$status" ] || echo "$prog: warning: envelope code $env_code differs from HTTP status $status" >&2
[ "$env_code" = 200 ] || exit 1
