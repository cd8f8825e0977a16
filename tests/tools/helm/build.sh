#!/usr/bin/env bash
# Builds helm from its Go module into a cache outside the repository, and prints the path
# of the binary.
#
# No package registry that this project may use ships a helm binary, so it is compiled
# from helm.sh/helm/v4 at the version pinned in go.mod, the same way tests/controlplane
# builds the Kubernetes binaries. Nothing is rebuilt when the binary is already there;
# bumping helm is a `go get -tool helm.sh/helm/v4/cmd/helm@<version>` here and lands in
# a new cache directory.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
version=$(awk '$1 == "helm.sh/helm/v4" && $2 ~ /^v/ {print $2; exit}' "$here/go.mod")
cache=${SSO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shared-services-operator}
bin="$cache/helm-$version/bin"

if [[ -x "$bin/helm" ]]; then
  echo "$bin/helm"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is needed to build helm" >&2; exit 1; }
echo "building helm $version into $bin; a cold build takes a few minutes" >&2

mkdir -p "$bin"
tmp=$(mktemp -d "$bin/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$here"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
# Stamp the release in, as helm's own Makefile does; without it `helm version` says "v4.3".
go build -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version \
  -X helm.sh/helm/v4/internal/version.gitTreeState=clean" -o "$tmp/helm" helm.sh/helm/v4/cmd/helm
# Moved into place only once built, so an interrupted build never leaves a half-written
# binary that a later run would take as cached.
mv "$tmp/helm" "$bin/helm"
echo "$bin/helm"
