#!/usr/bin/env bash
# Installs what zonal needs on a fresh Debian 12 machine, then builds it:
#   - PostgreSQL 15, MariaDB 10.11 with Galera 4 and mariabackup (SST streams through socat),
#     HAProxy, etcd, and nftables, iptables and python3 (the local cloud's
#     network faults; a slow link's delay queue) from Debian's packages (apt-get update +
#     install, skipped when all are already installed);
#   - the npm packages (npm ci), then the TypeScript build (dist/).
# Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(postgresql-15 mariadb-server galera-4 mariadb-backup socat haproxy etcd-server etcd-client nftables iptables python3)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} from Debian's packages"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

echo "setup: building"
npx tsc -p tsconfig.json
node scripts/build-agent.mjs
