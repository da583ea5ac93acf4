#!/bin/bash
# Install every Debian package the build, the tests and the benchmark need.
# Idempotent and quiet: it only calls apt-get when something is missing. Run as root.
set -euo pipefail

pkgs=(
	meson ninja-build pkg-config gcc
	libevent-dev libssl-dev librocksdb-dev libjansson-dev libldns-dev
	libprotobuf-c-dev protobuf-c-compiler
	python3 python3-pytest
	etcd-server etcd-client
	wrk curl procps iproute2 dnsmasq-base
)

missing=()
for p in "${pkgs[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing ${missing[*]}; run this script as root" >&2
	exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

# Debian's etcd-server package starts a system etcd on localhost:2379 where systemd
# runs; the tests and `./build/etcd` with its defaults need those ports.
if [[ " ${missing[*]} " == *" etcd-server "* ]] && command -v systemctl >/dev/null &&
   systemctl is-active --quiet etcd 2>/dev/null; then
	echo "install-deps: stopping and disabling the etcd service the package started"
	systemctl stop etcd || true
	systemctl disable etcd >/dev/null 2>&1 || true
fi
