/**
 * Zombies: VMs of this director that came back (a restored host, a thawed VM) after
 * their instance was recovered on another VM. Pure decision; the monitor deletes
 * them through the cloud, which also kills whatever they run, so a zombie never
 * runs jobs or holds an address for long. VMs of instances a task works on right
 * now (locked) are left to that task: their ids may not be recorded yet.
 */
import type { Vm } from "../cloud/cloud.js";
import type { InstanceRecord } from "../store/instances.js";
import type { StandbyRecord } from "../store/standbys.js";

export interface Zombie {
  vm: Vm;
  why: string;
}

export function findZombies(
  vms: Vm[],
  instances: InstanceRecord[],
  standbys: StandbyRecord[],
  locked: (instanceId: string) => boolean,
): Zombie[] {
  const byId = new Map(instances.map((i) => [i.id, i]));
  const owned = new Set(instances.map((i) => i.vmId).filter(Boolean));
  const standbyById = new Map(standbys.map((s) => [s.id, s]));
  const out: Zombie[] = [];
  for (const vm of vms) {
    if (owned.has(vm.id)) continue;
    const s = vm.metadata.standby;
    if (s !== undefined) {
      const row = standbyById.get(s);
      if (row && (row.vmId === vm.id || row.vmId === null)) continue;
      out.push({ vm, why: row ? `standby ${s} now has ${row.vmId}` : `no standby ${s} any more` });
      continue;
    }
    const inst = byId.get(vm.metadata.instance ?? "");
    if (inst && (locked(inst.id) || inst.vmId === null)) continue;
    out.push({
      vm,
      why: inst
        ? `${inst.group}/${inst.index} runs on ${inst.vmId} now`
        : `no instance ${vm.metadata.instance ?? "?"} any more`,
    });
  }
  return out;
}

/** Where the zombies are looked for: this director's VMs and its records, read now. */
export interface ZombieSources {
  vms(): Promise<Vm[]>;
  instances(): Promise<InstanceRecord[]>;
  standbys(): Promise<StandbyRecord[]>;
}

/**
 * The zombies now. The VMs are listed first and the records read after: a task
 * records an instance (or a standby) before it creates its VM, so every VM listed has
 * its record in what is read next. Records read before the VMs could miss one that a
 * task made in between, and its brand-new VM would look like a zombie (a canary's VM
 * was deleted so while its agent was being waited for).
 */
export async function readZombies(
  from: ZombieSources,
  locked: (instanceId: string) => boolean,
): Promise<Zombie[]> {
  const vms = await from.vms();
  const [instances, standbys] = await Promise.all([from.instances(), from.standbys()]);
  return findZombies(vms, instances, standbys, locked);
}
