/**
 * An agent hands over to a new agent process while its job runs on: the job keeps
 * its process, the new agent supervises it (a crash of the job is seen and it
 * restarts), the job's address never stops answering. A successor that cannot
 * adopt (its VM's spec file is gone) exits; the old agent takes its job back and
 * says why.
 */
import assert from "node:assert/strict";
import { readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { LocalCloudClient } from "../../src/cloud/local/client.js";
import { isZombie, readStat, signalPid } from "../../src/lib/proc.js";
import { waitFor } from "../../src/lib/sleep.js";
import { CloudHarness } from "../../src/testing/cloud-harness.js";
import { bootVm, HTTP_SERVER, jobProcesses, nodeJob } from "../../src/testing/vms.js";

describe("agent handover in a local VM", () => {
  const harness = new CloudHarness();
  let cloud: LocalCloudClient;
  before(async () => {
    cloud = await harness.start();
  });
  after(() => harness.teardown());

  it("keeps the job's process; a successor that cannot adopt leaves the old agent in charge", async () => {
    const { vm, agent } = await bootVm(cloud, { zone: "z1" });
    await agent.apply({ version: "1", jobs: [nodeJob("web", HTTP_SERVER(8080), 8080)] });
    assert.equal((await agent.start(20_000)).jobsState, "running");
    // Through a virtual address the agent forwards: keep-alive connections pass through it.
    const vip = await cloud.allocateAddress({ zone: "z1" });
    await cloud.assignAddress(vip.address, vm.id);
    await agent.setAddresses([{ address: vip.address, ports: [8080] }]);
    const url = `http://${vip.address}:8080/`;
    await waitFor(() => fetch(url).then((r) => r.text()), { timeoutMs: 5000, what: "the VIP to answer" });
    let failures = 0;
    let requests = 0;
    const errors: string[] = [];
    const poll = setInterval(() => {
      requests += 1;
      fetch(url, { signal: AbortSignal.timeout(2000) }).then(
        (r) => r.text(),
        (err: unknown) => {
          failures += 1;
          errors.push(String((err as { cause?: unknown }).cause ?? err));
        },
      );
    }, 20);
    try {
      const job = jobProcesses(vm.id);
      const first = await agent.info();

      // The VM's spec file is gone: the successor cannot adopt and exits.
      const specPath = join(harness.dataDir, "vms", vm.id, "ephemeral", "agent", "spec.json");
      renameSync(specPath, `${specPath}.away`);
      await assert.rejects(agent.handOver(), /the new agent exited \(code 1\) before it was ready/);
      renameSync(`${specPath}.away`, specPath);
      assert.equal((await agent.info()).pid, first.pid, "the old agent goes on");
      assert.deepEqual(jobProcesses(vm.id), job, "with the same job process");
      assert.equal((await agent.state()).jobs[0]?.state, "running");

      const r = await agent.handOver();
      assert.equal(r.from, first.pid);
      await waitFor(
        async () => ((await agent.info().catch(() => undefined))?.pid === r.pid ? true : undefined),
        {
          timeoutMs: 10_000,
          what: "the new agent to answer",
        },
      );
      await waitFor(
        () => (readStat(first.pid) === undefined || isZombie(readStat(first.pid)!) ? true : undefined),
        {
          timeoutMs: 5000,
          what: "the old agent to exit",
        },
      );
      assert.deepEqual(jobProcesses(vm.id), job, "the job kept its process");
      const s = await agent.state();
      assert.equal(s.jobs[0]?.state, "running");
      assert.equal(s.jobs[0]?.pid, Number(job.web!.split("@")[0]));

      await new Promise((res) => setTimeout(res, 500));
      console.log(`# ${requests} requests to the job while the agents handed over: ${failures} failed`);
      assert.deepEqual(errors, [], "the job answered throughout, through the VIP");

      // The new agent supervises it: a crash is seen (in /proc) and the job restarts.
      signalPid(Number(job.web!.split("@")[0]), "SIGKILL");
      await waitFor(
        async () => {
          const j = (await agent.state()).jobs[0];
          return j?.state === "running" && j.restarts === 1 && j.pid !== s.jobs[0]?.pid ? true : undefined;
        },
        { timeoutMs: 15_000, what: "the job restarted by the new agent" },
      );
    } catch (err) {
      // The agents' own account: the VM's console.
      console.log(readFileSync(join(harness.dataDir, "vms", vm.id, "console.log"), "utf8").slice(-6000));
      throw err;
    } finally {
      clearInterval(poll);
    }
  });
});
