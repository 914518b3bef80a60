#!/usr/bin/env bash
# The whole test suite: setup (packages, build), lint, then every test with node's
# test runner. Tests start real processes on loopback; each test cleans up the
# process groups it started.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "test: lint"
npx eslint .
npx prettier --check . >/dev/null || { npx prettier --list-different .; exit 1; }
echo "test: folder dependencies (.dependency-cruiser.cjs: no cycles, layers kept)"
npx depcruise src --config .dependency-cruiser.cjs
echo "test: node --test"
start=$(date +%s)
# Everything but the clustered tier, two files at a time.
status=0
node --test --test-concurrency=2 --test-timeout=600000 dist/src dist/test/local-cloud dist/test/cli dist/test/director dist/test/health dist/test/broker dist/test/services || status=1
# Clustered PostgreSQL and MariaDB measure write gaps in seconds: their files run one at a time.
node --test --test-concurrency=1 --test-timeout=900000 dist/test/cluster || status=1
echo "test: node tiers took $(( $(date +%s) - start )) s"
# The OpenStack tier: a test OpenStack brought up from nothing, the driver against it.
bash scripts/test-openstack.sh || status=1
echo "test: suite took $(( $(date +%s) - start )) s"
exit $status
