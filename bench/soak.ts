/**
 * The soak: random faults, one at a time, against three services running side by
 * side under load — a three-member PostgreSQL cluster (a writer through its VIP and
 * one straight to each member), the HAProxy pair in front of six web servers (a
 * client through its VIP, every node asked for its role every 100 ms), and a
 * counter group with warm standby VMs (an incrementing client per instance, through
 * its VIP). Faults: silent crash, process kill, freeze, host and zone failure,
 * partitions and isolation, slow links, control-plane restart and isolation,
 * switchover. After each fault everything is healed and each service is whole again
 * before the next.
 *
 * The tally, per fault: runs, longest gap of the service it hit, acknowledged writes
 * lost, double writers (two members accepting writes; two LB nodes active; two VMs
 * writing one disk) and false failovers (the leader or active moved on a fault that
 * should not move it). Exit code 1 if anything was lost or written twice.
 *
 *   npm run soak [-- --faults 40] [-- --seed 7]
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { repoPath } from "../src/cli/home.js";
import { sleep, waitFor } from "../src/lib/sleep.js";
import type { PgCredentials } from "../src/jobs/postgres/service.js";
import {
  clusterOf,
  deployPgCluster,
  injectFault,
  primaryTarget,
  roleTarget,
  timeline,
  waitWhole,
  type ClusterFault,
} from "../src/testing/cluster-faults.js";
import { CounterWriter, readWriteLog } from "../src/testing/counter.js";
import { HttpChecker } from "../src/testing/http-checker.js";
import {
  injectLbFault,
  memberTokenOf,
  pairOf,
  RoleSampler,
  waitPairWhole,
  type LbFault,
} from "../src/testing/lb-pair.js";
import type { PgChecker } from "../src/testing/pg-checker.js";
import { ZonalHarness } from "../src/testing/zonal-harness.js";

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const FAULTS = arg("--faults", 12);
let seed = arg("--seed", Date.now() % 100_000);
const firstSeed = seed;
const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed / 2 ** 31);

type Service = "postgres" | "lb" | "standby";
type Undo = () => Promise<void>;

interface SoakFault {
  name: string;
  service: Service;
  /** Whether the fault should move the leader (or the LB's active, or the instance's VM). */
  moves: "yes" | "no" | "maybe";
  inject(z: ZonalHarness): Promise<Undo>;
}

interface Run {
  fault: string;
  service: Service;
  t0: number;
  t1: number;
  gap: number;
  moved: boolean;
  falseFailover: boolean;
  double: boolean;
  lost: number;
}

const heal: Undo = async () => {};

/** The VM of the PostgreSQL cluster's leader. */
async function pgLeaderVm(z: ZonalHarness): Promise<{ id: string; zone: string }> {
  const c = await clusterOf(z);
  const vm = Object.values(z.state().vms).find((v) => v.id === c.leader!.vmId)!;
  return { id: vm.id, zone: vm.zone };
}

const pgFault = (name: ClusterFault, moves: SoakFault["moves"]): SoakFault => ({
  name: `postgres ${name}`,
  service: "postgres",
  moves,
  inject: async (z) => injectFault(z, name, await clusterOf(z)),
});

const network = (
  name: string,
  service: Service,
  moves: SoakFault["moves"],
  fault: (z: ZonalHarness) => Promise<Parameters<ZonalHarness["client"]["addNetworkFault"]>[0][]>,
  holdMs: number,
): SoakFault => ({
  name,
  service,
  moves,
  inject: async (z) => {
    const ids: string[] = [];
    for (const f of await fault(z)) ids.push((await z.client.addNetworkFault(f)).id);
    await sleep(holdMs);
    return async () => void (await z.client.healNetwork());
  },
});

const lbFault = (name: LbFault): SoakFault => ({
  name: `lb ${name}`,
  service: "lb",
  moves: "yes",
  inject: async (z) => injectLbFault(z, name, await pairOf(z)),
});

