/**
 * A whole zone fails. Instances of groups that must stay in their zone wait for it
 * (no recovery attempts, no flapping) while a meltdown is raised and reported; a
 * stateless group with `relocate: true` is rebuilt in a healthy zone at once.
 * When the zone is restored, the waiting instances are recovered.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse, stringify } from "yaml";
import { repoPath } from "../../src/cli/home.js";
import type { InstanceView } from "../../src/director/director.js";
import { sleep, waitFor } from "../../src/lib/sleep.js";
import type { TaskRecord } from "../../src/store/tasks.js";
import { ZonalHarness } from "../../src/testing/zonal-harness.js";

interface Health {
  downZones: string[];
  meltdown: { all: boolean; deployments: string[] };
  deployments: Array<{ name: string; meltdown: boolean; waiting: number }>;
  instances: Array<{ key: string; decision?: string }>;
}

describe("a failed zone", () => {
  const z = new ZonalHarness();
  const answers = async (i: InstanceView) =>
    (await (await fetch(`http://${i.address}:8080/`, { signal: AbortSignal.timeout(1000) })).text()).includes(
      i.vmId!,
    );

  before(async () => {
    await z.up();
    const deploy = (name: string, group: Record<string, unknown>) => {
      const m = parse(readFileSync(repoPath("examples", "web.yml"), "utf8")) as {
        name: string;
        instance_groups: Array<Record<string, unknown>>;
      };
      m.name = name;
      m.instance_groups = [{ ...m.instance_groups[0]!, ...group }];
      const path = join(z.dir, `${name}.yml`);
      writeFileSync(path, stringify(m));
      const r = z.zonal("deploy", path);
      assert.equal(r.code, 0, r.err + r.out);
    };
    deploy("zoned", { name: "web", instances: 3, zones: ["z3", "z2"], relocate: false });
    deploy("stateless", { name: "api", instances: 1, zones: ["z3", "z2"], relocate: true });
  });
  after(() => z.teardown());

  it("keeps its instances waiting, relocates a stateless group, reports the meltdown, and recovers on restore", async () => {
    const before = z.json<InstanceView[]>("instances");
    const inZ3 = before.filter((i) => i.zone === "z3");
    assert.deepEqual(inZ3.map((i) => `${i.group}/${i.index}`).sort(), ["api/0", "web/0", "web/2"]);
    await z.client.failZone("z3", { powerOffAfterMs: 0 });

    const health = await waitFor(
      () => {
        const h = z.json<Health>("health");
        const waiting = h.instances
          .filter((i) => i.decision === "wait")
          .map((i) => i.key)
          .sort();
        return h.downZones.includes("z3") && waiting.join() === "web/0,web/2" ? h : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 200, what: "the monitor to see z3 down" },
    );
    assert.deepEqual(
      health.meltdown.deployments,
      ["zoned"],
      "2 of its 3 instances are down at once: a meltdown",
    );
    assert.match(z.zonal("health", "-d", "zoned").out, /zoned +3 +1 +2 +0 +2 +yes/);

    const api = await waitFor(
      async () => {
        const i = z.json<InstanceView[]>("instances", "-d", "stateless")[0]!;
        return i.zone === "z2" && i.state === "running" && (await answers(i).catch(() => false))
          ? i
          : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: "api/0 to be rebuilt in z2" },
    );
    assert.notEqual(api.vmId, inZ3.find((i) => i.group === "api")!.vmId);

    await sleep(6000); // longer than two timeouts: nothing may flap meanwhile
    const webIds = new Set(inZ3.filter((i) => i.group === "web").map((i) => i.id));
    const recoveries = z.json<TaskRecord[]>("tasks", "-d", "zoned").filter((t) => t.kind === "recover");
    assert.ok(
      recoveries.every((t) => !webIds.has((t.payload as { instanceId: string }).instanceId)),
      "no recovery was tried for the instances that wait for their zone",
    );
    const events = z
      .json<Array<{ message: string }>>("events", "-d", "zoned", "-n", "500")
      .map((e) => e.message);
    assert.equal(
      events.filter((m) => m === "web/0: zone z3 is down; waiting for it").length,
      1,
      "said once, no flapping",
    );
    const all = z.json<Array<{ message: string }>>("events", "-n", "500").map((e) => e.message);
    assert.ok(all.includes("meltdown: zoned"), "the meltdown is reported as an event");

    await z.client.restoreZone("z3");
    const recovered = await waitFor(
      async () => {
        const web = z.json<InstanceView[]>("instances", "-d", "zoned").filter((i) => webIds.has(i.id));
        const ok = await Promise.all(
          web.map(async (i) => i.state === "running" && (await answers(i).catch(() => false))),
        );
        return ok.every(Boolean) ? web : undefined;
      },
      { timeoutMs: 40_000, intervalMs: 300, what: "web/0 and web/2 to be recovered after the restore" },
    );
    for (const i of recovered) {
      assert.equal(i.zone, "z3", "they stay in their zone");
      assert.notEqual(i.vmId, inZ3.find((x) => x.id === i.id)!.vmId);
    }
    const after = z.json<InstanceView[]>("events", "-d", "zoned", "-n", "500") as unknown as Array<{
      message: string;
    }>;
    assert.ok(after.some((e) => e.message === "web/0: zone z3 is back; recovering by resurrect"));
  });
});
