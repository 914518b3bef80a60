/**
 * A director killed in the middle of a deploy (store: a real PostgreSQL 15): on
 * restart the task resumes and ends; every VM and disk in the cloud still belongs
 * to an instance; a repeat deploy finds nothing to do. Orphans and VMs created
 * just before a crash are reconciled on restart.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse, stringify } from "yaml";
import { repoPath } from "../../src/cli/home.js";
import type { InstanceView } from "../../src/director/director.js";
import { waitFor } from "../../src/lib/sleep.js";
import { Store } from "../../src/store/store.js";
import type { TaskRecord } from "../../src/store/tasks.js";
import { TestPostgres } from "../../src/testing/postgres.js";
import { ZonalHarness } from "../../src/testing/zonal-harness.js";

describe("director crash and restart (PostgreSQL store)", () => {
  const pg = new TestPostgres();
  let z: ZonalHarness;
  let manifestPath: string;

  before(async () => {
    await pg.start();
    z = new ZonalHarness({ env: { DATABASE_URL: pg.url } });
    await z.up();
    const m = parse(readFileSync(repoPath("examples", "ssd.yml"), "utf8")) as {
      instance_groups: Array<Record<string, unknown>>;
      update: Record<string, unknown>;
    };
    m.instance_groups[0]!.instances = 6;
    m.instance_groups[0]!.vm_type = "small"; // any host: 6 instances with disks over 3 zones
    m.update.max_in_flight = 1;
    manifestPath = join(z.dir, "cache.yml");
    writeFileSync(manifestPath, stringify(m));
  });
  after(async () => {
    await z?.teardown();
    await pg.stop();
  });

  const restart = async () => {
    await z.up();
    assert.match(z.json<{ controlPlane: { store: string } }>("status").controlPlane.store, /^postgres /);
  };

  /** Every VM and disk of this director in the cloud belongs to exactly the instance that records it. */
  const accounted = async () => {
    const instances = z.json<InstanceView[]>("instances");
    const directorId = (await z.director.info()).directorId as string;
    const vms = await z.client.listVms({ metadata: { director: directorId } });
    const disks = await z.client.listDisks({ metadata: { director: directorId } });
    assert.deepEqual(new Set(vms.map((v) => v.id)), new Set(instances.map((i) => i.vmId).filter(Boolean)));
    assert.deepEqual(
      new Set(disks.map((d) => d.id)),
      new Set(instances.map((i) => i.diskId).filter(Boolean)),
    );
    return instances;
  };

  it("resumes a deploy after the director is killed mid-way; nothing is lost track of; a repeat deploy converges", async () => {
    const task = z.json<TaskRecord>("deploy", manifestPath, "--no-follow");
    await waitFor(async () => ((await z.director.task(task.id)).progress.done >= 2 ? true : undefined), {
      timeoutMs: 60_000,
      intervalMs: 50,
      what: "two instances deployed",
    });
    await z.stopControlPlane("SIGKILL");
    await restart();
    const followed = z.zonal("task", String(task.id), "--follow");
    assert.match(followed.out, /WARN resume: resumed after a director restart/);
    assert.match(followed.out, new RegExp(`task ${task.id} done`), followed.out + followed.err);

    const instances = await accounted();
    assert.equal(instances.length, 6);
    assert.ok(instances.every((i) => i.state === "running" && i.diskId));
    const again = z.zonal("deploy", manifestPath);
    assert.equal(again.code, 0, again.err);
    assert.match(again.out, /deployed cache: 0 create, 0 recreate, 0 update, 0 delete, 6 unchanged/);
  });

  it("adopts a VM whose creation the director did not get to record, and deletes orphans", async () => {
    const directorId = (await z.director.info()).directorId as string;
    const victim = z.json<InstanceView[]>("instances", "-d", "cache")[0]!;
    await z.stopControlPlane("SIGKILL");
    // As if the director died right after creating victim's VM, before recording it.
    // The control plane's data dir holds the key its secrets are sealed with.
    const store = await Store.open({ dataDir: join(z.home, "director"), databaseUrl: pg.url });
    await store.instances.update(victim.id, { vmId: null });
    await store.close();
    // And as if it had created a VM and a disk for an instance that never got recorded.
    const md = { director: directorId, deployment: "cache", instance: "i-never-recorded" };
    const stray = await z.client.createVm({ zone: "z1", vmType: { cpu: 1, ramMb: 256 }, metadata: md });
    const strayDisk = await z.client.createDisk({ zone: "z1", sizeMb: 16, metadata: md });

    await restart();
    const events = z.json<Array<{ message: string }>>("events", "-d", "cache").map((e) => e.message);
    assert.ok(
      events.some((m) => m.startsWith(`adopted VM ${victim.vmId} for ${victim.group}/${victim.index}`)),
      events.join("\n"),
    );
    assert.ok(
      events.some((m) =>
        m.startsWith(`deleted orphan VM ${stray.vm.id}: no instance i-never-recorded claims it`),
      ),
    );
    assert.ok(events.some((m) => m.startsWith(`deleted orphan disk ${strayDisk.id}`)));
    const instances = await accounted();
    assert.equal(instances.find((i) => i.id === victim.id)?.vmId, victim.vmId);
  });
});
