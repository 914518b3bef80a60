/**
 * The steps the executor is made of, one instance at a time. Each is idempotent
 * (running it again after success does nothing harmful) and writes ahead: what a
 * cloud call will create is recorded before the call, so a director killed
 * between the two finds it again (see reconcile.ts) instead of leaking it.
 */
import { randomBytes } from "node:crypto";
import type { AgentState } from "../agent/agent.js";
import { errorMessage } from "../lib/errors.js";
import { sleep, waitFor } from "../lib/sleep.js";
import type { Resources } from "../placement/types.js";
import type { InstanceRecord } from "../store/instances.js";
import { agentOf, agentSettings, instanceMetadata, type DirectorContext } from "./context.js";
import { checkInstanceTransition, type InstanceState } from "../store/instance-state.js";
import type { AgentSpec } from "./spec-builder.js";

export class StepFailed extends Error {}

export class InstanceOps {
  constructor(private readonly ctx: DirectorContext) {}

  private get store() {
    return this.ctx.store;
  }

  async reload(id: string): Promise<InstanceRecord> {
    const inst = await this.store.instances.get(id);
    if (!inst) throw new StepFailed(`instance ${id} is gone from the store`);
    return inst;
  }

  async setState(inst: InstanceRecord, to: InstanceState): Promise<InstanceRecord> {
    checkInstanceTransition(`${inst.group}/${inst.index}`, inst.state, to);
    await this.store.instances.update(inst.id, { state: to });
    return { ...inst, state: to };
  }

  /** Creates the VM on `host` (its token is recorded first), records it, waits for its agent. */
  async createVm(inst: InstanceRecord, host: string, resources: Resources): Promise<InstanceRecord> {
    if (inst.vmId && (await this.ctx.cloud.vmExists(inst.vmId))) return inst;
    const token = randomBytes(24).toString("hex");
    await this.store.instances.update(inst.id, { agentToken: token, vmId: null, host: null, address: null });
    const { vm } = await this.ctx.cloud.createVm({
      zone: inst.zone,
      hostHints: [host],
      vmType: resources,
      metadata: instanceMetadata(this.ctx, inst),
      agent: agentSettings(this.ctx, token),
      group: `${inst.deployment}/${inst.group}`,
    });
    const patch = {
      vmId: vm.id,
      host: vm.host,
      address: vm.address,
      agentPort: vm.agentPort,
      vmResources: resources,
    };
    await this.store.instances.update(inst.id, patch);
    const created = { ...inst, ...patch, agentToken: token };
    await this.waitForAgent(created);
    return created;
  }

  /** Waits for a new VM's agent; one that never answers fails with the VM's state and console. */
  async waitForAgent(inst: InstanceRecord, timeoutMs = 60_000): Promise<void> {
    const agent = agentOf(this.ctx, inst, 2000);
    try {
      await waitFor(() => agent.info(), { timeoutMs, intervalMs: 100, what: `the agent of ${inst.vmId}` });
    } catch (err) {
      throw new Error(`${errorMessage(err)}${await this.bootReport(inst.vmId!)}`, { cause: err });
    }
  }

  /** What the cloud says of a VM whose agent does not answer: its state and its console's last lines. */
  private async bootReport(vmId: string): Promise<string> {
    const cloud = this.ctx.cloud;
    const vm = await cloud.getVm(vmId).catch((err: unknown) => errorMessage(err));
    const state =
      typeof vm === "string"
        ? `the cloud cannot say how VM ${vmId} is (${vm})`
        : `VM ${vmId} is ${vm?.state ?? "gone"}`;
    const lines = cloud.consoleOutput ? await cloud.consoleOutput(vmId, 12).catch(() => []) : [];
    const shown = lines.map((l) => (l.length > 300 ? `${l.slice(0, 297)}...` : l));
    const console = shown.length > 0 ? `; its console's last lines:\n    ${shown.join("\n    ")}` : "";
    return `; ${state}${console}`;
  }

