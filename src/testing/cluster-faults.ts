/**
 * Faults against a zonal PostgreSQL cluster and the wait for it to be whole again,
 * shared by the cluster tests, the soak (bench/soak.ts) and bench/failover.ts.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { repoPath } from "../cli/home.js";
import type { BindingView, ClusterView } from "../director/cluster-service.js";
import type { PgCredentials } from "../jobs/postgres/service.js";
import { sleep, waitFor } from "../lib/sleep.js";
import { PgChecker, type CheckerTarget } from "./pg-checker.js";
import type { ZonalHarness } from "./zonal-harness.js";

/**
 * Deploys examples/postgres-cluster.yml (as `pg`), makes a database role, and starts a
 * checker writing numbered rows through the role's host (the cluster's VIP).
 */
export async function deployPgCluster(z: ZonalHarness): Promise<{ role: PgCredentials; checker: PgChecker }> {
  const role = await deployPgRole(z, repoPath("examples", "postgres-cluster.yml"));
  const checker = new PgChecker(roleTarget(role));
  await checker.setup();
  checker.start();
  return { role, checker };
}

/** Deploys a postgres cluster manifest named `pg` and makes a database role on it. */
export async function deployPgRole(z: ZonalHarness, manifest: string): Promise<PgCredentials> {
  const r = z.zonal("deploy", manifest);
  if (r.code !== 0) throw new Error(`deploy of the postgres cluster failed: ${r.err}${r.out}`);
  return bindingOf(z, "pg");
}

/** A binding of the deployment's PostgreSQL group, made through the director's API: its credentials. */
export async function bindingOf(z: ZonalHarness, deployment: string): Promise<PgCredentials> {
  const b = await z.director.http.request<BindingView>(
    "POST",
    `/v1/deployments/${encodeURIComponent(deployment)}/bindings`,
    { body: {} },
  );
  return b.credentials as PgCredentials;
}

export type ClusterFault =
  "crash" | "kill-processes" | "freeze" | "fail-host" | "fail-zone" | "restart-control-plane" | "switchover";

export const CLUSTER_FAULTS: ClusterFault[] = [
  "crash",
  "kill-processes",
  "freeze",
  "fail-host",
  "fail-zone",
  "restart-control-plane",
  "switchover",
];

export async function clusterOf(z: ZonalHarness, deployment = "pg"): Promise<ClusterView> {
  return (await z.director.http.request<ClusterView[]>("GET", `/v1/deployments/${deployment}/cluster`))[0]!;
}

/** Injects a fault at the cluster's current leader; returns a function that undoes what must be undone. */
export async function injectFault(
  z: ZonalHarness,
  fault: ClusterFault,
  c: ClusterView,
): Promise<() => Promise<void>> {
  const vm = await z.client.getVm(c.leader!.vmId);
  switch (fault) {
    case "crash":
      await z.client.crashVm(c.leader!.vmId);
      return async () => {};
    case "kill-processes":
      await z.client.killVmProcesses(c.leader!.vmId);
      return async () => {};
    case "freeze":
      await z.client.freezeVm(c.leader!.vmId);
      return async () => {};
    case "fail-host":
      await z.client.failHost(vm!.host, { powerOffAfterMs: 2000 });
      return () => z.client.restoreHost(vm!.host);
    case "fail-zone":
      await z.client.failZone(vm!.zone, { powerOffAfterMs: 2000 });
      return () => z.client.restoreZone(vm!.zone);
    case "restart-control-plane":
      await z.stopControlPlane("SIGKILL");
      await sleep(3000);
      await z.up();
      return async () => {};
    case "switchover": {
      const r = await z.zonalAsync("switchover", "-d", "pg");
      if (r.code !== 0) throw new Error(`zonal switchover failed: ${r.err}`);
      return async () => {};
    }
  }
}

/** True when the fault should move the leader elsewhere. */
export const movesLeader = (f: ClusterFault): boolean => f !== "restart-control-plane";

/** Waits until one member is primary and two replicas stream from it, close behind (and, if given, the leader moved). */
export function waitWhole(z: ZonalHarness, notLeader?: string, timeoutMs = 120_000): Promise<ClusterView> {
  return waitFor(
    async () => {
      const c = await clusterOf(z);
      const ok =
        c.leader !== null &&
        (notLeader === undefined || c.leader.vmId !== notLeader) &&
        c.members.filter((m) => m.role === "primary").length === 1 &&
        c.members.filter(
          (m) =>
            m.role === "replica" && m.streamsFrom === c.leader?.member && m.lag !== null && m.lag < 1_048_576,
        ).length === 2;
      return ok ? c : undefined;
    },
    { timeoutMs, intervalMs: 250, what: "the cluster to be whole again" },
  );
}

/**
 * What happened since `t0`, for a failure's message: the deployment's events and
 * each member's cluster-manager lines, in time order, as ms after `t0`.
 */
export async function timeline(z: ZonalHarness, t0: number, deployment = "pg"): Promise<string> {
  const lines: Array<[number, string]> = [];
  const events = await z.director.http
    .request<Array<{ at: string; message: string }>>("GET", `/v1/events?deployment=${deployment}&limit=200`)
    .catch(() => []);
  for (const e of events) lines.push([Date.parse(e.at), `event: ${e.message}`]);
  for (const vm of Object.values(z.state().vms)) {
    const dir = join(z.dataDir, "vms", vm.id, "ephemeral", "logs");
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir)) {
      for (const l of readFileSync(join(dir, f), "utf8").split("\n")) {
        const m = /^\[zonal-agent ([^\]]+)\] (.*)$/.exec(l);
        if (m) lines.push([Date.parse(m[1]!), `${vm.metadata.group}/${vm.metadata.index} ${vm.id}: ${m[2]}`]);
      }
    }
  }
  return lines
    .filter(([at]) => at >= t0 - 500)
    .sort((a, b) => a[0] - b[0])
    .map(([at, text]) => `  +${at - t0} ms ${text}`)
    .join("\n");
}

/** The cluster's primary as a client reaches it directly (to read back from it), with a binding's role. */
export function primaryTarget(c: ClusterView, role: PgCredentials): CheckerTarget {
  const primary = c.members.find((m) => m.member === c.leader!.member)!;
  return roleTarget(role, primary.address!);
}

/** What any service's binding hands out that a client needs to connect (PostgreSQL's, MariaDB's). */
export interface BindingCredentials {
  host: string;
  port: number;
  username: string;
  password: string;
  database: string;
  ca_cert: string;
}

/** How a client connects with a binding's credentials (at `host`, default theirs): over TLS with its CA. */
export function roleTarget(role: BindingCredentials | PgCredentials, host = role.host): CheckerTarget {
  return {
    host,
    port: role.port,
    user: role.username,
    password: role.password,
    database: role.database,
    ssl: { ca: role.ca_cert },
  };
}

/** Waits until a Galera cluster has one writer (holding the lease, not `notLeader`) and two Synced nodes, all in one component of 3. */
export function waitGaleraWhole(
  z: ZonalHarness,
  deployment: string,
  notLeader?: string,
  timeoutMs = 120_000,
): Promise<ClusterView> {
  return waitFor(
    async () => {
      const c = await clusterOf(z, deployment);
      const ok =
        c.leader !== null &&
        c.leader.vmId !== notLeader &&
        c.members.filter((m) => m.role === "writer").length === 1 &&
        c.members.filter((m) => m.role === "synced").length === 2 &&
        c.members.every((m) => m.size === 3);
      return ok ? c : undefined;
    },
    { timeoutMs, intervalMs: 250, what: "the galera cluster to be whole" },
  );
}
