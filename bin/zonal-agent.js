#!/usr/bin/env node
// The agent a VM runs (the same as `zonal agent`, without the CLI): the bundle `npm run build` makes (scripts/build-agent.mjs).
import "../dist/agent/zonal-agent.mjs";
