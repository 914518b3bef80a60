/**
 * What each kind of task does. Deploy, delete and recreate go through the planner
 * and the executor; stop and start act on the agents in batches of max_in_flight.
 */
import { recoverHandler } from "./recover.js";
import { errorMessage } from "../lib/errors.js";
import type { InstanceRecord } from "../store/instances.js";
import type { TaskKind } from "../store/tasks.js";
import type { CloudConfig } from "../manifest/cloud-config.js";
import { agentOf, type DirectorContext } from "./context.js";
import type { TaskReporter } from "./events.js";
import { DeployFailed, execute } from "./executor.js";
import { describeJobs, InstanceOps } from "./instance-ops.js";
import { DEFAULT_LEASES, maxInFlightOf, type Manifest } from "../manifest/manifest.js";
import { planDeployment } from "./observe.js";
import type { Plan, Step } from "./planner.js";
import { releaseDeploymentResources, specExtras } from "./clusters.js";
import { reconcile } from "./reconcile.js";
import { deleteStandby, instanceVmSince, syncStandbys } from "./standby-pool.js";
import { selectTargets, type Target } from "./targets.js";
import type { TaskHandler } from "./task-runner.js";
import { batchesFor } from "./update-policy.js";
import { clusterOrders, type RollingControl } from "./rolling.js";
import { upgradeAgents } from "./agent-upgrade.js";

export interface DeployPayload {
  manifest: Manifest;
  cloudConfig: CloudConfig;
}

export interface TargetPayload {
  target: Target;
}

export function summarize(p: Plan): string {
  const n = (a: Step["action"]) => p.steps.filter((s) => s.action === a).length;
  return `${n("create")} to create, ${n("recreate")} to recreate, ${n("update")} to update, ${n("delete")} to delete, ${p.unchanged.length} unchanged`;
}

async function converge(
  ctx: DirectorContext,
  rolling: RollingControl | undefined,
  report: TaskReporter,
  manifest: Manifest,
  cc: CloudConfig,
  recreate?: Set<string>,
) {
  for (const sentence of await reconcile(ctx, manifest.name))
    await report.event("warn", "reconcile", sentence);
  const extras = await specExtras(ctx, manifest, { allocate: true });
  const p = await planDeployment(ctx, manifest, cc, recreate, extras);
  for (const note of p.notes) await report.event("warn", "plan", note);
  if (p.errors.length > 0)
    throw new DeployFailed(`cannot deploy ${manifest.name}:\n  ${p.errors.join("\n  ")}`);
  await report.event("info", "plan", summarize(p));
  const roles = manifest.update.cluster_order ? await clusterOrders(rolling, manifest, p.steps) : new Map();
  await execute({
    ctx,
    manifest,
    batches: batchesFor(p.steps, manifest, roles),
    report,
    extras,
    ...(rolling ? { rolling } : {}),
  });
  await syncStandbys(ctx, manifest, cc, report);
  return p;
}

async function storedDeployment(ctx: DirectorContext, name: string): Promise<DeployPayload> {
  const d = await ctx.store.deployments.get(name);
  if (!d) throw new DeployFailed(`deployment ${name} does not exist`);
  return d.manifest as DeployPayload;
}

async function actOnAgents(
  ctx: DirectorContext,
  report: TaskReporter,
  deployment: string,
  target: Target,
  kind: "stop" | "start",
): Promise<string> {
  const { manifest } = await storedDeployment(ctx, deployment);
  const picked = selectTargets(await ctx.store.instances.list(deployment), target, deployment);
  const inFlight = maxInFlightOf(manifest.update, picked.length);
  const ops = new InstanceOps(ctx);
  let done = 0;
  await report.progress(0, picked.length);
  const failures: string[] = [];
  for (let i = 0; i < picked.length; i += inFlight) {
    await Promise.all(
      picked.slice(i, i + inFlight).map(async (inst: InstanceRecord) => {
        const key = `${inst.group}/${inst.index}`;
        try {
          await ctx.store.instances.update(inst.id, { desired: kind === "stop" ? "stopped" : "started" });
          if (kind === "stop") {
            await agentOf(ctx, inst, 15 * 60_000).stop({ drain: true });
            await ops.setState(inst, "stopped");
          } else {
            const state = await agentOf(ctx, inst, 5 * 60_000).start(60_000);
            if (state.jobsState !== "running") throw new Error(`jobs did not start: ${describeJobs(state)}`);
            await ops.setState(inst, "running");
          }
          await report.event("info", kind, kind === "stop" ? "stopped (drained)" : "started", key);
        } catch (err) {
          failures.push(`${key}: ${errorMessage(err)}`);
          await report.event("error", kind, `failed: ${errorMessage(err)}`, key);
        }
        await report.progress(++done, picked.length);
      }),
    );
  }
  if (failures.length > 0) throw new DeployFailed(`${kind} failed: ${failures.join("; ")}`);
  return `${kind === "stop" ? "stopped" : "started"} ${picked.length} instance(s) of ${deployment}`;
}

