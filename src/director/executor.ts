/**
 * The executor: applies a plan's batches in order, each batch's steps at once, and
 * stops at the first batch with a failed step (a failed canary stops the deploy
 * before any other instance is touched). Every step re-reads its instance from
 * the store before acting, so it works on live state, not on the plan's snapshot.
 */
import { errorMessage } from "../lib/errors.js";
import type { InstanceRecord } from "../store/instances.js";
import type { DirectorContext } from "./context.js";
import type { TaskReporter } from "./events.js";
import { InstanceOps, StepFailed } from "./instance-ops.js";
import type { SpecExtras } from "./clusters.js";
import type { Manifest } from "../manifest/manifest.js";
import type { Step } from "./planner.js";
import { buildSpec, resolveLinks } from "./spec-builder.js";
import type { Batch } from "./update-policy.js";
import { strategyOf } from "../strategies/registry.js";
import { drainFromBalancers, handOver, peersHoldData, waitCaughtUp, type RollingControl } from "./rolling.js";
import { adoptStandby, readyStandby, releaseStandby } from "./standby-pool.js";

export class DeployFailed extends Error {}

export interface ExecuteOptions {
  ctx: DirectorContext;
  manifest: Manifest;
  batches: Batch[];
  report: TaskReporter;
  extras?: SpecExtras;
  /** Roles of clusters and LB pairs, for `member` batches (handover, catch-up). */
  rolling?: RollingControl;
}

function describeBatch(b: Batch, n: number, of: number): string {
  const keys = b.steps.map((s) => s.key).join(", ");
  const where = b.zone ? ` in ${b.zone}` : "";
  if (b.kind === "canary") return `canary${b.steps.length > 1 ? "s" : ""} ${keys}${where}`;
  if (b.kind === "delete") return `delete ${keys}`;
  if (b.kind === "member") return `member ${keys}${b.handover ? " (leads: hands over first)" : ""}`;
  return `batch ${n} of ${of}${where}: ${keys}`;
}

export async function execute(o: ExecuteOptions): Promise<{ done: number }> {
  const total = o.batches.reduce((n, b) => n + b.steps.length, 0);
  let done = 0;
  await o.report.progress(0, total);
  const ops = new InstanceOps(o.ctx);
  const plainBatches = o.batches.filter((b) => b.kind === "batch");
  for (const b of o.batches) {
    const title = describeBatch(b, plainBatches.indexOf(b) + 1, plainBatches.length);
    await o.report.event("info", b.kind, `${title}: started`);
    const canary = b.kind === "canary" || b.first === true;
    const results =
      b.kind === "member"
        ? [
            await runMember(ops, o, b.steps[0]!, b.handover === true, canary).then(
              () => ({ status: "fulfilled" }) as const,
              (reason: unknown) => ({ status: "rejected", reason }) as const,
            ),
          ]
        : await Promise.allSettled(b.steps.map((s) => runStep(ops, o, s, canary)));
    const failures = results.flatMap((r, i) =>
      r.status === "rejected" ? [`${b.steps[i]!.key}: ${errorMessage(r.reason)}`] : [],
    );
    done += results.filter((r) => r.status === "fulfilled").length;
    await o.report.progress(done, total);
    if (failures.length > 0) {
      await o.report.event("error", b.kind, `${title}: failed: ${failures.join("; ")}`);
      throw new DeployFailed(
        `${canary ? "canary failed, deploy stopped" : `${title} failed, deploy stopped`}: ${failures.join("; ")}`,
      );
    }
    await o.report.event("info", b.kind, `${title}: done`);
  }
  return { done };
}

/**
 * One member of a cluster: its role handed over first when it leads, its step, then
 * a wait until it has caught up, so the next member goes only once this one serves.
 */
async function runMember(
  ops: InstanceOps,
  o: ExecuteOptions,
  step: Step,
  handover: boolean,
  canary: boolean,
): Promise<void> {
  if (handover && o.rolling) {
    // The old leader is stopped only once it follows the new one and has caught up:
    // its own step then stops a follower that has everything, not a member halfway
    // through its demotion.
    if (await handOver(o.rolling, o.manifest, step, o.report))
      await waitCaughtUp(o.rolling, o.manifest, step, o.report);
  }
  await runStep(ops, o, step, canary);
  if (o.rolling) await waitCaughtUp(o.rolling, o.manifest, step, o.report);
}

async function runStep(ops: InstanceOps, o: ExecuteOptions, step: Step, canary: boolean): Promise<void> {
  const release = await o.ctx.instanceLocks.lock(step.instanceId);
  try {
    await runLockedStep(ops, o, step, canary);
  } finally {
    release();
  }
}

