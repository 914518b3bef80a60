#!/usr/bin/env bash
# The OpenStack tier: brings a test OpenStack up from nothing on loopback
# (test/openstack/up.sh: Debian's Keystone, Placement, Glance, Nova with six fake-driver
# computes in zones z1–z3, RabbitMQ, and a Neutron stub), runs dist/test/openstack
# against it (the Cloud contract on the OpenStack driver, a director deploy), tears it
# down, and prints how long it all took. `npm run test:openstack`.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash scripts/setup.sh
dir=$(mktemp -d /tmp/zonal-openstack.XXXXXX)
chmod 755 "$dir" # the private PostgreSQL runs as the postgres user
base_port=${ZONAL_TEST_OPENSTACK_PORT:-26000}
finish() {
  status=$?
  bash test/openstack/down.sh "$dir" || true
  if [ "$status" -eq 0 ]; then rm -rf "$dir"; else echo "test:openstack: logs kept in $dir/logs"; fi
  echo "test:openstack: took $(( $(date +%s) - start )) s (exit $status)"
  exit "$status"
}
trap finish EXIT
echo "test:openstack: bringing the test OpenStack up in $dir (ports from $base_port)"
up_start=$(date +%s)
bash test/openstack/up.sh "$dir" "$base_port"
echo "test:openstack: OpenStack up in $(( $(date +%s) - up_start )) s"
ZONAL_TEST_OPENSTACK="$dir" node --test --test-concurrency=1 --test-timeout=1200000 dist/test/openstack
