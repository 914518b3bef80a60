import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Disk, Vm } from "../cloud/cloud.js";
import type { InstanceRecord } from "../store/instances.js";
import { decide } from "./reconcile.js";

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
    assert.deepEqual(
      actions.map((a) => `${a.kind} ${"vm" in a ? a.vm.id : a.disk.id}${"why" in a ? `: ${a.why}` : ""}`),
      [
        "adopt-vm vm-b",
        "delete-vm vm-b2: instance web/1 has VM (another)",
        "delete-vm vm-x: instance web/2 has VM vm-c",
        "delete-vm vm-z: no instance i-9 claims it",
        "adopt-disk disk-b",
        "delete-disk disk-z: no instance gone claims it",
      ],
    );
  });
});
