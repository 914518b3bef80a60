/**
 * Rolling updates of a PostgreSQL cluster and of a MariaDB Galera cluster while a
 * checker writes through the cluster's VIP: the followers change one at a time,
 * each caught up before the next, then the leader hands its role to an updated
 * follower and changes last. A config change that restarts the server, then a
 * vm_type change that rebuilds every VM (each disk moves to the new VM, never on
 * two at once). Each ends with every acknowledged row present, never two writers,
 * failed writes only around the handover, and the write pause printed.
 */
import assert from "node:assert/strict";
import { readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse, stringify } from "yaml";
import { repoPath } from "../../src/cli/home.js";
import type { BindingView, ClusterView } from "../../src/director/cluster-service.js";
import type { InstanceView } from "../../src/director/director.js";
import type { MariadbCredentials } from "../../src/jobs/mariadb/service.js";
import { waitFor } from "../../src/lib/sleep.js";
import {
  clusterOf,
  roleTarget,
  deployPgCluster,
  timeline,
  waitGaleraWhole,
  waitWhole,
} from "../../src/testing/cluster-faults.js";
import { MariadbChecker } from "../../src/testing/mariadb-checker.js";
import type { WriteChecker } from "../../src/testing/write-checker.js";
import { ZonalHarness, type CliResult } from "../../src/testing/zonal-harness.js";
import { StagedZonal } from "../../src/testing/staged-zonal.js";
import { jobProcesses } from "../../src/testing/vms.js";
import type { VersionsView } from "../../src/director/director.js";
import { LONG } from "../../src/testing/tier.js";

interface EventLine {
  at: string;
  stage: string;
  instance: string | null;
  message: string;
}

/** Each member's batch (handover, step, catch-up), from its start to its end, from the events. */
function memberWindows(events: EventLine[]): Array<{ from: number; to: number; what: string }> {
  const out: Array<{ from: number; to: number; what: string }> = [];
  for (const e of events) {
    const m = /^member (\S+).*: started$/.exec(e.message);
    if (!m || e.stage !== "member") continue;
    // To the batch's end (after its step and the catch-up that follows it).
    const end = events.find(
      (x) =>
        x.stage === "member" &&
        x.message.startsWith(`member ${m[1]}`) &&
        / (done|failed.*)$/.test(x.message) &&
        Date.parse(x.at) >= Date.parse(e.at),
    );
    out.push({ from: Date.parse(e.at), to: end ? Date.parse(end.at) : Infinity, what: `${m[1]}'s step` });
  }
  return out;
}

interface Service {
  title: string;
  deployment: string;
  example: string;
  /** Deploys the example and starts a checker through the VIP. */
  deploy(z: ZonalHarness): Promise<WriteChecker<unknown>>;
  whole(z: ZonalHarness): Promise<ClusterView>;
  /** A config change that restarts the server (`n`: a value of its own). */
  configChange(properties: Record<string, unknown>, n?: number): void;
  /**
   * Galera stalls its writer while a restarted node rejoins (a membership change,
   * 1.1-1.3 s measured here): failed writes are allowed inside a member's own step too.
   */
  rejoinStalls: boolean;
  /**
   * Whether its cases run in the long tier only (src/testing/tier.ts): MariaDB's (about
   * two minutes) stay out of npm test's 25-minute budget; the director's rolling logic
   * they go through is the one PostgreSQL's cases run in npm test.
   */
  long: boolean;
  /** Two writers within `window`, as the service's history shows them (a string naming them, or null). */
  twoWriters(checker: WriteChecker<unknown>, window: { from: number; to: number }): Promise<string | null>;
}

