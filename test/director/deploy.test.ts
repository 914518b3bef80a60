/**
 * The director end to end, through the `zonal` CLI: deploy examples/web.yml over
 * three zones, an ssd vm_type, an impossible manifest, a rolling update under the
 * update policy, and a control-plane restart that must not touch any job.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse, stringify } from "yaml";
import { readFileSync } from "node:fs";
import { AgentClient } from "../../src/agent/client.js";
import type { InstanceView } from "../../src/director/director.js";
import type { EventRecord, TaskRecord } from "../../src/store/tasks.js";
import { repoPath } from "../../src/cli/home.js";
import { waitFor } from "../../src/lib/sleep.js";
import { ZonalHarness } from "../../src/testing/zonal-harness.js";

const example = (name: string) =>
  parse(readFileSync(repoPath("examples", name), "utf8")) as Record<string, unknown>;

describe("director: deploy, place, update, restart", () => {
  const z = new ZonalHarness();
  const file = (name: string, doc: unknown) => {
    const path = join(z.dir, name);
    writeFileSync(path, stringify(doc));
    return path;
  };
  before(() => z.up());
  after(() => z.teardown());

  it("deploys examples/web.yml as 2 instances per zone, each answering HTTP on its own address", async () => {
    const r = z.zonal("deploy", repoPath("examples", "web.yml"));
    assert.equal(r.code, 0, r.err + r.out);
    assert.match(r.out, /task \d+ done: deployed web: 6 create/);
    const instances = z.json<InstanceView[]>("instances", "-d", "web");
    assert.equal(instances.length, 6);
    for (const i of instances) {
      for (const key of ["id", "group", "index", "zone", "host", "address", "state"] as const)
        assert.notEqual(i[key], undefined, key);
      assert.equal(i.state, "running");
      const body = await (await fetch(`http://${i.address}:8080/`)).text();
      assert.equal(body, `hello from web/${i.index} in ${i.vmId} (${i.address})\n`);
    }
    const zones = ["z1", "z2", "z3"].map((zone) => instances.filter((i) => i.zone === zone));
    assert.deepEqual(
      zones.map((x) => x.length),
      [2, 2, 2],
    );
    for (const inZone of zones)
      assert.equal(
        new Set(inZone.map((i) => i.host)).size,
        2,
        "two instances of a group never share a host here",
      );
  });

  it("puts a vm_type that needs ssd only on ssd hosts", async () => {
    const r = z.zonal("deploy", repoPath("examples", "ssd.yml"));
    assert.equal(r.code, 0, r.err + r.out);
    const hosts = await z.client.hosts();
    const ssd = new Set(hosts.filter((h) => h.attributes.ssd === true).map((h) => h.id));
    const cache = z.json<InstanceView[]>("instances", "-d", "cache");
    assert.equal(cache.length, 3);
    for (const i of cache) {
      assert.ok(ssd.has(i.host!), `${i.group}/${i.index} is on ${i.host}, an ssd host`);
      assert.ok(i.diskId, "each has its persistent disk");
    }
  });

  it("refuses a manifest that cannot be placed, with a reason per host, and changes nothing", async () => {
    const before = {
      tasks: z.json<TaskRecord[]>("tasks").length,
      deployments: z.json<unknown[]>("deployments").length,
      vms: (await z.client.listVms()).length,
    };
    const big: Record<string, unknown> = { ...example("ssd.yml"), name: "big" };
    (big.instance_groups as Array<Record<string, unknown>>)[0]!.instances = 30;
    (big.instance_groups as Array<Record<string, unknown>>)[0]!.vm_type = "medium-ssd";
    const r = z.zonal("deploy", file("big.yml", big));
    assert.equal(r.code, 1);
    assert.match(r.err, /cannot place the deployment; nothing was changed/);
    assert.match(r.err, /cache\/\d+ \(z1\): z1\/h1: \d+ MiB RAM free, needs 2048; z1\/h2: lacks ssd/);
    const afterward = {
      tasks: z.json<TaskRecord[]>("tasks").length,
      deployments: z.json<unknown[]>("deployments").length,
      vms: (await z.client.listVms()).length,
    };
    assert.deepEqual(afterward, before);
  });

  it("rolls a change out canary first, then in batches of max_in_flight, one zone at a time", async () => {
    const web = example("web.yml") as {
      instance_groups: Array<{ jobs: Array<{ properties: { env: Record<string, string> } }> }>;
    };
    web.instance_groups[0]!.jobs[0]!.properties.env.GREETING = "howdy";
    const task = z.json<TaskRecord>("deploy", file("web2.yml", web));
    assert.equal(task.state, "done", task.result ?? "");
    const events = z.json<TaskRecord & { events: EventRecord[] }>("task", String(task.id)).events;
    const starts = events
      .filter((e) => /: started$/.test(e.message) && (e.stage === "canary" || e.stage === "batch"))
      .map((e) => e.message);
    assert.deepEqual(starts, [
      "canary web/0 in z1: started",
      "batch 1 of 3 in z1: web/3: started",
      "batch 2 of 3 in z2: web/1, web/4: started",
      "batch 3 of 3 in z3: web/2, web/5: started",
    ]);
    // Nothing in a later zone starts before the earlier zone's instances are running.
    const order = events.filter((e) => e.instance && /^running/.test(e.message)).map((e) => e.instance);
    assert.deepEqual(order.slice(0, 2), ["web/0", "web/3"]);
    assert.deepEqual(new Set(order.slice(2, 4)), new Set(["web/1", "web/4"]));
    assert.deepEqual(new Set(order.slice(4, 6)), new Set(["web/2", "web/5"]));
    for (const i of z.json<InstanceView[]>("instances", "-d", "web")) {
      assert.match(await (await fetch(`http://${i.address}:8080/`)).text(), /^howdy from web\//);
    }
  });

  it("restarting the control plane restarts no job on any VM", async () => {
    const jobs = async () => {
      const out = new Map<string, string>();
      for (const i of z.json<InstanceView[]>("instances")) {
        const ep = await z.client.agentEndpoint(i.vmId!);
        const state = await new AgentClient({
          address: ep.address,
          port: ep.agentPort,
          token: ep.token,
        }).state();
        for (const j of state.jobs)
          out.set(`${i.group}/${i.index}/${j.name}`, `${j.state} pid ${j.pid} restarts ${j.restarts}`);
      }
      return out;
    };
    const before = await jobs();
    assert.equal(before.size, 9);
    await z.stopControlPlane("SIGTERM");
    const up = z.zonal(
      "up",
      "--detach",
      "--cloud-file",
      z.configPath,
      "--cloud-listen",
      "127.0.0.1:0",
      "--listen",
      "127.0.0.1:0",
    );
    assert.equal(up.code, 0, up.err);
    await waitFor(
      () => (z.json<InstanceView[]>("instances").every((i) => i.state === "running") ? true : undefined),
      {
        timeoutMs: 20_000,
        what: "heartbeats to reach the new control plane",
      },
    );
    assert.deepEqual(await jobs(), before);
  });
});
