/**
 * bench/upgrade: the write pause a client sees through a cluster's VIP while the
 * cluster is updated, per operation (a config change that restarts the server, a
 * vm_type change that rebuilds every VM, a new zonal agent on every VM), for a
 * PostgreSQL cluster and a MariaDB Galera cluster, median and max of N runs (default 3).
 *
 * Peer, measured in the same run: the same update with `update.cluster_order: false`
 * — canaries and batches in index order, no handover, what a deployer that does not
 * know the cluster does (BOSH's default for a job without its own drain logic): the
 * leader is stopped wherever it falls in the order, and its lease expires or is
 * released before another member takes over. The ratio says what the service's
 * order and the planned switchover buy. For a new agent, zonal hands each agent over
 * to its successor in place (`zonal upgrade-agents`: the jobs run on); the peer is
 * how such a deployer brings a new agent, as BOSH does with a new stemcell: every VM
 * rebuilt, in index order.
 *
 *   npm run bench:upgrade [-- --runs 3] [--only postgres|mariadb] [--trace]
 *
 * `--trace` prints every pause of every run (when, how long) and the cluster's
 * timeline (its members' decisions and the control plane's events) to stderr.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { repoPath } from "../src/cli/home.js";
import type { BindingView, ClusterView } from "../src/director/cluster-service.js";
import type { MariadbCredentials } from "../src/jobs/mariadb/service.js";
import type { PgCredentials } from "../src/jobs/postgres/service.js";
import { roleTarget, timeline, waitGaleraWhole, waitWhole } from "../src/testing/cluster-faults.js";
import { MariadbChecker } from "../src/testing/mariadb-checker.js";
import { PgChecker } from "../src/testing/pg-checker.js";
import type { WriteChecker } from "../src/testing/write-checker.js";
import { StagedZonal } from "../src/testing/staged-zonal.js";
import { ZonalHarness, type CliResult } from "../src/testing/zonal-harness.js";

const runsArg = process.argv.indexOf("--runs");
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 3;
const onlyArg = process.argv.indexOf("--only");
const ONLY = onlyArg > 0 ? process.argv[onlyArg + 1] : undefined;
const TRACE = process.argv.includes("--trace");
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

type Manifest = {
  instance_groups: Array<{ vm_type: string; jobs: Array<{ properties: Record<string, unknown> }> }>;
  update: Record<string, unknown>;
};

interface Service {
  name: string;
  deployment: string;
  example: string;
  whole(z: ZonalHarness): Promise<ClusterView>;
  checker(creds: unknown): WriteChecker<unknown>;
}

const SERVICES: Service[] = [
  {
    name: "postgres",
    deployment: "pg",
    example: "postgres-cluster.yml",
    whole: (z) => waitWhole(z),
    checker: (c) => new PgChecker(roleTarget(c as PgCredentials), "bench") as WriteChecker<unknown>,
  },
  {
    name: "mariadb",
    deployment: "maria-ha",
    example: "mariadb-cluster.yml",
    whole: (z) => waitGaleraWhole(z, "maria-ha"),
    checker: (c) => new MariadbChecker(roleTarget(c as MariadbCredentials)) as WriteChecker<unknown>,
  },
];

type Mode = "cluster" | "index";

/** What an operation has to work with: the harness, its staged zonal, the manifest and where a deploy reads it. */
interface Bench {
  z: ZonalHarness;
  staged: StagedZonal;
  m: Manifest;
  path: string;
  deployment: string;
}

/** Every VM rebuilt: the other of two vm_types (whatever the last operation left). */
const toggleVmType = (m: Manifest) => {
  const g = m.instance_groups[0]!;
  g.vm_type = g.vm_type === "small" ? "medium" : "small";
};

const deploy = (b: Bench): Promise<CliResult> => {
  writeFileSync(b.path, stringify(b.m));
  return b.z.zonalAsync("deploy", b.path);
};

/**
 * The operations (run `i` of them), each done in `mode`. `prepare` comes before the
 * clock starts (a new release installed, the control plane restarted on it).
 */
const OPERATIONS: Array<{
  name: string;
  prepare?: (b: Bench, mode: Mode, i: number) => Promise<void>;
  run: (b: Bench, mode: Mode, i: number) => Promise<CliResult>;
}> = [
  {
    name: "config change (restart)",
    run: (b, mode, i) => {
      b.m.update.cluster_order = mode === "cluster";
      b.m.instance_groups[0]!.jobs[0]!.properties.parameters = { max_connections: 140 + i };
      return deploy(b);
    },
  },
  {
    name: "vm_type change (rebuild)",
    run: (b, mode) => {
      b.m.update.cluster_order = mode === "cluster";
      toggleVmType(b.m);
      return deploy(b);
    },
  },
  {
    name: "new zonal agent",
    prepare: async (b, mode) => {
      if (mode !== "cluster") return;
      b.staged.setVersion(`${b.staged.version.split("-next")[0]}-next.${Date.now()}`);
      await b.z.stopControlPlane("SIGTERM");
      await b.z.up();
    },
    run: (b, mode) => {
      if (mode === "cluster") return b.z.zonalAsync("upgrade-agents", "-d", b.deployment);
      b.m.update.cluster_order = false;
      toggleVmType(b.m);
      return deploy(b);
    },
  },
];

