/**
 * Clustered PostgreSQL under network partitions (the local cloud drops packets as
 * root: nftables). A checker writes through the cluster's VIP and, as a client with
 * an old address would, straight to every member. For each case the four promises:
 *
 *   1. no acknowledged write is lost (read back from the primary after the heal);
 *   2. never two writers: no commit on an older timeline is acknowledged once a newer
 *      one has acknowledged one, and no timeline has two members writing;
 *   3. a cut-off primary that lost its role stopped accepting writes by its lease
 *      deadline (a TTL after the cut at the latest);
 *   4. the cluster is whole after the heal (one primary, two streaming replicas).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { ClusterView } from "../../src/director/cluster-service.js";
import type { PgCredentials } from "../../src/jobs/postgres/service.js";
import { sleep, waitFor } from "../../src/lib/sleep.js";
import {
  clusterOf,
  deployPgCluster,
  primaryTarget,
  roleTarget,
  timeline,
  waitWhole,
} from "../../src/testing/cluster-faults.js";
import type { Ack, PgChecker } from "../../src/testing/pg-checker.js";
import { ZonalHarness } from "../../src/testing/zonal-harness.js";
import { longIt } from "../../src/testing/tier.js";

const TTL_MS = 5000; // examples/postgres-cluster.yml

describe("clustered postgres under network partitions", () => {
  const z = new ZonalHarness();
  let checker: PgChecker;
  let role: PgCredentials;

  const memberTarget = (member: string) => async () => {
    const m = (await clusterOf(z)).members.find((x) => x.member === member);
    if (!m?.address) throw new Error(`${member} has no address now`);
    return roleTarget(role, m.address);
  };

  before(async () => {
    await z.up();
    const made = await deployPgCluster(z);
    checker = made.checker;
    role = made.role;
    for (const m of (await clusterOf(z)).members) checker.addDirect(m.member, memberTarget(m.member));
    await waitFor(() => (checker.since(0).length > 50 ? true : undefined), {
      timeoutMs: 20_000,
      what: "writes",
    });
  });
  after(async () => {
    await checker?.stop();
    await z.teardown();
  });

  const vmOf = (c: ClusterView, member: string) => {
    const vm = z.state().vms;
    const m = c.members.find((x) => x.member === member)!;
    return Object.values(vm).find((v) => v.address === m.address)!;
  };

  /** The first timeline line after `t0` matching `what` (its text after "+N ms "): N, or undefined. */
  async function firstAt(t0: number, what: RegExp): Promise<number | undefined> {
    for (const l of (await timeline(z, t0)).split("\n")) {
      const m = /^\s*\+(\d+) ms (.*)$/.exec(l);
      if (m && what.test(m[2]!)) return Number(m[1]);
    }
    return undefined;
  }

  /**
   * Runs one case: `cut` makes the faults (given the whole cluster before), they hold
   * for `holdMs`, everything is healed, then the four promises are checked.
   */
  async function partitionCase(o: {
    cut: (c: ClusterView, leaderVm: { id: string; zone: string }) => Promise<void>;
    holdMs: number;
    failover: "expected" | "forbidden" | "allowed";
    /** Only the control plane is cut from the primary: its replicas may keep it leading (failsafe) until it is fenced. */
    failsafe?: true;
  }): Promise<void> {
    const before = await waitWhole(z, undefined, 120_000);
    const leader = before.leader!;
    const leaderVm = vmOf(before, leader.member);
    const lastBefore = checker.acked.filter((a) => a.via === "vip").at(-1)!;
    const oldTimeline = lastBefore.timeline;
    const failuresBefore = checker.failures.filter((f) => f.via === "vip").length;
    const t0 = Date.now();
    await o.cut(before, leaderVm);
    await sleep(o.holdMs);
    const healed = await z.client.healNetwork();
    const after = await waitWhole(z, undefined, 120_000).catch(async (err: Error) => {
      console.log(JSON.stringify(await clusterOf(z), null, 1));
      console.log(await timeline(z, t0));
      throw err;
    });
    const during = checker.acked.filter((a) => a.at >= t0);
    const newer = during.filter((a) => a.timeline > oldTimeline);
    const failedOver = newer.length > 0;
    const old = during.filter((a) => a.timeline === oldTimeline);
    const lastOld = old.at(-1);
    const vipFailures = checker.failures.filter((f) => f.via === "vip").length - failuresBefore;
    const key = /fenced|taking the|promoted|demoted|stepping|rejoin|watchdog|released|VIP .* moved|so far on/;
    console.log(
      (await timeline(z, t0))
        .split("\n")
        .filter((l) => key.test(l) && !/has not answered|not fencing/.test(l))
        .join("\n"),
    );
    console.log(
      `# healed ${healed.length} fault(s); ${failedOver ? `failed over to ${newer[0]!.member} after ${newer[0]!.at - t0} ms` : "no failover"}; ` +
        `old primary's last ack +${lastOld ? lastOld.at - t0 : "-"} ms; ${during.length} acks, ${vipFailures} failed writes through the VIP; ` +
        `leader now ${after.leader?.member}`,
    );
    try {
      if (o.failover === "expected") assert.ok(failedOver, "the cluster failed over");
      if (o.failover === "forbidden") {
        assert.equal(failedOver, false, "no failover");
        assert.equal(after.leader?.member, leader.member);
      }
      if (failedOver && lastOld) {
        // Within its lease — or, where only the control plane was out of its reach and
        // every other member still confirmed it (failsafe), until it was powered off.
        const fencedAt = o.failsafe
          ? await firstAt(t0, new RegExp(`^event: fenced: ${leaderVm.id} powered off`))
          : undefined;
        assert.ok(
          lastOld.at - t0 <= Math.max(TTL_MS, fencedAt ?? 0),
          `the old primary's last acknowledged write came ${lastOld.at - t0} ms after the cut, within its lease (${TTL_MS} ms)` +
            (fencedAt !== undefined ? ` or before it was powered off (+${fencedAt} ms)` : ""),
        );
        // And in every case before the new leader was promoted: never two writers.
        const promoted = await firstAt(t0, /^\S+ \S+: cluster manager: promoted self to leader/);
        assert.ok(promoted !== undefined, "the new leader's promotion is in the timeline");
        assert.ok(
          lastOld.at - t0 <= promoted,
          `the old primary's last acknowledged write came ${lastOld.at - t0} ms after the cut, after the new leader's promotion (+${promoted} ms)`,
        );
      }
      // Read back from the primary itself (whole: its replicas stream).
      const v = await checker.verify(primaryTarget(after, role));
      const show = (a: Ack) => `n=${a.n} ${a.member}@${a.timeline} via ${a.via} at +${a.at - t0} ms`;
      assert.deepEqual(v.missing.map(show), [], "every acknowledged write is present");
      assert.deepEqual(
        v.lateAcks.map((l) => `${show(l.ack)} after ${show(l.newer)}`),
        [],
        "no write acknowledged by an old primary once a new one acknowledged",
      );
      assert.deepEqual(v.sharedTimelines, [], "one writer per timeline");
      if (o.failover === "forbidden") assert.equal(vipFailures, 0, "no failed write through the VIP");
    } catch (err) {
      console.log(await timeline(z, t0));
      throw err;
    }
  }

  const partition = (a: string, b: string, oneWay = false) =>
    z.client.addNetworkFault({ kind: "partition", a, b, oneWay });

  it("primary cut off from the control plane (and the lease store), reachable by clients and replicas", () =>
    partitionCase({
      cut: async (_c, vm) => void (await partition(vm.id, "control-plane")),
      holdMs: 10_000,
      failover: "allowed",
      failsafe: true,
    }));

  // The path the issue found: the primary's postgres (not its agent) cut off from the
  // other VMs, the control plane and its own agent's connections, while clients
  // still reach it directly. Its manager cannot reach it: it stops it and steps down;
  // a commit waiting there is never acknowledged.
  it("the primary's postgres cut off from every zonal party (its own agent too), clients still reach it", () =>
    partitionCase({
      cut: async (_c, vm) =>
        void (await z.client.addNetworkFault({ kind: "isolate", target: `${vm.id}:${role.port}` })),
      holdMs: 14_000,
      failover: "expected",
    }));

  it("primary cut off from its replicas, not from the control plane", () =>
    partitionCase({
      cut: async (c, vm) => {
        for (const m of c.members.filter((x) => x.member !== c.leader!.member))
          await partition(vm.id, vmOf(c, m.member).id);
      },
      holdMs: 12_000,
      failover: "expected",
    }));

  it("the primary's zone isolated", () =>
    partitionCase({
      cut: async (_c, vm) => void (await z.client.addNetworkFault({ kind: "isolate", target: vm.zone })),
      holdMs: 8000,
      failover: "expected",
    }));

  it("the control plane cut off from every VM: no failover, writes go on", async () => {
    const failures = checker.failures.filter((f) => f.via === "vip").length;
    await partitionCase({
      cut: async () => void (await z.client.addNetworkFault({ kind: "isolate", target: "control-plane" })),
      holdMs: 10_000,
      failover: "forbidden",
    });
    assert.equal(
      checker.failures.filter((f) => f.via === "vip").length,
      failures,
      "no failed write through the VIP",
    );
  });

  it("one way: the primary's packets to its replicas are lost, theirs reach it", () =>
    partitionCase({
      cut: async (c, vm) => {
        for (const m of c.members.filter((x) => x.member !== c.leader!.member))
          await partition(vm.id, vmOf(c, m.member).id, true);
      },
      holdMs: 12_000,
      failover: "expected",
    }));

  it("one way: the primary's packets to the control plane are lost", () =>
    partitionCase({
      cut: async (_c, vm) => void (await partition(vm.id, "control-plane", true)),
      holdMs: 10_000,
      failover: "allowed",
      failsafe: true,
    }));

  longIt("flapping: the primary cut off from its replicas and healed every 2 s", () =>
    partitionCase({
      cut: async (c, vm) => {
        const replicas = c.members
          .filter((x) => x.member !== c.leader!.member)
          .map((m) => vmOf(c, m.member).id);
        for (let i = 0; i < 4; i++) {
          for (const r of replicas) await partition(vm.id, r);
          await sleep(2000);
          await z.client.healNetwork();
          await sleep(2000);
        }
      },
      holdMs: 0,
      failover: "allowed",
    }),
  );
});
