#!/usr/bin/env bash
# Release build: the databus binary for linux and darwin on amd64 and arm64,
# from the commit checked out (HEAD), reproducibly.
#
#   bash ci/release.sh VERSION [OUTDIR]      # OUTDIR default: dist/VERSION
#   RELEASE_TARGETS="linux/amd64" bash ci/release.sh v1.2.3 /tmp/out   # some targets only
#
# VERSION is the tag the release is published under (v1.2.3, v1.3.0-rc.1):
# a semantic version, as `go install ...@VERSION` takes it. OUTDIR gets, for
# each target OS/ARCH:
#
#   databus_VERSION_OS_ARCH.tar.gz         databus_VERSION_OS_ARCH/{databus,README.md[,LICENSE]}
#   databus_VERSION_OS_ARCH.sbom.cdx.json  CycloneDX SBOM of that binary: its modules,
#                                          their hashes and licenses (cyclonedx-gomod)
#
# and SHA256SUMS over all of them (sha256sum format: check a download with
# `sha256sum --check --ignore-missing SHA256SUMS`).
#
# Reproducible: the build runs in a clean clone of the commit (uncommitted
# changes are never part of a release), with CGO_ENABLED=0, -trimpath,
# -buildvcs=true, and the date set to the commit's time (SOURCE_DATE_EPOCH);
# the archives hold fixed owners, modes and times. The same commit, VERSION
# and Go toolchain give the same bytes. The binary reports what it is:
#
#   databus version   # databus v1.2.3 (commit 1a2b3c4d5e6f, built 2026-12-06T10:00:00Z, go1.26.8 linux/amd64)
#
# Needs git, go, GNU tar, gzip and sha256sum (a Linux runner). The SBOM tool
# is built from the Go module proxy at the pinned version below; it does
# not enter go.mod.
set -euo pipefail
cd "$(dirname "$0")/.."

CYCLONEDX_GOMOD=github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod@v1.10.0

usage() { echo "usage: bash ci/release.sh VERSION [OUTDIR]" >&2; exit 2; }
[ $# -ge 1 ] && [ $# -le 2 ] || usage
VERSION=$1
# Semantic versions as Go modules take them: vMAJOR.MINOR.PATCH with an
# optional pre-release (no build metadata).
if ! [[ "$VERSION" =~ ^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$ ]]; then
  echo "release: VERSION $VERSION: expected a semantic version such as v1.2.3 or v1.3.0-rc.1" >&2
  exit 2
fi
OUT=${2:-dist/$VERSION}
TARGETS=${RELEASE_TARGETS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64}
for t in $TARGETS; do
  case "$t" in
    linux/amd64 | linux/arm64 | darwin/amd64 | darwin/arm64) ;;
    *) echo "release: RELEASE_TARGETS: $t: expected linux/amd64, linux/arm64, darwin/amd64 or darwin/arm64" >&2; exit 2 ;;
  esac
done

COMMIT=$(git rev-parse --verify HEAD^{commit})
SOURCE_DATE_EPOCH=$(git log -1 --format=%ct "$COMMIT")
export SOURCE_DATE_EPOCH
DATE=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ "$COMMIT")
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  echo "release: the checkout has uncommitted changes; building the commit $COMMIT without them" >&2
fi

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd -P)
if [ -n "$(ls -A "$OUT")" ]; then
  echo "release: $OUT is not empty" >&2
  exit 2
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# A clean clone of the commit (a local clone: objects are hard-linked),
# tagged VERSION so that the SBOM names the main module by it.
git clone --quiet --no-checkout . "$WORK/src"
git -C "$WORK/src" -c advice.detachedHead=false checkout --quiet --detach "$COMMIT"
git -C "$WORK/src" tag --force "$VERSION" "$COMMIT" >/dev/null

echo "== release $VERSION: commit $COMMIT, date $DATE, $(go version | cut -d' ' -f3)"
GOBIN="$WORK/bin" go install "$CYCLONEDX_GOMOD"

LDFLAGS="-s -w -X main.version=$VERSION -X main.commit=$COMMIT -X main.date=$DATE"
for t in $TARGETS; do
  os=${t%/*} arch=${t#*/}
  name=databus_${VERSION}_${os}_${arch}
  start=$SECONDS
  mkdir -p "$WORK/stage/$name"
  (cd "$WORK/src" && CGO_ENABLED=0 GOOS=$os GOARCH=$arch \
    go build -trimpath -buildvcs=true -ldflags "$LDFLAGS" -o "$WORK/stage/$name/databus" ./cmd/databus)
  cp "$WORK/src/README.md" "$WORK/stage/$name/"
  if [ -f "$WORK/src/LICENSE" ]; then cp "$WORK/src/LICENSE" "$WORK/stage/$name/"; fi
  chmod 0755 "$WORK/stage/$name" "$WORK/stage/$name/databus"
  find "$WORK/stage/$name" -type f ! -name databus -exec chmod 0644 {} +
  tar --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner --format=ustar \
    -C "$WORK/stage" -cf - "$name" | gzip -9 -n > "$OUT/$name.tar.gz"
  # The SBOM of this target: the modules its packages come from under the
  # same GOOS, GOARCH and CGO_ENABLED as the build.
  (cd "$WORK/src" && CGO_ENABLED=0 GOOS=$os GOARCH=$arch \
    "$WORK/bin/cyclonedx-gomod" app -json -licenses -noserial -notimestamp -main cmd/databus \
    -output "$OUT/$name.sbom.cdx.json" . 2>"$WORK/sbom.log") || { cat "$WORK/sbom.log" >&2; exit 1; }
  echo "$t: $(du -h "$OUT/$name.tar.gz" | cut -f1) in $((SECONDS - start))s"
done

(cd "$OUT" && sha256sum -- *.tar.gz *.sbom.cdx.json > SHA256SUMS)
echo "== $OUT"
(cd "$OUT" && ls -l)
