/**
 * The planner: desired (manifest) against actual (instances, their VMs, their
 * agents) gives one step per instance that must change, each with the reasons.
 * Pure: it reads what it is given and writes nothing (STYLE.md point 2); the
 * executor applies the plan, re-checking live state as it goes.
 *
 *   create    a new instance: VM (+ disk) on the placed host, spec, start
 *   recreate  a new VM for an existing instance (keeps its id, index and disk)
 *   update    apply the new spec to the running VM (and attach a new disk if one is due)
 *   delete    drain, delete the VM and the disk, forget the instance
 */
import type { VmState } from "../cloud/cloud.js";
import { place } from "../placement/place.js";
import type { HostRequest, PlacementHost, Resources } from "../placement/types.js";
import { balanceZones } from "../placement/zones.js";
import type { InstanceRecord } from "../store/instances.js";
import type { MaintenanceView } from "../store/maintenance.js";
import { serviceOf } from "../jobs/services.js";
import type { CloudConfig } from "../manifest/cloud-config.js";
import { diskSizeMb, isClustered, type GroupManifest, type Manifest } from "../manifest/manifest.js";
import type { SpecExtras } from "./clusters.js";
import { buildSpec, resolveLinks } from "./spec-builder.js";
import { strategyOf } from "../strategies/registry.js";

export type StepAction = "create" | "recreate" | "update" | "delete";

export interface Step {
  action: StepAction;
  /** `group/index`. */
  key: string;
  group: string;
  index: number;
  instanceId: string;
  zone: string;
  /** The host placement chose (create, recreate). */
  host?: string;
  resources: Resources;
  /** The group's persistent disk size, when it has one. */
  diskSizeMb?: number;
  /**
   * A cluster member's recreate with a new disk (in another zone, or a bigger one): the
   * old disk is deleted and a new one made; its peers hold the data and fill it.
   */
  newDisk?: true;
  reasons: string[];
}

export interface Plan {
  deployment: string;
  steps: Step[];
  /** Instances that need nothing. */
  unchanged: string[];
  /** Why the plan cannot be carried out (placement failures, stranded disks...). Empty when it can. */
  errors: string[];
  notes: string[];
}

/** What the director saw of an existing instance just before planning. */
export interface Observed {
  /** The VM's state in the cloud; undefined when the VM does not exist. */
  vmState?: VmState;
  /** What its agent says; unreachable when it did not answer. */
  agent: { reachable: false } | { reachable: true; specVersion: string | null; jobsState: string };
}

export interface PlanInput {
  manifest: Manifest;
  cloudConfig: CloudConfig;
  /** This deployment's instances. */
  instances: InstanceRecord[];
  observed: Map<string, Observed>;
  hosts: PlacementHost[];
  /** Instances of every deployment, for links. */
  known: InstanceRecord[];
  /** Instance ids to recreate whatever their state (`zonal recreate`). */
  recreate?: ReadonlySet<string>;
  newId: () => string;
  /** Secrets and cluster sections, so spec hashes match what the executor applies. */
  extras?: SpecExtras;
  /** Hosts and zones in maintenance: what runs there moves, nothing new goes there. */
  maintenance?: MaintenanceView;
}

export function resourcesOf(group: GroupManifest, cc: CloudConfig): Resources {
  const t = cc.vm_types.find((v) => v.name === group.vm_type)!;
  return { cpu: t.cpu, ramMb: t.ram_mb, ...(t.host_attributes ? { hostAttributes: t.host_attributes } : {}) };
}

const describeResources = (r: Resources): string =>
  `${r.cpu} CPU/${r.ramMb} MiB${r.hostAttributes ? ` ${JSON.stringify(r.hostAttributes)}` : ""}`;

export function sameResources(a: Resources, b: Resources): boolean {
  return (
    a.cpu === b.cpu &&
    a.ramMb === b.ramMb &&
    JSON.stringify(a.hostAttributes ?? {}) === JSON.stringify(b.hostAttributes ?? {})
  );
}

/** Why an existing instance needs a new VM ([] when it does not). */
function recreateReasons(
  inst: InstanceRecord,
  obs: Observed | undefined,
  want: Resources,
  forced: boolean,
  maintenance: string | undefined,
): string[] {
  const reasons: string[] = [];
  if (forced) reasons.push("recreate requested");
  if (maintenance !== undefined)
    reasons.push(`host ${inst.host} is in maintenance (${maintenance}): moves off it`);
  if (!inst.vmId) reasons.push("has no VM");
  else if (!obs || obs.vmState === undefined) reasons.push(`VM ${inst.vmId} is gone`);
  else if (obs.vmState !== "running") reasons.push(`VM ${inst.vmId} is ${obs.vmState}`);
  else if (!obs.agent.reachable) reasons.push(`agent on ${inst.vmId} does not answer`);
  if (inst.vmResources && !sameResources(inst.vmResources, want)) {
    reasons.push(`vm_type changed: ${describeResources(inst.vmResources)} -> ${describeResources(want)}`);
  }
  return reasons;
}

