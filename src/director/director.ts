/**
 * The director: the control plane's face. It validates what operators ask for,
 * turns it into tasks, and answers questions about deployments, instances, tasks
 * and events. The API (api.ts) and the CLI go through it.
 */
import { ZONAL_VERSION } from "../lib/version.js";
import { randomUUID } from "node:crypto";
import { parse as parseYaml } from "yaml";
import type { Heartbeat } from "../agent/heartbeat.js";
import type { AgentTlsIssuer, Cloud } from "../cloud/cloud.js";
import { Conflict, InvalidInput, NotFound, errorMessage } from "../lib/errors.js";
import type { Logger } from "../lib/log.js";
import type { InstanceRecord } from "../store/instances.js";
import type { Store } from "../store/store.js";
import type { EventRecord, TaskKind, TaskRecord } from "../store/tasks.js";
import { checkZonesExist, parseCloudConfig, type CloudConfig } from "../manifest/cloud-config.js";
import { LbService } from "./lb-service.js";
import { ClusterService } from "./cluster-service.js";
import { rollingControl } from "./rolling-control.js";
import { drain, undrain, type DrainView } from "./maintenance.js";
import type { MaintenanceKind, MaintenanceRecord } from "../store/maintenance.js";
import { specExtras } from "./clusters.js";
import { BootstrapBook } from "./agent-bootstrap.js";
import { agentClient, agentOf, type DirectorContext, type ServiceCa } from "./context.js";
import { makeHandlers, summarize, type DeployPayload } from "./handlers.js";
import type { HealthConfig } from "../health/config.js";
import { HealthMonitor, type HealthSwitch } from "../health/monitor.js";
import { HeartbeatBook } from "./heartbeats.js";
import { EmbeddedLeaseStore } from "../ha/embedded/store.js";
import { InstanceLocks } from "./instance-locks.js";
import { parseManifest } from "../manifest/manifest.js";
import { planDeployment } from "./observe.js";
import { reconcile } from "./reconcile.js";
import { TaskRunner } from "./task-runner.js";
import { describeTarget, parseTarget, selectTargets } from "./targets.js";

/** An instance as the API shows it: the store's record plus what its heartbeats say. */
/** `zonal version`: what runs where. */
export interface VersionsView {
  controlPlane: string;
  agents: Array<{
    deployment: string;
    vm: string;
    vmId: string | null;
    /** null when the agent did not answer (`error` says why). */
    version: string | null;
    pid?: number;
    error: string | null;
  }>;
}

export interface InstanceView {
  id: string;
  deployment: string;
  group: string;
  index: number;
  zone: string;
  host: string | null;
  address: string | null;
  /** The instance's virtual address (standby groups); clients use it. */
  vip: string | null;
  /** creating, updating, running, stopped, failed, deleting; or, for a running instance, unresponsive or failing. */
  state: string;
  desired: string;
  vmId: string | null;
  diskId: string | null;
  jobsState: string | null;
  /** Milliseconds since its last heartbeat (null before the first). */
  heartbeatAgeMs: number | null;
  specVersion: string | null;
}

/** A manifest that is valid but cannot be placed: 409 with the reasons. */
export class CannotPlace extends Conflict {
  override readonly code = "cannot_place";
  constructor(readonly reasons: string[]) {
    super(`cannot place the deployment; nothing was changed:\n  ${reasons.join("\n  ")}`);
  }

  override details(): Record<string, unknown> {
    return { reasons: this.reasons };
  }
}

/** How long a stopping director waits for its running tasks. */
const STOP_WAIT_MS = 10_000;

export class Director {
  readonly heartbeats: HeartbeatBook;
  readonly clusters: ClusterService;
  readonly lbs: LbService;

  private readonly runner: TaskRunner;
  monitor: HealthMonitor | undefined;

  private constructor(
    readonly ctx: DirectorContext,
    readonly owner: string,
    apiToken: string,
    /** Agents' one-time bootstrap deposits (with agent TLS). */
    readonly bootstraps: BootstrapBook,
  ) {
    this.heartbeats = new HeartbeatBook(ctx.store);
    this.clusters = new ClusterService(ctx, apiToken, this.heartbeats);
    this.lbs = new LbService(ctx);
    this.runner = new TaskRunner(ctx, owner, makeHandlers(ctx, rollingControl(this.clusters, this.lbs)));
  }

