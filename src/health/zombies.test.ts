import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Vm } from "../cloud/cloud.js";
import type { InstanceRecord } from "../store/instances.js";
import type { StandbyRecord } from "../store/standbys.js";
import { findZombies, readZombies } from "./zombies.js";

const vm = (id: string, metadata: Record<string, string>) => ({ id, metadata }) as unknown as Vm;
const inst = (id: string, vmId: string | null) =>
  ({ id, vmId, group: "web", index: Number(id.slice(2)) }) as InstanceRecord;
const standby = (id: string, vmId: string | null) => ({ id, vmId }) as StandbyRecord;

describe("findZombies", () => {
  it("finds VMs whose instance or standby moved on, and leaves current, promoted and in-flight ones", () => {
    const zombies = findZombies(
      [
        vm("vm-a", { instance: "i-0" }), // current
        vm("vm-old", { instance: "i-0" }), // recovered elsewhere: zombie
        vm("vm-new", { instance: "i-1" }), // i-1 has no VM recorded yet: a task is creating it
        vm("vm-x", { instance: "i-2" }), // i-2 locked by a task
        vm("vm-p", { standby: "s-9" }), // promoted standby: i-3 runs on it
        vm("vm-s", { standby: "s-1" }), // current standby
        vm("vm-s2", { standby: "s-1" }), // s-1 has another VM: zombie
        vm("vm-gone", { instance: "i-7" }), // instance deleted: zombie
      ],
      [inst("i-0", "vm-a"), inst("i-1", null), inst("i-2", "vm-y"), inst("i-3", "vm-p")],
      [standby("s-1", "vm-s")],
      (id) => id === "i-2",
    );
    assert.deepEqual(
      zombies.map((z) => `${z.vm.id}: ${z.why}`),
      [
        "vm-old: web/0 runs on vm-a now",
        "vm-s2: standby s-1 now has vm-s",
        "vm-gone: no instance i-7 any more",
      ],
    );
  });

  it("leaves a VM a task creates while the zombies are read: its record is read after the VMs", async () => {
    // The world: i-0 on vm-a. A deploy records i-1 and then creates vm-new while the
    // cloud lists the VMs (the list already shows it).
    const instances = [inst("i-0", "vm-a")];
    const zombies = await readZombies(
      {
        vms: async () => {
          await new Promise((r) => setImmediate(r)); // the cloud answers later
          instances.push(inst("i-1", "vm-new"));
          return [vm("vm-a", { instance: "i-0" }), vm("vm-new", { instance: "i-1" })];
        },
        instances: () => Promise.resolve([...instances]),
        standbys: () => Promise.resolve([]),
      },
      () => false,
    );
    assert.deepEqual(zombies, []);
  });
});
