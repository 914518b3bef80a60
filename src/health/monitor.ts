/**
 * The health monitor: a control loop on a cadence (STYLE.md point 4). Each tick it
 * judges every instance from its heartbeats and probes (verdict.ts), asks the
 * meltdown guard what to do (guard.ts), and starts a recovery task for each
 * instance the guard lets it recover — at most one per instance, with backoff
 * after a failed one. Every change of verdict or decision is a sentence that
 * becomes an event. It also deletes zombies (zombies.ts).
 */
import type { Logger } from "pino";
import type { Cloud } from "../cloud/cloud.js";
import type { Heartbeat } from "../agent/heartbeat.js";
import type { GroupManifest, Manifest } from "../manifest/manifest.js";
import { errorMessage } from "../lib/errors.js";
import type { InstanceRecord } from "../store/instances.js";
import type { TaskRecord } from "../store/tasks.js";
import type { HealthConfig } from "./config.js";
import { guard, type GuardDecision } from "./guard.js";
import type { RecoverPayload } from "./recover-request.js";
import type { Store } from "../store/store.js";
import { isDown, judge, type Verdict } from "./verdict.js";
import { readZombies } from "./zombies.js";
import { strategyOf } from "../strategies/registry.js";

/** What the monitor reads and acts through (the composition root hands it the director's). */
export interface MonitorContext {
  store: Store;
  cloud: Cloud;
  log: Logger;
  /** This control plane's id (its VMs carry it: zombies are looked for among them). */
  directorId: string;
  /** Instances a deploy step or a recovery works on now (not judged meanwhile). */
  instanceLocks: { isLocked(instanceId: string): boolean };
  /** Calls the instance's agent (GET /v1/info); rejects when it does not answer in time. */
  agentInfo(inst: InstanceRecord, timeoutMs: number): Promise<unknown>;
  /** Asks the instance's agent to start its jobs (it does not wait for them to run). */
  startJobs(inst: InstanceRecord): Promise<void>;
}

/** The heartbeats agents sent, newest per VM (the director's HeartbeatBook). */
export interface HeartbeatSource {
  lastOf(vmId: string | null): { at: number; beat: Heartbeat } | undefined;
  forget(vmId: string): void;
  /** Called with a VM nobody owns that sent a heartbeat (a zombie suspect). */
  onUnknownVm: (vmId: string) => void;
}

export type SubmitTask = (t: {
  deployment: string;
  kind: "recover";
  description: string;
  payload: RecoverPayload;
}) => Promise<TaskRecord>;

/** A switch the operator sets for one deployment or for all (the meltdown override, the pause). */
export interface Overrides {
  all: boolean;
  deployments: string[];
}

/** The operator's switches, by their settings key. */
const SWITCHES = {
  override: {
    key: "health_overrides",
    said: (on: boolean) => `meltdown guard ${on ? "overridden" : "back in force"}`,
  },
  pause: {
    key: "health_paused",
    said: (on: boolean) =>
      on ? "recovery paused (the monitor watches, rebuilds nothing)" : "recovery resumed",
  },
} as const;
export type HealthSwitch = keyof typeof SWITCHES;

export interface InstanceHealth {
  id: string;
  key: string;
  deployment: string;
  zone: string;
  health: Verdict["health"];
  verdict: string;
  /** What the guard decided for a down instance, or "recovering" while a task runs. */
  decision?: string;
}

export interface HealthStatus {
  downZones: string[];
  meltdown: GuardDecision["meltdown"];
  overrides: Overrides;
  /** Deployments whose recovery the operator paused. */
  paused: Overrides;
  instances: InstanceHealth[];
}

/** A failed probe counts against a VM only if it sent a heartbeat this recently. */
const PROBE_NEEDS_BEAT_WITHIN_MS = 1500;

interface Probe {
  failures: number;
  inFlight: boolean;
  lastAt: number;
}