  /** Opens the director on a store and a cloud: reconciles, then resumes unfinished tasks. */
  static async start(o: {
    store: Store;
    cloud: Cloud;
    heartbeatUrl: string;
    /** Where agents reach the control plane's API (default: the heartbeat URL's origin). */
    controlPlaneUrl?: string;
    /** TLS between the director and agents (see DirectorContext.agentTls). */
    agentTls?: AgentTlsIssuer;
    log: Logger;
    /** The health monitor's settings; it does not run when undefined. */
    health?: HealthConfig;
    /** The control plane's API token (full access to leases). */
    apiToken?: string;
    /** The CA data services' certificates come from (see DirectorContext.serviceCa). */
    serviceCa?: () => Promise<ServiceCa>;
  }): Promise<Director> {
    let directorId = await o.store.settings.get("director_id");
    if (!directorId) {
      directorId = `d-${randomUUID().slice(0, 8)}`;
      await o.store.settings.set("director_id", directorId);
    }
    const ctx: DirectorContext = {
      store: o.store,
      cloud: o.cloud,
      directorId,
      heartbeatUrl: o.heartbeatUrl,
      log: o.log,
      instanceLocks: new InstanceLocks(),
      leases: new EmbeddedLeaseStore(o.store),
      controlPlaneUrl: o.controlPlaneUrl ?? new URL(o.heartbeatUrl).origin,
      ...(o.agentTls ? { agentTls: o.agentTls } : {}),
      ...(o.serviceCa ? { serviceCa: o.serviceCa } : {}),
    };
    // VMs off loopback (agent TLS) get a one-time code in their injected settings, not their secrets.
    const bootstraps = new BootstrapBook(o.store);
    if (o.agentTls) ctx.agentBootstrap = bootstraps.bootstrapper(`${ctx.controlPlaneUrl}/v1/bootstrap`);
    const renewed = await ctx.leases.renewAllAfterRestart();
    if (renewed > 0)
      o.log.info({ leases: renewed }, "gave every lease one TTL to be renewed after the restart");
    const director = new Director(
      ctx,
      `${directorId}/pid-${process.pid}`,
      o.apiToken ?? randomUUID(),
      bootstraps,
    );
    const locked = new Set(
      (await o.store.tasks.list({ states: ["running", "queued"], limit: 1000 })).map((t) => t.deployment),
    );
    for (const d of await o.store.deployments.list()) {
      if (locked.has(d.name)) continue; // its task reconciles when it resumes
      for (const sentence of await reconcile(ctx, d.name).catch((err: unknown) => [
        `reconcile failed: ${errorMessage(err)}`,
      ])) {
        await o.store.tasks.addEvent({
          taskId: null,
          deployment: d.name,
          instance: null,
          level: "warn",
          stage: "reconcile",
          message: sentence,
        });
      }
    }
    const resumed = await director.runner.resume();
    if (resumed.length > 0) o.log.warn({ tasks: resumed }, "resumed unfinished tasks");
    if (o.health) {
      director.monitor = new HealthMonitor(
        {
          ...ctx,
          agentInfo: (inst, timeoutMs) => agentOf(ctx, inst, timeoutMs).info(),
          startJobs: async (inst) => void (await agentOf(ctx, inst, 5000).start(0)),
        },
        director.heartbeats,
        (t) => director.runner.submit(t),
        o.health,
      );
      director.monitor.start();
    }
    return director;
  }