async function runLockedStep(
  ops: InstanceOps,
  o: ExecuteOptions,
  step: Step,
  canary: boolean,
): Promise<void> {
  const say = (message: string, level: "info" | "warn" = "info") =>
    o.report.event(level, step.action, message, step.key);
  await say(step.reasons.join("; "));
  let inst: InstanceRecord | undefined = await o.ctx.store.instances.get(step.instanceId);
  try {
    if (step.action === "delete") {
      if (!inst) return;
      inst = await ops.setState(inst, "deleting");
      if (o.rolling) await drainFromBalancers(o.rolling, inst, step.key, o.report);
      const note = await ops.drainAndStop(inst);
      if (note) await say(note, "warn");
      inst = await ops.deleteVm(inst);
      inst = await ops.deleteDisk(inst);
      inst = await ops.dropVip(inst);
      await ops.forget(inst);
      await say("deleted");
      return;
    }
    if (!inst) {
      inst = await o.ctx.store.instances.insert({
        id: step.instanceId,
        deployment: o.manifest.name,
        group: step.group,
        index: step.index,
        zone: step.zone,
        state: "creating",
        desired: "started",
        vmId: null,
        host: null,
        address: null,
        agentPort: null,
        agentToken: null,
        vmResources: null,
        diskId: null,
        diskSizeMb: null,
        specHash: null,
        vip: null,
      });
    } else if (inst.state !== "creating") {
      inst = await ops.setState(inst, "updating");
      if (o.rolling) await drainFromBalancers(o.rolling, inst, step.key, o.report);
    }
    const group = o.manifest.instance_groups.find((g) => g.name === step.group)!;
    // A standby group's recreate in its own zone, same vm_type: its zone's warm VM
    // takes the instance over (booted already), as in a failover, but planned.
    const warm =
      step.action === "recreate" && strategyOf(group).warmStandbys && inst.zone === step.zone
        ? await readyStandby(o.ctx, inst.deployment, step.group, step.zone, step.resources)
        : undefined;
    if (step.action === "recreate") {
      try {
        if (step.newDisk && inst.diskId) await peersHoldData(o.rolling, o.manifest, step);
        const note = await ops.drainAndStop(inst);
        if (note) await say(note, "warn");
        inst = await ops.deleteVm(inst);
        if (warm) inst = await adoptStandby(o.ctx, inst, warm);
      } catch (err) {
        if (warm) releaseStandby(warm);
        throw err;
      }
      if (warm) await say(`standby ${inst.vmId} on ${inst.host} takes over (its zone's warm VM)`);
      if (step.newDisk && inst.diskId) {
        // A cluster member moving zones or growing its disk: its peers fill the new one.
        await say(
          `deletes disk ${inst.diskId} (${inst.diskSizeMb ?? "?"} MiB) in ${inst.zone}: a new one (${step.diskSizeMb ?? "?"} MiB) in ${step.zone} is filled from the cluster`,
        );
        inst = await ops.deleteDisk(inst);
      }
      if (inst.zone !== step.zone) {
        await o.ctx.store.instances.update(inst.id, { zone: step.zone });
        inst = { ...inst, zone: step.zone };
      }
    }
    if (step.action === "create" || (step.action === "recreate" && !warm)) {
      inst = await ops.createVm(inst, step.host!, step.resources);
      await say(`VM ${inst.vmId} on ${inst.host} at ${inst.address}`);
    }
    if (step.diskSizeMb !== undefined) {
      const hadDisk = inst.diskId !== null;
      inst = await ops.ensureDisk(inst, step.diskSizeMb);
      if (!hadDisk) await say(`disk ${inst.diskId} (${step.diskSizeMb} MiB) created`);
      await ops.attachDisk(inst);
    }
    const known = await o.ctx.store.instances.list();
    const spec = buildSpec({
      manifest: o.manifest,
      group,
      instance: inst,
      diskId: inst.diskId,
      links: resolveLinks(o.manifest, group, known),
      ...(o.extras ? { extras: o.extras } : {}),
    });
    const instanceVip = strategyOf(group).instanceVip;
    if (instanceVip) inst = await ops.allocateVip(inst);
    await ops.applyAndStart(inst, spec, (note) => say(note, "warn"));
    if (instanceVip) {
      inst = await ops.ensureVip(inst, group.ports);
      await say(`serves virtual address ${inst.vip}`);
    } else {
      inst = await ops.dropVip(inst);
    }
    const watchMs = canary ? o.manifest.update.canary_watch_time : o.manifest.update.update_watch_time;
    await ops.watch(inst, watchMs);
    inst = await ops.reload(inst.id);
    await ops.setState(inst, inst.desired === "stopped" ? "stopped" : "running");
    await say(`${inst.desired === "stopped" ? "stopped" : "running"}, spec ${spec.version}`);
  } catch (err) {
    const current = await o.ctx.store.instances.get(step.instanceId);
    if (current && current.state !== "failed") await ops.setState(current, "failed").catch(() => undefined);
    await o.report.event("error", step.action, `failed: ${errorMessage(err)}`, step.key);
    throw err instanceof StepFailed ? err : new StepFailed(errorMessage(err));
  }
}
