/**
 * The orchestration core in one process (CoreHarness: the real control plane over the
 * in-memory cloud and fake agents): the executor's deploy, the health monitor's
 * recoveries by resurrect and by a warm standby, and reconcile after a control-plane
 * crash. Each case prints how long it took; the same paths with real processes and
 * real faults are test/director and test/health.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { TaskRecord } from "../wire/tasks.js";
import type { InstanceView } from "./director.js";
import { waitFor } from "../lib/sleep.js";
import { CoreHarness } from "../testing/core-harness.js";

const manifest = (name: string, strategy: string, instances: number, zones: string[]) => ({
  name,
  instance_groups: [
    {
      name: "web",
      instances,
      zones,
      vm_type: "small",
      strategy,
      ...(strategy === "standby" ? { ports: [8080] } : {}),
      jobs: [{ name: "web", type: "process", properties: { command: ["sleep", "infinity"] } }],
    },
  ],
  update: { canaries: 1, max_in_flight: 3, canary_watch_time: 0, update_watch_time: 0 },
});

describe("the orchestration core, in process: memory cloud, fake agents", () => {
  const h = new CoreHarness();
  before(() => h.up());
  after(() => h.teardown());

  const finished = (t: TaskRecord) =>
    waitFor(
      async () => {
        const now = await h.client.task(t.id);
        return now.state === "done" || now.state === "failed" ? now : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 10, what: `task ${t.id}` },
    );
  const instances = (d: string) => h.client.instances(d);
  const took = (what: string, t0: number) => console.log(`# ${what}: ${Date.now() - t0} ms`);

  it("deploys: one VM per instance in its zone, the spec applied, the jobs started", async () => {
    const t0 = Date.now();
    const task = await finished(await h.client.deploy(manifest("core", "resurrect", 3, ["z1", "z2", "z3"])));
    took("deploy of 3 instances", t0);
    assert.equal(task.state, "done", task.result ?? "");
    const list = await instances("core");
    assert.deepEqual(
      list.map((i) => [i.index, i.zone, i.state]),
      [
        [0, "z1", "running"],
        [1, "z2", "running"],
        [2, "z3", "running"],
      ],
    );
    for (const i of list) {
      const vm = await h.cloud.getVm(i.vmId!);
      assert.equal(vm?.zone, i.zone);
      const state = h.agents.of(i.vmId!)!.state();
      assert.equal(state.instance?.index, i.index);
      assert.equal(state.jobsState, "running");
    }
  });

  it("starts the jobs of a VM that booted again with its jobs stopped (the agent leaves that to others)", async () => {
    const [inst] = await instances("core");
    const agent = h.agents.of(inst!.vmId!)!;
    const t0 = Date.now();
    agent.started = false; // what a reboot leaves: the spec restored, the jobs stopped
    await waitFor(() => (agent.started ? true : undefined), {
      timeoutMs: 10_000,
      intervalMs: 10,
      what: "the monitor to start the jobs",
    });
    took("jobs started after a reboot", t0);
    const events = await h.client.http.request<Array<{ message: string }>>(
      "GET",
      "/v1/events?deployment=core&limit=50",
    );
    assert.ok(events.some((e) => /booted again\): started them/.test(e.message)));
  });

  it("resurrects a crashed VM: fenced first, a new VM in its zone, jobs running", async () => {
    const [victim] = await instances("core");
    const t0 = Date.now();
    await h.cloud.crashVm(victim!.vmId!);
    const back = await waitFor(
      async () => {
        const now = (await instances("core")).find((i) => i.id === victim!.id)!;
        return now.vmId !== victim!.vmId && now.state === "running" ? now : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 20, what: "a new VM for core/web/0" },
    );
    took("crash to running again (resurrect)", t0);
    assert.equal(back.zone, victim!.zone);
    assert.equal(await h.cloud.vmExists(victim!.vmId!), false, "the crashed VM was deleted");
    const said = (await h.client.events({ deployment: "core", limit: 100 })).map((e) => e.message);
    const fenced = said.findIndex((m) => m.startsWith(`fenced: ${victim!.vmId} powered off`));
    assert.ok(fenced >= 0, said.join("\n"));
    assert.equal(h.agents.of(back.vmId!)!.state().jobsState, "running");
  });

  it("recovers a standby group on its zone's warm VM, which takes over the instance's address", async () => {
    const task = await finished(await h.client.deploy(manifest("warm", "standby", 1, ["z1"])));
    assert.equal(task.state, "done", task.result ?? "");
    const standbyVm = await waitFor(
      async () =>
        (await h.cloud.listVms({ metadata: { deployment: "warm" } })).find((v) => v.metadata.standby),
      { timeoutMs: 20_000, intervalMs: 20, what: "the warm standby VM" },
    );
    const [inst] = await instances("warm");
    assert.ok(inst!.vip, "a standby instance has a virtual address");
    const t0 = Date.now();
    await h.cloud.failHost(inst!.host!);
    const back = await waitFor(
      async () => {
        const now = (await instances("warm"))[0]!;
        return now.vmId !== inst!.vmId && now.state === "running" ? now : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 20, what: "the standby to take over" },
    );
    took("host failure to running on the warm standby", t0);
    assert.equal(back.vmId, standbyVm.id, "the warm VM, not a new one");
    assert.equal(back.vip, inst!.vip);
    const vip = (await h.cloud.listAddresses()).find((a) => a.address === inst!.vip);
    assert.equal(vip?.holder, standbyVm.id, "the address moved to the standby");
    assert.deepEqual(
      h.agents.of(standbyVm.id)!.addresses.map((a) => `${a.address}:${a.port}`),
      [`${inst!.vip}:8080`],
    );
  });

  it("reconciles after a control-plane crash: a VM and a disk no instance claims are deleted", async () => {
    const directorId = h.director.id;
    await h.down();
    const md = { director: directorId, deployment: "core", instance: "not-an-instance" };
    const { vm } = await h.cloud.createVm({ zone: "z1", vmType: { cpu: 1, ramMb: 512 }, metadata: md });
    const disk = await h.cloud.createDisk({ zone: "z1", sizeMb: 64, metadata: md });
    const t0 = Date.now();
    await h.up();
    took("restart with reconcile", t0);
    assert.equal(await h.cloud.vmExists(vm.id), false);
    assert.equal(await h.cloud.getDisk(disk.id), undefined);
    const said = (await h.client.events({ deployment: "core", limit: 100 })).map((e) => e.message);
    assert.ok(
      said.some((m) => m.includes(vm.id) && m.includes("no instance not-an-instance claims it")),
      said.join("\n"),
    );
    const list: InstanceView[] = await instances("core");
    assert.ok(list.every((i) => i.state === "running"));
  });
});
