/**
 * Warm standby VMs for `standby` groups: one per zone of the group, agent up, no
 * jobs, not counted as an instance. Rows are written before their VMs (like
 * instances), and every standby VM carries `{director, deployment, standby, group}`.
 * `syncStandbys` is idempotent: it makes the pool match the manifest.
 */
import { randomBytes, randomUUID } from "node:crypto";
import type { AgentClient } from "../agent/client.js";
import { errorMessage } from "../lib/errors.js";
import { waitFor } from "../lib/sleep.js";
import { place } from "../placement/place.js";
import type { InstanceRecord } from "../store/instances.js";
import type { StandbyRecord } from "../store/standbys.js";
import type { CloudConfig } from "../manifest/cloud-config.js";
import { agentClient, agentSettings, type DirectorContext } from "./context.js";
import type { TaskReporter } from "./events.js";
import type { Manifest } from "../manifest/manifest.js";
import { placementHosts } from "./observe.js";
import { resourcesOf, sameResources } from "./planner.js";
import type { Resources } from "../placement/types.js";
import { strategyOf } from "../strategies/registry.js";

export function standbyAgent(
  ctx: DirectorContext,
  s: StandbyRecord,
  timeoutMs = 5000,
): AgentClient | undefined {
  if (!s.address || !s.agentPort || !s.agentToken) return undefined;
  return agentClient(
    ctx,
    { address: s.address, agentPort: s.agentPort, agentToken: s.agentToken },
    timeoutMs,
  );
}

export async function deleteStandby(ctx: DirectorContext, s: StandbyRecord): Promise<void> {
  if (s.vmId) await ctx.cloud.deleteVm(s.vmId);
  await ctx.store.standbys.delete(s.id);
}

/** A standby whose VM runs and whose agent answers. */
export async function standbyReady(ctx: DirectorContext, s: StandbyRecord): Promise<boolean> {
  if (!s.vmId) return false;
  const vm = await ctx.cloud.getVm(s.vmId);
  if (vm?.state !== "running") return false;
  try {
    await standbyAgent(ctx, s, 2000)!.info();
    return true;
  } catch {
    return false;
  }
}

/**
 * A ready standby of `group` in `zone`, on a host not in maintenance and, when asked,
 * with these resources (a standby built for another vm_type does not do); undefined
 * when there is none.
 */
export async function readyStandby(
  ctx: DirectorContext,
  deployment: string,
  group: string,
  zone: string,
  resources?: Resources,
): Promise<StandbyRecord | undefined> {
  const maintenance = await ctx.store.maintenance.view();
  // A warm VM an instance owns already (its director died before the row went) is not one.
  const owned = new Set((await ctx.store.instances.list(deployment)).map((i) => i.vmId));
  const pool = (await ctx.store.standbys.list(deployment)).filter(
    (s) =>
      s.group === group &&
      s.zone === zone &&
      !owned.has(s.vmId) &&
      !(s.host !== null && maintenance.hosts.has(s.host)) &&
      (!resources || (s.vmResources !== null && sameResources(s.vmResources, resources))),
  );
  for (const s of pool) {
    if (claimed.has(s.id) || !(await standbyReady(ctx, s))) continue;
    // Checked again after the wait: two steps of a batch (or a recovery beside a deploy)
    // looking at once must not both take it.
    if (claimed.has(s.id)) continue;
    claimed.add(s.id);
    return s;
  }
  return undefined;
}

/**
 * Warm VMs handed out by `readyStandby` and not adopted (or given back) yet, in this
 * control plane: each goes to one instance only.
 */
const claimed = new Set<string>();

/** Gives back a warm VM `readyStandby` handed out and nobody adopted. */
export function releaseStandby(s: StandbyRecord): void {
  claimed.delete(s.id);
}

/** VM metadata: when an instance took the warm VM over (it was booted long before). */
export const ADOPTED_AT = "adopted_at";

/**
 * When a VM became its instance's: its creation, or the moment an instance adopted it
 * (a warm VM). A recreate resumed after a restart skips instances whose VM is newer.
 */
export function instanceVmSince(vm: { createdAt: string; metadata: Record<string, string> }): string {
  const adopted = vm.metadata[ADOPTED_AT];
  return adopted !== undefined && adopted > vm.createdAt ? adopted : vm.createdAt;
}

/**
 * The instance takes the standby's VM over: recorded on the instance before the
 * standby's row goes (a director that dies in between finds the VM the instance's,
 * and `syncStandbys` drops the row). Its disk and address follow in the caller.
 */
