/**
 * bench/placement: places N instances (groups of 50, each over 3 zones) onto 1,000
 * hosts in 3 zones, a third of them with ssd, for N = 1k, 10k, 50k. Each size runs
 * in a fresh child process so its peak RSS is its own.
 *
 * Peer, measured in the same run: a naive first-fit placement (first host of the
 * zone with room; no anti-affinity, no scoring, no reasons). The ratio says what
 * zonal's filters, scores and spreading cost over the simplest thing that works.
 *
 *   npm run bench:placement
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { place } from "../src/placement/place.js";
import type { HostRequest, PlacementHost } from "../src/placement/types.js";
import { balanceZones } from "../src/placement/zones.js";

const ZONES = ["z1", "z2", "z3"];
const HOSTS = 1000;
const GROUP = 50;

function hosts(): PlacementHost[] {
  return Array.from({ length: HOSTS }, (_, i) => ({
    id: `${ZONES[i % 3]}/h${i}`,
    zone: ZONES[i % 3]!,
    up: true,
    attributes: (Math.floor(i / 3) % 3 === 0 ? { ssd: true } : {}) as PlacementHost["attributes"],
    capacity: { cpu: 256, ramMb: 1_048_576 },
    used: { cpu: 0, ramMb: 0 },
  }));
}

function requests(n: number): HostRequest[] {
  const out: HostRequest[] = [];
  for (let g = 0; g * GROUP < n; g++) {
    const size = Math.min(GROUP, n - g * GROUP);
    const ssd = g % 5 === 0;
    for (const c of balanceZones(`g${g}`, ZONES, size, []).create) {
      out.push({
        key: `g${g}/${c.index}`,
        group: `g${g}`,
        zone: c.zone,
        resources: { cpu: 1, ramMb: 1024, ...(ssd ? { hostAttributes: { ssd: true } } : {}) },
      });
    }
  }
  return out;
}

/** The peer: first fit, nothing else. */
function naive(hs: PlacementHost[], reqs: HostRequest[]): number {
  const used = new Map(hs.map((h) => [h.id, { cpu: 0, ramMb: 0 }]));
  let placed = 0;
  for (const r of reqs) {
    for (const h of hs) {
      if (h.zone !== r.zone) continue;
      const u = used.get(h.id)!;
      if (r.resources.hostAttributes?.ssd && h.attributes.ssd !== true) continue;
      if (h.capacity.ramMb - u.ramMb < r.resources.ramMb || h.capacity.cpu - u.cpu < r.resources.cpu)
        continue;
      u.cpu += r.resources.cpu;
      u.ramMb += r.resources.ramMb;
      placed++;
      break;
    }
  }
  return placed;
}

function runOne(n: number, which: "zonal" | "naive"): void {
  const hs = hosts();
  const reqs = requests(n);
  const t0 = process.hrtime.bigint();
  const placed = which === "zonal" ? place({ hosts: hs, requests: reqs }).hosts.size : naive(hs, reqs);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (placed !== n) throw new Error(`${which}: placed ${placed} of ${n}`);
  process.stdout.write(JSON.stringify({ ms, maxRssMb: process.resourceUsage().maxRSS / 1024 }));
}

function main(): void {
  const self = fileURLToPath(import.meta.url);
  const measure = (n: number, which: string) => {
    const runs = [0, 1, 2].map(
      () =>
        JSON.parse(execFileSync(process.execPath, [self, String(n), which], { encoding: "utf8" })) as {
          ms: number;
          maxRssMb: number;
        },
    );
    runs.sort((a, b) => a.ms - b.ms);
    return runs[1]!; // median of 3
  };
  console.log(
    `placement of N instances onto ${HOSTS} hosts in 3 zones (median of 3 runs, fresh process each)`,
  );
  console.log("N        zonal ms  per-inst us  peak RSS MiB   naive ms  ratio zonal/naive");
  let base: number | undefined;
  for (const n of [1_000, 10_000, 50_000]) {
    const z = measure(n, "zonal");
    const p = measure(n, "naive");
    base ??= z.ms / n;
    console.log(
      `${String(n).padEnd(8)} ${z.ms.toFixed(1).padStart(8)}  ${((z.ms / n) * 1000).toFixed(1).padStart(11)}  ` +
        `${z.maxRssMb.toFixed(0).padStart(12)}  ${p.ms.toFixed(1).padStart(9)}  ${(z.ms / p.ms).toFixed(2).padStart(17)}`,
    );
  }
  console.log("per-instance time staying flat from 1k to 50k means placement grows linearly with N");
}

if (process.argv[2]) runOne(Number(process.argv[2]), process.argv[3] as "zonal" | "naive");
else main();
