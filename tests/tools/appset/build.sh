#!/usr/bin/env bash
# Builds the ApplicationSet template renderer (main.go) into a cache outside the repository,
# and prints the path of the binary. It is cached by a hash of its source and go.sum, so an
# edit is rebuilt; a cold build downloads sprig and its few dependencies (seconds).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${SSO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shared-services-operator}
digest=$(cat "$here/go.mod" "$here/go.sum" "$here/main.go" | sha256sum | cut -c1-12)
bin="$cache/appset-render-$digest/bin"

if [[ -x "$bin/appset" ]]; then
  echo "$bin/appset"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is needed to build the appset renderer" >&2; exit 1; }
echo "building the ApplicationSet template renderer into $bin" >&2
mkdir -p "$bin"
tmp=$(mktemp -d "$bin/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$here"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
go build -trimpath -ldflags "-s -w" -o "$tmp/appset" .
# Moved into place only once built, so an interrupted build is never taken as cached.
mv "$tmp/appset" "$bin/appset"
echo "$bin/appset"
