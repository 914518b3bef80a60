/**
 * Reconciling the store with the cloud after a crash: every VM and disk that
 * carries this director's id must belong to an instance. `decide` is pure; `apply`
 * carries the actions out and says each one in a sentence.
 *
 * - adopt: the instance was recorded, then the director died between creating the
 *   VM (or disk) and recording its id; the thing is the instance's (its agent token
 *   was recorded before the VM was created).
 * - delete: an orphan — no instance claims it, or its instance has another one.
 * Standby VMs (metadata `standby`) and virtual addresses follow the same rules.
 */
import type { Disk, VirtualAddress, Vm } from "../cloud/cloud.js";
import type { InstanceRecord } from "../store/instances.js";
import type { StandbyRecord } from "../store/standbys.js";
import type { DirectorContext } from "./context.js";

export type ReconcileAction =
  | { kind: "adopt-vm"; instance: InstanceRecord; vm: Vm }
  | { kind: "adopt-standby-vm"; standby: StandbyRecord; vm: Vm }
  | { kind: "adopt-address"; instance: InstanceRecord; address: VirtualAddress }
  | { kind: "release-address"; address: VirtualAddress; why: string }
  | { kind: "delete-vm"; vm: Vm; why: string }
  | { kind: "adopt-disk"; instance: InstanceRecord; disk: Disk }
  | { kind: "delete-disk"; disk: Disk; why: string };

export function decide(
  instances: InstanceRecord[],
  vms: Vm[],
  disks: Disk[],
  standbys: StandbyRecord[] = [],
  addresses: VirtualAddress[] = [],
): ReconcileAction[] {
  const byId = new Map(instances.map((i) => [i.id, i]));
  const standbyById = new Map(standbys.map((s) => [s.id, s]));
  const actions: ReconcileAction[] = [];
  const adoptedVm = new Set<string>();
  for (const vm of vms) {
    if (vm.metadata.standby !== undefined) {
      const s = standbyById.get(vm.metadata.standby);
      // A promoted standby's VM belongs to the instance that now records it.
      if (instances.some((i) => i.vmId === vm.id)) continue;
      if (!s) actions.push({ kind: "delete-vm", vm, why: `no standby ${vm.metadata.standby} claims it` });
      else if (s.vmId === vm.id) continue;
      else if (s.vmId === null && !adoptedVm.has(s.id)) {
        adoptedVm.add(s.id);
        actions.push({ kind: "adopt-standby-vm", standby: s, vm });
      } else actions.push({ kind: "delete-vm", vm, why: `standby ${s.id} has VM ${s.vmId ?? "(another)"}` });
      continue;
    }
    const inst = byId.get(vm.metadata.instance ?? "");
    if (!inst)
      actions.push({ kind: "delete-vm", vm, why: `no instance ${vm.metadata.instance ?? "?"} claims it` });
    else if (inst.vmId === vm.id) continue;
    else if (inst.vmId === null && !adoptedVm.has(inst.id)) {
      adoptedVm.add(inst.id);
      actions.push({ kind: "adopt-vm", instance: inst, vm });
    } else
      actions.push({
        kind: "delete-vm",
        vm,
        why: `instance ${inst.group}/${inst.index} has VM ${inst.vmId ?? "(another)"}`,
      });
  }
  const adoptedDisk = new Set<string>();
  for (const disk of disks) {
    const inst = byId.get(disk.metadata.instance ?? "");
    if (!inst)
      actions.push({
        kind: "delete-disk",
        disk,
        why: `no instance ${disk.metadata.instance ?? "?"} claims it`,
      });
    else if (inst.diskId === disk.id) continue;
    else if (inst.diskId === null && !adoptedDisk.has(inst.id)) {
      adoptedDisk.add(inst.id);
      actions.push({ kind: "adopt-disk", instance: inst, disk });
    } else
      actions.push({
        kind: "delete-disk",
        disk,
        why: `instance ${inst.group}/${inst.index} has disk ${inst.diskId ?? "(another)"}`,
      });
  }
  const adoptedAddress = new Set<string>();
  // Instance VIPs only: a cluster's address belongs to its group, not to an instance.
  for (const a of addresses.filter((x) => x.metadata.role === "vip")) {
    const inst = byId.get(a.metadata.instance ?? "");
    if (!inst)
      actions.push({
        kind: "release-address",
        address: a,
        why: `no instance ${a.metadata.instance ?? "?"} claims it`,
      });
    else if (inst.vip === a.address) continue;
    else if (inst.vip === null && !adoptedAddress.has(inst.id)) {
      adoptedAddress.add(inst.id);
      actions.push({ kind: "adopt-address", instance: inst, address: a });
    } else
      actions.push({
        kind: "release-address",
        address: a,
        why: `instance ${inst.group}/${inst.index} has ${inst.vip ?? "(another)"}`,
      });
  }
  return actions;
}

/** Finds this director's VMs and disks (of one deployment, or all), and reconciles them. */
export async function reconcile(ctx: DirectorContext, deployment?: string): Promise<string[]> {
  const filter = { metadata: { director: ctx.directorId, ...(deployment ? { deployment } : {}) } };
  const [instances, vms, disks, standbys, addresses] = await Promise.all([
    ctx.store.instances.list(deployment),
    ctx.cloud.listVms(filter),
    ctx.cloud.listDisks(filter),
    ctx.store.standbys.list(deployment),
    ctx.cloud.listAddresses(filter),
  ]);
  const sentences: string[] = [];
  for (const a of decide(instances, vms, disks, standbys, addresses)) {
    switch (a.kind) {
      case "adopt-vm":
        await ctx.store.instances.update(a.instance.id, {
          vmId: a.vm.id,
          host: a.vm.host,
          address: a.vm.address,
          agentPort: a.vm.agentPort,
          vmResources: a.vm.vmType,
        });
        sentences.push(
          `adopted VM ${a.vm.id} for ${a.instance.group}/${a.instance.index} (created before a director restart)`,
        );
        break;
      case "adopt-standby-vm":
        await ctx.store.standbys.update(a.standby.id, {
          vmId: a.vm.id,
          host: a.vm.host,
          address: a.vm.address,
          agentPort: a.vm.agentPort,
          vmResources: a.vm.vmType,
        });
        sentences.push(`adopted standby VM ${a.vm.id} of ${a.standby.group}/${a.standby.zone}`);
        break;
      case "adopt-address":
        await ctx.store.instances.update(a.instance.id, { vip: a.address.address });
        sentences.push(
          `adopted virtual address ${a.address.address} for ${a.instance.group}/${a.instance.index}`,
        );
        break;
      case "release-address":
        await ctx.cloud.releaseAddress(a.address.address);
        sentences.push(`released orphan virtual address ${a.address.address}: ${a.why}`);
        break;
      case "delete-vm":
        await ctx.cloud.deleteVm(a.vm.id);
        sentences.push(`deleted orphan VM ${a.vm.id}: ${a.why}`);
        break;
      case "adopt-disk":
        await ctx.store.instances.update(a.instance.id, { diskId: a.disk.id, diskSizeMb: a.disk.sizeMb });
        sentences.push(`adopted disk ${a.disk.id} for ${a.instance.group}/${a.instance.index}`);
        break;
      case "delete-disk":
        if (a.disk.attachedTo) await ctx.cloud.detachDisk(a.disk.id, { force: true });
        await ctx.cloud.deleteDisk(a.disk.id);
        sentences.push(`deleted orphan disk ${a.disk.id}: ${a.why}`);
        break;
    }
  }
  return sentences;
}
