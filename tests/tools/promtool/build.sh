#!/usr/bin/env bash
# Builds promtool from the Prometheus Go module into a cache outside the repository, and
# prints the path of the binary.
#
# The chart's alerting rules are checked and unit-tested with `promtool check rules` and
# `promtool test rules`. promtool is compiled from github.com/prometheus/prometheus at the
# version pinned in go.mod (Prometheus 3.x; the module's v0.3MM.P is release 3.MM.P), like
# helm in tests/tools/helm, rather than taken from the distribution's package: that one is
# a 2.x release, whose rule evaluation (range selection, regular expressions) differs from
# the Prometheus 3 that evaluates these rules in a cluster, and a package version is not
# pinned by the repository. The build leaves out every service-discovery plugin
# (remove_all_sd): promtool checks and tests rules without them, and the cloud SDKs they
# pull in (AWS, Azure, GCE, ...) would only lengthen the cold build. Bump it with
# `go get -tool github.com/prometheus/prometheus/cmd/promtool@<version>` here.
#
# `build.sh selectors` builds, from the same module, the small program in selectors/ that
# lists what PromQL expressions read (the tests hold the rules' and the dashboard's
# queries against a running operator's metrics with it); it is cached by a hash of its
# source, so an edit is rebuilt.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
what=${1:-promtool}
module=$(awk '{sub(/^require /, "")} $1 == "github.com/prometheus/prometheus" {print $2; exit}' \
  "$here/go.mod")
# v0.316.0 is Prometheus 3.16.0.
release=$(echo "$module" | sed -E 's/^v0\.3([0-9]+)\.([0-9]+)$/3.\1.\2/; s/^3\.0*([0-9])/3.\1/')
cache=${SSO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shared-services-operator}
case $what in
  promtool)
    bin="$cache/promtool-v$release/bin"
    package=github.com/prometheus/prometheus/cmd/promtool
    ;;
  selectors)
    digest=$(cat "$here/go.sum" "$here"/selectors/*.go | sha256sum | cut -c1-12)
    bin="$cache/promql-selectors-$digest/bin"
    package=./selectors
    ;;
  *)
    echo "usage: build.sh [promtool|selectors]" >&2
    exit 2
    ;;
esac

if [[ -x "$bin/$what" ]]; then
  echo "$bin/$what"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is needed to build $what" >&2; exit 1; }
echo "building $what (Prometheus $release) into $bin; a cold build takes a few minutes" >&2

mkdir -p "$bin"
tmp=$(mktemp -d "$bin/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$here"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
# Stamp the release in, as Prometheus's own build does; without it `promtool --version`
# names no version.
go build -trimpath -tags remove_all_sd \
  -ldflags "-s -w -X github.com/prometheus/common/version.Version=$release \
  -X github.com/prometheus/common/version.Branch=HEAD" \
  -o "$tmp/$what" "$package"
# Moved into place only once built, so an interrupted build never leaves a half-written
# binary that a later run would take as cached.
mv "$tmp/$what" "$bin/$what"
echo "$bin/$what"
