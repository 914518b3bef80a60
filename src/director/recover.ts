/**
 * Recovery tasks (kind `recover`, which the health monitor submits with a
 * RecoverPayload): one instance, rebuilt by its group's strategy.
 * Every step is idempotent and reads the instance again first, so a recovery
 * resumed after a director crash carries on where it stopped. The timeline —
 * detected, fenced, disk moved, started, healthy — is written as events, each with
 * the time since detection.
 *
 * Safety: the old VM is powered off through the cloud (fenced) before anything is
 * taken from it — its disk, its address, its role. A recovery holds the instance's
 * lock, never the deployment's: a running deploy does not starve it.
 */
import type { RecoverPayload } from "../health/recover-request.js";
import { NotFound, errorMessage } from "../lib/errors.js";
import { waitFor } from "../lib/sleep.js";
import { place } from "../placement/place.js";
import type { InstanceRecord } from "../store/instances.js";
import type { TaskRecord } from "../store/tasks.js";
import type { CloudConfig } from "../manifest/cloud-config.js";
import { agentOf, type DirectorContext } from "./context.js";
import type { TaskReporter } from "./events.js";
import { InstanceOps, StepFailed } from "./instance-ops.js";
import type { GroupManifest, Manifest } from "../manifest/manifest.js";
import { placementHosts } from "./observe.js";
import { resourcesOf } from "./planner.js";
import { buildSpec, resolveLinks } from "./spec-builder.js";
import { adoptStandby, readyStandby, releaseStandby, syncStandbys } from "./standby-pool.js";
import { breakLeasesOf, specExtras } from "./clusters.js";
import { strategyOf } from "../strategies/registry.js";

interface Recovery {
  ctx: DirectorContext;
  ops: InstanceOps;
  report: TaskReporter;
  manifest: Manifest;
  cc: CloudConfig;
  group: GroupManifest;
  payload: RecoverPayload;
  say(message: string, level?: "info" | "warn"): Promise<void>;
}

export function recoverHandler(ctx: DirectorContext) {
  return async (task: TaskRecord, report: TaskReporter): Promise<string> => {
    const payload = task.payload as RecoverPayload;
    const release = await ctx.instanceLocks.lock(payload.instanceId);
    try {
      const ops = new InstanceOps(ctx);
      let inst = await ctx.store.instances.get(payload.instanceId);
      if (!inst) return `instance ${payload.instanceId} is gone; nothing to recover`;
      const key = `${inst.group}/${inst.index}`;
      const stored = await ctx.store.deployments.get(inst.deployment);
      if (!stored) return `deployment ${inst.deployment} is gone; nothing to recover`;
      const { manifest, cloudConfig: cc } = stored.manifest as {
        manifest: Manifest;
        cloudConfig: CloudConfig;
      };
      const group = manifest.instance_groups.find((g) => g.name === inst!.group);
      if (!group) return `${key}: its group left the manifest; nothing to recover`;
      const say = (message: string, level: "info" | "warn" = "info") =>
        report.event(level, "recover", `${message} (+${Date.now() - payload.detectedAt} ms)`, key);
      const r: Recovery = { ctx, ops, report, manifest, cc, group, payload, say };
      if (task.startedAt === null || inst.state !== "recovering") await say(`detected: ${payload.reason}`);
      if (inst.state !== "recovering") inst = await ops.setState(inst, "recovering");
      const { warmStandbys } = strategyOf(group);
      let how = "a new VM";
      try {
        await fence(r);
        const standby = warmStandbys && !payload.relocate ? await claimStandby(r, inst) : undefined;
        how = standby ? "its zone's warm standby" : "a new VM";
        inst = standby ?? (await resurrect(r, inst));
        if (inst.diskId) {
          await ops.attachDisk(inst);
          await say(`disk ${inst.diskId} attached to ${inst.vmId}`);
        }
        inst = await startAndCheck(r, inst);
        inst = await ops.reload(inst.id);
        await ops.setState(inst, inst.desired === "stopped" ? "stopped" : "running");
      } catch (err) {
        const now = await ctx.store.instances.get(payload.instanceId);
        if (now && now.state !== "failed") await ops.setState(now, "failed").catch(() => undefined);
        throw err;
      }
      if (warmStandbys) await syncStandbys(ctx, manifest, cc, report, { group: group.name, zone: inst.zone });
      return `${key} recovered on ${inst.vmId} by ${how} in ${Date.now() - payload.detectedAt} ms`;
    } finally {
      release();
    }
  };
}

/** Powers the failed VM off through the cloud; nothing is taken from it before this returns. */
async function fence(r: Recovery): Promise<void> {
  const vmId = r.payload.failedVmId;
  if (!vmId) return;
  try {
    await r.ctx.cloud.powerOffVm(vmId);
    await r.say(`fenced: ${vmId} powered off`);
  } catch (err) {
    if (!(err instanceof NotFound))
      throw new StepFailed(`cannot fence ${vmId}: ${errorMessage(err)}; not taking anything over`);
    await r.say(`fenced: ${vmId} no longer exists`);
  }
  // Fenced: the VM cannot act any more, so its leases may go now rather than after their TTL.
  const broken = await breakLeasesOf(r.ctx, r.manifest, vmId);
  if (broken.length > 0) await r.say(`broke the fenced VM's leases: ${broken.join(", ")}`);
}