interface Figure {
  /** The longest pause of each run. */
  pauses: number[];
  /** Each run's writes paused in all: the sum of its gaps over PAUSE_MS between acknowledgements. */
  totals: number[];
  /** How many such gaps each run had (each a leader change, or a stall). */
  counts: number[];
  failed: number[];
  lost: number;
}

/** A gap between two acknowledged writes longer than this is a pause (writes come every few ms). */
const PAUSE_MS = 250;

async function benchService(svc: Service): Promise<Record<string, Record<Mode, Figure>>> {
  const staged = new StagedZonal();
  const z = new ZonalHarness({ bin: staged.bin });
  const out: Record<string, Record<Mode, Figure>> = {};
  let checker: WriteChecker<unknown> | undefined;
  try {
    await z.up();
    const m = parse(readFileSync(repoPath("examples", svc.example), "utf8")) as Manifest;
    const path = join(z.dir, "m.yml");
    writeFileSync(path, stringify(m));
    const r = await z.zonalAsync("deploy", path);
    if (r.code !== 0) throw new Error(`deploy failed: ${r.err}${r.out}`);
    await svc.whole(z);
    const b = await z.director.http.request<BindingView>(
      "POST",
      `/v1/deployments/${svc.deployment}/bindings`,
      {
        body: {},
      },
    );
    checker = await svc.checker(b.credentials).begin();
    const bench: Bench = { z, staged, m, path, deployment: svc.deployment };
    let n = 0;
    for (const op of OPERATIONS) {
      const empty = (): Figure => ({ pauses: [], totals: [], counts: [], failed: [], lost: 0 });
      out[op.name] = { cluster: empty(), index: empty() };
      for (let i = 0; i < RUNS; i++) {
        for (const mode of ["cluster", "index"] as const) {
          const at = n++;
          await op.prepare?.(bench, mode, at);
          await svc.whole(z);
          const t0 = Date.now();
          const failed0 = checker.failures.length;
          const d = await op.run(bench, mode, at);
          const t1 = Date.now();
          if (d.code !== 0) throw new Error(`${op.name} (${mode}) failed: ${d.err}${d.out}`);
          const f = out[op.name]![mode];
          f.pauses.push(checker.longestGap(t0, t1));
          const g = checker.pauses(t0, t1, PAUSE_MS).map((p) => p.ms);
          f.totals.push(g.reduce((a, b) => a + b, 0));
          f.counts.push(g.length);
          f.failed.push(checker.failures.length - failed0);
          await svc.whole(z);
          f.lost = (await checker.verify()).missing.length;
          if (TRACE) {
            const each = checker.pauses(t0, t1, PAUSE_MS).map((p) => `+${p.at - t0} ms for ${p.ms} ms`);
            process.stderr.write(
              `${svc.name} ${op.name} ${mode} order: pauses ${each.join(", ") || "none"}\n`,
            );
            process.stderr.write(`${await timeline(z, t0, svc.deployment)}\n`);
          }
          process.stderr.write(
            `${svc.name} ${op.name} ${mode} order: longest pause ${f.pauses.at(-1)} ms, ${f.counts.at(-1)} pause(s) ${f.totals.at(-1)} ms in all, ${f.failed.at(-1)} failed writes, update ${t1 - t0} ms\n`,
          );
        }
      }
    }
  } finally {
    await checker?.stop();
    await z.teardown();
    staged.remove();
  }
  return out;
}

const lines: string[] = [];
const row = (...c: Array<string | number>) => lines.push(`| ${c.join(" | ")} |`);
lines.push(`bench/upgrade: client-visible write pause through the cluster's VIP, ${RUNS} run(s) per cell`);
row(
  "service",
  "operation",
  "zonal: longest pause p50 / max",
  "index order: longest pause p50 / max",
  "ratio p50",
  "pauses (count, ms in all) p50 zonal / index",
  "failed writes p50 zonal / index",
  "acknowledged rows lost",
);
row("---", "---", "---", "---", "---", "---", "---", "---");
const unknown = ONLY !== undefined && !SERVICES.some((s) => s.name === ONLY);
if (unknown) {
  process.stderr.write(`--only: expected one of ${SERVICES.map((s) => s.name).join(", ")}, got "${ONLY}"\n`);
  process.exit(2);
}
for (const svc of SERVICES.filter((s) => ONLY === undefined || s.name === ONLY)) {
  const figs = await benchService(svc);
  for (const [op, f] of Object.entries(figs)) {
    const a = median(f.cluster.pauses);
    const b = median(f.index.pauses);
    row(
      svc.name,
      op,
      `${a} / ${Math.max(...f.cluster.pauses)} ms`,
      `${b} / ${Math.max(...f.index.pauses)} ms`,
      `${(a / b).toFixed(2)}`,
      `${median(f.cluster.counts)}, ${median(f.cluster.totals)} ms / ${median(f.index.counts)}, ${median(f.index.totals)} ms`,
      `${median(f.cluster.failed)} / ${median(f.index.failed)}`,
      `${f.cluster.lost + f.index.lost}`,
    );
  }
}
console.log(lines.join("\n"));