const services: Service[] = [
  {
    title: "postgres cluster",
    deployment: "pg",
    example: "postgres-cluster.yml",
    deploy: async (z) => (await deployPgCluster(z)).checker as WriteChecker<unknown>,
    whole: (z) => waitWhole(z),
    configChange: (p, n = 150) => (p.parameters = { max_connections: n }),
    rejoinStalls: false,
    long: false,
    // PostgreSQL: a commit on an older timeline after a newer one took writes.
    async twoWriters(checker) {
      const v = await checker.verify();
      return v.twoWriters ? v.runs.join(" -> ") : null;
    },
  },
  {
    title: "mariadb galera cluster",
    deployment: "maria-ha",
    example: "mariadb-cluster.yml",
    async deploy(z) {
      const r = await z.zonalAsync("deploy", repoPath("examples", "mariadb-cluster.yml"));
      assert.equal(r.code, 0, r.err + r.out);
      await waitGaleraWhole(z, "maria-ha");
      const b = await z.director.http.request<BindingView>("POST", "/v1/deployments/maria-ha/bindings", {
        body: {},
      });
      const checker = new MariadbChecker(roleTarget(b.credentials as MariadbCredentials));
      await checker.setup();
      checker.start();
      return checker as WriteChecker<unknown>;
    },
    whole: (z) => waitGaleraWhole(z, "maria-ha"),
    configChange: (p, n = 150) => (p.parameters = { max_connections: n }),
    rejoinStalls: true,
    long: true,
    // Galera has no timelines: the writer nodes, in acknowledgement order, never come back.
    twoWriters: async (checker, window) => {
      const { runs, interleaved } = (checker as MariadbChecker).writerRuns(window);
      return interleaved ? runs.join(" -> ") : null;
    },
  },
];

