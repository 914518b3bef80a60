/**
 * bench/agent-memory: what each VM pays for its zonal agent — the agent process's
 * resident memory (VmRSS, its jobs not counted) at steady state, on the agents of a
 * PostgreSQL cluster's three members (the cluster manager and the pg driver loaded)
 * and of six `process` VMs (examples/web.yml), after a minute of heartbeats, leases
 * and health checks.
 *
 * Peer, measured in the same run: Patroni 3.0 (Debian's), the per-VM agent of a
 * PostgreSQL cluster, three nodes on etcd with PostgreSQL 15 — its Python process's
 * VmRSS at steady state. Target: an agent at most 50 MiB.
 *
 *   npm run bench:agent-memory [-- --settle 60] [--detail]
 *
 * `--detail` also prints, for one agent of each kind, its anonymous and file-backed
 * resident memory and its largest mappings (/proc/PID/smaps): where the bytes are.
 */
import { readdirSync, readFileSync } from "node:fs";
import { repoPath } from "../src/cli/home.js";
import { sleep } from "../src/lib/sleep.js";
import { waitWhole } from "../src/testing/cluster-faults.js";
import { TestEtcd } from "../src/testing/etcd.js";
import { ensurePatroni, PATRONI_TUNED, PatroniCluster } from "../src/testing/patroni.js";
import { ZonalHarness } from "../src/testing/zonal-harness.js";

const settleArg = process.argv.indexOf("--settle");
const SETTLE_S = settleArg > 0 ? Number(process.argv[settleArg + 1]) : 60;
const TARGET_MIB = 50;
const DETAIL = process.argv.includes("--detail");

/**
 * A process's resident memory in MiB: all of it (VmRSS), and its anonymous part
 * (RssAnon: heap and stacks, which the VM cannot page back in from a file), or
 * undefined when it is gone.
 */
function rssMib(pid: number): { rss: number; anon: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const rss = statusMib(status, "VmRSS");
    const anon = statusMib(status, "RssAnon");
    return rss !== undefined && anon !== undefined ? { rss, anon } : undefined;
  } catch {
    return undefined;
  }
}

/** One `KEY: N kB` line of /proc/PID/status, in MiB. */
function statusMib(status: string, key: string): number | undefined {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status);
  return m ? Number(m[1]) / 1024 : undefined;
}

type Mem = { rss: number; anon: number };

/** RssAnon, RssFile and the largest mappings of `pid`, for --detail. */
function detail(label: string, pid: number): string {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string) => statusMib(status, k) ?? 0;
  const maps = new Map<string, number>();
  let name = "";
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) name = head[1] || "[anon]";
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) maps.set(name, (maps.get(name) ?? 0) + Number(rss[1]) / 1024);
  }
  const top = [...maps].sort((a, b) => b[1] - a[1]).slice(0, 6);
  return `${label} (pid ${pid}): RssAnon ${kb("RssAnon").toFixed(1)} MiB, RssFile ${kb("RssFile").toFixed(1)} MiB; largest: ${top.map(([n, v]) => `${n} ${v.toFixed(1)}`).join(", ")}\n`;
}

const stats = (ms: Mem[]) => ({
  avg: ms.reduce((a, m) => a + m.rss, 0) / ms.length,
  max: Math.max(...ms.map((m) => m.rss)),
  anon: ms.reduce((a, m) => a + m.anon, 0) / ms.length,
  n: ms.length,
});
const fmt = (s: { avg: number; max: number; n: number }) =>
  `${s.avg.toFixed(1)} / ${s.max.toFixed(1)} MiB (${s.n})`;

async function zonalAgents(): Promise<{ postgres: Mem[]; process: Mem[] }> {
  const z = new ZonalHarness();
  try {
    await z.up();
    for (const m of ["postgres-cluster.yml", "web.yml"]) {
      const r = await z.zonalAsync("deploy", repoPath("examples", m));
      if (r.code !== 0) throw new Error(`deploy ${m} failed: ${r.err}${r.out}`);
    }
    await waitWhole(z);
    process.stderr.write(`zonal: 9 agents up; settling ${SETTLE_S} s\n`);
    await sleep(SETTLE_S * 1000);
    const v = z.json<{ agents: Array<{ deployment: string; vm: string; pid?: number }> }>("version");
    if (DETAIL)
      for (const d of ["pg", "web"]) {
        const pid = v.agents.find((a) => a.deployment === d && a.pid)?.pid;
        if (pid) process.stderr.write(detail(`agent of ${d}`, pid));
      }
    const of = (d: string) =>
      v.agents
        .filter((a) => a.deployment === d && a.pid)
        .map((a) => rssMib(a.pid!))
        .filter((x): x is Mem => x !== undefined);
    return { postgres: of("pg"), process: of("web") };
  } finally {
    await z.teardown();
  }
}

/** The Patroni processes of the cluster in `dir` (their command line names its config files there). */
function patroniPids(dir: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, "utf8").split("\0");
      if (
        cmd.some((a) => a.endsWith("patroni")) &&
        cmd.some((a) => a.startsWith(dir) && a.endsWith("patroni.yml"))
      )
        out.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return out;
}

async function patroniAgents(): Promise<Mem[]> {
  const etcd = await new TestEtcd(3).start(); // as bench/failover runs Patroni
  const cluster = new PatroniCluster(etcd, PATRONI_TUNED, true);
  try {
    await cluster.start();
    await cluster.waitWhole(180_000).catch((err: unknown) => {
      process.stderr.write(`Patroni did not start:\n${cluster.logTails(30)}\n`);
      throw err;
    });
    process.stderr.write(`patroni: 3 nodes up; settling ${SETTLE_S} s\n`);
    await sleep(SETTLE_S * 1000);
    return patroniPids(cluster.dir)
      .map(rssMib)
      .filter((x): x is Mem => x !== undefined);
  } finally {
    await cluster.stop();
    await etcd.stop();
  }
}

const zonal = await zonalAgents();
process.stderr.write(
  `zonal agents: postgres members ${zonal.postgres.map((x) => x.rss.toFixed(1)).join(", ")} MiB; process VMs ${zonal.process.map((x) => x.rss.toFixed(1)).join(", ")} MiB\n`,
);
ensurePatroni();
const patroni = await patroniAgents();
if (patroni.length === 0) throw new Error("found no Patroni process to measure");
const pg = stats(zonal.postgres);
const proc = stats(zonal.process);
const peer = stats(patroni);
console.log(
  [
    `bench/agent-memory: agent VmRSS at steady state (after ${SETTLE_S} s), average / max (processes)`,
    `| agent | VmRSS avg / max | ratio to Patroni (avg) | target ${TARGET_MIB} MiB | of it anonymous (RssAnon avg) | ratio to Patroni |`,
    "| --- | --- | --- | --- | --- | --- |",
    `| zonal agent, PostgreSQL cluster member | ${fmt(pg)} | ${(pg.avg / peer.avg).toFixed(2)} | ${pg.max <= TARGET_MIB ? "met" : "not met"} | ${pg.anon.toFixed(1)} MiB | ${(pg.anon / peer.anon).toFixed(2)} |`,
    `| zonal agent, process job (web) | ${fmt(proc)} | ${(proc.avg / peer.avg).toFixed(2)} | ${proc.max <= TARGET_MIB ? "met" : "not met"} | ${proc.anon.toFixed(1)} MiB | ${(proc.anon / peer.anon).toFixed(2)} |`,
    `| Patroni 3.0 (peer) | ${fmt(peer)} | 1.00 | | ${peer.anon.toFixed(1)} MiB | 1.00 |`,
  ].join("\n"),
);