export function plan(input: PlanInput): Plan {
  const { manifest, cloudConfig: cc } = input;
  const out: Plan = { deployment: manifest.name, steps: [], unchanged: [], errors: [], notes: [] };
  const placeLater: Step[] = [];
  const freed = new Map<string, { cpu: number; ramMb: number }>();
  const free = (inst: InstanceRecord) => {
    if (!inst.host || !inst.vmResources) return;
    const f = freed.get(inst.host) ?? { cpu: 0, ramMb: 0 };
    freed.set(inst.host, { cpu: f.cpu + inst.vmResources.cpu, ramMb: f.ramMb + inst.vmResources.ramMb });
  };
  const staying = new Map<string, Map<string, number>>();
  const stays = (inst: InstanceRecord) => {
    if (!inst.host) return;
    const g = staying.get(inst.group) ?? new Map<string, number>();
    g.set(inst.host, (g.get(inst.host) ?? 0) + 1);
    staying.set(inst.group, g);
  };

  for (const group of manifest.instance_groups) {
    const resources = resourcesOf(group, cc);
    const disk = diskSizeMb(group, cc);
    const existing = input.instances.filter((i) => i.group === group.name);
    const byIndex = new Map(existing.map((i) => [i.index, i]));
    const away = input.maintenance?.zones ?? new Map<string, string>();
    const open = group.zones.filter((z) => !away.has(z));
    if (open.length === 0 && group.instances > 0) {
      out.errors.push(
        `${group.name}: would lose its last zone: every zone it lists is in maintenance (${group.zones.map((z) => `${z}: ${away.get(z)}`).join("; ")})`,
      );
      continue;
    }
    // A cluster member's data is on its peers too: it may move zones with a new disk —
    // when at least one other member holds it already (not one being created now).
    const rebuildDisks =
      isClustered(group) &&
      existing.filter((i) => i.diskId !== null && i.index < group.instances).length > 1 &&
      serviceOf(group)?.service.update !== undefined;
    const zones = balanceZones(
      group.name,
      open,
      group.instances,
      existing.map((i) => ({ index: i.index, zone: i.zone, hasDisk: i.diskId !== null })),
      { rebuildDisks },
    );
    out.errors.push(...zones.errors);
    const links = resolveLinks(manifest, group, input.known);
    const base = (inst: { index: number; zone: string }) => ({
      key: `${group.name}/${inst.index}`,
      group: group.name,
      index: inst.index,
      zone: inst.zone,
      resources,
      ...(disk !== undefined ? { diskSizeMb: disk } : {}),
    });

    for (const k of zones.keep) {
      const inst = byIndex.get(k.index)!;
      const key = `${group.name}/${inst.index}`;
      if (inst.diskSizeMb !== null && disk !== undefined && inst.diskSizeMb !== disk) {
        const grow = growDisk(group.name, key, inst.diskSizeMb, disk, rebuildDisks);
        if ("error" in grow) out.errors.push(grow.error);
        else {
          free(inst);
          placeLater.push({
            ...base(inst),
            action: "recreate",
            instanceId: inst.id,
            newDisk: true,
            reasons: [grow.reason],
          });
        }
        continue;
      }
      if (inst.diskId !== null && disk === undefined) {
        out.errors.push(
          `${key}: has persistent disk ${inst.diskId}, which the manifest no longer asks for; removing disks is not supported`,
        );
        continue;
      }
      const obs = input.observed.get(inst.id);
      const recreate = recreateReasons(
        inst,
        obs,
        resources,
        input.recreate?.has(inst.id) ?? false,
        inst.host ? input.maintenance?.hosts.get(inst.host) : undefined,
      );
      if (recreate.length > 0) {
        free(inst);
        placeLater.push({ ...base(inst), action: "recreate", instanceId: inst.id, reasons: recreate });
        continue;
      }
      stays(inst);
      const reasons: string[] = [];
      const spec = buildSpec({
        manifest,
        group,
        instance: inst,
        diskId: inst.diskId,
        links,
        ...(input.extras ? { extras: input.extras } : {}),
      });
      if (disk !== undefined && inst.diskId === null)
        reasons.push(`attach a new ${disk} MiB persistent disk`);
      else if (spec.version !== inst.specHash)
        reasons.push(inst.specHash ? "spec changed" : "spec not applied yet");
      else if (obs?.agent.reachable && obs.agent.specVersion !== spec.version) {
        reasons.push(`agent runs spec ${obs.agent.specVersion ?? "none"}, expected ${spec.version}`);
      } else if (inst.desired === "started" && obs?.agent.reachable && obs.agent.jobsState !== "running") {
        reasons.push(`jobs are ${obs.agent.jobsState}`);
      } else if (inst.state !== "running" && inst.state !== "stopped") {
        reasons.push(`instance is ${inst.state}`);
      } else if (strategyOf(group).instanceVip && inst.vip === null) {
        reasons.push(`needs a virtual address (strategy ${group.strategy})`);
      } else if (!strategyOf(group).instanceVip && inst.vip !== null) {
        reasons.push(`releases its virtual address ${inst.vip} (strategy ${group.strategy})`);
      }
      if (reasons.length > 0)
        out.steps.push({ ...base(inst), action: "update", instanceId: inst.id, reasons });
      else out.unchanged.push(key);
    }
    for (const m of zones.move) {
      const inst = byIndex.get(m.index)!;
      free(inst);
      const why = away.has(m.from)
        ? `zone ${m.from} is in maintenance (${away.get(m.from)})`
        : `zone ${m.from} is no longer listed`;
      placeLater.push({
        ...base({ index: m.index, zone: m.to }),
        action: "recreate",
        instanceId: inst.id,
        ...(inst.diskId !== null ? { newDisk: true as const } : {}),
        reasons: [
          `${why}: moves to ${m.to}${inst.diskId !== null ? ` with a new disk (the cluster copies its data to it)` : ""}`,
        ],
      });
    }
    for (const c of zones.create) {
      placeLater.push({ ...base(c), action: "create", instanceId: input.newId(), reasons: ["new instance"] });
    }
    for (const d of zones.delete) {
      const inst = byIndex.get(d.index)!;
      out.steps.push({
        ...base(inst),
        action: "delete",
        instanceId: inst.id,
        reasons: [`scaled down to ${group.instances}`],
      });
    }
  }

  const groups = new Set(manifest.instance_groups.map((g) => g.name));
  for (const inst of input.instances.filter((i) => !groups.has(i.group))) {
    out.steps.push({
      action: "delete",
      key: `${inst.group}/${inst.index}`,
      group: inst.group,
      index: inst.index,
      instanceId: inst.id,
      zone: inst.zone,
      resources: inst.vmResources ?? { cpu: 0, ramMb: 0 },
      reasons: [`group ${inst.group} is no longer in the manifest`],
    });
  }

  const hosts = input.hosts.map((h) => {
    const f = freed.get(h.id);
    return f ? { ...h, used: { cpu: h.used.cpu - f.cpu, ramMb: h.used.ramMb - f.ramMb } } : h;
  });
  const requests: HostRequest[] = placeLater.map((s) => ({
    key: s.key,
    group: s.group,
    zone: s.zone,
    resources: s.resources,
  }));
  const placed = place({ hosts, requests, groupHosts: staying });
  for (const f of placed.failures) out.errors.push(`${f.key} (${f.zone}): ${f.reasons.join("; ")}`);
  out.notes.push(...placed.notes);
  for (const s of placeLater) {
    const host = placed.hosts.get(s.key);
    if (host) out.steps.push({ ...s, host });
  }
  const order = new Map(manifest.instance_groups.map((g, i) => [g.name, i]));
  out.steps.sort((a, b) => (order.get(a.group) ?? 1e9) - (order.get(b.group) ?? 1e9) || a.index - b.index);
  return out;
}

/**
 * A persistent disk of another size. A bigger one for a cluster member whose service
 * rolls (its peers hold the data): a new disk, filled by the cluster, in the update's
 * order. Anything else is refused, naming the field: shrinking (data may not fit), and
 * growing the only copy of the data (that needs the cloud to resize the volume in
 * place, which zonal does not do yet).
 */
export function growDisk(
  group: string,
  key: string,
  hasMb: number,
  wantMb: number,
  rebuildDisks: boolean,
): { reason: string } | { error: string } {
  const at = `instance_groups.${group}.persistent_disk`;
  if (wantMb < hasMb)
    return {
      error: `${at}: ${key}'s disk has ${hasMb} MiB, the manifest asks ${wantMb}; a disk is never shrunk (its data may not fit): ask for ${hasMb} MiB or more`,
    };
  if (!rebuildDisks)
    return {
      error: `${at}: ${key}'s disk has ${hasMb} MiB, the manifest asks ${wantMb}; growing a disk that holds the only copy of its data needs the cloud to resize it in place, which zonal does not do yet (a cluster of 2 or more members gets new disks, filled by its peers)`,
    };
  return {
    reason: `grow its persistent disk from ${hasMb} to ${wantMb} MiB: a new disk, filled by the cluster`,
  };
}
