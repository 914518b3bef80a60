/**
 * The agent inside a local VM: a `process` job answers on the VM's own address,
 * heartbeats carry the job states with the VM's token, logs come back over the
 * API, and after a reboot the agent keeps its spec but does not start jobs by itself.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { LocalCloudClient } from "../../src/cloud/local/client.js";
import { waitFor } from "../../src/lib/sleep.js";
import { CloudHarness } from "../../src/testing/cloud-harness.js";
import { HeartbeatSink } from "../../src/testing/heartbeat-sink.js";
import { bootVm, HTTP_SERVER, nodeJob } from "../../src/testing/vms.js";

describe("agent in a local VM", () => {
  const harness = new CloudHarness();
  const sink = new HeartbeatSink();
  let cloud: LocalCloudClient;
  before(async () => {
    await sink.start();
    cloud = await harness.start();
  });
  after(async () => {
    await harness.teardown();
    await sink.stop();
  });

  it("runs a process job on the VM's address, reports it in heartbeats, serves its logs, and survives a reboot stopped", async () => {
    const { vm, agent, token } = await bootVm(cloud, { zone: "z2", agent: { heartbeat: { url: sink.url } } });
    assert.ok(vm.address.startsWith(harness.zonePrefix(1)), `${vm.address} is a z2 address`);
    const disk = await cloud.createDisk({ zone: "z2", sizeMb: 16 });
    await cloud.attachDisk(disk.id, vm.id);
    await agent.apply({
      version: "1",
      instance: { deployment: "d", group: "web", index: 0, id: "i-1" },
      persistent_disk: { id: disk.id },
      jobs: [
        nodeJob("web", HTTP_SERVER(8080), 8080, {
          hooks: { pre_start: 'echo "disk at $ZONAL_PERSISTENT_DIR"' },
        }),
      ],
    });
    assert.equal((await agent.start(20_000)).jobsState, "running");
    assert.equal(await (await fetch(`http://${vm.address}:8080/`)).text(), `hello from ${vm.id}`);

    const beat = await waitFor(() => sink.from(vm.id).find((r) => r.beat.jobsState === "running"), {
      timeoutMs: 5000,
      what: "a heartbeat with the job running",
    });
    assert.equal(beat.token, token, "heartbeats carry the VM's token");
    assert.deepEqual(beat.beat.instance, { deployment: "d", group: "web", index: 0, id: "i-1" });
    assert.equal(beat.beat.specVersion, "1");
    assert.deepEqual(
      beat.beat.jobs.map((j) => [j.name, j.state, j.healthy]),
      [["web", "running", true]],
    );
    assert.equal(beat.beat.disk.persistent?.id, disk.id);
    assert.equal(beat.beat.load.length, 3);
    const beats = sink.from(vm.id);
    assert.ok(
      beats.slice(1).every((b, i) => b.beat.seq > beats[i]!.beat.seq),
      "sequence numbers grow",
    );

    const logs = await agent.logs("web", 50);
    assert.ok(
      logs.some((l) => l.startsWith("disk at ") && l.includes(disk.id)),
      logs.join("\n"),
    );

    await cloud.rebootVm(vm.id);
    await waitFor(() => agent.info(), { timeoutMs: 20_000, what: "agent after reboot" });
    const state = await agent.state();
    assert.equal(state.specVersion, "1", "the spec survives the reboot");
    assert.deepEqual(
      state.jobs.map((j) => j.state),
      ["stopped"],
      "jobs do not start by themselves after a reboot",
    );
    assert.equal((await agent.start(20_000)).jobsState, "running");
    assert.equal(await (await fetch(`http://${vm.address}:8080/`)).text(), `hello from ${vm.id}`);
  });
});
