/**
 * Reconciling the store with the cloud after a crash: every VM and disk that
 * carries this director's id must belong to an instance. `decide` is pure; `apply`
 * carries the actions out and says each one in a sentence.
 *
 * - adopt: the instance was recorded, then the director died between creating the
 *   VM (or disk) and recording its id; the thing is the instance's (its agent token
 *   was recorded before the VM was created).
 * - delete: an orphan — no instance claims it, or its instance has another one.
 */
import type { Disk, Vm } from "../cloud/cloud.js";
import type { InstanceRecord } from "../store/instances.js";
import type { DirectorContext } from "./context.js";

export type ReconcileAction =
  | { kind: "adopt-vm"; instance: InstanceRecord; vm: Vm }
  | { kind: "delete-vm"; vm: Vm; why: string }
  | { kind: "adopt-disk"; instance: InstanceRecord; disk: Disk }
  | { kind: "delete-disk"; disk: Disk; why: string };

export function decide(instances: InstanceRecord[], vms: Vm[], disks: Disk[]): ReconcileAction[] {
  const byId = new Map(instances.map((i) => [i.id, i]));
  const actions: ReconcileAction[] = [];
  const adoptedVm = new Set<string>();
  for (const vm of vms) {
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
  return actions;
}

/** Finds this director's VMs and disks (of one deployment, or all), and reconciles them. */
export async function reconcile(ctx: DirectorContext, deployment?: string): Promise<string[]> {
  const filter = { metadata: { director: ctx.directorId, ...(deployment ? { deployment } : {}) } };
  const [instances, vms, disks] = await Promise.all([
    ctx.store.instances.list(deployment),
    ctx.cloud.listVms(filter),
    ctx.cloud.listDisks(filter),
  ]);
  const sentences: string[] = [];
  for (const a of decide(instances, vms, disks)) {
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
