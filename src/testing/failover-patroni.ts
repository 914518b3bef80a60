/**
 * Patroni 3.0 as a FailoverSystem: a PatroniCluster (three nodes, etcd for leases),
 * tuned or with Patroni's default timing, synchronous mode strict or not, and a
 * login role and database for the writers like the role zonal hands out. Faults
 * through the cluster's NodeNetwork, the same from outside as zonal's: crash
 * (silent, then SIGKILL to the node's every process), freeze (silent, SIGSTOP), the
 * primary cut off from the other nodes and etcd. Undone after the run: the crashed
 * node is started again (as a rebooted VM would be), the frozen one resumes, the
 * cut is healed.
 */
import type { FailoverSystem, Fault, Member } from "./failover-system.js";
import type { TestEtcd } from "./etcd.js";
import { PatroniCluster, type PatroniTiming } from "./patroni.js";

const WRITER = { user: "bench", password: "bench-writer", database: "app", port: 5432 };

export class PatroniSystem implements FailoverSystem {
  readonly memberExpr = "host(inet_server_addr())";
  readonly credentials = WRITER;
  readonly settings: string[];

  private constructor(
    readonly label: string,
    private readonly cluster: PatroniCluster,
  ) {
    const t = cluster.timing;
    this.settings = [
      `ttl ${t.ttl} s, loop_wait ${t.loop_wait} s, retry_timeout ${t.retry_timeout} s (leases in etcd, 3 members)`,
      `synchronous_mode: true, synchronous_mode_strict: ${cluster.strict} (Patroni 3.0 names one synchronous standby)`,
      "use_pg_rewind, use_slots; maximum_lag_on_failover 1 MiB (Patroni's default)",
    ];
  }

  static async start(
    label: string,
    etcd: TestEtcd,
    timing: PatroniTiming,
    strict: boolean,
  ): Promise<PatroniSystem> {
    const cluster = new PatroniCluster(etcd, timing, strict);
    try {
      await cluster.start();
      const leader = await cluster.waitWhole(180_000);
      await cluster.sql(leader, `CREATE ROLE ${WRITER.user} LOGIN PASSWORD '${WRITER.password}'`, 30_000);
      await cluster.sql(leader, `CREATE DATABASE ${WRITER.database} OWNER ${WRITER.user}`, 30_000);
      return new PatroniSystem(label, cluster);
    } catch (err) {
      process.stderr.write(`${label} did not start:\n${cluster.logTails(30)}\n`);
      await cluster.stop();
      throw err;
    }
  }

  private member(node: string): Member {
    const address = this.cluster.host(node);
    return { name: address, address };
  }

  private node(m: Member): string {
    const node = this.cluster.names.find((n) => this.cluster.host(n) === m.address);
    if (!node) throw new Error(`${m.address} is no node of ${this.label}`);
    return node;
  }

  async members(): Promise<Member[]> {
    return this.cluster.names.map((n) => this.member(n));
  }

  async leader(): Promise<Member | undefined> {
    const node = await this.cluster.leader();
    return node === undefined ? undefined : this.member(node);
  }

  streamsFrom(replica: Member, leader: Member): Promise<boolean> {
    return this.cluster.streamsFrom(this.node(replica), this.node(leader));
  }

  async inject(fault: Fault, leader: Member): Promise<() => Promise<void>> {
    const node = this.node(leader);
    const net = this.cluster.net;
    switch (fault) {
      case "crash":
        await net.silence(node, true);
        await net.kill(node);
        return async () => {
          await net.silence(node, false);
          this.cluster.startNode(node);
        };
      case "freeze":
        await net.silence(node, true);
        // Twice: a process forked meanwhile is caught the second time (as the local cloud does).
        net.signal(node, "SIGSTOP");
        net.signal(node, "SIGSTOP");
        return async () => {
          net.signal(node, "SIGCONT");
          await net.silence(node, false);
        };
      case "partition":
        await net.isolate(node);
        return () => net.heal();
    }
  }

  async diagnose(): Promise<string> {
    return this.cluster.logTails(30);
  }

  teardown(): Promise<void> {
    return this.cluster.stop();
  }
}
