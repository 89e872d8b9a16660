#!/usr/bin/env bash
# Installs the Debian packages aos_cus builds, runs and tests with; quiet when none is missing.
set -euo pipefail

packages=(
	build-essential postgresql-15 postgresql-server-dev-15 postgresql-15-cron postgresql-15-pgtap
	libtap-parser-sourcehandler-pgtap-perl libipc-run-perl libssl-dev libcurl4-openssl-dev libpcre2-dev libpq-dev
	prometheus prometheus-postgres-exporter python3 clang libclang-rt-14-dev jq curl openssl
	libfaketime faketime
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages: ${missing[*]} (run as root to install them)" >&2
	exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Debian starts a system cluster on install; aos_cus never uses it.
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