  /**
   * Stops the health monitor and the task runner, and waits (up to STOP_WAIT_MS) for
   * the monitor's look and the tasks that run to end; a task still running then is
   * resumed by the next start (every step is idempotent and re-reads the instance).
   */
  async stop(): Promise<void> {
    this.runner.stop();
    const waited = Promise.all([this.monitor?.stop(), this.runner.idle()]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([waited, new Promise((r) => (timer = setTimeout(r, STOP_WAIT_MS)))]);
    clearTimeout(timer);
  }

  /** Waits until no task runs (tests). */
  idle(): Promise<void> {
    return this.runner.idle();
  }

  get id(): string {
    return this.ctx.directorId;
  }

  // ---- cloud config ---------------------------------------------------------------

  async cloudConfig(): Promise<CloudConfig> {
    const text = await this.ctx.store.settings.get("cloud_config");
    if (!text) throw new NotFound('no cloud config yet; upload one with "zonal cloud-config FILE"');
    return JSON.parse(text) as CloudConfig;
  }

  async setCloudConfig(doc: unknown): Promise<CloudConfig> {
    const cc = parseCloudConfig(typeof doc === "string" ? parseDocument(doc, "cloud config") : doc);
    checkZonesExist(cc, await this.ctx.cloud.zones());
    await this.ctx.store.settings.set("cloud_config", JSON.stringify(cc));
    return cc;
  }

  // ---- versions ---------------------------------------------------------------------

  /** The control plane's version and every agent's (instances' and standbys'), as each says. */
  async versions(): Promise<VersionsView> {
    const [instances, standbys] = await Promise.all([
      this.ctx.store.instances.list(),
      this.ctx.store.standbys.list(),
    ]);
    const ask = async (vm: {
      address: string | null;
      agentPort: number | null;
      agentToken: string | null;
    }) => {
      if (!vm.address || !vm.agentPort || !vm.agentToken) return { version: null, error: "no VM" };
      try {
        const info = await agentClient(
          this.ctx,
          { address: vm.address, agentPort: vm.agentPort, agentToken: vm.agentToken },
          2000,
        ).info();
        return { version: info.agentVersion, pid: info.pid, error: null };
      } catch (err) {
        return { version: null, error: errorMessage(err) };
      }
    };
    const agents = await Promise.all([
      ...instances.map(async (i) => ({
        deployment: i.deployment,
        vm: `${i.group}/${i.index}`,
        vmId: i.vmId,
        ...(await ask(i)),
      })),
      ...standbys.map(async (s) => ({
        deployment: s.deployment,
        vm: `${s.group} standby in ${s.zone}`,
        vmId: s.vmId,
        ...(await ask(s)),
      })),
    ]);
    return { controlPlane: ZONAL_VERSION, agents };
  }

  // ---- maintenance ----------------------------------------------------------------

  /** Puts a host or a zone in maintenance and moves everything off it (maintenance.ts). */
  drain(kind: MaintenanceKind, target: string, reason?: string): Promise<DrainView> {
    return drain(this.ctx, (t) => this.runner.submit(t), kind, target, reason ?? "drained by an operator");
  }

  undrain(kind: MaintenanceKind, target: string) {
    return undrain(this.ctx, kind, target);
  }

  /** Hosts and zones in maintenance, with what still runs there. */
  async maintenance(): Promise<Array<MaintenanceRecord & { instances: string[] }>> {
    const [list, instances] = await Promise.all([
      this.ctx.store.maintenance.list(),
      this.ctx.store.instances.list(),
    ]);
    return list.map((m) => ({
      ...m,
      instances: instances
        .filter((i) => (m.kind === "zone" ? i.zone === m.target : i.host === m.target))
        .map((i) => `${i.deployment}/${i.group}/${i.index}`),
    }));
  }

  // ---- deployments ------------------------------------------------------------------

  /** Validates the manifest, checks it can be placed (changing nothing if not), then starts a deploy task. */
  async deploy(doc: unknown): Promise<TaskRecord> {
    const cc = await this.cloudConfig();
    const manifest = parseManifest(typeof doc === "string" ? parseDocument(doc, "manifest") : doc, cc);
    const dryRun = await planDeployment(
      this.ctx,
      manifest,
      cc,
      undefined,
      await specExtras(this.ctx, manifest, { allocate: false }),
    );
    if (dryRun.errors.length > 0) throw new CannotPlace(dryRun.errors);
    const payload: DeployPayload = { manifest, cloudConfig: cc };
    return this.runner.submit({
      deployment: manifest.name,
      kind: "deploy",
      description: `deploy ${manifest.name} (${summarize(dryRun)})`,
      payload,
    });
  }

  async deployments() {
    const [deployments, instances] = await Promise.all([
      this.ctx.store.deployments.list(),
      this.ctx.store.instances.list(),
    ]);
    return deployments.map((d) => {
      const { manifest } = d.manifest as DeployPayload;
      const mine = instances.filter((i) => i.deployment === d.name);
      return {
        name: d.name,
        groups: manifest.instance_groups.map((g) => ({
          name: g.name,
          instances: g.instances,
          zones: g.zones,
          strategy: g.strategy,
        })),
        instances: mine.length,
        running: mine.filter((i) => this.view(i).state === "running").length,
        updatedAt: d.updatedAt,
      };
    });
  }

  async manifest(name: string): Promise<unknown> {
    const d = await this.ctx.store.deployments.get(name);
    if (!d) throw new NotFound(`deployment ${name} does not exist`);
    return (d.manifest as DeployPayload).manifest;
  }

  async deleteDeployment(name: string): Promise<TaskRecord> {
    if (
      !(await this.ctx.store.deployments.get(name)) &&
      (await this.ctx.store.instances.list(name)).length === 0
    ) {
      throw new NotFound(`deployment ${name} does not exist`);
    }
    return this.runner.submit({
      deployment: name,
      kind: "delete",
      description: `delete deployment ${name}`,
      payload: {},
    });
  }

  async action(
    kind: Extract<TaskKind, "recreate" | "stop" | "start" | "upgrade-agents">,
    deployment: string,
    targetText?: string,
  ): Promise<TaskRecord> {
    const target = parseTarget(targetText);
    if (!(await this.ctx.store.deployments.get(deployment)))
      throw new NotFound(`deployment ${deployment} does not exist`);
    selectTargets(await this.ctx.store.instances.list(deployment), target, deployment);
    return this.runner.submit({
      deployment,
      kind,
      description: `${kind} ${describeTarget(target)} of ${deployment}`,
      payload: { target },
    });
  }

  // ---- instances --------------------------------------------------------------------

  view(inst: InstanceRecord): InstanceView {
    const last = this.heartbeats.lastOf(inst.vmId);
    const verdict = this.monitor?.verdictOf(inst.id);
    let state: string = inst.state;
    if (
      inst.state === "running" &&
      verdict &&
      verdict.health !== "healthy" &&
      verdict.health !== "not-judged"
    ) {
      state = verdict.health;
    }
    return {
      id: inst.id,
      deployment: inst.deployment,
      group: inst.group,
      index: inst.index,
      zone: inst.zone,
      host: inst.host,
      address: inst.address,
      vip: inst.vip,
      state,
      desired: inst.desired,
      vmId: inst.vmId,
      diskId: inst.diskId,
      jobsState: last?.beat.jobsState ?? null,
      heartbeatAgeMs: last ? Date.now() - last.at : null,
      specVersion: last?.beat.specVersion ?? inst.specHash,
    };
  }

  /** `zonal health`: verdicts, meltdown, zones down, per deployment. */
  async health(deployment?: string) {
    if (!this.monitor) throw new Conflict("the health monitor is off in this control plane");
    const s = await this.monitor.status();
    const instances = deployment ? s.instances.filter((i) => i.deployment === deployment) : s.instances;
    const names = [...new Set(instances.map((i) => i.deployment))].sort();
    return {
      downZones: s.downZones,
      meltdown: s.meltdown,
      overrides: s.overrides,
      paused: s.paused,
      deployments: names.map((name) => {
        const mine = instances.filter((i) => i.deployment === name);
        const count = (f: (i: (typeof mine)[number]) => boolean) => mine.filter(f).length;
        return {
          name,
          instances: mine.length,
          healthy: count((i) => i.health === "healthy"),
          unresponsive: count(
            (i) => i.health === "unresponsive" || i.health === "unreachable" || i.health === "failing",
          ),
          recovering: count((i) => i.decision === "recovering"),
          waiting: count((i) => i.decision === "wait"),
          meltdown: s.meltdown.all || s.meltdown.deployments.includes(name),
          overridden: s.overrides.all || s.overrides.deployments.includes(name),
          paused: s.paused.all || s.paused.deployments.includes(name),
        };
      }),
      instances,
    };
  }

  /** Sets an operator's switch of the health monitor (the meltdown override, the pause). */
  async setHealthSwitch(which: HealthSwitch, deployment: string | undefined, on: boolean) {
    if (!this.monitor) throw new Conflict("the health monitor is off in this control plane");
    if (deployment !== undefined && !(await this.ctx.store.deployments.get(deployment))) {
      throw new NotFound(`deployment ${deployment} does not exist`);
    }
    return this.monitor.setSwitch(which, deployment, on);
  }

  async instances(deployment?: string): Promise<InstanceView[]> {
    if (deployment !== undefined && !(await this.ctx.store.deployments.get(deployment))) {
      throw new NotFound(`deployment ${deployment} does not exist`);
    }
    return (await this.ctx.store.instances.list(deployment)).map((i) => this.view(i));
  }

  async recordHeartbeat(token: string, beat: Heartbeat): Promise<"recorded" | "unknown-vm"> {
    return this.heartbeats.record(token, beat);
  }

  async logs(deployment: string, targetText: string, job: string | undefined, lines: number) {
    const target = parseTarget(targetText);
    if (target.group === undefined || target.index === undefined) {
      throw new InvalidInput(`instance: expected GROUP/INDEX, got "${targetText}"`);
    }
    const [inst] = selectTargets(await this.ctx.store.instances.list(deployment), target, deployment);
    const agent = agentOf(this.ctx, inst!, 5000);
    const spec = await agent.spec();
    const jobs = job ? [job] : (spec?.jobs ?? []).map((j) => j.name);
    const out: Array<{ job: string; lines: string[] }> = [];
    for (const name of jobs) out.push({ job: name, lines: await agent.logs(name, lines) });
    return out;
  }

  // ---- tasks and events -----------------------------------------------------------------

  tasks(o: { deployment?: string; limit?: number }) {
    return this.ctx.store.tasks.list(o);
  }

  async task(id: number): Promise<TaskRecord> {
    const t = await this.ctx.store.tasks.get(id);
    if (!t) throw new NotFound(`task ${id} does not exist`);
    return t;
  }

  events(o: {
    taskId?: number;
    deployment?: string;
    afterId?: number;
    limit?: number;
  }): Promise<EventRecord[]> {
    return this.ctx.store.tasks.events(o);
  }
}

function parseDocument(text: string, what: string): unknown {
  try {
    return parseYaml(text);
  } catch (err) {
    throw new InvalidInput(`${what} is not valid YAML: ${errorMessage(err)}`);
  }
}
