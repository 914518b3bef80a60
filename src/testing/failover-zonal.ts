/**
 * zonal as a FailoverSystem: its own local cloud and control plane (ZonalHarness),
 * examples/postgres-cluster.yml deployed as `pg` with `synchronous` set to strict or
 * on, and a database role for the writers. Faults go through the local cloud:
 * crash (silent, then SIGKILL), freeze, and the primary's zone isolated from every
 * other zonal party (members, control plane: the lease store). Nothing is undone by
 * hand but the isolation: the health monitor rebuilds a dead VM itself.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { repoPath } from "../cli/home.js";
import type { PgCredentials } from "../jobs/postgres/service.js";
import { clusterOf, deployPgRole, timeline } from "./cluster-faults.js";
import type { FailoverSystem, Fault, Member } from "./failover-system.js";
import type { CheckerTarget } from "./pg-checker.js";
import { ZonalHarness } from "./zonal-harness.js";

interface ClusterManifest {
  leases: { ttl: string; renew: string };
  instance_groups: Array<{ strategy: string; jobs: Array<{ properties: Record<string, unknown> }> }>;
}

export class ZonalSystem implements FailoverSystem {
  readonly memberExpr = "current_setting('zonal.member')";
  readonly settings: string[];

  private constructor(
    readonly label: string,
    private readonly z: ZonalHarness,
    private readonly role: PgCredentials,
    m: ClusterManifest,
  ) {
    const g = m.instance_groups[0]!;
    this.settings = [
      `lease TTL ${m.leases.ttl}, renewed every ${m.leases.renew} (leases in the control plane)`,
      `synchronous: ${String(g.jobs[0]!.properties.synchronous)} (synchronous_standby_names = ANY 1 of the two replicas)`,
      `strategy ${g.strategy}; health monitor: unresponsive after 3 s (zonal up's default)`,
    ];
  }

  /** Starts zonal and deploys the cluster, strict or not. */
  static async start(label: string, strict: boolean): Promise<ZonalSystem> {
    const z = new ZonalHarness();
    try {
      await z.up();
      const m = parse(readFileSync(repoPath("examples", "postgres-cluster.yml"), "utf8")) as ClusterManifest;
      m.instance_groups[0]!.jobs[0]!.properties.synchronous = strict ? "strict" : "on";
      const path = join(z.dir, "pg.yml");
      writeFileSync(path, stringify(m));
      return new ZonalSystem(label, z, await deployPgRole(z, path), m);
    } catch (err) {
      await z.teardown();
      throw err;
    }
  }

  get credentials() {
    return {
      port: this.role.port,
      user: this.role.username,
      password: this.role.password,
      database: this.role.database,
      // The bench's clients connect from an address of their own: TLS, as a binding says.
      ssl: { ca: this.role.ca_cert },
    };
  }

  /** The cluster's virtual address, for the informational writer. */
  get vip(): CheckerTarget {
    return { ...this.credentials, host: this.role.host };
  }

  async members(): Promise<Member[]> {
    return (await clusterOf(this.z)).members
      .filter((m) => m.address !== null)
      .map((m) => ({ name: m.member, address: m.address! }))
      .sort((a, b) => a.name.localeCompare(b.name));
  }

  async leader(): Promise<Member | undefined> {
    const c = await clusterOf(this.z);
    const m = c.members.find((x) => x.member === c.leader?.member);
    return m?.address ? { name: m.member, address: m.address } : undefined;
  }

  /** Whether the replica's WAL receiver streams from the leader, as the control plane's cluster view says. */
  async streamsFrom(replica: Member, leader: Member): Promise<boolean> {
    try {
      const c = await clusterOf(this.z);
      return c.members.find((m) => m.member === replica.name)?.streamsFrom === leader.name;
    } catch {
      return false;
    }
  }

  async inject(fault: Fault, leader: Member): Promise<() => Promise<void>> {
    const c = await clusterOf(this.z);
    const vm = c.leader?.member === leader.name ? this.z.state().vms[c.leader.vmId] : undefined;
    if (!vm)
      throw new Error(`${leader.name} no longer holds the lease (${c.leader?.member ?? "nobody"} does)`);
    switch (fault) {
      case "crash":
        await this.z.client.crashVm(vm.id);
        return async () => {};
      case "freeze":
        await this.z.client.freezeVm(vm.id);
        return async () => {};
      case "partition": {
        const f = await this.z.client.addNetworkFault({ kind: "isolate", target: vm.zone });
        return async () => void (await this.z.client.healNetwork(f.id));
      }
    }
  }

  diagnose(t0: number): Promise<string> {
    return timeline(this.z, t0);
  }

  teardown(): Promise<void> {
    return this.z.teardown();
  }
}
