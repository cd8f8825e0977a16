#!/usr/bin/env bash
# Builds the Kubernetes control plane the tests run against from its Go modules into a cache
# outside the repository, and prints the directory that holds it.
#
#   build.sh          the newest supported release (./go.mod): kube-apiserver,
#                     kube-controller-manager, kubectl, etcd and kube-proxy (for the data
#                     plane of the end-to-end tests)
#   build.sh 1.30     an older supported release (./release-1.30/go.mod): kube-apiserver and
#                     kube-controller-manager, beside links to the newest build's etcd and
#                     kubectl, which every release in the range works with
#   build.sh --list   the minor releases it can build, newest first
#
# Only the binaries that are missing are built, nothing when all are already there, so CI
# and `make test` pay for a cold build once per machine. The version comes from go.mod, so
# bumping a release is a one-line change there (plus its replace lines) and lands in a new
# cache directory.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${SSO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shared-services-operator}

module_version() {
  awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}
       $1 == "require" && $2 == "k8s.io/kubernetes" {print $3; exit}' "$1/go.mod"
}

if [[ "${1:-}" == "--list" ]]; then
  newest=$(module_version "$here")
  newest=${newest#v}
  echo "${newest%.*}"
  for dir in "$here"/release-*/; do
    dir=${dir%/}
    echo "${dir##*/release-}"
  done | sort -t. -k2,2nr
  exit 0
fi

if [[ -n "${1:-}" ]]; then
  module="$here/release-$1"
  [[ -f "$module/go.mod" ]] || { echo "build.sh: no release $1 in $here" >&2; exit 1; }
  programs=(kube-apiserver kube-controller-manager)
  shared=(etcd kubectl)
else
  module=$here
  programs=(kube-apiserver kube-controller-manager kubectl etcd kube-proxy)
  shared=()
fi
version=$(module_version "$module")
bin="$cache/k8s-$version/bin"

if ((${#shared[@]})); then
  newest_bin=$(bash "$here/build.sh")
  mkdir -p "$bin"
  for program in "${shared[@]}"; do
    ln -sfn "$newest_bin/$program" "$bin/$program"
  done
fi

missing=()
for program in "${programs[@]}"; do
  [[ -x "$bin/$program" ]] || missing+=("$program")
done
if ((${#missing[@]} == 0)); then
  echo "$bin"
  exit 0
fi

command -v go >/dev/null || { echo "build.sh: Go is needed to build ${missing[*]}" >&2; exit 1; }
echo "building ${missing[*]} (Kubernetes $version) into $bin; a cold build takes a while" >&2

# Set what `make` in the Kubernetes repository would stamp in, so /version reports the
# real release; without gitVersion the API server reports v0.0.0 and guesses its
# emulation version from the source defaults.
minor=${version#v1.}
minor=${minor%%.*}
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  stamp+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  stamp+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

mkdir -p "$bin"
tmp=$(mktemp -d "$bin/.build.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$module"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
for program in "${missing[@]}"; do
  case "$program" in
    etcd) pkg=./etcd ;;
    *) pkg=k8s.io/kubernetes/cmd/$program ;;
  esac
  go build -trimpath -ldflags "-s -w$stamp" -o "$tmp/$program" "$pkg"
  # Move into place only once built, so an interrupted build never leaves a
  # half-written binary that a later run would take as cached.
  mv "$tmp/$program" "$bin/$program"
done
echo "$bin"
