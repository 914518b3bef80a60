/**
 * The local cloud fails like an IaaS: crash, freeze and thaw a VM, fail and
 * restore a host or a zone, fencing by power off, and VMs that outlive the daemon.
 * (What a dead or cut-off VM looks like on the network: network.test.ts.)
 * Real daemon, real agent processes, real sockets on loopback.
 */
import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { DetachFailed, DiskInUse, NoValidHost } from "../../src/cloud/cloud.js";
import type { LocalCloudClient } from "../../src/cloud/local/client.js";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { groupMembers, isZombie, readStat } from "../../src/lib/proc.js";
import { sleep, waitFor } from "../../src/lib/sleep.js";
import { CloudHarness } from "../../src/testing/cloud-harness.js";
import { HeartbeatSink } from "../../src/testing/heartbeat-sink.js";
import { bootVm, ECHO_SERVER, nodeJob } from "../../src/testing/vms.js";

const HB_MS = 200;

function pidsOfVm(harness: CloudHarness, vmId: string): number[] {
  const proc = harness.state().vms[vmId]?.proc;
  assert.ok(proc, `VM ${vmId} has a process group`);
  return groupMembers(proc.pid, proc.startTime).map((p) => p.pid);
}

const gone = (pid: number): boolean => {
  const st = readStat(pid);
  return !st || isZombie(st);
};

function openSocket(
  host: string,
  port: number,
): Promise<{ socket: Socket; events: string[]; data: string[] }> {
  return new Promise((resolve, reject) => {
    const events: string[] = [];
    const data: string[] = [];
    const socket = connect({ host, port }, () => resolve({ socket, events, data }));
    socket.on("data", (d) => data.push(d.toString()));
    for (const ev of ["end", "close", "error"]) socket.on(ev, () => events.push(ev));
    socket.once("error", reject);
  });
}