/** The VM of counter/0 (the standby group's instance the faults hit). */
async function counterVm(z: ZonalHarness): Promise<{ id: string; zone: string; host: string }> {
  const i = (await z.director.instances("counter")).find((x) => x.index === 0)!;
  return { id: i.vmId!, zone: i.zone, host: i.host! };
}

const standbyFault = (name: "crash" | "freeze" | "isolate"): SoakFault => ({
  name: `standby ${name}`,
  service: "standby",
  moves: "yes",
  inject: async (z) => {
    const vm = await counterVm(z);
    if (name === "crash") await z.client.crashVm(vm.id);
    if (name === "freeze") await z.client.freezeVm(vm.id);
    if (name === "isolate") {
      // Long enough for the health monitor to fence it and the standby to take over.
      await z.client.addNetworkFault({ kind: "isolate", target: vm.id });
      await sleep(6000);
      return async () => void (await z.client.healNetwork());
    }
    return heal;
  },
});

const FAULT_MIX: SoakFault[] = [
  pgFault("crash", "yes"),
  pgFault("kill-processes", "yes"),
  pgFault("freeze", "yes"),
  pgFault("fail-host", "yes"),
  pgFault("fail-zone", "yes"),
  pgFault("restart-control-plane", "no"),
  pgFault("switchover", "yes"),
  network(
    "postgres: primary cut off from the control plane",
    "postgres",
    "maybe",
    async (z) => [{ kind: "partition", a: (await pgLeaderVm(z)).id, b: "control-plane", oneWay: false }],
    8000,
  ),
  network(
    "postgres: primary cut off from its replicas",
    "postgres",
    "yes",
    async (z) => {
      const c = await clusterOf(z);
      const vms = Object.values(z.state().vms);
      const leader = vms.find((v) => v.id === c.leader!.vmId)!;
      return c.members
        .filter((m) => m.member !== c.leader!.member)
        .map((m) => ({
          kind: "partition" as const,
          a: leader.id,
          b: vms.find((v) => v.address === m.address)!.id,
          oneWay: false,
        }));
    },
    12_000,
  ),
  network(
    "postgres: primary's zone isolated",
    "postgres",
    "yes",
    async (z) => [{ kind: "isolate", target: (await pgLeaderVm(z)).zone }],
    8000,
  ),
  network(
    "postgres: slow primary (200 ms, 5% lost)",
    "postgres",
    "no",
    async (z) => [{ kind: "slow", target: (await pgLeaderVm(z)).id, delayMs: 200, lossPct: 5 }],
    8000,
  ),
  network(
    "control plane isolated from every VM",
    "postgres",
    "no",
    async () => [{ kind: "isolate", target: "control-plane" }],
    8000,
  ),
  lbFault("crash"),
  lbFault("kill-processes"),
  lbFault("freeze"),
  network(
    "lb: active node's zone isolated",
    "lb",
    "yes",
    async (z) => {
      const p = await pairOf(z);
      return [
        { kind: "isolate", target: Object.values(z.state().vms).find((v) => v.id === p.holder!.vmId)!.zone },
      ];
    },
    8000,
  ),
  standbyFault("crash"),
  standbyFault("freeze"),
  standbyFault("isolate"),
];

async function deployAll(z: ZonalHarness): Promise<{ checker: PgChecker; role: PgCredentials }> {
  const { checker, role } = await deployPgCluster(z);
  for (const m of (await clusterOf(z)).members)
    checker.addDirect(m.member, async () => {
      const now = (await clusterOf(z)).members.find((x) => x.member === m.member)!;
      return roleTarget(role, now.address!);
    });
  for (const file of ["web.yml", "lb.yml"]) {
    const r = z.zonal("deploy", repoPath("examples", file));
    if (r.code !== 0) throw new Error(`deploy ${file}: ${r.err}${r.out}`);
  }
  const counter = parse(readFileSync(repoPath("examples", "counter.yml"), "utf8")) as {
    instance_groups: Array<Record<string, unknown>>;
  };
  Object.assign(counter.instance_groups[0]!, {
    instances: 3,
    zones: ["z1", "z2", "z3"],
    strategy: "standby",
  });
  const path = join(z.dir, "counter.yml");
  writeFileSync(path, stringify(counter));
  const r = z.zonal("deploy", path);
  if (r.code !== 0) throw new Error(`deploy counter: ${r.err}${r.out}`);
  return { checker, role };
}

