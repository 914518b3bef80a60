/**
 * A MariaDB Galera cluster under faults, end to end on the local cloud: a checker
 * writes numbered rows through the cluster's VIP with a binding's credentials, and
 * one more writer goes straight to each node (its own address, the same user) — the
 * way a client with an old address would. The writer node's VM crashes, freezes,
 * loses its host, loses its zone; each time writes come back on another node, the
 * old one rejoins, every acknowledged row is there, and no two nodes took writes in
 * the same period. Then all three VMs are powered off and booted one by one: the
 * first two wait for the last, the most advanced node bootstraps, every row is
 * there.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { repoPath } from "../../src/cli/home.js";
import type { BindingView, ClusterView, MemberView } from "../../src/director/cluster-service.js";
import type { InstanceView } from "../../src/director/director.js";
import type { MariadbCredentials } from "../../src/jobs/mariadb/service.js";
import { sleep, waitFor } from "../../src/lib/sleep.js";
import {
  injectFault,
  timeline,
  waitGaleraWhole,
  type ClusterFault,
} from "../../src/testing/cluster-faults.js";
import { MariadbChecker, type MariadbTarget } from "../../src/testing/mariadb-checker.js";
import { CpuLoad } from "../../src/testing/cpu-load.js";
import { ZonalHarness } from "../../src/testing/zonal-harness.js";
import { longIt } from "../../src/testing/tier.js";

const D = "maria-ha";

describe("mariadb galera cluster under faults", () => {
  const z = new ZonalHarness();
  let checker: MariadbChecker;
  let creds: MariadbCredentials;
  const cluster = async () =>
    (await z.director.http.request<ClusterView[]>("GET", `/v1/deployments/${D}/cluster`))[0]!;
  /** One writer node (holding the lease), two more Synced, all three in one Primary component. */
  const whole = (notLeader?: string, timeoutMs = 120_000) => waitGaleraWhole(z, D, notLeader, timeoutMs);
  const target = (host: string): MariadbTarget => ({
    host,
    port: creds.port,
    user: creds.username,
    password: creds.password,
    database: creds.database,
    ssl: { ca: creds.ca_cert },
  });

  before(async () => {
    await z.up();
    const r = await z.zonalAsync("deploy", repoPath("examples", "mariadb-cluster.yml"));
    assert.equal(r.code, 0, r.err + r.out);
    const c = await whole();
    const b = await z.director.http.request<BindingView>("POST", `/v1/deployments/${D}/bindings`, {
      body: {},
    });
    creds = b.credentials as MariadbCredentials;
    assert.equal(creds.host, c.vip, "bindings point at the cluster's VIP");
    checker = new MariadbChecker(target(creds.host));
    await checker.setup();
    checker.start();
    for (const m of c.members) checker.addDirect(m.member, target(m.address!));
    await waitFor(() => (checker.since(Date.now() - 5000).length > 50 ? true : undefined), {
      timeoutMs: 20_000,
      what: "writes to flow",
    });
  });
  after(async () => {
    await checker?.stop();
    await z.teardown();
  });

  it("shows each node's Galera state, seqno and component size; only the writer takes writes", async () => {
    const out = z.zonal("cluster", "-d", D);
    assert.equal(out.code, 0, out.err);
    console.log(out.out);
    assert.match(out.out, /ROLE .* POSITION .* SIZE/);
    assert.match(out.out, /writer .*\[Synced\]/);
    assert.match(out.out, /; whole: m\d writer, every other member synced/);
    const c = await cluster();
    const writer = c.leader!.member;
    const t0 = Date.now();
    await sleep(2000);
    const direct = checker.acked.filter((a) => a.at >= t0 && a.via !== "vip");
    assert.ok(direct.length > 10, `${direct.length} direct writes acknowledged`);
    assert.deepEqual([...new Set(direct.map((a) => a.member))], [writer], "only the writer accepts writes");
    const refused = checker.failures.filter((f) => f.at >= t0 && f.via !== writer);
    assert.ok(
      refused.length > 0 && refused.every((f) => /read-only|read_only/i.test(f.error)),
      refused[0]?.error,
    );
  });

  const faults: Array<{ name: string; fault: ClusterFault; targetMs: number }> = [
    { name: "crash the writer's VM", fault: "crash", targetMs: 3000 },
    { name: "freeze the writer's VM", fault: "freeze", targetMs: 3000 },
    { name: "fail the writer's host", fault: "fail-host", targetMs: 3000 },
    { name: "fail the writer's zone", fault: "fail-zone", targetMs: 3000 },
  ];
  for (const f of faults) {
    it(`${f.name}: writes resume on another node, the old one rejoins, nothing acknowledged is lost`, async () => {
      const before = await whole();
      const old = before.leader!;
      const t0 = Date.now();
      const undo = await injectFault(z, f.fault, before);
      await waitFor(async () => ((await cluster()).leader?.vmId !== old.vmId ? true : undefined), {
        timeoutMs: 30_000,
        intervalMs: 100,
        what: "a new writer",
      }).catch(async (err: unknown) => {
        console.log(z.zonal("cluster", "-d", D).out, await timeline(z, t0, D));
        throw err;
      });
      // Measured once writes flow again through the VIP after the new writer took it.
      const tNew = Date.now();
      await waitFor(() => (checker.since(tNew).length > 5 ? true : undefined), {
        timeoutMs: 30_000,
        intervalMs: 50,
        what: "writes through the VIP again",
      }).catch(async (err: unknown) => {
        const seen = new Map<string, number>();
        for (const e of checker.failures.filter((x) => x.at >= tNew && x.via === "vip"))
          seen.set(e.error, (seen.get(e.error) ?? 0) + 1);
        const last = checker.failures.filter((x) => x.via === "vip").at(-1);
        console.log(
          `# the VIP writer's failures since the new writer: ${JSON.stringify([...seen])}; ` +
            `its last failure: ${JSON.stringify(last)}; now ${Date.now()}`,
        );
        console.log(z.zonal("cluster", "-d", D).out, await timeline(z, t0, D));
        throw err;
      });
      const gap = checker.longestGap(t0);
      console.log(`# ${f.name}: longest write gap ${gap} ms`);
      if (gap > 3000 || checker.writerRuns({ from: t0, to: Date.now() }).runs.length > 2)
        console.log(await timeline(z, t0, D));
      await undo();
      const after = await whole(undefined, 180_000);
      assert.ok(gap <= f.targetMs, `write unavailability ${gap} ms within ${f.targetMs} ms`);
      assert.equal(
        after.members.find((m) => m.member === old.member)?.role,
        "synced",
        `${old.member} rejoined`,
      );
      const { missing } = await checker.verify();
      assert.deepEqual(missing, [], "every acknowledged write is present");
      const { runs, interleaved } = checker.writerRuns({ from: t0, to: Date.now() });
      console.log(`# writers since the fault: ${runs.join(" -> ")}`);
      assert.equal(interleaved, false, `one writer node at a time: ${runs.join(" -> ")}`);
    });
  }

  it("refuses a forced bootstrap without --yes, of an unknown member, and while the cluster runs", async () => {
    const unconfirmed = z.zonal("cluster-bootstrap", "-d", D, "-g", "mariadb", "--member", "m1");
    assert.equal(unconfirmed.code, 2);
    assert.match(unconfirmed.err, /writes only the other members committed are lost.*--yes/s);
    const unknown = z.zonal("cluster-bootstrap", "-d", D, "-g", "mariadb", "--member", "m7", "--yes");
    assert.notEqual(unknown.code, 0);
    assert.match(unknown.err, /member: mariadb has no member m7/);
    const running = z.zonal("cluster-bootstrap", "-d", D, "-g", "mariadb", "--member", "m1", "--yes");
    assert.notEqual(running.code, 0);
    assert.match(running.err, /runs \(m\d leads\): nothing to bootstrap/);
  });

  longIt("no failover while the machine runs at full CPU for 20 s (a busy loop per core)", async () => {
    const before = await whole();
    const t0 = Date.now();
    const load = new CpuLoad().start();
    try {
      await sleep(20_000);
    } finally {
      load.stop();
    }
    const c = await cluster();
    console.log(
      `# full CPU (${load.workers} busy loops) for 20 s: ${checker.since(t0).length} writes, longest gap ${checker.longestGap(t0)} ms, writer ${before.leader!.member} -> ${c.leader?.member}`,
    );
    assert.equal(c.leader?.vmId, before.leader!.vmId, "the writer stayed");
    assert.ok(
      c.members.every((m) => m.size === 3),
      `every node stayed in one component: ${c.members.map((m) => `${m.member} ${m.role} size ${m.size}`).join(", ")}`,
    );
  });

  it("all three VMs powered off, one of them early: the node behind and the next wait for the last, a most advanced node bootstraps, every row is there", async () => {
    const c = await whole();
    const instances = await z.director.http.request<InstanceView[]>("GET", "/v1/instances", {
      query: { deployment: D },
    });
    const vmOf = (key: string) => instances.find((i) => `${i.group}/${i.index}` === key)!.vmId!;
    // behind: a node powered off first, while the other two keep taking writes; then
    // the other two at once. The writer comes back last. The operator pauses recovery
    // meanwhile: the monitor would rebuild each VM on its own clock (the first before the
    // meltdown, the last once two are back), and this is about the order they boot in.
    assert.equal(z.zonal("health", "pause", "-d", D).code, 0);
    const others = c.members.filter((m) => m.member !== c.leader!.member);
    const [behind, second] = others as [MemberView, MemberView];
    const last = c.members.find((m) => m.member === c.leader!.member)!;
    const tOff = Date.now();
    await z.client.powerOffVm(vmOf(behind.key));
    await waitFor(
      async () => {
        const now = await cluster();
        const evicted = now.members.filter((m) => m.member !== behind.member).every((m) => m.size === 2);
        return evicted && checker.since(Date.now() - 300).length > 0 ? true : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 100, what: `the others to go on without ${behind.member}` },
    );
    const tMore = Date.now();
    await waitFor(() => (checker.since(tMore).length >= 20 ? true : undefined), {
      timeoutMs: 10_000,
      what: "20 more writes without it",
    });
    await Promise.all([second, last].map((m) => z.client.powerOffVm(vmOf(m.key))));
    // Boot the node behind, then the second.
    await z.client.rebootVm(vmOf(behind.key));
    await z.client.rebootVm(vmOf(second.key));
    // The monitor starts the booted VMs' jobs; they wait for the last to say where its data ends.
    const waiting = await waitFor(
      async () => {
        const now = await cluster();
        const booted = now.members.filter((m) => m.member === behind.member || m.member === second.member);
        return booted.every(
          (m) =>
            m.role === "starting" &&
            m.position !== null &&
            m.decision?.includes(`waiting for ${last.member}`),
        )
          ? booted
          : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 250, what: "the first two nodes to wait for the last" },
    ).catch(async (err: unknown) => {
      console.log(
        z.zonal("cluster", "-d", D).out,
        z.zonal("health", "-d", D).out,
        await timeline(z, tOff, D),
      );
      throw err;
    });
    for (const m of waiting) console.log(`# ${m.member} at seqno ${m.position}: ${m.decision}`);
    const at = (member: string) => Number(waiting.find((m) => m.member === member)!.position);
    assert.ok(at(behind.member) < at(second.member), `${behind.member} is behind ${second.member}`);
    // The last boots; recovery resumes.
    await z.client.rebootVm(vmOf(last.key));
    assert.equal(z.zonal("health", "resume", "-d", D).code, 0);
    const back = await whole(undefined, 180_000).catch(async (err: unknown) => {
      // Where it stuck: each member's decision, the VMs' health, the timeline, and what
      // each mariadbd said last (its errors, a crash's backtrace).
      console.log(
        z.zonal("cluster", "-d", D).out,
        z.zonal("health", "-d", D).out,
        await timeline(z, tOff, D),
      );
      for (const i of instances) {
        // Its errors and state transfers since it booted, not only its last lines (a CI
        // run's last 80 lines began after the joiners' first aborts).
        const said = z.zonal("vm", "logs", i.vmId!, "mariadb", "-n", "5000").out.split("\n");
        const telling = said.filter((l) =>
          /\[ERROR\]|SST|\bIST\b|abort|Assertion|signal|gcache|State transfer/i.test(l),
        );
        console.log(
          `# ${i.group}/${i.index} mariadbd (${telling.length} of ${said.length} lines):\n${telling.slice(-120).join("\n")}`,
        );
      }
      throw err;
    });
    console.log(
      `# whole again ${Date.now() - tOff} ms after the first power-off; writer ${back.leader!.member}`,
    );
    const events = (await timeline(z, tOff, D)).split("\n");
    const boots = events.filter((l) => /bootstrapping a new Primary component/.test(l));
    console.log(boots.join("\n"));
    assert.equal(boots.length, 1, "one node bootstrapped");
    const chose = events.find((l) => /this node has the highest seqno/.test(l));
    console.log(`# ${chose}`);
    const seqno = Number(/highest seqno \((\d+)\)/.exec(chose ?? "")?.[1] ?? NaN);
    assert.ok(
      seqno >= at(second.member),
      `bootstrapped at ${seqno}, ${second.member} was at ${at(second.member)}`,
    );
    assert.ok(
      seqno > at(behind.member),
      `bootstrapped at ${seqno}, ahead of ${behind.member} at ${at(behind.member)}`,
    );
    assert.ok(!chose?.includes(`${behind.key} `), `${behind.member}, behind, did not bootstrap`);
    // Nobody bootstrapped before the last node's job started again.
    const msOf = (line: string | undefined) => Number(/^\s*\+(-?\d+) ms/.exec(line ?? "")?.[1] ?? NaN);
    const lastStarted = events.filter((l) => l.includes(`${last.key} `) && /starting job/.test(l)).at(-1);
    assert.ok(
      msOf(boots[0]) > msOf(lastStarted),
      `bootstrap (${boots[0]}) after ${last.member} started (${lastStarted})`,
    );
    await waitFor(() => (checker.since(Date.now() - 2000).length > 5 ? true : undefined), {
      timeoutMs: 30_000,
      what: "writes to flow again",
    });
    const { missing } = await checker.verify();
    assert.deepEqual(missing, [], "every acknowledged write is present");
  });

  it("an operator forces a bootstrap while a node's zone is down: the named node starts the cluster, the other joins, every row is there", async () => {
    const c = await whole();
    const instances = await z.director.http.request<InstanceView[]>("GET", "/v1/instances", {
      query: { deployment: D },
    });
    const vmOf = (key: string) => instances.find((i) => `${i.group}/${i.index}` === key)!.vmId!;
    // The writer is named: it committed every acknowledged write itself (another node
    // may not have applied the last ones when the power went; forcing it could lose them).
    const named = c.members.find((m) => m.member === c.leader!.member)!;
    const [other, off] = c.members.filter((m) => m !== named) as [MemberView, MemberView];
    const t0 = Date.now();
    // The third node's zone fails (its VM can come back nowhere, so the monitor waits for
    // the zone), and the power goes off under the other two.
    const offZone = (await z.client.getVm(vmOf(off.key)))!.zone;
    await z.client.failZone(offZone, { powerOffAfterMs: 0 });
    await Promise.all([named, other].map((m) => z.client.powerOffVm(vmOf(m.key))));
    for (const m of [named, other]) await z.client.rebootVm(vmOf(m.key));
    await waitFor(
      async () => {
        const now = await cluster();
        const booted = now.members.filter((m) => m.member === named.member || m.member === other.member);
        return booted.every((m) => m.role === "starting" && m.decision?.includes(`waiting for ${off.member}`))
          ? true
          : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 250, what: `the two booted nodes to wait for ${off.member}` },
    );
    // The operator does not wait for the third node: it forces the first.
    const forced = await z.zonalAsync(
      "cluster-bootstrap",
      "-d",
      D,
      "-g",
      "mariadb",
      "--member",
      named.member,
      "--yes",
    );
    console.log(`# ${forced.out.trim()}`);
    assert.equal(forced.code, 0, forced.err + forced.out);
    const events = (await timeline(z, t0, D)).split("\n");
    assert.ok(
      events.some((l) => l.includes(`${named.key} `) && /an operator forced this node to bootstrap/.test(l)),
      "the named node bootstrapped on the operator's word",
    );
    assert.ok(
      events.some((l) => /event: an operator forced mariadb\/m\d to bootstrap: /.test(l)),
      "an event says so",
    );
    // Its zone comes back: the monitor rebuilds its VM there (or it is booted), and it joins.
    await z.client.restoreZone(offZone);
    await z.client
      .rebootVm(vmOf(off.key))
      .catch((err: unknown) => console.log(`# ${off.member}: ${String(err)}`));
    const back = await whole(undefined, 180_000).catch(async (err: unknown) => {
      console.log(z.zonal("cluster", "-d", D).out, z.zonal("health", "-d", D).out, await timeline(z, t0, D));
      throw err;
    });
    console.log(`# whole again ${Date.now() - t0} ms after the power-off; writer ${back.leader!.member}`);
    await waitFor(() => (checker.since(Date.now() - 2000).length > 5 ? true : undefined), {
      timeoutMs: 30_000,
      what: "writes to flow again",
    });
    await checker.stop();
    const { missing, rows } = await checker.verify();
    assert.deepEqual(missing, [], "every acknowledged write is present");
    console.log(
      `# ${checker.acked.length} acknowledged writes, ${rows} rows, ${checker.failures.length} failed attempts`,
    );
  });
});
