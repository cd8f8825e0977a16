#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kubectl, etcd and kube-proxy (for the data
# plane of the end-to-end tests) from their Go modules into a cache outside the repository,
# and prints the directory that holds them.
#
# Only the binaries that are missing are built, nothing when all five are already there, so
# CI and `make test` pay for the cold build once per machine. The version comes from go.mod, so bumping
# Kubernetes is a one-line change there (plus its replace lines) and lands in a new
# cache directory.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
version=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2; exit}' "$here/go.mod")
cache=${SSO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shared-services-operator}
bin="$cache/k8s-$version/bin"
programs=(kube-apiserver kube-controller-manager kubectl etcd kube-proxy)

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
cd "$here"
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
