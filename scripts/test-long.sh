#!/usr/bin/env bash
# The long tier: the clustered tests again, with their long cases (src/testing/tier.ts):
# full CPU for 20 s, partitions flapping, MariaDB's rolling updates, and
# test/services/upgrade-mariadb.test.js (upgrade-services over a MariaDB cluster under
# writes). About 25 minutes on 2 cores; not part of `npm test`. `npm run test:long`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ZONAL_TEST_TIER=long
start=$(date +%s)
status=0
node --test --test-concurrency=1 --test-timeout=900000 dist/test/cluster \
  dist/test/services/upgrade-mariadb.test.js || status=1
echo "test:long: took $(( $(date +%s) - start )) s"
exit $status