  /** Creates the instance's persistent disk when it has none (recorded right after). */
  async ensureDisk(inst: InstanceRecord, sizeMb: number): Promise<InstanceRecord> {
    if (inst.diskId && (await this.ctx.cloud.getDisk(inst.diskId))) return inst;
    const disk = await this.ctx.cloud.createDisk({
      zone: inst.zone,
      sizeMb,
      metadata: instanceMetadata(this.ctx, inst),
    });
    await this.store.instances.update(inst.id, { diskId: disk.id, diskSizeMb: sizeMb });
    return { ...inst, diskId: disk.id, diskSizeMb: sizeMb };
  }

  /** Attaches the instance's disk to its VM. A disk stuck on another (dead, fenced) VM is force-detached. */
  async attachDisk(inst: InstanceRecord): Promise<void> {
    if (!inst.diskId || !inst.vmId) return;
    const disk = await this.ctx.cloud.getDisk(inst.diskId);
    if (disk?.attachedTo && disk.attachedTo !== inst.vmId) {
      // Only this instance's own old VMs can hold its disk; fence before taking it over.
      await this.ctx.cloud.powerOffVm(disk.attachedTo).catch(() => undefined);
      await this.ctx.cloud.detachDisk(inst.diskId, { force: true });
    }
    await this.ctx.cloud.attachDisk(inst.diskId, inst.vmId);
  }

  /**
   * Applies the spec (jobs that changed restart, drained first); starts the jobs when
   * the instance should run; records the spec. `onDrain` hears of a drain that did not finish.
   */
  async applyAndStart(
    inst: InstanceRecord,
    spec: AgentSpec,
    onDrain?: (note: string) => Promise<void>,
  ): Promise<AgentState> {
    const agent = agentOf(this.ctx, inst, 30_000);
    const t0 = Date.now();
    const applied = await agent.apply(spec);
    const drained = unfinishedDrains(applied.state, t0);
    if (drained && onDrain) await onDrain(drained);
    await this.store.instances.update(inst.id, { specHash: spec.version });
    if (inst.desired === "stopped") return agent.stop({ drain: true });
    const startTimeout = Math.max(...spec.jobs.map((j) => j.start_timeout_ms), 1000);
    const deadline = Date.now() + startTimeout;
    let state = await agent.start(startTimeout);
    // A job that failed to start once or twice is being retried by its agent (a cluster
    // member's first start after pg_rewind may need a second one): wait for it. A third
    // failed start, a failed job or the start timeout fails the step.
    while (state.jobsState !== "running" && retrying(state) && Date.now() < deadline) {
      await sleep(250);
      state = await agent.state();
    }
    if (state.jobsState !== "running") {
      throw new StepFailed(`jobs did not start: ${describeJobs(state)}${await lastLines(agent, state)}`);
    }
    return state;
  }

  /** Watches the jobs for `ms`: any job leaving `running` fails the step. */
  async watch(inst: InstanceRecord, ms: number): Promise<void> {
    if (inst.desired === "stopped") return;
    const agent = agentOf(this.ctx, inst, 5000);
    const until = Date.now() + ms;
    do {
      const state = await agent.state();
      if (state.jobsState !== "running")
        throw new StepFailed(`jobs failed while watched: ${describeJobs(state)}`);
      await sleep(Math.min(500, Math.max(0, until - Date.now())));
    } while (Date.now() < until);
  }

  /** Drains and stops the jobs when the agent answers; a dead agent has nothing to drain. */
  async drainAndStop(inst: InstanceRecord): Promise<string | undefined> {
    if (!inst.vmId || !inst.address) return undefined;
    try {
      await agentOf(this.ctx, inst, 5000).info();
    } catch (err) {
      return `agent does not answer (${errorMessage(err)}); nothing to drain`;
    }
    const t0 = Date.now();
    return unfinishedDrains(await agentOf(this.ctx, inst, 15 * 60_000).stop({ drain: true }), t0);
  }

  /** Deletes the VM (the cloud kills it: fenced). Idempotent. */
  async deleteVm(inst: InstanceRecord): Promise<InstanceRecord> {
    if (inst.vmId) await this.ctx.cloud.deleteVm(inst.vmId);
    const patch = { vmId: null, host: null, address: null, agentPort: null };
    await this.store.instances.update(inst.id, patch);
    return { ...inst, ...patch };
  }

