/**
 * bench/failover: write unavailability and lost acknowledged writes when a
 * PostgreSQL primary crashes (SIGKILL to its whole VM / node) or freezes (SIGSTOP),
 * for zonal and, in the same run, for Patroni 3.0 + etcd (Debian's packages) with
 * its default timing (ttl 30 s, loop_wait 10 s) and again tuned to zonal's lease TTL
 * (ttl 5 s, loop_wait 1 s, retry_timeout 2 s). All three use synchronous
 * replication in strict mode and the same checker: one client writing numbered
 * rows, through zonal's VIP or to Patroni's current primary (found through its REST
 * API, like a smart client would).
 *
 *   npm run bench:failover [-- --runs 3]      (installs patroni with apt when missing)
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { errorMessage } from "../src/lib/errors.js";
import { sleep, waitFor } from "../src/lib/sleep.js";
import { clusterOf, deployPgCluster, waitWhole } from "../src/testing/cluster-faults.js";
import { TestEtcd } from "../src/testing/etcd.js";
import { PASSWORD, PATRONI_DEFAULTS, PatroniCluster, type PatroniTiming } from "../src/testing/patroni.js";
import { PgChecker } from "../src/testing/pg-checker.js";
import { ZonalHarness } from "../src/testing/zonal-harness.js";

type Fault = "crash" | "freeze";
interface Result {
  system: string;
  fault: Fault;
  gaps: number[];
  lost: number;
  interleaved: boolean;
  /** Runs in which writes did not resume within 180 s. */
  stuck: number;
}

const runsAt = process.argv.indexOf("--runs");
const RUNS = runsAt > 0 ? Number(process.argv[runsAt + 1]) : 3;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Waits until writes flowed again for a second after the fault; returns the longest gap since it. */
async function unavailability(checker: PgChecker, t0: number): Promise<number> {
  await waitFor(
    () =>
      checker.since(t0).length > 0 &&
      Date.now() - checker.acked.at(-1)!.at < 200 &&
      Date.now() - checker.since(t0)[0]!.at > 1000
        ? true
        : undefined,
    {
      timeoutMs: 180_000,
      intervalMs: 100,
      what: "writes to flow again",
    },
  );
  return checker.longestGap(t0);
}

async function zonal(results: Result[]): Promise<void> {
  const z = new ZonalHarness();
  try {
    await z.up();
    const { checker } = await deployPgCluster(z);
    for (const fault of ["crash", "freeze"] as const) {
      const res: Result = {
        system: "zonal (lease TTL 5 s)",
        fault,
        gaps: [],
        lost: 0,
        interleaved: false,
        stuck: 0,
      };
      for (let i = 0; i < RUNS; i++) {
        await sleep(2000);
        const c = await clusterOf(z);
        const t0 = Date.now();
        if (fault === "crash") await z.client.crashVm(c.leader!.vmId);
        else await z.client.freezeVm(c.leader!.vmId);
        res.gaps.push(await unavailability(checker, t0));
        process.stderr.write(`zonal ${fault} run ${i + 1}: ${res.gaps.at(-1)} ms\n`);
        await waitWhole(z, c.leader!.vmId);
      }
      results.push(res);
    }
    await checker.stop();
    const v = await checker.verify();
    for (const res of results.filter((x) => x.system.startsWith("zonal"))) {
      res.lost = v.missing.length;
      res.interleaved = v.twoWriters;
    }
  } finally {
    await z.teardown();
  }
}

async function patroni(results: Result[], name: string, timing: PatroniTiming): Promise<void> {
  const etcd = await new TestEtcd(3).start();
  const cluster = new PatroniCluster(etcd.endpoints, timing);
  try {
    await cluster.start();
    const primary = async () => {
      const i = await cluster.leader();
      return {
        host: cluster.host(i ?? 0),
        port: 5432,
        user: "postgres",
        password: PASSWORD,
        database: "postgres",
      };
    };
    const checker = new PgChecker(primary, "checks", "inet_server_addr()::text");
    await waitFor(() => checker.setup().then(() => true), {
      timeoutMs: 60_000,
      what: "Patroni's primary to take writes",
    });
    checker.start();
    const mine: Result[] = [];
    for (const fault of ["crash", "freeze"] as const) {
      const res: Result = { system: name, fault, gaps: [], lost: 0, interleaved: false, stuck: 0 };
      for (let i = 0; i < RUNS; i++) {
        await sleep(2000);
        const leader = (await cluster.leader())!;
        const t0 = Date.now();
        cluster.signal(leader, fault === "crash" ? "SIGKILL" : "SIGSTOP");
        try {
          res.gaps.push(await unavailability(checker, t0));
          process.stderr.write(`${name} ${fault} run ${i + 1}: ${res.gaps.at(-1)} ms\n`);
        } catch (err) {
          // Counted as what it is, a cluster that stopped taking writes; the logs say why.
          res.gaps.push(Date.now() - t0);
          res.stuck++;
          process.stderr.write(
            `${name} ${fault} run ${i + 1}: ${errorMessage(err)}\n${cluster.logTails(20)}\n`,
          );
        }
        // Bring the old leader back as a VM restart would (a thawed VM just resumes).
        if (fault === "crash") cluster.startNode(leader);
        else cluster.signal(leader, "SIGCONT");
        await cluster.waitWhole(240_000);
      }
      mine.push(res);
    }
    await checker.stop();
    const v = await checker.verify();
    for (const res of mine) {
      res.lost = v.missing.length;
      res.interleaved = v.twoWriters;
    }
    results.push(...mine);
  } finally {
    await cluster.stop();
    await etcd.stop();
  }
}

async function main(): Promise<void> {
  if (!existsSync("/usr/bin/patroni")) {
    execFileSync("apt-get", ["install", "-y", "-qq", "patroni"], {
      stdio: "inherit",
      env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
    });
  }
  const results: Result[] = [];
  await zonal(results);
  await patroni(results, "Patroni 3.0 tuned (ttl 5 s)", { ttl: 5, loop_wait: 1, retry_timeout: 2 });
  await patroni(results, "Patroni 3.0 defaults (ttl 30 s)", PATRONI_DEFAULTS);
  console.log(
    `\nwrite unavailability when the primary fails (median of ${RUNS} runs each; strict synchronous replication everywhere)`,
  );
  console.log(
    "system                           fault   median ms   max ms   lost acked writes   two writers   stuck runs   zonal / this",
  );
  for (const r of results) {
    const z = results.find((x) => x.system.startsWith("zonal") && x.fault === r.fault)!;
    console.log(
      `${r.system.padEnd(32)} ${r.fault.padEnd(7)} ${String(median(r.gaps)).padStart(9)}  ${String(Math.max(...r.gaps)).padStart(7)}  ${String(r.lost).padStart(18)}   ${(r.interleaved ? "YES" : "never").padEnd(11)}  ${String(r.stuck).padStart(10)}  ${(median(z.gaps) / median(r.gaps)).toFixed(2).padStart(12)}`,
    );
  }
  console.log(
    "targets for zonal: crash <= 3000 ms, freeze <= lease TTL + 1 s = 6000 ms, no acknowledged write lost",
  );
}

await main();
