/**
 * bench/lb-failover: the gap a client doing continuous HTTP requests against the
 * load balancer's VIP sees when the active node's VM is crashed, frozen or its host
 * failed, median of N runs per fault (default 5), on the embedded local cloud.
 *
 * Peer, measured in the same run: a single HAProxy node (instances: 1, strategy
 * resurrect: the health monitor rebuilds it), under the same faults. The ratio says
 * what the pair buys. keepalived (VRRP, ~3.6 s with 1 s adverts) and pacemaker
 * (>= 6.6 s plus fencing) are the reference figures, not measured here.
 *
 *   npm run bench:lb-failover [-- --runs 5]     targets: crash <= 2 s, freeze <= TTL + 1 s = 6 s
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { repoPath } from "../src/cli/home.js";
import { waitFor } from "../src/lib/sleep.js";
import { HttpChecker } from "../src/testing/http-checker.js";
import { injectLbFault, LB_FAULTS, waitPairWhole, type LbFault } from "../src/testing/lb-pair.js";
import { ZonalHarness } from "../src/testing/zonal-harness.js";

const runsArg = process.argv.indexOf("--runs");
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Faults the active node of `deployment` RUNS times per fault; returns the gaps. */
async function measure(
  z: ZonalHarness,
  deployment: string,
  name: string,
): Promise<Record<LbFault, number[]>> {
  const out = Object.fromEntries(LB_FAULTS.map((f) => [f, [] as number[]])) as Record<LbFault, number[]>;
  const first = await waitPairWhole(z, { backends: 6, deployment });
  const client = new HttpChecker(`http://${first.vip}:8000/`);
  client.start();
  try {
    for (const fault of LB_FAULTS) {
      for (let i = 0; i < RUNS; i++) {
        const p = await waitPairWhole(z, { backends: 6, deployment });
        await waitFor(
          () => (Date.now() - (client.samples.findLast((s) => s.ok)?.at ?? 0) < 200 ? true : undefined),
          {
            timeoutMs: 30_000,
            what: "answers before the fault",
          },
        );
        const t0 = Date.now();
        const undo = await injectLbFault(z, fault, p);
        // Answers to requests sent before the fault took effect do not count as recovery.
        const injected = Date.now();
        await waitFor(
          () => {
            const ok = client.since(injected).filter((s) => s.ok && s.lb);
            return ok.length > 0 && Date.now() - ok[0]!.at > 1000 ? true : undefined;
          },
          { timeoutMs: 120_000, intervalMs: 100, what: `${name}: answers again after ${fault}` },
        );
        out[fault].push(client.longestGap(t0));
        const runs = client.runs(t0);
        process.stderr.write(
          `${name} ${fault} run ${i + 1}: ${out[fault].at(-1)} ms (${runs.join(" -> ")})\n`,
        );
        if (runs.length > 2) throw new Error(`${name}: two nodes answered at once: ${runs.join(" -> ")}`);
        await undo();
      }
    }
  } finally {
    await client.stop();
  }
  return out;
}

async function main(): Promise<void> {
  const z = new ZonalHarness();
  const rows: Array<{ system: string; gaps: Record<LbFault, number[]> }> = [];
  try {
    await z.up();
    for (const m of ["web.yml", "lb.yml"]) {
      const r = z.zonal("deploy", repoPath("examples", m));
      if (r.code !== 0) throw new Error(r.err + r.out);
    }
    rows.push({ system: "zonal LB pair (lease TTL 5 s)", gaps: await measure(z, "lb", "pair") });
    const r = z.zonal("delete-deployment", "lb");
    if (r.code !== 0) throw new Error(r.err + r.out);
    const single = parse(readFileSync(repoPath("examples", "lb.yml"), "utf8")) as {
      name: string;
      instance_groups: Array<{ instances: number; zones: string[] }>;
    };
    single.name = "lb1";
    single.instance_groups[0]!.instances = 1;
    single.instance_groups[0]!.zones = ["z1"];
    const path = join(z.dir, "lb1.yml");
    writeFileSync(path, stringify(single));
    const d = z.zonal("deploy", path);
    if (d.code !== 0) throw new Error(d.err + d.out);
    rows.push({ system: "one HAProxy node, resurrected", gaps: await measure(z, "lb1", "single") });
  } finally {
    await z.teardown();
  }
  const pair = rows[0]!;
  console.log(`\nclient-visible gap when the active load balancer fails (median of ${RUNS} runs, ms)`);
  console.log(
    `${"system".padEnd(32)} ${LB_FAULTS.map((f) => f.padStart(15)).join("")}   pair / this (${LB_FAULTS.join(", ")})`,
  );
  for (const r of rows)
    console.log(
      `${r.system.padEnd(32)} ${LB_FAULTS.map((f) => String(median(r.gaps[f])).padStart(15)).join("")}   ${LB_FAULTS.map((f) => (median(pair.gaps[f]) / median(r.gaps[f])).toFixed(2)).join(", ")}`,
    );
  console.log(
    "targets for the pair: crash (silent) <= 3000 ms, freeze <= 3000 ms, kill-processes (resets) <= 1500 ms",
  );
  console.log(
    "reference (not measured here): keepalived VRRP ~3600 ms with 1 s adverts; pacemaker >= 6600 ms plus fencing",
  );
}

await main();
