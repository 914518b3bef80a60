/**
 * VMs outlive the local cloud daemon: killed (SIGKILL) and restarted, the daemon
 * adopts the VMs that kept running and marks the ones that died meanwhile crashed.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import type { LocalCloudClient } from "../../src/cloud/local/client.js";
import { groupMembers, isZombie, readStat, signalGroup } from "../../src/lib/proc.js";
import { waitFor } from "../../src/lib/sleep.js";
import { CloudHarness } from "../../src/testing/cloud-harness.js";
import { bootVm, HTTP_SERVER, nodeJob } from "../../src/testing/vms.js";

const CLI_MAIN = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));

describe("local cloud daemon restart", () => {
  const harness = new CloudHarness();
  let cloud: LocalCloudClient;
  before(async () => {
    cloud = await harness.start();
  });
  after(() => harness.teardown());

  it("refuses a second daemon on the address base a live one holds, naming it, even before it has VMs", async () => {
    const other = mkdtempSync(join(tmpdir(), "zonal-second-cloud-"));
    try {
      const r = spawnSync(
        process.execPath,
        [
          CLI_MAIN,
          "cloud",
          "serve",
          "--config",
          harness.configPath,
          "--data-dir",
          join(other, "cloud"),
          "--listen",
          "127.0.0.1:0",
        ],
        { encoding: "utf8", timeout: 30_000 },
      );
      assert.notEqual(r.status, 0, "the second daemon must not start");
      assert.match(
        r.stderr,
        new RegExp(`address_base ${harness.addressBase} .* is used by the local cloud in ${harness.dataDir}`),
      );
      assert.deepEqual(await cloud.listVms(), [], "the first daemon has no VM yet, and still answers");
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it("keeps VMs running while it is down and adopts them when it comes back", async () => {
    const survivor = await bootVm(cloud, { zone: "z1" });
    await survivor.agent.apply({ jobs: [nodeJob("web", HTTP_SERVER(8080), 8080)] });
    assert.equal((await survivor.agent.start(20_000)).jobsState, "running");
    const victim = await bootVm(cloud, { zone: "z2" });
    const survivorProc = harness.state().vms[survivor.vm.id]!.proc!;
    const victimProc = harness.state().vms[victim.vm.id]!.proc!;

    await harness.killDaemon();
    await assert.rejects(cloud.zones(), "the daemon is down");
    assert.equal((await survivor.agent.info()).vmId, survivor.vm.id, "the agent answers without the daemon");
    const body = await (await fetch(`http://${survivor.vm.address}:8080/`)).text();
    assert.equal(body, `hello from ${survivor.vm.id}`, "its job serves without the daemon");
    // While the daemon is away, one VM dies (as if its hypervisor process was killed).
    signalGroup(victimProc.pid, victimProc.startTime, "SIGKILL");
    await waitFor(
      () => (groupMembers(victimProc.pid, victimProc.startTime).length === 0 ? true : undefined),
      {
        timeoutMs: 5000,
        what: "victim to die",
      },
    );

    cloud = await harness.start();
    assert.match(harness.log(), new RegExp(`adopted VM ${survivor.vm.id}`));
    const adopted = await cloud.getVm(survivor.vm.id);
    assert.equal(adopted?.state, "running");
    assert.equal(
      harness.state().vms[survivor.vm.id]?.proc?.pid,
      survivorProc.pid,
      "same process, not a reboot",
    );
    assert.equal((await cloud.getVm(victim.vm.id))?.state, "crashed", "a VM that died meanwhile is crashed");

    // The new daemon controls the adopted VM: a crash fault really kills it.
    await cloud.crashVm(survivor.vm.id);
    const st = readStat(survivorProc.pid);
    assert.ok(!st || isZombie(st), "the adopted VM's agent is gone after a crash");
    assert.equal((await cloud.getVm(survivor.vm.id))?.state, "crashed");
  });

  it("notices a VM whose processes die while it runs", async () => {
    const { vm } = await bootVm(cloud, { zone: "z3" });
    const proc = harness.state().vms[vm.id]!.proc!;
    signalGroup(proc.pid, proc.startTime, "SIGKILL");
    await waitFor(async () => ((await cloud.getVm(vm.id))?.state === "crashed" ? true : undefined), {
      timeoutMs: 5000,
      what: "the daemon to mark the VM crashed",
    });
  });
});