  async deleteDisk(inst: InstanceRecord): Promise<InstanceRecord> {
    if (inst.diskId) {
      const disk = await this.ctx.cloud.getDisk(inst.diskId);
      if (disk?.attachedTo) await this.ctx.cloud.detachDisk(inst.diskId, { force: true });
      await this.ctx.cloud.deleteDisk(inst.diskId);
    }
    await this.store.instances.update(inst.id, { diskId: null, diskSizeMb: null });
    return { ...inst, diskId: null, diskSizeMb: null };
  }

  /**
   * The instance's virtual address, allocated once and recorded right after (before
   * its jobs start, so a service's certificate can name it).
   */
  async allocateVip(inst: InstanceRecord): Promise<InstanceRecord> {
    if (inst.vip) return inst;
    const vip = (
      await this.ctx.cloud.allocateAddress({
        zone: inst.zone,
        metadata: { ...instanceMetadata(this.ctx, inst), role: "vip" },
      })
    ).address;
    await this.store.instances.update(inst.id, { vip });
    return { ...inst, vip };
  }

  /**
   * Gives the instance its virtual address (allocateVip), moves it to the instance's
   * VM, and has the agent serve `ports` on it. Resolves once the agent has bound it,
   * which it can only do when no other VM serves it.
   */
  async ensureVip(inst: InstanceRecord, ports: number[], timeoutMs = 15_000): Promise<InstanceRecord> {
    if (!inst.vmId) throw new StepFailed(`${inst.group}/${inst.index} has no VM for its virtual address`);
    const vip = (await this.allocateVip(inst)).vip!;
    await this.ctx.cloud.assignAddress(vip, inst.vmId);
    const agent = agentOf(this.ctx, inst, 5000);
    await agent.setAddresses([{ address: vip, ports }]);
    await waitFor(
      async () => ((await agent.state()).addresses.every((a) => a.state === "bound") ? true : undefined),
      { timeoutMs, intervalMs: 50, what: `${inst.vmId} to serve ${vip}` },
    );
    return { ...inst, vip };
  }

  /** Releases the instance's virtual address, if it has one. */
  async dropVip(inst: InstanceRecord): Promise<InstanceRecord> {
    if (!inst.vip) return inst;
    await this.ctx.cloud.releaseAddress(inst.vip);
    await this.store.instances.update(inst.id, { vip: null });
    return { ...inst, vip: null };
  }

  async forget(inst: InstanceRecord): Promise<void> {
    await this.store.instances.delete(inst.id);
  }
}

/**
 * What a stop since `t0` left undone: drains that did not finish (their bound,
 * hook_timeout, passed, or they failed) and the job stopped anyway. Undefined: none.
 */
function unfinishedDrains(state: AgentState, t0: number): string | undefined {
  const unfinished = state.jobs.filter(
    (j) => j.lastDrain?.error !== undefined && Date.parse(j.lastDrain.at) >= t0 - 1000,
  );
  if (unfinished.length === 0) return undefined;
  return `drain did not finish, stopped anyway: ${unfinished.map((j) => `${j.name}: ${j.lastDrain!.error}`).join("; ")}`;
}

/** Failed starts the executor lets a job's agent retry before the step fails. */
export const START_RETRIES = 2;

/** Every job runs, starts, or is in backoff after at most START_RETRIES failed starts. */
function retrying(state: AgentState): boolean {
  return state.jobs.every(
    (j) =>
      j.state === "running" ||
      j.state === "starting" ||
      (j.state === "backoff" && j.restarts <= START_RETRIES),
  );
}

/** The last log lines of the jobs that are not running: what an operator reads first. */
async function lastLines(agent: ReturnType<typeof agentOf>, state: AgentState): Promise<string> {
  const out: string[] = [];
  for (const j of state.jobs.filter((x) => x.state !== "running")) {
    const lines = await agent.logs(j.name, 6).catch(() => []);
    if (lines.length > 0) out.push(`\n  last lines of ${j.name}:\n    ${lines.join("\n    ")}`);
  }
  return out.join("");
}

export function describeJobs(state: AgentState): string {
  return (
    state.jobs.map((j) => `${j.name} ${j.state}${j.message ? ` (${j.message})` : ""}`).join(", ") || "no jobs"
  );
}
