/**
 * Host and zone maintenance: `zonal host drain z1/h2`, `zonal zone drain z3`. A
 * drain marks the target in maintenance (placement puts nothing there; the planner
 * moves what runs there; see planner.ts), checks that every deployment with
 * instances or standbys there can be planned without it — nothing moves and the
 * mark is taken back when one cannot, with the reasons — then redeploys each such
 * deployment: the same rolling order as any update (followers first, the leader
 * last after a handover, each instance drained from the LB pairs in front of it).
 * The cloud is told too where it has a notion of it (OpenStack: the host's
 * nova-compute service is disabled with the reason). Undrain gives the target back;
 * nothing moves back until the next deploy.
 */
import { Conflict, InvalidInput, NotFound } from "../lib/errors.js";
import { errorMessage } from "../lib/errors.js";
import { isClustered } from "../manifest/manifest.js";
import type { MaintenanceKind, MaintenanceRecord } from "../store/maintenance.js";
import type { TaskRecord } from "../store/tasks.js";
import { specExtras } from "./clusters.js";
import type { DirectorContext } from "./context.js";
import type { DeployPayload } from "./handlers.js";
import { planDeployment } from "./observe.js";

export interface DrainView {
  maintenance: MaintenanceRecord;
  /** The deploy tasks that move what ran there, one per deployment. */
  tasks: TaskRecord[];
  /** Deployments that could not start moving now (another task holds them), and why: their next deploy moves them. */
  deferred: string[];
  /** What the cloud said when told (OpenStack: nova-compute disabled), or why it could not be. */
  cloud: string | null;
}

/** A drain refused: what would not fit or would lose its last zone or quorum. Nothing changed. */
export class DrainRefused extends Conflict {
  override readonly code = "drain_refused";
  constructor(
    target: string,
    readonly reasons: string[],
  ) {
    super(`cannot drain ${target}; nothing was changed:\n  ${reasons.join("\n  ")}`);
  }

  override details(): Record<string, unknown> {
    return { reasons: this.reasons };
  }
}

type Submit = (t: {
  deployment: string;
  kind: "deploy";
  description: string;
  payload: DeployPayload;
}) => Promise<TaskRecord>;

/** The hosts a target names, checked against the cloud: InvalidInput naming the field when it names none. */
async function hostsOf(ctx: DirectorContext, kind: MaintenanceKind, target: string): Promise<string[]> {
  const zones = await ctx.cloud.zones();
  if (kind === "zone") {
    const z = zones.find((x) => x.name === target);
    if (!z) throw new InvalidInput(`zone: no zone ${target} (zones: ${zones.map((x) => x.name).join(", ")})`);
    return z.hosts.map((h) => h.id);
  }
  const all = zones.flatMap((z) => z.hosts.map((h) => h.id));
  if (!all.includes(target))
    throw new InvalidInput(`host: no host ${target}; expected zone/host, one of ${all.join(", ")}`);
  return [target];
}

/** An event of the director's (no task, no deployment): `zonal events` shows it. */
async function event(ctx: DirectorContext, message: string): Promise<void> {
  await ctx.store.tasks.addEvent({
    taskId: null,
    deployment: null,
    instance: null,
    level: "info",
    stage: "maintenance",
    message,
  });
  ctx.log.info(message);
}

export async function drain(
  ctx: DirectorContext,
  submit: Submit,
  kind: MaintenanceKind,
  target: string,
  reason: string,
): Promise<DrainView> {
  const hosts = await hostsOf(ctx, kind, target);
  const on = (x: { host: string | null; zone: string }) =>
    kind === "zone" ? x.zone === target : x.host === target;
  const [instances, standbys] = await Promise.all([ctx.store.instances.list(), ctx.store.standbys.list()]);
  const affected = [
    ...new Set([...instances.filter(on), ...standbys.filter(on)].map((x) => x.deployment)),
  ].sort();
  const had = await ctx.store.maintenance.get(kind, target);
  const rec = await ctx.store.maintenance.set(kind, target, reason);
  const reasons: string[] = [];
  const payloads = new Map<string, DeployPayload>();
  try {
    for (const name of affected) {
      const d = await ctx.store.deployments.get(name);
      if (!d) continue;
      const payload = d.manifest as DeployPayload;
      payloads.set(name, payload);
      const p = await planDeployment(
        ctx,
        payload.manifest,
        payload.cloudConfig,
        undefined,
        await specExtras(ctx, payload.manifest, { allocate: false }),
      );
      reasons.push(...p.errors.map((e) => `${name}: ${e}`));
      // A cluster whose members there cannot move would be left without a majority.
      for (const g of payload.manifest.instance_groups.filter(isClustered)) {
        const stuck = p.errors.filter((e) => e.startsWith(`${g.name}/`)).length;
        if (stuck > 0 && g.instances - stuck <= g.instances / 2)
          reasons.push(
            `${name}: cluster ${g.name} would lose its quorum (${g.instances - stuck} of ${g.instances} members left)`,
          );
      }
    }
  } catch (err) {
    reasons.push(errorMessage(err));
  }
  if (reasons.length > 0) {
    if (!had) await ctx.store.maintenance.clear(kind, target);
    throw new DrainRefused(target, reasons);
  }
  let cloud: string | null = null;
  if (ctx.cloud.setHostMaintenance) {
    try {
      for (const h of hosts) await ctx.cloud.setHostMaintenance(h, `zonal maintenance: ${reason}`);
      cloud = `the cloud has ${hosts.length === 1 ? "the host" : `its ${hosts.length} hosts`} disabled: ${reason}`;
    } catch (err) {
      cloud = `the cloud could not be told: ${errorMessage(err)}`;
    }
  }
  const tasks: TaskRecord[] = [];
  const deferred: string[] = [];
  for (const [name, payload] of payloads) {
    try {
      tasks.push(
        await submit({
          deployment: name,
          kind: "deploy",
          description: `drain ${kind} ${target}: move ${name}'s instances off it`,
          payload,
        }),
      );
    } catch (err) {
      deferred.push(`${name}: ${errorMessage(err)}`);
    }
  }
  await event(
    ctx,
    `${kind} ${target} in maintenance (${reason}); moving ${payloads.size} deployment(s) off it`,
  );
  return { maintenance: rec, tasks, deferred, cloud };
}

export async function undrain(
  ctx: DirectorContext,
  kind: MaintenanceKind,
  target: string,
): Promise<{ maintenance: MaintenanceRecord; cloud: string | null }> {
  const rec = await ctx.store.maintenance.get(kind, target);
  if (!rec) throw new NotFound(`${kind} ${target} is not in maintenance`);
  const hosts = await hostsOf(ctx, kind, target);
  let cloud: string | null = null;
  if (ctx.cloud.setHostMaintenance) {
    try {
      for (const h of hosts) await ctx.cloud.setHostMaintenance(h, null);
      cloud = "the cloud has it enabled again";
    } catch (err) {
      cloud = `the cloud could not be told: ${errorMessage(err)}`;
    }
  }
  await ctx.store.maintenance.clear(kind, target);
  await event(ctx, `${kind} ${target} back from maintenance (nothing moves back until the next deploy)`);
  return { maintenance: rec, cloud };
}