export class HealthMonitor {
  private readonly startedAt = Date.now();
  private readonly verdicts = new Map<string, Verdict>();
  /** Since when each instance has been down (for confirmMs). */
  private readonly downSince = new Map<string, number>();
  private readonly said = new Map<string, string>();
  private readonly probes = new Map<string, Probe>();
  private readonly active = new Map<string, number>();
  private readonly backoff = new Map<string, { until: number; failures: number }>();
  private failedZones: string[] = [];
  private zonesAt = 0;
  private zombiesAt = 0;
  private readonly suspects = new Set<string>();
  /** Instances that waited for their zone: recovered when it is back. */
  private readonly zoneVictims = new Set<string>();
  private last: GuardDecision = { downZones: [], meltdown: { all: false, deployments: [] }, actions: [] };
  /** When each meltdown ended ("" for all deployments). */
  private readonly meltdownEndedAt = new Map<string, number>();

  /** Records the meltdowns of the last decision that `now` has no more; true if any ended. */
  private noteMeltdownEnds(now: GuardDecision["meltdown"], at: number): boolean {
    const was = this.last.meltdown;
    const ended = [
      ...(was.all && !now.all ? [""] : []),
      ...was.deployments.filter((d) => !now.deployments.includes(d)),
    ];
    for (const d of ended)
      if (!this.meltdownEndedAt.has(d) || this.meltdownEndedAt.get(d)! < at - 1)
        this.meltdownEndedAt.set(d, at);
    return ended.length > 0;
  }

