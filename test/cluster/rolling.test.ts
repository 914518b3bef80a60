/**
 * Rolling updates of a PostgreSQL cluster while a checker writes through its VIP:
 * the replicas change one at a time, each back in sync before the next, then the
 * primary hands its role to an updated replica and changes last. A config change
 * that restarts PostgreSQL, then a vm_type change that rebuilds every VM (the disk
 * moves to the new VM, never on two at once). Each ends with every acknowledged row
 * present, never two writers, and the write pause printed.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse, stringify } from "yaml";
import { repoPath } from "../../src/cli/home.js";
import type { ClusterView } from "../../src/director/cluster-service.js";
import type { InstanceView } from "../../src/director/director.js";
import { clusterOf, deployPgCluster, timeline, waitWhole } from "../../src/testing/cluster-faults.js";
import type { PgChecker } from "../../src/testing/pg-checker.js";
import { ZonalHarness } from "../../src/testing/zonal-harness.js";
import { waitFor } from "../../src/lib/sleep.js";

interface EventLine {
  at: string;
  stage: string;
  instance: string | null;
  message: string;
}

describe("rolling updates of a postgres cluster under writes", () => {
  const z = new ZonalHarness();
  let checker: PgChecker;
  const manifest = parse(readFileSync(repoPath("examples", "postgres-cluster.yml"), "utf8")) as {
    instance_groups: Array<{ vm_type: string; jobs: Array<{ properties: Record<string, unknown> }> }>;
  };

  before(async () => {
    await z.up();
    ({ checker } = await deployPgCluster(z));
    await waitWhole(z);
    await waitFor(() => (checker.acked.length > 30 ? true : undefined), {
      timeoutMs: 20_000,
      what: "writes",
    });
  });
  after(async () => {
    await checker?.stop();
    await z.teardown();
  });

  /** Deploys the changed manifest while the checker writes; returns the update's events and figures. */
  async function roll(
    what: string,
    change: () => void,
  ): Promise<{ events: EventLine[]; before: ClusterView }> {
    change();
    const path = join(z.dir, `pg-${what.replaceAll(" ", "-")}.yml`);
    writeFileSync(path, stringify(manifest));
    const before = await waitWhole(z);
    const t0 = Date.now();
    const failed0 = checker.failures.length;
    const r = await z.zonalAsync("deploy", path);
    const t1 = Date.now();
    assert.equal(r.code, 0, `${r.err}${r.out}\n${await timeline(z, t0)}`);
    const events = (
      await z.director.http.request<EventLine[]>("GET", "/v1/events?deployment=pg&limit=200")
    ).filter((e) => Date.parse(e.at) >= t0);
    const pause = checker.longestGap(t0, t1);
    const failures = checker.failures.slice(failed0);
    const handover = events.find((e) => e.stage === "handover" && /handed its role/.test(e.message));
    console.log(
      `# ${what}: update took ${t1 - t0} ms; longest write pause ${pause} ms; ${failures.length} failed writes; ${handover?.message ?? "no handover"}`,
    );
    await waitWhole(z);
    const v = await checker.verify();
    assert.deepEqual(v.missing, [], "every acknowledged row is there");
    assert.equal(v.twoWriters, false, v.runs.join(" -> "));
    assert.ok(handover, `the primary handed over:\n${events.map((e) => e.message).join("\n")}`);
    return { events, before };
  }

  /** The members in the order their steps ran (`postgres/N`), from the events. */
  const stepOrder = (events: EventLine[]) =>
    [
      ...new Set(events.filter((e) => e.stage === "update" || e.stage === "recreate").map((e) => e.instance)),
    ].filter((x): x is string => x !== null);

  it("restarts PostgreSQL for a config change: replicas first, then the primary after a switchover", async () => {
    const { events, before } = await roll("config change", () => {
      manifest.instance_groups[0]!.jobs[0]!.properties.parameters = { max_connections: 150 };
    });
    const primaryKey = before.members.find((m) => m.member === before.leader!.member)!.key;
    const order = stepOrder(events);
    assert.equal(order.length, 3, order.join(", "));
    assert.equal(order.at(-1), primaryKey, `the primary ${primaryKey} changes last: ${order.join(", ")}`);
    const after = await clusterOf(z);
    assert.notEqual(after.leader!.member, before.leader!.member, "another member leads now");
    assert.equal(
      events.filter((e) => e.stage === "catch-up").length,
      3,
      "each member caught up before the next went",
    );
  });

  it("rebuilds every VM for a vm_type change in the same order, each disk moved to the new VM", async () => {
    const vmsBefore = await z.director.http.request<InstanceView[]>("GET", "/v1/instances?deployment=pg");
    const { events, before } = await roll("vm_type change", () => {
      manifest.instance_groups[0]!.vm_type = "small";
    });
    const primaryKey = before.members.find((m) => m.member === before.leader!.member)!.key;
    const order = stepOrder(events);
    assert.equal(order.at(-1), primaryKey, `the primary ${primaryKey} is rebuilt last: ${order.join(", ")}`);
    const vmsAfter = await z.director.http.request<InstanceView[]>("GET", "/v1/instances?deployment=pg");
    for (const b of vmsBefore) {
      const a = vmsAfter.find((x) => x.id === b.id)!;
      assert.notEqual(a.vmId, b.vmId, `${b.group}/${b.index} got a new VM`);
      assert.equal(a.diskId, b.diskId, `${b.group}/${b.index} kept its disk`);
    }
    // The cloud's view: each disk attached to exactly its instance's new VM.
    const disks = Object.values(z.state().disks);
    for (const a of vmsAfter) assert.equal(disks.find((d) => d.id === a.diskId)?.attachedTo, a.vmId);
  });
});