/** True when the instance still has the failed VM (or none): it needs a new one. */
const stillOnFailedVm = (r: Recovery, inst: InstanceRecord) =>
  inst.vmId === null || inst.vmId === r.payload.failedVmId;

/** Releases the disk from the fenced VM (it cannot let go by itself) and deletes that VM. */
async function letGoOfOldVm(r: Recovery, inst: InstanceRecord): Promise<InstanceRecord> {
  if (inst.diskId) {
    const disk = await r.ctx.cloud.getDisk(inst.diskId);
    if (disk?.attachedTo && disk.attachedTo !== r.payload.failedVmId) {
      throw new StepFailed(
        `disk ${inst.diskId} is attached to ${disk.attachedTo}, not to the fenced ${r.payload.failedVmId}; refusing to take it`,
      );
    }
    if (disk?.attachedTo) {
      await r.ctx.cloud.detachDisk(inst.diskId, { force: true });
      await r.say(`disk ${inst.diskId} force-detached from ${disk.attachedTo}`);
    }
  }
  const old = inst.vmId;
  inst = await r.ops.deleteVm(inst);
  if (old) await r.say(`old VM ${old} deleted`);
  return inst;
}

/** Strategy resurrect: a new VM in the same zone (or a healthy one, relocating) on a healthy host. */
async function resurrect(r: Recovery, inst: InstanceRecord): Promise<InstanceRecord> {
  if (!stillOnFailedVm(r, inst)) return inst; // resumed: the new VM exists already
  inst = await letGoOfOldVm(r, inst);
  const resources = resourcesOf(r.group, r.cc);
  const hosts = await placementHosts(r.ctx);
  const siblings = (await r.ctx.store.instances.list(inst.deployment)).filter(
    (i) => i.group === inst.group && i.id !== inst.id,
  );
  let zone = inst.zone;
  if (r.payload.relocate) {
    const up = r.group.zones.filter((z) => z !== inst.zone && hosts.some((h) => h.zone === z && h.up));
    if (up.length === 0) throw new StepFailed(`no healthy zone to relocate ${inst.group}/${inst.index} to`);
    zone = up.reduce((a, b) =>
      siblings.filter((s) => s.zone === b).length < siblings.filter((s) => s.zone === a).length ? b : a,
    );
    await r.ctx.store.instances.update(inst.id, { zone });
    inst = { ...inst, zone };
    await r.say(`relocating to zone ${zone}`);
  }
  const key = `${inst.group}/${inst.index}`;
  const placed = place({
    hosts,
    requests: [{ key, group: inst.group, zone, resources }],
    groupHosts: new Map([[inst.group, new Map(siblings.filter((s) => s.host).map((s) => [s.host!, 1]))]]),
  });
  const host = placed.hosts.get(key);
  if (!host) throw new StepFailed(`no host for ${key} in ${zone}: ${placed.failures[0]?.reasons.join("; ")}`);
  inst = await r.ops.createVm(inst, host, resources);
  await r.say(`new VM ${inst.vmId} on ${inst.host} at ${inst.address}`);
  return inst;
}

/**
 * Strategy standby: the zone's warm standby becomes the instance's VM. Returns
 * undefined when no standby is ready (the caller resurrects instead).
 */
async function claimStandby(r: Recovery, inst: InstanceRecord): Promise<InstanceRecord | undefined> {
  // Resumed after a crash: the standby may already be this instance's VM.
  const already = (await r.ctx.store.standbys.list(inst.deployment)).find(
    (s) => s.vmId !== null && s.vmId === inst.vmId,
  );
  if (already) await r.ctx.store.standbys.delete(already.id);
  if (!stillOnFailedVm(r, inst)) return inst;
  const standby = await readyStandby(r.ctx, inst.deployment, inst.group, inst.zone);
  if (!standby) {
    await r.say(`no standby ready in ${inst.zone}; resurrecting instead`, "warn");
    return undefined;
  }
  try {
    inst = await letGoOfOldVm(r, inst);
    inst = await adoptStandby(r.ctx, inst, standby);
  } catch (err) {
    releaseStandby(standby);
    throw err;
  }
  await r.say(`standby ${inst.vmId} on ${inst.host} takes over`);
  return inst;
}

/** Applies the spec, starts the jobs, moves the VIP (standby groups), and waits for a heartbeat that says running. */
async function startAndCheck(r: Recovery, inst: InstanceRecord): Promise<InstanceRecord> {
  const known = await r.ctx.store.instances.list();
  const spec = buildSpec({
    manifest: r.manifest,
    group: r.group,
    instance: inst,
    diskId: inst.diskId,
    links: resolveLinks(r.manifest, r.group, known),
    extras: await specExtras(r.ctx, r.manifest, { allocate: true }),
  });
  await r.ops.applyAndStart(inst, spec);
  await r.say(inst.desired === "stopped" ? "spec applied (jobs stay stopped)" : "jobs started");
  if (strategyOf(r.group).instanceVip) {
    inst = await r.ops.ensureVip(inst, r.group.ports);
    await r.say(`virtual address ${inst.vip} moved to ${inst.vmId}`);
  }
  if (inst.desired === "started") {
    const agent = agentOf(r.ctx, inst, 3000);
    await waitFor(async () => ((await agent.state()).jobsState === "running" ? true : undefined), {
      timeoutMs: 60_000,
      intervalMs: 100,
      what: `${inst.group}/${inst.index}'s jobs to run`,
    });
  }
  await r.say("healthy: serving again");
  return inst;
}