describe("local cloud faults", () => {
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

  it("a frozen VM sends no heartbeats and keeps its TCP connections open; thawed, it answers on the same connection", async () => {
    const { vm, agent } = await bootVm(cloud, {
      zone: "z1",
      agent: { heartbeat: { url: sink.url, intervalMs: HB_MS } },
    });
    await agent.apply({ jobs: [nodeJob("echo", ECHO_SERVER(9000), 9000)] });
    assert.equal((await agent.start(20_000)).jobsState, "running");
    await waitFor(() => (sink.from(vm.id).length >= 2 ? true : undefined), {
      timeoutMs: 5000,
      what: "heartbeats",
    });

    const conn = await openSocket(vm.address, 9000);
    conn.socket.write("before");
    await waitFor(() => (conn.data.join("") === "before" ? true : undefined), {
      timeoutMs: 3000,
      what: "echo",
    });

    await cloud.freezeVm(vm.id);
    assert.equal((await cloud.getVm(vm.id))?.state, "frozen");
    const frozenAt = Date.now();
    conn.socket.write("during");
    await sleep(HB_MS * 8);
    // A beat already in flight at the moment of the freeze may still land; none after.
    assert.deepEqual(sink.from(vm.id, frozenAt + HB_MS), [], "no heartbeats while frozen");
    assert.equal(conn.data.join(""), "before", "nothing answers while frozen");
    assert.deepEqual(conn.events, [], "the connection is neither reset nor closed");
    const second = connect({ host: vm.address, port: 9000 });
    const secondEvents: string[] = [];
    for (const ev of ["connect", "error", "close"]) second.on(ev, () => secondEvents.push(ev));
    await sleep(1000);
    assert.deepEqual(secondEvents, [], "a new connection gets no answer at all: silent, not refused");

    await cloud.thawVm(vm.id);
    const thawedAt = Date.now();
    await waitFor(() => (conn.data.join("") === "beforeduring" ? true : undefined), {
      timeoutMs: 5000,
      what: "the echo of data sent while frozen",
    });
    await waitFor(() => (sink.from(vm.id, thawedAt).length > 0 ? true : undefined), {
      timeoutMs: 5000,
      what: "heartbeats after thaw",
    });
    conn.socket.destroy();
    second.destroy();
    await cloud.deleteVm(vm.id);
  });

  it("a crashed VM's disk stays attached and cannot go elsewhere until force-detached", async () => {
    const a = await bootVm(cloud, { zone: "z1" });
    const b = await bootVm(cloud, { zone: "z1" });
    const disk = await cloud.createDisk({ zone: "z1", sizeMb: 32 });
    await cloud.attachDisk(disk.id, a.vm.id);
    const pids = pidsOfVm(harness, a.vm.id);

    await cloud.crashVm(a.vm.id);
    assert.equal((await cloud.getVm(a.vm.id))?.state, "crashed");
    assert.ok(pids.every(gone), "a crash kills every process of the VM");
    assert.equal((await cloud.getDisk(disk.id))?.attachedTo, a.vm.id, "the disk stays attached (in-use)");

    await assert.rejects(cloud.attachDisk(disk.id, b.vm.id), DiskInUse);
    await assert.rejects(cloud.detachDisk(disk.id), DetachFailed);
    assert.equal((await cloud.getDisk(disk.id))?.attachedTo, a.vm.id, "a refused detach changes nothing");

    await cloud.detachDisk(disk.id, { force: true });
    const att = await cloud.attachDisk(disk.id, b.vm.id);
    assert.equal(att.vmId, b.vm.id);
    await cloud.deleteVm(a.vm.id);
    await cloud.deleteVm(b.vm.id);
    await cloud.deleteDisk(disk.id);
  });

  it("power off is real fencing: every process of a frozen VM is gone when it returns", async () => {
    const { vm, agent } = await bootVm(cloud, { zone: "z1" });
    // A job that also starts a process in a session of its own (as each postgres backend does).
    const escaper = {
      name: "escaper",
      type: "process",
      config: {
        command: `setsid sleep 1000 & echo $! > escaped.pid; exec ${process.execPath} -e '${ECHO_SERVER(9001)}'`,
      },
    };
    await agent.apply({ jobs: [escaper] });
    assert.equal((await agent.start(20_000)).jobsState, "running");
    const escapedFile = join(harness.dataDir, "vms", vm.id, "ephemeral", "jobs", "escaper", "escaped.pid");
    const escaped = await waitFor(
      () => (existsSync(escapedFile) ? Number(readFileSync(escapedFile, "utf8")) : undefined),
      {
        timeoutMs: 5000,
        what: "the escaped process",
      },
    );
    assert.notEqual(
      readStat(escaped)?.pgid,
      harness.state().vms[vm.id]!.proc!.pid,
      "it left the VM's process group",
    );
    const pids = [...pidsOfVm(harness, vm.id), escaped];
    assert.ok(pids.length >= 3, `agent and job run in the VM (got ${pids.length} processes)`);

    await cloud.freezeVm(vm.id);
    assert.ok(
      pids.every((p) => readStat(p)?.state === "T"),
      "frozen: all its processes are stopped",
    );
    await cloud.powerOffVm(vm.id);
    assert.deepEqual(
      pids.filter((p) => !gone(p)),
      [],
      "no process of the VM survives the power off",
    );
    assert.equal((await cloud.getVm(vm.id))?.state, "stopped");
    await cloud.deleteVm(vm.id);
  });

  it("a failed host silences its VMs, then powers them off, takes no new VMs, and restores them powered off", async () => {
    const { vm } = await bootVm(cloud, {
      zone: "z2",
      hostHints: ["z2/h1"],
      agent: { heartbeat: { url: sink.url, intervalMs: HB_MS } },
    });
    assert.equal(vm.host, "z2/h1");
    await waitFor(() => (sink.from(vm.id).length > 0 ? true : undefined), {
      timeoutMs: 5000,
      what: "heartbeats",
    });
    const pids = pidsOfVm(harness, vm.id);

    // Taken before the call: the cloud starts the power-off delay inside it, so a slow
    // call (a loaded machine) cannot make the power off look early.
    const failedAt = Date.now();
    await cloud.failHost("z2/h1", { powerOffAfterMs: 1500 });
    assert.equal((await cloud.getVm(vm.id))?.state, "unknown");
    assert.ok(
      pids.every((p) => readStat(p)?.state === "T"),
      "its VMs go silent at once",
    );
    assert.equal((await cloud.hosts()).find((h) => h.id === "z2/h1")?.state, "failed");

    const elsewhere = await cloud.createVm({
      zone: "z2",
      hostHints: ["z2/h1"],
      vmType: { cpu: 1, ramMb: 256 },
    });
    assert.equal(elsewhere.vm.host, "z2/h2", "no new VM on a failed host, even when hinted");
    await assert.rejects(
      cloud.createVm({ zone: "z2", vmType: { cpu: 1, ramMb: 256, hostAttributes: { ssd: true } } }),
      (err: unknown) => err instanceof NoValidHost && /z2\/h1: host has failed/.test(err.message),
    );

    await waitFor(() => (pids.every(gone) ? true : undefined), {
      timeoutMs: 5000,
      what: "the failed host's VMs to lose power",
    });
    assert.ok(Date.now() - failedAt >= 1500, "they lose power after the configured delay, not before");

    await cloud.restoreHost("z2/h1");
    assert.equal((await cloud.getVm(vm.id))?.state, "stopped", "restored VMs come back powered off");
    const restoredAt = Date.now();
    await sleep(HB_MS * 6);
    assert.deepEqual(sink.from(vm.id, restoredAt), [], "no heartbeat: nothing of it runs");
    assert.ok(pids.every(gone));
    const onSsd = await cloud.createVm({
      zone: "z2",
      vmType: { cpu: 1, ramMb: 256, hostAttributes: { ssd: true } },
    });
    assert.equal(onSsd.vm.host, "z2/h1", "the restored host takes VMs again");
    for (const id of [vm.id, elsewhere.vm.id, onSsd.vm.id]) await cloud.deleteVm(id);
  });

  it("a failed zone takes no VMs until restored, and its VMs come back powered off", async () => {
    const { vm } = await bootVm(cloud, { zone: "z3" });
    const pids = pidsOfVm(harness, vm.id);
    await cloud.failZone("z3", { powerOffAfterMs: 0 });
    await assert.rejects(
      cloud.createVm({ zone: "z3", vmType: { cpu: 1, ramMb: 256 } }),
      (err: unknown) =>
        err instanceof NoValidHost && /z3\/h1: host has failed; z3\/h2: host has failed/.test(err.message),
    );
    await waitFor(() => (pids.every(gone) ? true : undefined), { timeoutMs: 5000, what: "zone's VMs off" });
    assert.deepEqual(
      (await cloud.faults()).failedHosts.map((h) => h.id),
      ["z3/h1", "z3/h2"],
    );
    await cloud.restoreZone("z3");
    assert.equal((await cloud.getVm(vm.id))?.state, "stopped");
    assert.deepEqual((await cloud.faults()).failedHosts, []);
    await cloud.rebootVm(vm.id);
    assert.equal((await cloud.getVm(vm.id))?.state, "running", "an operator can power it on again");
    await cloud.deleteVm(vm.id);
  });
});