for (const svc of services.filter((s) => LONG || !s.long)) {
  describe(`rolling updates of a ${svc.title} under writes`, () => {
    // From a staged copy of zonal: the last case installs "a new release" over it.
    const staged = new StagedZonal();
    const z = new ZonalHarness({ bin: staged.bin });
    let checker: WriteChecker<unknown>;
    const D = svc.deployment;
    const manifest = parse(readFileSync(repoPath("examples", svc.example), "utf8")) as {
      instance_groups: Array<{
        vm_type: string;
        persistent_disk_type?: string;
        persistent_disk?: number;
        jobs: Array<{ properties: Record<string, unknown> }>;
      }>;
    };

    before(async () => {
      await z.up();
      checker = await svc.deploy(z);
      await svc.whole(z);
      await waitFor(() => (checker.acked.length > 30 ? true : undefined), {
        timeoutMs: 20_000,
        what: "writes",
      });
    });
    after(async () => {
      await checker?.stop();
      await z.teardown();
      staged.remove();
    });

    /** Deploys the changed manifest while the checker writes; checks the history; returns the update's events. */
    async function roll(
      what: string,
      change: () => void,
    ): Promise<{ events: EventLine[]; before: ClusterView }> {
      change();
      const path = join(z.dir, `${D}-${what.replaceAll(" ", "-")}.yml`);
      writeFileSync(path, stringify(manifest));
      return act(what, () => z.zonalAsync("deploy", path));
    }

    /** Runs `run` (a CLI command that moves members) while the checker writes; checks the history. */
    async function act(
      what: string,
      run: (before: ClusterView) => Promise<CliResult>,
    ): Promise<{ events: EventLine[]; before: ClusterView }> {
      const before = await svc.whole(z);
      const t0 = Date.now();
      const failed0 = checker.failures.length;
      const r = await run(before);
      const t1 = Date.now();
      assert.equal(r.code, 0, `${r.err}${r.out}\n${await timeline(z, t0, D)}`);
      const events = (
        await z.director.http.request<EventLine[]>("GET", `/v1/events?deployment=${D}&limit=200`)
      ).filter((e) => Date.parse(e.at) >= t0);
      const pause = checker.longestGap(t0, t1);
      const failures = checker.failures.slice(failed0);
      const handover = events.find((e) => e.stage === "handover" && /handed its role/.test(e.message));
      console.log(
        `# ${svc.title}, ${what}: update took ${t1 - t0} ms; longest write pause ${pause} ms; ${failures.length} failed writes; ${handover?.message ?? "no handover"}`,
      );
      assert.ok(handover, `the leader handed over:\n${events.map((e) => e.message).join("\n")}`);
      // Failed writes only around the handover (from its start, its end less what it
      // took, to a second after) and, where the service stalls at a rejoin, inside a
      // member's step (from its start to its catch-up). An attempt counts where it began:
      // one sent in the pause may fail only at its timeout.
      const tookMs = Number(/in (\d+) ms/.exec(handover.message)![1]);
      const handoverEnd = Date.parse(handover.at);
      const windows = [{ from: handoverEnd - tookMs - 200, to: handoverEnd + 1000, what: "handover" }];
      if (svc.rejoinStalls) windows.push(...memberWindows(events));
      const inside = (at: number) => windows.filter((w) => at >= w.from && at <= w.to).map((w) => w.what);
      const outside = failures.filter((f) => inside(f.startedAt).length === 0);
      console.log(
        `#   failed writes (when sent): ${failures.map((f) => `+${f.startedAt - t0} ms (${inside(f.startedAt).join(", ") || "outside"})`).join(", ") || "none"}`,
      );
      assert.deepEqual(
        outside.map((f) => `sent +${f.startedAt - t0} ms, failed +${f.at - t0} ms: ${f.error}`),
        [],
        `failed writes outside the handover (ended +${handoverEnd - t0} ms)\n${await timeline(z, t0, D)}`,
      );
      await svc.whole(z);
      const v = await checker.verify();
      assert.deepEqual(v.missing, [], "every acknowledged row is there");
      assert.equal(await svc.twoWriters(checker, { from: t0, to: Date.now() }), null, "never two writers");
      return { events, before };
    }

    /**
     * Starts a task with the CLI (`args`, not followed), kills the control plane once the
     * task's first event of `stage` is out, starts it again, and follows the task to its end.
     */
    async function killMidTask(
      args: string[],
      stage: string,
      what: string,
    ): Promise<{ restartedAt: number; follow: Promise<CliResult> }> {
      const tStart = Date.now();
      const started = JSON.parse((await z.zonalAsync(...args, "--no-follow", "--json")).out) as {
        id: number;
      };
      await waitFor(
        async () =>
          (await z.director.http.request<EventLine[]>("GET", `/v1/events?deployment=${D}&limit=20`)).some(
            (e) => e.stage === stage && Date.parse(e.at) >= tStart,
          )
            ? true
            : undefined,
        { timeoutMs: 120_000, intervalMs: 50, what },
      );
      await z.stopControlPlane("SIGKILL");
      await z.up();
      return { restartedAt: Date.now(), follow: z.zonalAsync("task", String(started.id), "--follow") };
    }

    /** The members in the order their steps ran (`group/N`), from the events. */
    const stepOrder = (events: EventLine[]) =>
      [
        ...new Set(
          events.filter((e) => e.stage === "update" || e.stage === "recreate").map((e) => e.instance),
        ),
      ].filter((x): x is string => x !== null);
    const leaderKey = (c: ClusterView) => c.members.find((m) => m.member === c.leader!.member)!.key;

    it("restarts the server for a config change: followers first, then the leader after a handover", async () => {
      const { events, before } = await roll("config change", () =>
        svc.configChange(manifest.instance_groups[0]!.jobs[0]!.properties),
      );
      const order = stepOrder(events);
      assert.equal(order.length, 3, order.join(", "));
      assert.equal(order.at(-1), leaderKey(before), `the leader changes last: ${order.join(", ")}`);
      assert.notEqual((await clusterOf(z, D)).leader!.member, before.leader!.member, "another member leads");
      assert.equal(
        new Set(events.filter((e) => e.stage === "catch-up").map((e) => e.instance)).size,
        3,
        "each member caught up before the next went (the leader also after it handed over)",
      );
    });

    it("rebuilds every VM for a vm_type change in the same order, each disk moved to the new VM", async () => {
      const list = () => z.director.http.request<InstanceView[]>("GET", `/v1/instances?deployment=${D}`);
      const vmsBefore = await list();
      const { events, before } = await roll("vm_type change", () => {
        manifest.instance_groups[0]!.vm_type = "small";
      });
      const order = stepOrder(events);
      assert.equal(order.at(-1), leaderKey(before), `the leader is rebuilt last: ${order.join(", ")}`);
      const vmsAfter = await list();
      const disks = Object.values(z.state().disks);
      for (const b of vmsBefore) {
        const a = vmsAfter.find((x) => x.id === b.id)!;
        assert.notEqual(a.vmId, b.vmId, `${b.group}/${b.index} got a new VM`);
        assert.equal(a.diskId, b.diskId, `${b.group}/${b.index} kept its disk`);
        assert.equal(disks.find((d) => d.id === a.diskId)?.attachedTo, a.vmId, "attached to the new VM only");
      }
    });

    it("grows every member's disk: a new, bigger disk each, filled by the cluster, in the same order", async () => {
      const list = () => z.director.http.request<InstanceView[]>("GET", `/v1/instances?deployment=${D}`);
      const vmsBefore = await list();
      const { events, before } = await roll("disk grow", () => {
        delete manifest.instance_groups[0]!.persistent_disk_type;
        manifest.instance_groups[0]!.persistent_disk = 2048;
      });
      const order = stepOrder(events);
      assert.equal(order.length, 3, order.join(", "));
      assert.equal(order.at(-1), leaderKey(before), `the leader is rebuilt last: ${order.join(", ")}`);
      const vmsAfter = await list();
      const disks = Object.values(z.state().disks);
      for (const b of vmsBefore) {
        const a = vmsAfter.find((x) => x.id === b.id)!;
        const disk = disks.find((d) => d.id === a.diskId);
        assert.notEqual(a.diskId, b.diskId, `${b.group}/${b.index} got a new disk`);
        assert.equal(disk?.sizeMb, 2048, `${b.group}/${b.index}'s disk has 2048 MiB`);
        assert.equal(disk?.attachedTo, a.vmId, "attached to its new VM");
        assert.ok(!disks.some((d) => d.id === b.diskId), `${b.group}/${b.index}'s old disk is deleted`);
      }
    });

    it("moves everything off the leader's host (host drain): the leader hands over first, nothing placed there after", async () => {
      const list = () => z.director.http.request<InstanceView[]>("GET", `/v1/instances?deployment=${D}`);
      let host = "";
      const { events, before } = await act("host drain", async (c) => {
        host = (await list()).find((i) => `${i.group}/${i.index}` === leaderKey(c))!.host!;
        return z.zonalAsync("host", "drain", host, "--reason", "kernel update");
      });
      const order = stepOrder(events);
      assert.deepEqual(order, [leaderKey(before)], "only the leader's instance ran there");
      const moved = (await list()).find((i) => `${i.group}/${i.index}` === leaderKey(before))!;
      assert.notEqual(moved.host, host, "it runs elsewhere now");
      assert.equal(moved.zone, host.split("/")[0], "in the same zone");
      const m = z.json<Array<{ target: string; instances: string[] }>>("maintenance");
      assert.deepEqual(
        m.map((x) => [x.target, x.instances]),
        [[host, []]],
        "the host is in maintenance, empty",
      );
      const back = z.zonal("host", "undrain", host);
      assert.equal(back.code, 0, back.err);
      assert.deepEqual(z.json<unknown[]>("maintenance"), []);
    });

    it("moves the leader's member out of its zone (zone drain): the leader hands over first, the member runs in another zone it lists", async () => {
      const list = () => z.director.http.request<InstanceView[]>("GET", `/v1/instances?deployment=${D}`);
      let zone = "";
      const { events, before } = await act("zone drain", async (c) => {
        zone = (await list()).find((i) => `${i.group}/${i.index}` === leaderKey(c))!.zone;
        return z.zonalAsync("zone", "drain", zone, "--reason", "power work");
      });
      const order = stepOrder(events);
      assert.deepEqual(order, [leaderKey(before)], "only the leader's member was in that zone");
      const after = await list();
      assert.deepEqual(
        after.filter((i) => i.zone === zone).map((i) => `${i.group}/${i.index}`),
        [],
        `nothing runs in ${zone} now`,
      );
      const moved = after.find((i) => `${i.group}/${i.index}` === leaderKey(before))!;
      console.log(`#   ${leaderKey(before)} moved from ${zone} to ${moved.host}`);
      assert.equal((await svc.whole(z)).members.length, 3, "three members, the cluster whole");
      const back = z.zonal("zone", "undrain", zone);
      assert.equal(back.code, 0, back.err);
      assert.deepEqual(z.json<unknown[]>("maintenance"), []);
    });

    it("resumes a rolling update after the control plane was killed in the middle of it", async () => {
      svc.configChange(manifest.instance_groups[0]!.jobs[0]!.properties, 170);
      const path = join(z.dir, `${D}-crash.yml`);
      writeFileSync(path, stringify(manifest));
      let restartedAt = 0;
      const { events } = await act("control plane killed mid-update", async () => {
        // Killed once the first member is done, before the leader's turn.
        const killed = await killMidTask(["deploy", path], "catch-up", "the first member to be updated");
        restartedAt = killed.restartedAt;
        return killed.follow;
      });
      assert.ok(restartedAt > 0);
      const resumed = events.filter((e) => Date.parse(e.at) >= restartedAt);
      assert.ok(
        resumed.some((e) => e.stage === "handover" && /handed its role/.test(e.message)),
        "the leader handed over after the restart",
      );
      const again = await z.zonalAsync("deploy", path);
      assert.equal(again.code, 0, again.err);
      assert.match(
        again.out,
        /0 to create, 0 to recreate, 0 to update, 0 to delete, 3 unchanged/,
        "every member was updated",
      );
    });

    it("hands every agent over to a new zonal version while the jobs run on: the same job PIDs, no write lost or failed", async () => {
      const list = () => z.director.http.request<InstanceView[]>("GET", `/v1/instances?deployment=${D}`);
      const vmIds = (await list()).map((i) => i.vmId!);
      const agentsOf = () => z.json<VersionsView>("version").agents.filter((a) => a.deployment === D);
      const jobsBefore = vmIds.map((id) => jobProcesses(id));
      const agentsBefore = agentsOf();
      const old = staged.version;
      const next = `${old}-next.${Date.now()}`;
      staged.setVersion(next);
      await z.stopControlPlane("SIGTERM");
      await z.up();
      const behind = z.json<VersionsView>("version");
      assert.equal(behind.controlPlane, next, "the restarted control plane runs the new version");
      assert.deepEqual(
        behind.agents.filter((a) => a.deployment === D).map((a) => a.version),
        vmIds.map(() => old),
        "every agent still runs the old one",
      );
      assert.match(
        z.zonal("version").out,
        new RegExp(`do not run .*zonal upgrade-agents -d ${D}`),
        "and says how to move them",
      );
      const before = await svc.whole(z);
      const t0 = Date.now();
      const failed0 = checker.failures.length;
      // First the leader's successor cannot adopt (its VM's spec file is away): the task
      // stops there, the old agent keeps its jobs, its lease and the VIP.
      const leaderVm = (await list()).find((i) => `${i.group}/${i.index}` === leaderKey(before))!.vmId!;
      const specFile = join(z.dataDir, "vms", leaderVm, "ephemeral", "agent", "spec.json");
      renameSync(specFile, `${specFile}.away`);
      const broken = await z.zonalAsync("upgrade-agents", "-d", D);
      const tBroken = Date.now();
      renameSync(`${specFile}.away`, specFile);
      assert.notEqual(broken.code, 0, broken.out);
      assert.match(
        broken.out + broken.err,
        new RegExp(
          `upgrade-agents stopped at ${leaderKey(before)}: .*the new agent exited \\(code 1\\) before it was ready`,
        ),
      );
      console.log(
        `#   the broken handover, as the task said it: ${broken.out.split("\n").find((l) => /ERROR agent/.test(l))}`,
      );
      assert.equal((await svc.whole(z)).leader?.member, before.leader?.member, "the leader still leads");
      assert.equal(
        agentsOf().find((a) => a.vmId === leaderVm)?.pid,
        agentsBefore.find((a) => a.vmId === leaderVm)?.pid,
        "with its old agent",
      );
      // Again: the followers run the new agent already; the leader's hands over now.
      const t2 = Date.now();
      const r = await z.zonalAsync("upgrade-agents", "-d", D);
      const t1 = Date.now();
      assert.equal(r.code, 0, `${r.err}${r.out}\n${await timeline(z, t0, D)}`);
      const steps = r.out.split("\n").filter((l) => / agent: /.test(l));
      // Between the two runs the test calls the CLI synchronously, which stalls this
      // process's checker: the pause is measured over the two runs.
      const pause = Math.max(checker.longestGap(t0, tBroken), checker.longestGap(t2, t1));
      const failures = checker.failures.slice(failed0);
      console.log(
        `# ${svc.title}, agent upgrade ${old} -> ${next}: took ${t1 - t0} ms; longest write pause ${pause} ms (${checker.longestGap(t0, tBroken)} ms in the broken run, ${checker.longestGap(t2, t1)} ms in the second); ${failures.length} failed writes\n${steps.map((l) => `#   ${l}`).join("\n")}`,
      );
      assert.equal(steps.length, vmIds.length, `one step per VM:\n${r.out}`);
      assert.match(
        steps.at(-1)!,
        new RegExp(` ${leaderKey(before)}: agent ${old} -> `),
        "the leader's agent goes last",
      );
      assert.equal(
        steps.filter((l) => l.endsWith(`runs ${next} already`)).length,
        vmIds.length - 1,
        "the followers' agents were handed over by the first run",
      );
      const agentsAfter = agentsOf();
      for (const a of agentsAfter) {
        const b = agentsBefore.find((x) => x.vmId === a.vmId)!;
        assert.equal(a.version, next, `${a.vm}'s agent runs ${next}`);
        assert.notEqual(a.pid, b.pid, `${a.vm} runs a new agent process`);
      }
      assert.deepEqual(
        vmIds.map((id) => jobProcesses(id)),
        jobsBefore,
        "every job kept its process (pid and start time)",
      );
      assert.deepEqual(
        failures.map((f) => `sent +${f.startedAt - t0} ms: ${f.error}`),
        [],
        "no write failed: nothing was restarted or switched over",
      );
      await svc.whole(z);
      const v = await checker.verify();
      assert.deepEqual(v.missing, [], "every acknowledged row is there");
      assert.equal(await svc.twoWriters(checker, { from: t0, to: Date.now() }), null, "never two writers");
    });

    it("resumes upgrade-agents after the control plane was killed in the middle of it", async () => {
      const list = () => z.director.http.request<InstanceView[]>("GET", `/v1/instances?deployment=${D}`);
      const vmIds = (await list()).map((i) => i.vmId!);
      const jobsBefore = vmIds.map((id) => jobProcesses(id));
      const next = `${staged.version.split("-next")[0]}-next.${Date.now()}`;
      staged.setVersion(next);
      await z.stopControlPlane("SIGTERM");
      await z.up();
      await svc.whole(z);
      const t0 = Date.now();
      const failed0 = checker.failures.length;
      // Killed once the first agent has handed over.
      const { restartedAt, follow } = await killMidTask(
        ["upgrade-agents", "-d", D],
        "agent",
        "the first agent to hand over",
      );
      const r = await follow;
      const t1 = Date.now();
      assert.equal(r.code, 0, `${r.err}${r.out}\n${await timeline(z, t0, D)}`);
      const failures = checker.failures.slice(failed0);
      console.log(
        `# ${svc.title}, upgrade-agents with the control plane killed after the first agent: ${t1 - t0} ms, ${failures.length} failed writes\n${r.out
          .split("\n")
          .filter((l) => / agent: /.test(l))
          .map((l) => `#   ${l}`)
          .join("\n")}`,
      );
      const resumed = (
        await z.director.http.request<EventLine[]>("GET", `/v1/events?deployment=${D}&limit=50`)
      ).filter((e) => e.stage === "agent" && Date.parse(e.at) >= restartedAt);
      assert.ok(resumed.length > 0, "the resumed task went on with the agents left");
      const agents = z.json<VersionsView>("version").agents.filter((a) => a.deployment === D);
      assert.deepEqual(
        agents.map((a) => a.version),
        vmIds.map(() => next),
        "every agent runs the new version",
      );
      assert.deepEqual(
        vmIds.map((id) => jobProcesses(id)),
        jobsBefore,
        "every job kept its process",
      );
      assert.deepEqual(
        failures.map((f) => `sent +${f.startedAt - t0} ms: ${f.error}`),
        [],
        "no write failed",
      );
      const v = await checker.verify();
      assert.deepEqual(v.missing, [], "every acknowledged row is there");
    });
  });
}