export async function adoptStandby(
  ctx: DirectorContext,
  inst: InstanceRecord,
  standby: StandbyRecord,
): Promise<InstanceRecord> {
  const patch = {
    vmId: standby.vmId,
    host: standby.host,
    address: standby.address,
    agentPort: standby.agentPort,
    agentToken: standby.agentToken,
    vmResources: standby.vmResources,
  };
  await ctx.store.instances.update(inst.id, patch);
  await ctx.store.standbys.delete(standby.id);
  claimed.delete(standby.id);
  await ctx.cloud.setVmMetadata(standby.vmId!, {
    instance: inst.id,
    index: String(inst.index),
    [ADOPTED_AT]: new Date().toISOString(),
  });
  return { ...inst, ...patch };
}

export async function syncStandbys(
  ctx: DirectorContext,
  manifest: Manifest,
  cc: CloudConfig,
  report: TaskReporter,
  only?: { group: string; zone: string },
): Promise<void> {
  const taken = new Set((await ctx.store.instances.list(manifest.name)).map((i) => i.vmId));
  for (const s of await ctx.store.standbys.list(manifest.name)) {
    // Adopted by an instance, and the director died before the row went: the VM is the instance's.
    if (s.vmId !== null && taken.has(s.vmId)) await ctx.store.standbys.delete(s.id);
  }
  const pool = await ctx.store.standbys.list(manifest.name);
  const maintenance = await ctx.store.maintenance.view();
  const wanted = new Set<string>();
  for (const g of manifest.instance_groups) {
    if (!strategyOf(g).warmStandbys || g.instances === 0) continue;
    for (const zone of g.zones) if (!maintenance.zones.has(zone)) wanted.add(`${g.name}/${zone}`);
  }
  for (const s of pool) {
    const key = `${s.group}/${s.zone}`;
    const dead = !(await standbyReady(ctx, s)) && s.vmId !== null;
    const drained = s.host !== null && maintenance.hosts.has(s.host);
    if (!wanted.has(key) || dead || drained || pool.filter((x) => `${x.group}/${x.zone}` === key)[0] !== s) {
      await deleteStandby(ctx, s);
      const why = dead ? " (its VM was not ready)" : drained ? ` (host ${s.host} is in maintenance)` : "";
      await report.event("info", "standby", `deleted standby ${s.vmId ?? s.id} of ${key}${why}`);
    }
  }
  const left = new Set((await ctx.store.standbys.list(manifest.name)).map((s) => `${s.group}/${s.zone}`));
  for (const key of wanted) {
    const [group, zone] = key.split("/") as [string, string];
    if (left.has(key) || (only && (only.group !== group || only.zone !== zone))) continue;
    const g = manifest.instance_groups.find((x) => x.name === group)!;
    try {
      const s = await createStandby(ctx, manifest, g.name, zone, resourcesOf(g, cc));
      await report.event("info", "standby", `standby ${s.vmId} for ${key} ready on ${s.host}`);
    } catch (err) {
      await report.event("warn", "standby", `could not build a standby for ${key}: ${errorMessage(err)}`);
    }
  }
}

async function createStandby(
  ctx: DirectorContext,
  manifest: Manifest,
  group: string,
  zone: string,
  resources: ReturnType<typeof resourcesOf>,
): Promise<StandbyRecord> {
  const instances = (await ctx.store.instances.list(manifest.name)).filter(
    (i) => i.group === group && i.host,
  );
  const hosts = await placementHosts(ctx);
  const placed = place({
    hosts,
    requests: [{ key: `${group}/standby-${zone}`, group, zone, resources }],
    groupHosts: new Map([[group, new Map(instances.map((i) => [i.host!, 1]))]]),
  });
  const host = placed.hosts.get(`${group}/standby-${zone}`);
  if (!host) throw new Error(placed.failures[0]?.reasons.join("; ") ?? "no host");
  const row = await ctx.store.standbys.insert({ id: randomUUID(), deployment: manifest.name, group, zone });
  const token = randomBytes(24).toString("hex");
  await ctx.store.standbys.update(row.id, { agentToken: token });
  const { vm } = await ctx.cloud.createVm({
    zone,
    hostHints: [host],
    vmType: resources,
    metadata: { director: ctx.directorId, deployment: manifest.name, standby: row.id, group },
    agent: agentSettings(ctx, token),
    group: `${manifest.name}/${group}`,
  });
  const patch = {
    vmId: vm.id,
    host: vm.host,
    address: vm.address,
    agentPort: vm.agentPort,
    vmResources: resources,
  };
  await ctx.store.standbys.update(row.id, patch);
  const s = { ...row, ...patch, agentToken: token };
  await waitFor(() => standbyAgent(ctx, s, 2000)!.info(), {
    timeoutMs: 60_000,
    intervalMs: 100,
    what: `standby ${vm.id}'s agent`,
  });
  return s;
}