/** Every service whole: the cluster, the pair, the counter instances serving from their VIPs. */
async function waitAllWhole(z: ZonalHarness): Promise<void> {
  await waitWhole(z, undefined, 180_000);
  await waitPairWhole(z, { backends: 6, timeoutMs: 180_000 });
  await waitFor(
    async () => {
      const insts = await z.director.instances("counter");
      return insts.every((i) => i.state === "running") ? true : undefined;
    },
    { timeoutMs: 180_000, intervalMs: 500, what: "the counter instances to run" },
  );
}

async function main(): Promise<void> {
  const z = new ZonalHarness();
  const runs: Run[] = [];
  let checker: PgChecker | undefined;
  let role: PgCredentials | undefined;
  let web: HttpChecker | undefined;
  let sampler: RoleSampler | undefined;
  let counter: CounterWriter | undefined;
  try {
    await z.up();
    ({ checker, role } = await deployAll(z));
    const pair = await waitPairWhole(z, { backends: 6 });
    web = new HttpChecker(`http://${pair.vip}:8000/`);
    web.start();
    sampler = new RoleSampler(
      pair.nodes.map((n) => ({ member: n.member, address: n.address! })),
      memberTokenOf(z, pair.nodes[0]!.address!),
    );
    const counterUrl = async () =>
      `http://${(await z.director.instances("counter")).find((i) => i.index === 0)!.vip}:8080`;
    counter = new CounterWriter(counterUrl).start();
    await waitAllWhole(z);
    console.log(`soak: ${FAULTS} faults, seed ${firstSeed}`);

    for (let i = 0; i < FAULTS; i++) {
      const f = FAULT_MIX[Math.floor(random() * FAULT_MIX.length)]!;
      const before = {
        leader: (await clusterOf(z)).leader!.vmId,
        active: (await pairOf(z)).holder!.vmId,
        counterVm: (await counterVm(z)).id,
      };
      const t0 = Date.now();
      const undo = await f.inject(z);
      await sleep(3000); // what the fault does, it does now
      await undo();
      await waitAllWhole(z);
      await sleep(1000);
      const t1 = Date.now();
      const after = {
        leader: (await clusterOf(z)).leader!.vmId,
        active: (await pairOf(z)).holder!.vmId,
        counterVm: (await counterVm(z)).id,
      };
      const moved =
        f.service === "postgres"
          ? after.leader !== before.leader
          : f.service === "lb"
            ? after.active !== before.active
            : after.counterVm !== before.counterVm;
      const gap =
        f.service === "postgres"
          ? checker.longestGap(t0, t1)
          : f.service === "lb"
            ? web.longestGap(t0, t1)
            : counter.longestGap(t0, t1);
      const run: Run = {
        fault: f.name,
        service: f.service,
        t0,
        t1,
        gap,
        moved,
        falseFailover: f.moves === "no" && moved,
        double: sampler.doubles().some((d) => d.at >= t0 && d.at <= t1),
        lost: 0,
      };
      runs.push(run);
      console.log(
        `fault ${i + 1}/${FAULTS}: ${f.name.padEnd(48)} gap ${String(gap).padStart(6)} ms${moved ? ", moved" : ""}${run.falseFailover ? " (FALSE FAILOVER)" : ""}${run.double ? " (TWO ACTIVE LB NODES)" : ""}`,
      );
      // What happened, when a fault that should move nothing moved something or stalled writes.
      if (f.moves === "no" && (moved || gap > 2000)) {
        const key =
          /fenced|taking the|promoted|demoted|stepping|rejoin|watchdog|released|meltdown|recovering|failsafe|promise/;
        const deployment = f.service === "lb" ? "lb" : f.service === "standby" ? "counter" : "pg";
        const lines = (await timeline(z, t0, deployment))
          .split("\n")
          .filter((l) => key.test(l) && !/has not answered|not fencing/.test(l));
        console.log(lines.slice(0, 40).join("\n"));
      }
    }
    await checker.stop();
    await web.stop();
    await sampler.stop();
    await counter.stop();

    // PostgreSQL: read back from the primary; attribute what is missing or late to the fault window it fell in.
    const c = await clusterOf(z);
    const v = await checker.verify(primaryTarget(c, role));
    const windowOf = (at: number) => runs.find((r, k) => at >= r.t0 && at < (runs[k + 1]?.t0 ?? Infinity));
    for (const m of v.missing) {
      const r = windowOf(m.at);
      if (r) r.lost += 1;
    }
    for (const l of v.lateAcks) {
      const r = windowOf(l.ack.at);
      if (r) r.double = true;
    }
    // The standby counter: every acknowledged value on the disk, one VM writing at a time.
    const inst = (await z.director.instances("counter")).find((x) => x.index === 0)!;
    const log = readWriteLog(join(z.dataDir, "disks", inst.diskId!, "writes.log"));
    const counterLost = counter.acked.filter((n) => !log.written.has(n));
    for (const n of counterLost) {
      const r = windowOf(counter.ackedAt[counter.acked.indexOf(n)]!);
      if (r) r.lost += 1;
    }
    printTally(runs);
    console.log(
      `\npostgres: ${checker.acked.length} acknowledged writes (${checker.since(0).length} through the VIP), ${v.rows} rows read back from ${c.leader!.member}; lost ${v.missing.length}; two writers: ${v.twoWriters ? "YES" : "never"}`,
    );
    console.log(
      `lb: ${web.samples.length} requests, ${sampler.rounds.length} rounds asking both nodes; two active at once: ${sampler.doubles().length === 0 ? "never" : `${sampler.doubles().length} rounds`}`,
    );
    console.log(
      `standby counter: ${counter.acked.length} acknowledged increments, lost ${counterLost.length}; writers of its disk: ${log.writers.length}, interleaved: ${log.interleaved ? "YES" : "never"}`,
    );
    const bad = runs.some((r) => r.lost > 0 || r.double) || log.interleaved || v.twoWriters;
    if (bad) process.exitCode = 1;
  } finally {
    await checker?.stop();
    await web?.stop();
    await sampler?.stop();
    await counter?.stop();
    await z.teardown();
  }
}

function printTally(runs: Run[]): void {
  console.log(
    `\n${"fault".padEnd(48)} ${"runs".padStart(5)} ${"longest gap ms".padStart(15)} ${"lost".padStart(5)} ${"double writers".padStart(15)} ${"false failovers".padStart(16)}`,
  );
  const names = [...new Set(runs.map((r) => r.fault))].sort();
  for (const name of names) {
    const rs = runs.filter((r) => r.fault === name);
    console.log(
      `${name.padEnd(48)} ${String(rs.length).padStart(5)} ${String(Math.max(...rs.map((r) => r.gap))).padStart(15)} ${String(rs.reduce((n, r) => n + r.lost, 0)).padStart(5)} ${String(rs.filter((r) => r.double).length).padStart(15)} ${String(rs.filter((r) => r.falseFailover).length).padStart(16)}`,
    );
  }
  const all = runs;
  console.log(
    `${"all".padEnd(48)} ${String(all.length).padStart(5)} ${"".padStart(15)} ${String(all.reduce((n, r) => n + r.lost, 0)).padStart(5)} ${String(all.filter((r) => r.double).length).padStart(15)} ${String(all.filter((r) => r.falseFailover).length).padStart(16)}`,
  );
}

await main();
