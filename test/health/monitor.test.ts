/**
 * The health monitor beyond plain silence: jobs that keep failing, recovery while a
 * long deploy holds the deployment's lock, zombies, and a director killed in the
 * middle of a recovery.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse, stringify } from "yaml";
import { loadSettings } from "../../src/agent/settings.js";
import { repoPath } from "../../src/cli/home.js";
import type { InstanceView } from "../../src/director/director.js";
import { fetcherFor } from "../../src/lib/fetch.js";
import { sleep, waitFor } from "../../src/lib/sleep.js";
import type { TaskRecord } from "../../src/store/tasks.js";
import { idleHeartbeat } from "../../src/testing/heartbeat-sink.js";
import { ZonalHarness } from "../../src/testing/zonal-harness.js";

const web = () =>
  parse(readFileSync(repoPath("examples", "web.yml"), "utf8")) as {
    name: string;
    update: Record<string, unknown>;
    instance_groups: Array<Record<string, unknown>>;
  };

describe("health monitor", () => {
  const z = new ZonalHarness();
  const deploy = (
    name: string,
    groups: Array<Record<string, unknown>>,
    update: Record<string, unknown> = {},
    follow = true,
  ) => {
    const m = web();
    m.name = name;
    m.update = { ...m.update, ...update };
    m.instance_groups = groups.map((g) => ({ ...m.instance_groups[0]!, ...g }));
    const path = join(z.dir, `${name}.yml`);
    writeFileSync(path, stringify(m));
    if (!follow) return z.json<TaskRecord>("deploy", path, "--no-follow");
    const r = z.zonal("deploy", path);
    assert.equal(r.code, 0, r.err + r.out);
    return undefined;
  };
  const one = (d: string) => z.json<InstanceView[]>("instances", "-d", d)[0]!;
  const serving = async (i: InstanceView) => {
    try {
      return (
        await (await fetch(`http://${i.address}:8080/`, { signal: AbortSignal.timeout(500) })).text()
      ).includes(i.vmId!);
    } catch {
      return false;
    }
  };
  const recoveredFrom = (d: string, oldVm: string, timeoutMs = 30_000) =>
    waitFor(
      async () => {
        const i = one(d);
        return i.vmId !== oldVm && i.state === "running" && (await serving(i)) ? i : undefined;
      },
      { timeoutMs, intervalMs: 200, what: `${d} to be recovered` },
    );

  before(async () => {
    await z.up("--max-job-restarts", "2");
  });
  after(() => z.teardown());

  it("treats an instance whose jobs keep failing as failed, and rebuilds it", async () => {
    const flaky = web().instance_groups[0]!.jobs as Array<{ properties: { command: string[] } }>;
    const script = flaky[0]!.properties.command[2]!;
    // The job dies whenever a file named `crash` sits in its (ephemeral) job directory.
    flaky[0]!.properties.command[2] = `setInterval(() => require("fs").existsSync("crash") && process.exit(1), 100);\n${script}`;
    deploy("flaky", [{ name: "web", instances: 1, zones: ["z1"], jobs: flaky }]);
    const before = one("flaky");
    writeFileSync(join(z.dataDir, "vms", before.vmId!, "ephemeral", "jobs", "web", "crash"), "");
    const after = await recoveredFrom("flaky", before.vmId!);
    assert.equal(after.zone, "z1");
    const events = z
      .json<Array<{ message: string }>>("events", "-d", "flaky", "-n", "200")
      .map((e) => e.message);
    assert.ok(
      events.some((m) => /^web\/0 is failing: its jobs restarted [2-9] times \(web\)$/.test(m)),
      events.join("\n"),
    );
  });

  it("refuses a malformed heartbeat naming the field, and still recovers another deployment's crashed VM", async () => {
    deploy("hostile", [{ name: "web", instances: 1, zones: ["z1"] }]);
    deploy("victim", [{ name: "web", instances: 1, zones: ["z2"] }]);
    const hostile = one("hostile");
    const victim = one("victim");
    // What the hostile VM's jobs could read: its agent's own settings (token, heartbeat URL, CA).
    const settings = loadSettings(join(z.dataDir, "vms", hostile.vmId!));
    const url = settings.heartbeat!.url;
    const post = (body: unknown) =>
      fetcherFor(url, settings.tls?.ca)(url, {
        method: "POST",
        headers: { authorization: `Bearer ${settings.token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(5000),
      });
    const bad = await post({ vmId: hostile.vmId, jobs: "x" });
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /jobs: .*expected array/);
    assert.equal((await post(idleHeartbeat("vm-nobody"))).status, 401, "a VM nobody owns is refused");
    assert.equal(
      (await post(idleHeartbeat(hostile.vmId!))).status,
      204,
      "its own well-formed heartbeat counts",
    );
    await z.client.crashVm(victim.vmId!);
    const after = await recoveredFrom("victim", victim.vmId!, 60_000);
    assert.notEqual(after.vmId, victim.vmId);
  });

  it("deletes a zombie VM that claims an instance which runs elsewhere", async () => {
    const inst = one("flaky");
    const directorId = (await z.director.info()).directorId as string;
    const { vm } = await z.client.createVm({
      zone: "z1",
      vmType: { cpu: 1, ramMb: 256 },
      metadata: { director: directorId, deployment: "flaky", instance: inst.id },
      agent: { heartbeat: { url: `${z.director.endpoint.url}/v1/heartbeats` } },
    });
    await waitFor(async () => ((await z.client.getVm(vm.id)) === undefined ? true : undefined), {
      timeoutMs: 15_000,
      intervalMs: 200,
      what: "the zombie to be deleted",
    });
    const events = z
      .json<Array<{ message: string }>>("events", "-d", "flaky", "-n", "200")
      .map((e) => e.message);
    assert.ok(
      events.includes(`zombie VM ${vm.id} (running) deleted: web/0 runs on ${inst.vmId} now`),
      events.join("\n"),
    );
    assert.equal(one("flaky").vmId, inst.vmId, "the instance keeps its VM");
  });

  it("recovers an instance while a long deploy holds its deployment's lock", async () => {
    deploy("busy", [
      { name: "a", instances: 1, zones: ["z2"] },
      { name: "b", instances: 1, zones: ["z3"] },
    ]);
    const a = z.json<InstanceView[]>("instances", "-d", "busy").find((i) => i.group === "a")!;
    const m = web();
    const env = (m.instance_groups[0]!.jobs as Array<{ properties: { env: Record<string, string> } }>)[0]!
      .properties.env;
    env.GREETING = "slowly";
    const task = deploy(
      "busy",
      [
        { name: "a", instances: 1, zones: ["z2"] },
        { name: "b", instances: 1, zones: ["z3"], jobs: m.instance_groups[0]!.jobs },
      ],
      { canary_watch_time: "25s" },
      false,
    )!;
    await waitFor(
      () => (z.json<TaskRecord>("task", String(task.id)).state === "running" ? true : undefined),
      {
        timeoutMs: 10_000,
        what: "the deploy to run",
      },
    );
    await z.client.crashVm(a.vmId!);
    const recovered = await waitFor(
      async () => {
        const now = z.json<InstanceView[]>("instances", "-d", "busy").find((i) => i.group === "a")!;
        return now.vmId !== a.vmId && now.state === "running" && (await serving(now)) ? now : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 200, what: "a/0 to be recovered during the deploy" },
    );
    assert.ok(recovered);
    assert.equal(
      z.json<TaskRecord>("task", String(task.id)).state,
      "running",
      "the deploy still holds the lock",
    );
    const done = z.zonal("task", String(task.id), "--follow");
    assert.match(done.out, /done: deployed busy/);
  });

  it("resumes a recovery after the director is killed in the middle of it", async () => {
    const slow = web().instance_groups[0]!.jobs as Array<Record<string, unknown>>;
    slow[0]!.hooks = { pre_start: "sleep 3" };
    deploy("slow", [{ name: "web", instances: 1, zones: ["z2"], jobs: slow }], { canary_watch_time: "0s" });
    const before = one("slow");
    await z.client.crashVm(before.vmId!);
    const recovery = await waitFor(
      async () =>
        (await z.director.tasks({ deployment: "slow", limit: 5 })).find(
          (t) => t.kind === "recover" && t.state === "running",
        ),
      { timeoutMs: 15_000, intervalMs: 20, what: "the recovery to start" },
    );
    await sleep(500); // inside the pre-start hook of the new VM
    await z.stopControlPlane("SIGKILL");
    assert.equal(
      (await z.client.getVm(before.vmId!)) ?? "deleted",
      "deleted",
      "the failed VM was fenced and deleted before the kill",
    );
    await z.up("--max-job-restarts", "2");
    const followed = z.zonal("task", String(recovery.id), "--follow");
    assert.match(followed.out, /resumed after a director restart/);
    assert.match(followed.out, new RegExp(`task ${recovery.id} done`));
    const after = await recoveredFrom("slow", before.vmId!);
    const directorId = (await z.director.info()).directorId as string;
    const vms = await z.client.listVms({ metadata: { director: directorId, deployment: "slow" } });
    assert.deepEqual(
      vms.map((v) => v.id),
      [after.vmId],
      "exactly one VM for the instance: nothing leaked",
    );
  });

  it("holds recoveries in a meltdown until the operator overrides the guard", async () => {
    deploy("trio", [{ name: "web", instances: 3, zones: ["z1", "z2", "z3"] }]);
    const before = z.json<InstanceView[]>("instances", "-d", "trio");
    const victims = before.filter((i) => i.zone !== "z3");
    for (const v of victims) await z.client.crashVm(v.vmId!);
    await waitFor(
      () => {
        const h = z.json<{
          meltdown: { deployments: string[] };
          instances: Array<{ key: string; deployment: string; decision?: string }>;
        }>("health", "-d", "trio");
        return h.meltdown.deployments.includes("trio") &&
          h.instances.filter((i) => i.decision === "wait").length === 2
          ? true
          : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 200, what: "a meltdown of trio" },
    );
    await sleep(4000);
    assert.deepEqual(
      z.json<TaskRecord[]>("tasks", "-d", "trio").filter((t) => t.kind === "recover"),
      [],
      "nothing is recreated blindly in a meltdown",
    );
    const o = z.zonal("health", "override", "-d", "trio");
    assert.match(o.out, /meltdown guard overridden for trio/);
    for (const v of victims) {
      await waitFor(
        async () => {
          const now = z.json<InstanceView[]>("instances", "-d", "trio").find((i) => i.id === v.id)!;
          return now.vmId !== v.vmId && now.state === "running" && (await serving(now)) ? true : undefined;
        },
        {
          timeoutMs: 30_000,
          intervalMs: 200,
          what: `${v.group}/${v.index} to be recovered after the override`,
        },
      );
    }
    assert.equal(z.zonal("health", "override", "-d", "trio", "--off").code, 0);
    assert.deepEqual(z.json<{ overrides: { deployments: string[] } }>("health").overrides.deployments, []);
  });

  it("recovers nothing of a deployment whose recovery the operator paused, until it is resumed", async () => {
    const paused = z.zonal("health", "pause", "-d", "trio");
    assert.equal(paused.code, 0, paused.err);
    assert.match(paused.out, /recovery paused for trio/);
    assert.match(z.zonal("health", "-d", "trio").out, /trio .* paused/);
    const victim = z.json<InstanceView[]>("instances", "-d", "trio")[0]!;
    const t0 = Date.now();
    await z.client.crashVm(victim.vmId!);
    const seen = await waitFor(
      () =>
        z
          .json<{
            instances: Array<{ id: string; decision?: string; health: string }>;
          }>("health", "-d", "trio")
          .instances.find((i) => i.id === victim.id && i.decision === "wait"),
      { timeoutMs: 15_000, intervalMs: 200, what: "the monitor to see the crash and wait" },
    );
    console.log(`# paused: ${victim.group}/${victim.index} judged ${seen.health} and left waiting`);
    await sleep(4000);
    const recoveries = () =>
      z
        .json<TaskRecord[]>("tasks", "-d", "trio")
        .filter((t) => t.kind === "recover" && Date.parse(t.createdAt) >= t0);
    assert.deepEqual(recoveries(), [], "nothing recovered while paused");
    const events = z.zonal("events", "-d", "trio").out;
    assert.match(
      events,
      /recovery paused \(the monitor watches, rebuilds nothing\) for trio by the operator/,
    );
    const resumed = z.zonal("health", "resume", "-d", "trio", "--json");
    assert.deepEqual(JSON.parse(resumed.out), { all: false, deployments: [] });
    await recoveredFrom("trio", victim.vmId!); // the first instance: the victim
    assert.equal(recoveries().length, 1, "one recovery once resumed");
  });
});
