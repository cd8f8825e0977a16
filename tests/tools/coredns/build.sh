#!/usr/bin/env bash
# Builds CoreDNS (with the kubernetes plugin and the few others main.go names) from its Go
# module into a cache outside the repository, and prints the path of the binary.
#
# It serves the workload cluster's DNS in the data plane of the end-to-end tests, `make up`,
# `make demo` and `make bench`. Nothing is rebuilt when the binary is already there; the
# version comes from go.mod, so bumping CoreDNS lands in a new cache directory.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# The required version, whether go.mod has it on a `require` line of its own or in a block.
version=$(awk '$1 == "require" {$1 = ""; $0 = $0} $1 == "github.com/coredns/coredns" && $2 ~ /^v/ {
  print $2; exit
}' "$here/go.mod")
cache=${SSO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shared-services-operator}
bin="$cache/coredns-$version/bin"

if [[ -x "$bin/coredns" ]]; then
  echo "$bin/coredns"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is needed to build CoreDNS" >&2; exit 1; }
echo "building CoreDNS $version into $bin; a cold build takes a few minutes" >&2

mkdir -p "$bin"
tmp=$(mktemp -d "$bin/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$here"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
go build -trimpath -ldflags "-s -w" -o "$tmp/coredns" .
# Moved into place only once built, so an interrupted build never leaves a half-written
# binary that a later run would take as cached.
mv "$tmp/coredns" "$bin/coredns"
echo "$bin/coredns"
