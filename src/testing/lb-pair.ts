/**
 * A load-balancer pair under faults: its status, faults at the active node, and the
 * wait for the pair to be whole again. Shared by test/cluster/lb.test.ts and
 * bench/lb-failover.ts.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { LbView } from "../director/lb-service.js";
import { sleep, waitFor } from "../lib/sleep.js";
import type { ZonalHarness } from "./zonal-harness.js";

export type LbFault = "crash" | "kill-processes" | "freeze" | "fail-host";
export const LB_FAULTS: LbFault[] = ["crash", "kill-processes", "freeze", "fail-host"];

export async function pairOf(z: ZonalHarness, deployment = "lb"): Promise<LbView> {
  return (await z.director.http.request<LbView[]>("GET", `/v1/deployments/${deployment}/lb`))[0]!;
}

/**
 * A cluster's member token, as the agent at `address` keeps it in its spec: the test
 * reads the local VM's disk (root could), since the control plane never hands it out.
 */
export function memberTokenOf(z: ZonalHarness, address: string): string {
  const vm = Object.values(z.state().vms).find((v) => v.address === address);
  if (!vm) throw new Error(`no VM has address ${address}`);
  const path = join(z.dataDir, "vms", vm.id, "ephemeral", "agent", "spec.json");
  const spec = JSON.parse(readFileSync(path, "utf8")) as { cluster?: { member_token?: string } | null };
  if (!spec.cluster?.member_token) throw new Error(`${path}: no cluster member token`);
  return spec.cluster.member_token;
}

/** Injects a fault at the active node's VM; returns what undoes it (restores the host). */
export async function injectLbFault(
  z: ZonalHarness,
  fault: LbFault,
  p: LbView,
): Promise<() => Promise<void>> {
  const vmId = p.holder!.vmId;
  const vm = await z.client.getVm(vmId);
  switch (fault) {
    case "crash":
      await z.client.crashVm(vmId);
      return async () => {};
    case "kill-processes":
      await z.client.killVmProcesses(vmId);
      return async () => {};
    case "freeze":
      await z.client.freezeVm(vmId);
      return async () => {};
    case "fail-host":
      await z.client.failHost(vm!.host, { powerOffAfterMs: 2000 });
      return () => z.client.restoreHost(vm!.host);
  }
}

/**
 * Waits until one node is active and holds the lease, the other is a standby, both
 * run the same config version with `backends` servers UP (and, if given, the active
 * is no longer `notActive`).
 */
export function waitPairWhole(
  z: ZonalHarness,
  o: { notActive?: string; backends: number; timeoutMs?: number; deployment?: string },
): Promise<LbView> {
  return waitFor(
    async () => {
      const p = await pairOf(z, o.deployment);
      const active = p.nodes.filter((n) => n.role === "active");
      const standby = p.nodes.filter((n) => n.role === "standby");
      const versions = new Set(p.nodes.map((n) => n.configVersion));
      const up = (n: (typeof p.nodes)[number]) =>
        (n.backends ?? []).filter((b) => b.status.startsWith("UP")).length;
      const ok =
        p.holder !== null &&
        (o.notActive === undefined || p.holder.vmId !== o.notActive) &&
        active.length === 1 &&
        active[0]!.member === p.holder.member &&
        standby.length === p.nodes.length - 1 &&
        versions.size === 1 &&
        !versions.has(undefined) &&
        p.nodes.every((n) => up(n) === o.backends);
      return ok ? p : undefined;
    },
    { timeoutMs: o.timeoutMs ?? 120_000, intervalMs: 250, what: "the load-balancer pair to be whole" },
  );
}

/**
 * Asks every node of a pair directly (its status API, as a client outside zonal
 * would) every `intervalMs`, and keeps which nodes said they were active in each
 * round: two in one round would be two nodes serving the VIP at once.
 */
export class RoleSampler {
  readonly rounds: Array<{ at: number; actives: string[] }> = [];
  private running = true;
  private readonly loop: Promise<void>;

  constructor(
    nodes: Array<{ member: string; address: string }>,
    /** The pair's member token (memberTokenOf): the status API answers members only. */
    memberToken: string,
    statusPort = 8404,
    intervalMs = 100,
  ) {
    this.loop = (async () => {
      while (this.running) {
        const at = Date.now();
        const roles = await Promise.all(
          nodes.map((n) =>
            fetch(`http://${n.address}:${statusPort}/status`, {
              headers: { authorization: `Bearer ${memberToken}` },
              signal: AbortSignal.timeout(300),
            })
              .then(async (r) => ((await r.json()) as { role?: string }).role)
              .catch(() => undefined),
          ),
        );
        this.rounds.push({ at, actives: nodes.filter((_, i) => roles[i] === "active").map((n) => n.member) });
        await sleep(intervalMs);
      }
    })();
  }

  async stop(): Promise<this> {
    this.running = false;
    await this.loop;
    return this;
  }

  /** Rounds in which more than one node said it was active. */
  doubles(): Array<{ at: number; actives: string[] }> {
    return this.rounds.filter((r) => r.actives.length > 1);
  }
}