/** `rolling`: clusters and LB pairs roll member by member (rolling.ts); without it, batches only. */
export function makeHandlers(ctx: DirectorContext, rolling?: RollingControl): Record<TaskKind, TaskHandler> {
  return {
    async deploy(task, report) {
      const { manifest, cloudConfig } = task.payload as DeployPayload;
      await ctx.store.deployments.save(manifest.name, { manifest, cloudConfig });
      const p = await converge(ctx, rolling, report, manifest, cloudConfig);
      return `deployed ${manifest.name}: ${summarize(p).replaceAll(" to ", " ")}`;
    },
    async recreate(task, report) {
      const { target } = task.payload as TargetPayload;
      const { manifest, cloudConfig } = await storedDeployment(ctx, task.deployment!);
      const picked = selectTargets(await ctx.store.instances.list(manifest.name), target, manifest.name);
      // Idempotent on resume: an instance whose VM is newer than the task (made, or a
      // warm VM adopted, since) was recreated by it already.
      const vms = await ctx.cloud.listVms({
        metadata: { director: ctx.directorId, deployment: manifest.name },
      });
      const createdAt = new Map(vms.map((vm) => [vm.id, instanceVmSince(vm)]));
      const due = picked.filter((i) => !i.vmId || (createdAt.get(i.vmId) ?? "") < task.createdAt);
      if (due.length < picked.length) {
        await report.event(
          "info",
          "plan",
          `${picked.length - due.length} instance(s) already recreated by this task`,
        );
      }
      await converge(ctx, rolling, report, manifest, cloudConfig, new Set(due.map((i) => i.id)));
      return `recreated ${picked.length} instance(s) of ${manifest.name}`;
    },
    async delete(task, report) {
      const name = task.deployment!;
      const stored = await ctx.store.deployments.get(name);
      // Deleting is deploying nothing: every instance becomes a delete step, batched by the policy.
      const manifest: Manifest = {
        name,
        leases: DEFAULT_LEASES,
        instance_groups: [],
        update: stored
          ? { ...(stored.manifest as DeployPayload).manifest.update, canaries: 0 }
          : {
              canaries: 0,
              max_in_flight: 5,
              canary_watch_time: 0,
              update_watch_time: 0,
              serial_zones: false,
              cluster_order: true,
            },
      };
      for (const sentence of await reconcile(ctx, name)) await report.event("warn", "reconcile", sentence);
      const instances = await ctx.store.instances.list(name);
      const steps: Step[] = instances.map((i) => ({
        action: "delete",
        key: `${i.group}/${i.index}`,
        group: i.group,
        index: i.index,
        instanceId: i.id,
        zone: i.zone,
        resources: i.vmResources ?? { cpu: 0, ramMb: 0 },
        reasons: ["deployment deleted"],
      }));
      await execute({ ctx, manifest, batches: batchesFor(steps, manifest), report });
      for (const s of await ctx.store.standbys.list(name)) {
        await deleteStandby(ctx, s);
        await report.event("info", "standby", `deleted standby ${s.vmId ?? s.id} of ${s.group}/${s.zone}`);
      }
      const leftovers = await releaseDeploymentResources(ctx, {
        name,
        leases: stored ? (stored.manifest as DeployPayload).manifest.leases : DEFAULT_LEASES,
      });
      if (leftovers.length > 0) await report.event("info", "cleanup", `released ${leftovers.join(", ")}`);
      await ctx.store.deployments.delete(name);
      return `deleted deployment ${name} (${instances.length} instance(s))`;
    },
    recover: recoverHandler(ctx),
    stop: (task, report) =>
      actOnAgents(ctx, report, task.deployment!, (task.payload as TargetPayload).target, "stop"),
    start: (task, report) =>
      actOnAgents(ctx, report, task.deployment!, (task.payload as TargetPayload).target, "start"),
    "upgrade-agents": (task, report) =>
      upgradeAgents(ctx, rolling, report, task.deployment!, (task.payload as TargetPayload).target),
  };
}
