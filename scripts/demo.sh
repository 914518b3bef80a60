#!/usr/bin/env bash
# Sets zonal up (see setup.sh) and starts the demo on the embedded local cloud.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The demo's "Try next" lines call `zonal`: put it on the PATH (a link to this checkout's
# bin/zonal.js in /usr/local/bin, made when that place is free or already ours).
link=/usr/local/bin/zonal
target="$(pwd)/bin/zonal.js"
if [ -w "$(dirname "$link")" ] && { [ ! -e "$link" ] || [ "$(readlink -f "$link")" = "$(readlink -f "$target")" ]; }; then
  ln -sf "$target" "$link"
  echo "demo: zonal is on the PATH ($link -> $target)"
elif ! command -v zonal >/dev/null; then
  echo "demo: zonal is not on the PATH; run 'npm link' here (or use: node bin/zonal.js …)"
fi
node bin/zonal.js demo "$@"
