import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Disk, Vm } from "../cloud/cloud.js";
import type { InstanceRecord } from "../store/instances.js";
import type { StandbyRecord } from "../store/standbys.js";
import { decide, type ReconcileAction } from "./reconcile.js";

const label = (a: ReconcileAction) => {
  const what = "vm" in a ? a.vm.id : "disk" in a ? a.disk.id : a.address.address;
  return `${a.kind} ${what}${"why" in a ? `: ${a.why}` : ""}`;
};

const inst = (id: string, vmId: string | null, diskId: string | null = null): InstanceRecord => ({
  id,
  deployment: "d",
  group: "web",
  index: Number(id.slice(2)),
  zone: "z1",
  state: "creating",
  desired: "started",
  vmId,
  host: null,
  address: null,
  agentPort: null,
  agentToken: "t",
  vmResources: null,
  diskId,
  diskSizeMb: null,
  specHash: null,
  vip: null,
  createdAt: "",
  updatedAt: "",
});
const vm = (id: string, instance: string): Vm => ({
  id,
  zone: "z1",
  host: "z1/h1",
  address: "127.1.1.1",
  agentPort: 6868,
  state: "running",
  vmType: { cpu: 1, ramMb: 512 },
  metadata: { instance },
  disks: [],
  createdAt: "",
});
const disk = (id: string, instance: string): Disk => ({
  id,
  zone: "z1",
  sizeMb: 64,
  state: "available",
  metadata: { instance },
  createdAt: "",
});

describe("reconcile.decide", () => {
  it("keeps what is recorded, adopts what was created but not recorded, deletes orphans", () => {
    const actions = decide(
      [inst("i-0", "vm-a", "disk-a"), inst("i-1", null), inst("i-2", "vm-c")],
      [vm("vm-a", "i-0"), vm("vm-b", "i-1"), vm("vm-b2", "i-1"), vm("vm-x", "i-2"), vm("vm-z", "i-9")],
      [disk("disk-a", "i-0"), disk("disk-b", "i-1"), disk("disk-z", "gone")],
    );
    assert.deepEqual(actions.map(label), [
      "adopt-vm vm-b",
      "delete-vm vm-b2: instance web/1 has VM (another)",
      "delete-vm vm-x: instance web/2 has VM vm-c",
      "delete-vm vm-z: no instance i-9 claims it",
      "adopt-disk disk-b",
      "delete-disk disk-z: no instance gone claims it",
    ]);
  });

  it("does the same for standby VMs and virtual addresses; a promoted standby's VM is the instance's", () => {
    const standby = (id: string, vmId: string | null): StandbyRecord => ({
      id,
      deployment: "d",
      group: "web",
      zone: "z1",
      vmId,
      host: null,
      address: null,
      agentPort: null,
      agentToken: "t",
      vmResources: null,
      createdAt: "",
    });
    const svm = (id: string, s: string): Vm => ({ ...vm(id, ""), metadata: { standby: s } });
    const addr = (address: string, instance: string) => ({
      address,
      zone: "z1",
      metadata: { instance, role: "vip" },
    });
    const promoted = { ...inst("i-0", "vm-p"), vip: "127.1.0.1" };
    const actions = decide(
      [promoted, { ...inst("i-1", "vm-q"), vip: null }],
      [svm("vm-p", "s-old"), svm("vm-s", "s-1"), svm("vm-t", "s-2"), svm("vm-u", "s-gone")],
      [],
      [standby("s-1", "vm-s"), standby("s-2", null)],
      [addr("127.1.0.1", "i-0"), addr("127.1.0.2", "i-1"), addr("127.1.0.3", "i-9")],
    );
    assert.deepEqual(actions.map(label), [
      "adopt-standby-vm vm-t",
      "delete-vm vm-u: no standby s-gone claims it",
      "adopt-address 127.1.0.2",
      "release-address 127.1.0.3: no instance i-9 claims it",
    ]);
  });
});
