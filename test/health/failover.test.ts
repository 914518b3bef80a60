/**
 * Failover end to end, for each strategy (resurrect, standby) and each fault (crash
 * a VM, freeze a VM, fail its host, isolate it on the network): a counter on a persistent disk keeps being
 * incremented through the fault. Afterwards the instance serves again from a new
 * VM, every acknowledged increment is on the disk, and the disk's write log shows
 * one VM after the other, never two at once.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse, stringify } from "yaml";
import { repoPath } from "../../src/cli/home.js";
import { waitFor } from "../../src/lib/sleep.js";
import { CounterWriter, readWriteLog } from "../../src/testing/counter.js";
import { ZonalHarness } from "../../src/testing/zonal-harness.js";

type Fault = "crash" | "freeze" | "fail-host" | "isolate";
const FAULTS: Array<[Fault, string]> = [
  ["crash", "z1"],
  ["freeze", "z2"],
  ["fail-host", "z3"],
  // Cut off from the control plane and every other VM, yet alive and reachable by
  // clients: only fencing (power off through the cloud) keeps it from writing on.
  ["isolate", "z1"],
];

for (const strategy of ["resurrect", "standby"] as const) {
  describe(`failover by ${strategy}`, () => {
    const z = new ZonalHarness();
    const instance = async (zone: string) =>
      (await z.director.instances("counter")).find((i) => i.zone === zone)!;

    before(async () => {
      await z.up();
      const m = parse(readFileSync(repoPath("examples", "counter.yml"), "utf8")) as {
        instance_groups: Array<Record<string, unknown>>;
      };
      Object.assign(m.instance_groups[0]!, { instances: 3, zones: ["z1", "z2", "z3"], strategy });
      const path = join(z.dir, "counter.yml");
      writeFileSync(path, stringify(m));
      const r = z.zonal("deploy", path);
      assert.equal(r.code, 0, r.err + r.out);
    });
    after(() => z.teardown());

    for (const [fault, zone] of FAULTS) {
      it(`${fault}: serves again from a new VM with every acknowledged write, never two copies at once`, async () => {
        const inst = await instance(zone);
        const oldVm = inst.vmId!;
        const url = async () => {
          const i = await instance(zone);
          return `http://${strategy === "standby" ? i.vip : i.address}:8080`;
        };
        if (strategy === "standby") assert.ok(inst.vip, "a standby instance has a virtual address");
        const writer = new CounterWriter(url).start();
        await waitFor(() => (writer.acked.length >= 5 ? true : undefined), {
          timeoutMs: 10_000,
          what: "writes before the fault",
        });

        const t0 = Date.now();
        if (fault === "crash") await z.client.crashVm(oldVm);
        if (fault === "freeze") await z.client.freezeVm(oldVm);
        // The host's VMs stay frozen (not powered off) for 30 s: only fencing can free the disk.
        if (fault === "fail-host") await z.client.failHost(inst.host!, { powerOffAfterMs: 30_000 });
        const isolation =
          fault === "isolate"
            ? await z.client.addNetworkFault({ kind: "isolate", target: oldVm })
            : undefined;

        const recovered = await waitFor(
          async () => {
            const now = await instance(zone);
            if (now.vmId === oldVm || now.state !== "running") return undefined;
            const body = await (await fetch(`${await url()}/`, { signal: AbortSignal.timeout(500) })).text();
            return body.includes(now.vmId!) ? now : undefined;
          },
          { timeoutMs: 30_000, intervalMs: 100, what: `${inst.group}/${inst.index} to serve again` },
        );
        const tookMs = Date.now() - t0;
        const before = writer.acked.length;
        await waitFor(() => (writer.acked.length >= before + 5 ? true : undefined), {
          timeoutMs: 10_000,
          what: "writes after recovery",
        });
        await writer.stop();

        const body = await (await fetch(`${await url()}/`)).text();
        const final = Number(body.split(" ")[0]);
        assert.ok(
          final >= writer.max,
          `counter ${final} holds every acknowledged increment (max ${writer.max})`,
        );
        const log = readWriteLog(join(z.dataDir, "disks", recovered.diskId!, "writes.log"));
        for (const n of writer.acked) assert.ok(log.written.has(n), `acknowledged ${n} is on the disk`);
        assert.equal(log.interleaved, false, `one writer at a time: ${log.writers.join(" -> ")}`);
        assert.equal(log.writers.at(-1), recovered.vmId, "the new VM writes now");
        // A crashed or frozen VM cannot write after the fault; an isolated one still
        // serves the clients that reach it, until it is fenced — before the new VM
        // writes its first line.
        const newFirst = log.lines.find((l) => l.vm === recovered.vmId)!.at;
        const cutoff = fault === "isolate" ? newFirst : t0 + 1000;
        assert.ok(
          !log.lines.some((l) => l.vm === oldVm && l.at > cutoff),
          `the old VM never wrote after ${fault === "isolate" ? "the new VM began" : "the fault"}`,
        );
        assert.equal(await z.client.getVm(oldVm), undefined, "the failed VM was fenced and deleted");

        const events = z
          .json<Array<{ message: string; instance: string | null }>>("events", "-d", "counter", "-n", "200")
          .filter((e) => e.instance === `${inst.group}/${inst.index}`)
          .map((e) => e.message);
        const at = (re: RegExp) => events.findLastIndex((m) => re.test(m));
        assert.ok(
          at(/^fenced: /) >= 0 && at(/^fenced: /) < at(/^jobs started/),
          "fenced before anything started elsewhere",
        );
        assert.ok(at(/^healthy: serving again/) > at(/^jobs started/));
        if (strategy === "standby") assert.ok(at(/^standby vm-\w+ on .* takes over/) >= 0, events.join("\n"));
        console.log(`# ${strategy} ${fault}: serving again after ${tookMs} ms`);
        if (fault === "fail-host") await z.client.restoreHost(inst.host!);
        if (isolation) await z.client.healNetwork(isolation.id);
      });
    }

    it(`host drain: ${strategy === "standby" ? "its zone's warm VM takes the instance over" : "a new VM on the zone's other host"}, with every acknowledged write`, async () => {
      // A zone whose warm VM is not on the instance's own host (the one drained); after
      // the faults above a zone's warm VM may share it.
      const warmOf = async (zone: string) => {
        const host = (await instance(zone)).host;
        return Object.values(z.state().vms).find(
          (v) =>
            v.zone === zone &&
            v.host !== host &&
            v.metadata.deployment === "counter" &&
            v.metadata.standby !== undefined,
        );
      };
      let zone = "z2";
      if (strategy === "standby") {
        const zones: string[] = [];
        for (const zn of ["z1", "z2", "z3"]) if (await warmOf(zn)) zones.push(zn);
        assert.ok(zones.length > 0, "a zone whose warm VM is on another host than its instance");
        zone = zones[0]!;
      }
      const warm = await warmOf(zone);
      const inst = await instance(zone);
      const url = async () => {
        const i = await instance(zone);
        return `http://${strategy === "standby" ? i.vip : i.address}:8080`;
      };
      const writer = new CounterWriter(url).start();
      await waitFor(() => (writer.acked.length >= 5 ? true : undefined), {
        timeoutMs: 10_000,
        what: "writes before the drain",
      });
      const t0 = Date.now();
      const r = await z.zonalAsync("host", "drain", inst.host!, "--reason", "firmware");
      assert.equal(r.code, 0, r.err + r.out);
      const tookMs = Date.now() - t0;
      const moved = await instance(zone);
      assert.notEqual(moved.host, inst.host, "it runs off the drained host");
      assert.notEqual(moved.vmId, inst.vmId);
      if (strategy === "standby")
        assert.equal(
          moved.vmId,
          warm!.id,
          `the warm VM took it over:\n${z
            .json<Array<{ message: string }>>("events", "-d", "counter", "-n", "30")
            .map((e) => e.message)
            .join("\n")}`,
        );
      const before = writer.acked.length;
      await waitFor(() => (writer.acked.length >= before + 5 ? true : undefined), {
        timeoutMs: 10_000,
        what: "writes after the drain",
      });
      await writer.stop();
      const gap = writer.longestGap(t0);
      console.log(`# ${strategy} host drain: moved in ${tookMs} ms, longest write gap ${gap} ms`);
      const body = await (await fetch(`${await url()}/`)).text();
      assert.ok(Number(body.split(" ")[0]) >= writer.max, "the counter holds every acknowledged increment");
      const log = readWriteLog(join(z.dataDir, "disks", moved.diskId!, "writes.log"));
      for (const n of writer.acked) assert.ok(log.written.has(n), `acknowledged ${n} is on the disk`);
      assert.equal(log.interleaved, false, `one writer at a time: ${log.writers.join(" -> ")}`);
      assert.equal(z.zonal("host", "undrain", inst.host!).code, 0);
    });
  });
}
