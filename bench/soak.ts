/**
 * The soak: many random faults against a three-member PostgreSQL cluster under a
 * steady write load — crash, freeze, host and zone failure of the primary, control
 * plane restarts, planned switchovers — waiting for the cluster to be whole after
 * each, then proving that no acknowledged write was lost and that no two members
 * ever accepted writes at once. Prints the tally per fault.
 *
 *   npm run soak [-- --faults 20] [-- --seed 7]
 */
import {
  CLUSTER_FAULTS,
  clusterOf,
  deployPgCluster,
  injectFault,
  movesLeader,
  waitWhole,
  type ClusterFault,
} from "../src/testing/cluster-faults.js";
import { waitFor } from "../src/lib/sleep.js";
import { ZonalHarness } from "../src/testing/zonal-harness.js";

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const FAULTS = arg("--faults", 12);
let seed = arg("--seed", Date.now() % 100_000);
const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed / 2 ** 31);

async function main(): Promise<void> {
  const z = new ZonalHarness();
  const tally = new Map<ClusterFault, { n: number; gaps: number[] }>();
  try {
    await z.up();
    const { checker } = await deployPgCluster(z);
    console.log(`soak: ${FAULTS} faults, seed ${seed}`);
    for (let i = 0; i < FAULTS; i++) {
      const fault = CLUSTER_FAULTS[Math.floor(random() * CLUSTER_FAULTS.length)]!;
      const before = await clusterOf(z);
      const t0 = Date.now();
      const undo = await injectFault(z, fault, before);
      // Writes resume first (on a new leader, when the fault moves it); then what the fault
      // took (a host, a zone) comes back, and the old leader rejoins.
      await waitFor(
        async () => {
          const c = await clusterOf(z);
          return (!movesLeader(fault) || c.leader?.vmId !== before.leader!.vmId) &&
            checker.since(t0 + 100).length > 5
            ? true
            : undefined;
        },
        { timeoutMs: 120_000, intervalMs: 100, what: `writes after ${fault}` },
      );
      await undo();
      await waitWhole(z);
      const gap = checker.longestGap(t0);
      const t = tally.get(fault) ?? { n: 0, gaps: [] };
      t.n += 1;
      t.gaps.push(gap);
      tally.set(fault, t);
      console.log(
        `fault ${i + 1}/${FAULTS}: ${fault.padEnd(22)} leader ${before.leader!.member} -> ${(await clusterOf(z)).leader!.member}, longest write gap ${gap} ms`,
      );
    }
    await checker.stop();
    const v = await checker.verify();
    console.log("\nfault                   count  median gap ms  max gap ms");
    for (const [fault, t] of tally) {
      const sorted = [...t.gaps].sort((a, b) => a - b);
      console.log(
        `${fault.padEnd(22)} ${String(t.n).padStart(6)}  ${String(sorted[Math.floor(sorted.length / 2)]).padStart(13)}  ${String(sorted.at(-1)).padStart(10)}`,
      );
    }
    console.log(
      `\nacknowledged writes ${checker.acked.length}, rows ${v.rows}, failed attempts ${checker.failures.length}`,
    );
    console.log(`lost acknowledged writes: ${v.missing.length}; writers: ${v.runs.join(" -> ")}`);
    console.log(`two members accepting writes at once: ${v.twoWriters ? "YES" : "never"}`);
    if (v.missing.length > 0 || v.twoWriters) process.exitCode = 1;
  } finally {
    await z.teardown();
  }
}

await main();
