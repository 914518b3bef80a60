/**
 * Virtual addresses on the local cloud: the holder's agent serves the address and
 * forwards to its job; a new holder can bind it only once the old one is fenced —
 * a frozen holder still has it, so nobody else can serve it.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { LocalCloudClient } from "../../src/cloud/local/client.js";
import { sleep, waitFor } from "../../src/lib/sleep.js";
import { CloudHarness } from "../../src/testing/cloud-harness.js";
import { bootVm, HTTP_SERVER, nodeJob } from "../../src/testing/vms.js";

describe("virtual addresses on the local cloud", () => {
  const harness = new CloudHarness();
  let cloud: LocalCloudClient;
  before(async () => {
    cloud = await harness.start();
  });
  after(() => harness.teardown());

  it("serves a VIP from its holder, and moves it only after the old holder is fenced", async () => {
    const a = await bootVm(cloud, { zone: "z1" });
    const b = await bootVm(cloud, { zone: "z1" });
    for (const vm of [a, b]) {
      await vm.agent.apply({ jobs: [nodeJob("web", HTTP_SERVER(8080), 8080)] });
      assert.equal((await vm.agent.start(20_000)).jobsState, "running");
    }
    const vip = await cloud.allocateAddress({ zone: "z1" });
    assert.ok(vip.address.startsWith(harness.zonePrefix(0)) && vip.address.includes(".0."), vip.address);
    await cloud.assignAddress(vip.address, a.vm.id);
    await a.agent.setAddresses([{ address: vip.address, ports: [8080] }]);
    const url = `http://${vip.address}:8080/`;
    await waitFor(
      async () => ((await (await fetch(url)).text()) === `hello from ${a.vm.id}` ? true : undefined),
      {
        timeoutMs: 5000,
        what: "the VIP served by A",
      },
    );

    await cloud.freezeVm(a.vm.id);
    await cloud.assignAddress(vip.address, b.vm.id);
    const statuses = await b.agent.setAddresses([{ address: vip.address, ports: [8080] }]);
    assert.equal(statuses[0]?.state, "waiting");
    await sleep(1000);
    const waiting = (await b.agent.state()).addresses[0];
    assert.equal(waiting?.state, "waiting", "B cannot serve the VIP while frozen A still holds it");
    assert.match(waiting?.error ?? "", /EADDRINUSE/);

    await cloud.powerOffVm(a.vm.id); // fencing
    await waitFor(async () => ((await b.agent.state()).addresses[0]?.state === "bound" ? true : undefined), {
      timeoutMs: 5000,
      what: "B to bind the VIP once A is fenced",
    });
    assert.equal(await (await fetch(url)).text(), `hello from ${b.vm.id}`);
    await b.agent.setAddresses([]);
    assert.deepEqual((await b.agent.state()).addresses, []);
  });
});
