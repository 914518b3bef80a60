#!/usr/bin/env node
// The agent a VM runs (the same as `zonal agent`, without the CLI). Compiled to dist/ by `npm run build`.
import "../dist/src/agent/entry.js";
