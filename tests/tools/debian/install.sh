#!/usr/bin/env bash
# Installs the Debian packages that the data plane of the end-to-end tests needs, when any of
# them is missing: nftables (kube-proxy's `nft`), and Redis and PostgreSQL, servers and
# clients, that the tests run on the central cluster's load-balancer network and reach from
# the workload cluster. With nothing missing it does nothing, asks no registry and needs no
# root.
#
# The packages' own services are kept from starting while they are installed: the tests
# start the servers they need inside network namespaces, and a Redis or PostgreSQL left
# running on the host would only hold memory and ports.
set -euo pipefail

# What each package provides, as a path to look for.
declare -A provides=(
  [nftables]=/usr/sbin/nft
  [redis-server]=/usr/bin/redis-server
  [redis-tools]=/usr/bin/redis-cli
  [postgresql-client]=/usr/bin/psql
)
missing=()
for package in "${!provides[@]}"; do
  [[ -x "${provides[$package]}" ]] || missing+=("$package")
done
# The server lives in a versioned directory, /usr/lib/postgresql/<major>/bin.
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing+=(postgresql)
if ((${#missing[@]} == 0)); then
  exit 0
fi

if ((EUID != 0)); then
  echo "install.sh: the data plane needs the Debian packages ${missing[*]};" \
    "run this as root, or: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
command -v apt-get >/dev/null || {
  echo "install.sh: no apt-get here; install ${missing[*]} (Debian's names) by hand" >&2
  exit 1
}
echo "installing the Debian packages ${missing[*]}" >&2
policy=/usr/sbin/policy-rc.d
if [[ ! -e $policy ]]; then
  # invoke-rc.d asks this script whether a package may start its service; 101 says no.
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  trap 'rm -f "$policy"' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
