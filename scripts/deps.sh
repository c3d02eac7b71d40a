#!/usr/bin/env bash
# Installs the Debian packages reflex builds and tests with, only those missing.
# Idempotent: a machine that has them all runs no apt-get at all.
set -euo pipefail

packages=(
	clang llvm make pkg-config gcc
	libbpf-dev bpftool libelf-dev zlib1g-dev
	libcmocka-dev libclang-rt-14-dev
	nettle-dev libnetfilter-queue-dev libmnl-dev libinih-dev uthash-dev
	libmicrohttpd-dev libsystemd-dev
	iproute2 iptables iputils-ping iperf3 util-linux procps jq conntrack curl gnuplot-nox
	prometheus systemd man-db
	python3 # test traffic only (test_hardening, test_soak, bench_flows): nothing of reflex runs Python
)

missing=()
for pkg in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$pkg")
	fi
done

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages (${missing[*]}) and not root: install them with apt-get" >&2
	exit 1
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
