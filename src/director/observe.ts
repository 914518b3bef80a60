/** What the director looks at before planning: VMs in the cloud, agents' answers, hosts. */
import { randomUUID } from "node:crypto";
import type { VmState } from "../cloud/cloud.js";
import type { PlacementHost } from "../placement/types.js";
import type { InstanceRecord } from "../store/instances.js";
import type { MaintenanceView } from "../store/maintenance.js";
import type { CloudConfig } from "../manifest/cloud-config.js";
import type { SpecExtras } from "./clusters.js";
import { agentOf, type DirectorContext } from "./context.js";
import type { Manifest } from "../manifest/manifest.js";
import { plan, type Observed, type Plan } from "./planner.js";

/** The cloud's hosts as placement sees them; a host in maintenance (or in a zone in maintenance) says why. */
export async function placementHosts(ctx: DirectorContext): Promise<PlacementHost[]> {
  const [zones, maintenance] = await Promise.all([ctx.cloud.zones(), ctx.store.maintenance.view()]);
  return zones.flatMap((z) =>
    z.hosts.map((h) => ({
      id: h.id,
      zone: h.zone,
      up: h.state === "up",
      ...maintenanceOf(maintenance, h),
      attributes: h.attributes,
      capacity: h.capacity,
      used: { cpu: h.used.cpu, ramMb: h.used.ramMb },
    })),
  );
}

function maintenanceOf(m: MaintenanceView, h: { id: string; zone: string }): { maintenance?: string } {
  const why =
    m.hosts.get(h.id) ?? (m.zones.has(h.zone) ? `zone ${h.zone}: ${m.zones.get(h.zone)}` : undefined);
  return why !== undefined ? { maintenance: why } : {};
}

export async function observe(
  ctx: DirectorContext,
  deployment: string,
  instances: InstanceRecord[],
): Promise<Map<string, Observed>> {
  const vms = new Map<string, VmState>(
    (await ctx.cloud.listVms({ metadata: { director: ctx.directorId, deployment } })).map((vm) => [
      vm.id,
      vm.state,
    ]),
  );
  const out = new Map<string, Observed>();
  await Promise.all(
    instances.map(async (inst) => {
      const vmState = inst.vmId ? vms.get(inst.vmId) : undefined;
      let agent: Observed["agent"] = { reachable: false };
      if (vmState === "running" && inst.address) {
        try {
          const s = await agentOf(ctx, inst, 3000).state();
          agent = { reachable: true, specVersion: s.specVersion, jobsState: s.jobsState };
        } catch {
          /* unreachable */
        }
      }
      out.set(inst.id, { ...(vmState ? { vmState } : {}), agent });
    }),
  );
  return out;
}

/** Observes the deployment and plans it. Writes nothing. */
export async function planDeployment(
  ctx: DirectorContext,
  manifest: Manifest,
  cloudConfig: CloudConfig,
  recreate?: ReadonlySet<string>,
  extras?: SpecExtras,
): Promise<Plan> {
  const known = await ctx.store.instances.list();
  const instances = known.filter((i) => i.deployment === manifest.name);
  const [observed, hosts, maintenance] = await Promise.all([
    observe(ctx, manifest.name, instances),
    placementHosts(ctx),
    ctx.store.maintenance.view(),
  ]);
  return plan({
    maintenance,
    manifest,
    cloudConfig,
    instances,
    observed,
    hosts,
    known,
    ...(recreate ? { recreate } : {}),
    ...(extras ? { extras } : {}),
    newId: () => randomUUID(),
  });
}
