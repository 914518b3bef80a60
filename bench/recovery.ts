/**
 * bench/recovery: time from a fault to the instance serving again, per strategy
 * (resurrect, standby) and fault (crash a VM, freeze a VM, fail its host), median
 * of N runs each (default 5), on the embedded local cloud with default health
 * settings (heartbeat every 1 s, unresponsive after 3 s).
 *
 * "Serving again" is the first successful request answered by the new VM, on the
 * instance's address (resurrect) or its virtual address (standby). The peer,
 * measured in the same run, is resurrect: the ratio says what a warm standby buys.
 *
 *   npm run bench:recovery [-- --runs 5]
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { repoPath } from "../src/cli/home.js";
import type { InstanceView } from "../src/director/director.js";
import { sleep, waitFor } from "../src/lib/sleep.js";
import { ZonalHarness } from "../src/testing/zonal-harness.js";

type Strategy = "resurrect" | "standby";
type Fault = "crash" | "freeze" | "fail-host";
const ZONE: Record<Fault, string> = { crash: "z1", freeze: "z2", "fail-host": "z3" };
const TARGET: Record<Strategy, number> = { resurrect: 10_000, standby: 5000 };

const runsArg = process.argv.indexOf("--runs");
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const z = new ZonalHarness();
  try {
    await z.up();
    for (const strategy of ["resurrect", "standby"] as const) {
      const m = parse(readFileSync(repoPath("examples", "counter.yml"), "utf8")) as {
        name: string;
        instance_groups: Array<Record<string, unknown>>;
      };
      m.name = strategy;
      Object.assign(m.instance_groups[0]!, { instances: 3, zones: ["z1", "z2", "z3"], strategy });
      const path = join(z.dir, `${strategy}.yml`);
      writeFileSync(path, stringify(m));
      const r = z.zonal("deploy", path);
      if (r.code !== 0) throw new Error(r.err + r.out);
    }
    const results: Array<{ strategy: Strategy; fault: Fault; ms: number[] }> = [];
    for (const fault of ["crash", "freeze", "fail-host"] as const) {
      for (const strategy of ["resurrect", "standby"] as const) {
        const ms: number[] = [];
        for (let run = 0; run < RUNS; run++) {
          ms.push(await once(z, strategy, fault));
          process.stderr.write(`${strategy} ${fault} run ${run + 1}: ${ms.at(-1)} ms\n`);
        }
        results.push({ strategy, fault, ms });
      }
    }
    console.log(
      `\nrecovery on the local cloud: fault -> serving again (median of ${RUNS} runs; heartbeat 1 s, timeout 3 s)`,
    );
    console.log("strategy   fault      median ms  min ms  max ms  target ms  met   vs resurrect");
    for (const r of results) {
      const peer = median(results.find((x) => x.fault === r.fault && x.strategy === "resurrect")!.ms);
      const med = median(r.ms);
      console.log(
        `${r.strategy.padEnd(10)} ${r.fault.padEnd(10)} ${String(med).padStart(9)}  ${String(Math.min(...r.ms)).padStart(6)}  ` +
          `${String(Math.max(...r.ms)).padStart(6)}  ${String(TARGET[r.strategy]).padStart(9)}  ${(med <= TARGET[r.strategy] ? "yes" : "NO").padEnd(4)}  ${(med / peer).toFixed(2).padStart(12)}`,
      );
    }
    console.log(
      "for context (not measured here): BOSH's health monitor waits 60-120 s by default before acting; Kubernetes evicts pods ~5 min after a node goes silent",
    );
  } finally {
    await z.teardown();
  }
}

async function instance(z: ZonalHarness, strategy: Strategy, zone: string): Promise<InstanceView> {
  return (await z.director.instances(strategy)).find((i) => i.zone === zone)!;
}

async function once(z: ZonalHarness, strategy: Strategy, fault: Fault): Promise<number> {
  const zone = ZONE[fault];
  // Start from a settled state: running, serving, and (standby) a ready standby in the zone.
  const inst = await waitFor(
    async () => {
      const i = await instance(z, strategy, zone);
      const standbys =
        strategy === "standby"
          ? (await z.client.listVms({ metadata: { deployment: strategy, group: "counter" } })).filter(
              (v) => v.metadata.standby && v.zone === zone && v.id !== i.vmId && v.state === "running",
            )
          : [1];
      return i.state === "running" && standbys.length > 0 ? i : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 200, what: "a settled instance" },
  );
  await sleep(1500);
  const url = async () => {
    const i = await instance(z, strategy, zone);
    return { url: `http://${strategy === "standby" ? i.vip : i.address}:8080/`, vmId: i.vmId };
  };
  const t0 = Date.now();
  if (fault === "crash") await z.client.crashVm(inst.vmId!);
  if (fault === "freeze") await z.client.freezeVm(inst.vmId!);
  if (fault === "fail-host") await z.client.failHost(inst.host!, { powerOffAfterMs: 30_000 });
  await waitFor(
    async () => {
      const { url: u, vmId } = await url();
      if (vmId === inst.vmId) return undefined;
      const body = await (await fetch(u, { signal: AbortSignal.timeout(300) })).text();
      return body.includes(vmId!) ? true : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 50, what: "serving again" },
  );
  const ms = Date.now() - t0;
  if (fault === "fail-host") await z.client.restoreHost(inst.host!);
  return ms;
}

await main();