  private recentMeltdown(now: number): GuardDecision["meltdown"] {
    const recent = (d: string) =>
      now - (this.meltdownEndedAt.get(d) ?? -Infinity) < this.cfg.unresponsiveAfterMs;
    return {
      all: recent(""),
      deployments: [...this.meltdownEndedAt.keys()].filter((d) => d !== "" && recent(d)),
    };
  }
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  /** The look in progress (stop waits for it). */
  private current: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: MonitorContext,
    private readonly heartbeats: HeartbeatSource,
    private readonly submit: SubmitTask,
    readonly cfg: HealthConfig,
  ) {
    heartbeats.onUnknownVm = (vmId) => this.suspects.add(vmId);
  }

  start(): void {
    this.timer = setInterval(() => void this.tick(), this.cfg.tickMs);
    this.timer.unref();
  }

  /** Stops looking; resolves once a look in progress has ended (nothing of it runs on after). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.current;
  }

  /** Where the operator set a switch: for every deployment, or for these. */
  async switched(which: HealthSwitch): Promise<Overrides> {
    const text = await this.ctx.store.settings.get(SWITCHES[which].key);
    return text ? (JSON.parse(text) as Overrides) : { all: false, deployments: [] };
  }

  /** Sets or clears a switch for one deployment (or for all); an event says so. */
  async setSwitch(which: HealthSwitch, deployment: string | undefined, on: boolean): Promise<Overrides> {
    const o = await this.switched(which);
    if (deployment === undefined) o.all = on;
    else
      o.deployments = on
        ? [...new Set([...o.deployments, deployment])]
        : o.deployments.filter((d) => d !== deployment);
    await this.ctx.store.settings.set(SWITCHES[which].key, JSON.stringify(o));
    await this.event(
      deployment ?? null,
      `${SWITCHES[which].said(on)} for ${deployment ?? "all deployments"} by the operator`,
    );
    return o;
  }

  verdictOf(instanceId: string): Verdict | undefined {
    return this.verdicts.get(instanceId);
  }

  async status(): Promise<HealthStatus> {
    const instances = await this.ctx.store.instances.list();
    const decided = new Map(this.last.actions.map((a) => [a.id, a]));
    return {
      downZones: this.last.downZones,
      meltdown: this.last.meltdown,
      overrides: await this.switched("override"),
      paused: await this.switched("pause"),
      instances: instances.map((i) => {
        const v = this.verdicts.get(i.id);
        const d = this.active.has(i.id) ? "recovering" : decided.get(i.id)?.action;
        return {
          id: i.id,
          key: `${i.group}/${i.index}`,
          deployment: i.deployment,
          zone: i.zone,
          health: v?.health ?? "not-judged",
          verdict: v?.sentence ?? "not judged yet",
          ...(d ? { decision: d } : {}),
        };
      }),
    };
  }

  private async event(
    deployment: string | null,
    message: string,
    instance?: string,
    level: "info" | "warn" = "warn",
  ) {
    await this.ctx.store.tasks.addEvent({
      taskId: null,
      deployment,
      instance: instance ?? null,
      level,
      stage: "health",
      message,
    });
    this.ctx.log[level]({ deployment, instance }, message);
  }

  /** One look at everything; returns the sentences it said. Never runs twice at once. */
  async tick(now = Date.now()): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    this.current = this.look(now)
      .catch((err: unknown) => this.ctx.log.error({ err: errorMessage(err) }, "health monitor tick failed"))
      .finally(() => (this.ticking = false));
    await this.current;
  }

  private async look(now: number): Promise<void> {
    const [instances, deployments] = await Promise.all([
      this.ctx.store.instances.list(),
      this.ctx.store.deployments.list(),
    ]);
    const groups = new Map<string, GroupManifest>();
    for (const d of deployments) {
      await this.isolated(`manifest ${d.name}`, d.name, null, () => {
        for (const g of (d.manifest as { manifest: Manifest }).manifest.instance_groups)
          groups.set(`${d.name}/${g.name}`, g);
      });
    }
    if (now - this.zonesAt > 2000) {
      this.zonesAt = now;
      const zones = await this.ctx.cloud.zones();
      this.failedZones = zones
        .filter((z) => z.hosts.length > 0 && z.hosts.every((h) => h.state === "failed"))
        .map((z) => z.name);
    }
    await this.settleActive(now);
    for (const inst of instances) this.probe(inst, now);

    for (const inst of instances)
      await this.isolated(`judge ${inst.id}`, inst.deployment, `${inst.group}/${inst.index}`, () =>
        this.judgeOne(inst, now),
      );

    const decide = () =>
      guard(
        {
          instances: instances.map((i) => {
            const g = groups.get(`${i.deployment}/${i.group}`);
            return {
              id: i.id,
              key: `${i.group}/${i.index}`,
              deployment: i.deployment,
              zone: i.zone,
              health: this.active.has(i.id)
                ? "not-judged"
                : (this.verdicts.get(i.id)?.health ?? "not-judged"),
              strategy: g?.strategy ?? "(group gone)",
              recovers: g ? strategyOf(g).recovers : false,
              relocate: g?.relocate ?? false,
            };
          }),
          failedZones: this.failedZones,
          zoneVictims: this.zoneVictims,
          overrides,
          paused,
          recentMeltdown: this.recentMeltdown(now),
        },
        this.cfg,
      );
    const overrides = await this.switched("override");
    const paused = await this.switched("pause");
    let decision = decide();
    // A meltdown that ends now counts as recent at once: the instances still silent
    // are the ones whose heartbeats have not come back yet.
    if (this.noteMeltdownEnds(decision.meltdown, now)) decision = decide();
    if (
      decision.meltdown.all !== this.last.meltdown.all ||
      decision.meltdown.deployments.join() !== this.last.meltdown.deployments.join()
    ) {
      await this.event(
        null,
        `meltdown: ${decision.meltdown.all ? "all deployments" : decision.meltdown.deployments.join(", ") || "none"}`,
      );
    }
    this.last = decision;
    for (const a of decision.actions)
      await this.isolated(`act ${a.id}`, a.deployment, a.key, () => this.actOn(a, decision, instances, now));
    for (const id of [...this.said.keys()])
      if (!decision.actions.some((a) => a.id === id)) this.said.delete(id);
    if (now - this.zombiesAt > 5000 || this.suspects.size > 0) {
      this.zombiesAt = now;
      await this.sweepZombies();
    }
  }

  /**
   * Runs one instance's (`instance`: its key) or deployment's share of a tick: an
   * exception there is an event naming it (once per distinct message), and the
   * others are judged anyway.
   */
  private async isolated(
    id: string,
    deployment: string,
    instance: string | null,
    work: () => unknown,
  ): Promise<void> {
    try {
      await work();
      this.failing.delete(id);
    } catch (err) {
      const what = instance ? `${instance} of ${deployment}` : `the manifest of ${deployment}`;
      const message = `health monitor: could not judge ${what}: ${errorMessage(err)}`;
      if (this.failing.get(id) === message) return;
      this.failing.set(id, message);
      await this.event(deployment, message, instance ?? undefined).catch(() => undefined);
    }
  }

  /** What failed last per piece of work (an instance's judgement or action, a manifest), said once until it changes. */
  private readonly failing = new Map<string, string>();

  /** One instance's verdict from its heartbeat and probes, and the event when its health changes. */
  private async judgeOne(inst: InstanceRecord, now: number): Promise<void> {
    const beat = this.heartbeats.lastOf(inst.vmId);
    const jobs = beat?.beat.jobs ?? [];
    const v = judge(
      {
        key: `${inst.group}/${inst.index}`,
        state: inst.state,
        desired: inst.desired,
        changedAt: Date.parse(inst.updatedAt),
        ...(beat
          ? {
              lastBeat: {
                at: beat.at,
                jobsState: beat.beat.jobsState,
                restarts: jobs.reduce((n, j) => n + j.restarts, 0),
                failingJobs: jobs
                  .filter((j) => j.state === "backoff" || j.state === "failed")
                  .map((j) => j.name),
              },
            }
          : {}),
        probeFailures: this.probes.get(inst.id)?.failures ?? 0,
        now,
        monitorStartedAt: this.startedAt,
      },
      this.cfg,
    );
    const before = this.verdicts.get(inst.id);
    this.verdicts.set(inst.id, v);
    if (v.health === "healthy" && beat?.beat.jobsState === "stopped") await this.startAfterBoot(inst, now);
    if (!isDown(v.health)) this.downSince.delete(inst.id);
    else if (!this.downSince.has(inst.id)) this.downSince.set(inst.id, now);
    const wasDown = before !== undefined && isDown(before.health);
    if (isDown(v.health) && before?.health !== v.health) {
      await this.event(inst.deployment, v.sentence, `${inst.group}/${inst.index}`);
    } else if (v.health === "healthy" && wasDown) {
      await this.event(inst.deployment, `${v.sentence} again`, `${inst.group}/${inst.index}`, "info");
    }
  }

  /**
   * A VM that booted again (the cloud or an operator rebooted it, power came back)
   * has its spec but its jobs stopped: the agent leaves that to whoever rebooted it.
   * An instance meant to run and not being worked on gets its jobs started, at most
   * once every 30 s.
   */
  private async startAfterBoot(inst: InstanceRecord, now: number): Promise<void> {
    if (inst.state !== "running" || inst.desired !== "started" || this.ctx.instanceLocks.isLocked(inst.id))
      return;
    if (now - (this.startedJobsAt.get(inst.id) ?? 0) < 30_000) return;
    this.startedJobsAt.set(inst.id, now);
    // Not waited for: a start can take long (a cluster member waits for the others).
    void this.ctx
      .startJobs(inst)
      .catch((err: unknown) =>
        this.ctx.log.warn(
          { instance: inst.id, err: errorMessage(err) },
          "could not start the jobs of a booted VM",
        ),
      );
    await this.event(
      inst.deployment,
      `${inst.group}/${inst.index}: its VM runs with its jobs stopped (it booted again): started them`,
      `${inst.group}/${inst.index}`,
      "info",
    );
  }
  private readonly startedJobsAt = new Map<string, number>();

  /** One of the guard's actions: its sentence once, and a recovery when it is due. */
  private async actOn(
    a: GuardDecision["actions"][number],
    decision: GuardDecision,
    instances: InstanceRecord[],
    now: number,
  ): Promise<void> {
    if (a.action === "wait" && decision.downZones.includes(instances.find((i) => i.id === a.id)!.zone))
      this.zoneVictims.add(a.id);
    if (this.said.get(a.id) !== a.sentence) {
      this.said.set(a.id, a.sentence);
      await this.event(a.deployment, a.sentence, a.key);
    }
    if (a.action !== "recover" && a.action !== "relocate") return;
    if (now - (this.downSince.get(a.id) ?? now) < this.cfg.confirmMs) return;
    const inst = instances.find((i) => i.id === a.id)!;
    if ((this.backoff.get(a.id)?.until ?? 0) > now || this.ctx.instanceLocks.isLocked(a.id)) return;
    const reason = this.verdicts.get(a.id)!.sentence;
    const task = await this.submit({
      deployment: inst.deployment,
      kind: "recover",
      description: `recover ${a.key} of ${inst.deployment}: ${reason}`,
      payload: {
        instanceId: a.id,
        failedVmId: inst.vmId,
        reason,
        relocate: a.action === "relocate",
        detectedAt: now,
      },
    });
    this.active.set(a.id, task.id);
  }

  /** Forgets finished recoveries; backs off after a failed one (5 s, 10 s … 60 s). */
  private async settleActive(now: number): Promise<void> {
    for (const [id, taskId] of this.active) {
      const t = await this.ctx.store.tasks.get(taskId);
      if (!t || t.state === "running" || t.state === "queued") continue;
      this.active.delete(id);
      this.probes.delete(id);
      if (t.state === "done") this.zoneVictims.delete(id);
      if (t.state === "failed") {
        const failures = (this.backoff.get(id)?.failures ?? 0) + 1;
        this.backoff.set(id, { failures, until: now + Math.min(5000 * 2 ** (failures - 1), 60_000) });
      } else this.backoff.delete(id);
    }
  }

  /** Asks each agent, every probe interval, whether it still answers the director. */
  private probe(inst: InstanceRecord, now: number): void {
    if (!inst.address || !inst.agentToken || !inst.agentPort || inst.state !== "running") return;
    const p = this.probes.get(inst.id) ?? { failures: 0, inFlight: false, lastAt: 0 };
    this.probes.set(inst.id, p);
    if (p.inFlight || now - p.lastAt < this.cfg.probeIntervalMs) return;
    p.inFlight = true;
    p.lastAt = now;
    this.ctx
      .agentInfo(inst, 1500)
      .then(() => (p.failures = 0))
      .catch(() => {
        // "Sends heartbeats but does not answer": a failure counts only while its
        // heartbeats arrive. When both stop (this control plane was cut off from it),
        // the heartbeats' silence is the verdict, and no streak is left over for the
        // moment they come back.
        const beat = this.heartbeats.lastOf(inst.vmId);
        p.failures = beat && Date.now() - beat.at < PROBE_NEEDS_BEAT_WITHIN_MS ? p.failures + 1 : 0;
      })
      .finally(() => (p.inFlight = false));
  }

  private async sweepZombies(): Promise<void> {
    this.suspects.clear();
    const zombies = await readZombies(
      {
        vms: () => this.ctx.cloud.listVms({ metadata: { director: this.ctx.directorId } }),
        instances: () => this.ctx.store.instances.list(),
        standbys: () => this.ctx.store.standbys.list(),
      },
      (id) => this.ctx.instanceLocks.isLocked(id),
    );
    for (const z of zombies) {
      await this.ctx.cloud.deleteVm(z.vm.id);
      this.heartbeats.forget(z.vm.id);
      await this.event(
        z.vm.metadata.deployment ?? null,
        `zombie VM ${z.vm.id} (${z.vm.state}) deleted: ${z.why}`,
      );
    }
  }
}
