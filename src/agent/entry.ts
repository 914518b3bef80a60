/**
 * What a VM runs: `node bin/zonal-agent.js --vm-dir DIR` — the agent alone, without
 * the CLI and everything it loads (every VM pays for what its agent loads; see
 * bench/agent-memory.ts). `npm run build` bundles it from here into
 * dist/agent/zonal-agent.mjs (scripts/build-agent.mjs), which VMs run.
 * `zonal agent --vm-dir DIR` runs the same agent, unbundled.
 */
import { ADOPT_FLAG } from "./handoff.js";
import { runAgent } from "./main.js";

const at = process.argv.indexOf("--vm-dir");
const vmDir = at > 0 ? process.argv[at + 1] : undefined;
if (!vmDir) {
  process.stderr.write("usage: zonal-agent --vm-dir DIR\n");
  process.exit(2);
}
const adoptAt = process.argv.indexOf(ADOPT_FLAG);
await runAgent(vmDir, adoptAt > 0 ? process.argv[adoptAt + 1] : undefined);
