#!/usr/bin/env bash
# The long hostile-input run: the property-based suites (src/testing/hostile-*.test.ts)
# with a random seed (or ZONAL_FUZZ_SEED) and ZONAL_FUZZ_RUNS inputs per property
# (default 2000; `npm test` runs them with a fixed seed and 150). A failure prints the
# seed and the shrunk input: rerun with that seed to reproduce. `npm run test:hostile`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export ZONAL_FUZZ_SEED=${ZONAL_FUZZ_SEED:-$RANDOM$RANDOM}
export ZONAL_FUZZ_RUNS=${ZONAL_FUZZ_RUNS:-2000}
echo "test:hostile: seed $ZONAL_FUZZ_SEED, $ZONAL_FUZZ_RUNS inputs per property"
node --test dist/src/testing/hostile-parsers.test.js dist/src/testing/hostile-http.test.js
