#!/usr/bin/env bash
# Sets zonal up (see setup.sh) and starts the demo on the embedded local cloud.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
node bin/zonal.js demo "$@"
