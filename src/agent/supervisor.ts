/**
 * The agent's supervisor: one JobRunner per job of the applied spec. Applying a
 * spec adds new jobs (stopped), stops and removes jobs that left the spec, and
 * restarts running jobs whose definition changed. Start and stop act on all jobs.
 */
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { mountBlockDisk } from "./block-disk.js";
import { Conflict } from "../lib/errors.js";
import type { AgentServices, JobContext } from "../jobs/job-type.js";
import { jobType } from "../jobs/job-modules.js";
import { JobRunner, type HandedJob, type JobStatus } from "./job-runner.js";
import { summarizeJobs, type JobsSummary } from "./job-state.js";
import { appendAgentLine } from "./logs.js";
import type { AgentSettingsFile } from "./settings.js";
import type { JobSpec, Spec } from "./spec.js";

export class Supervisor {
  private runners = new Map<string, JobRunner>();
  private current: Spec | undefined;

  constructor(
    private readonly settings: AgentSettingsFile,
    private readonly opts: { checkIntervalMs?: number; services?: AgentServices } = {},
  ) {}

  get spec(): Spec | undefined {
    return this.current;
  }

  logPath(job: string): string {
    return join(this.settings.ephemeralDir, "logs", `${job}.log`);
  }

  /** The persistent disk's directory for a spec, or throws when that disk is not attached. */
  persistentDir(spec: Spec): string | undefined {
    if (!spec.persistent_disk) return undefined;
    if (this.settings.disks === "block")
      return mountBlockDisk({ diskId: spec.persistent_disk.id, disksDir: this.settings.disksDir });
    const dir = join(this.settings.disksDir, spec.persistent_disk.id);
    if (!existsSync(dir)) {
      throw new Conflict(`persistent disk ${spec.persistent_disk.id} is not attached to this VM`);
    }
    return dir;
  }

  private context(job: JobSpec, spec: Spec, persistentDir: string | undefined): JobContext {
    const logPath = this.logPath(job.name);
    return {
      jobName: job.name,
      vmId: this.settings.vmId,
      address: this.settings.address,
      jobDir: join(this.settings.ephemeralDir, "jobs", job.name),
      ...(persistentDir ? { persistentDir } : {}),
      links: spec.links,
      cluster: spec.cluster,
      secrets: spec.secrets,
      services: this.opts.services ?? {
        token: this.settings.token,
        setAddresses: () => undefined,
        cutConnections: () => undefined,
      },
      log: (line) => appendAgentLine(logPath, line),
    };
  }

  private env(job: JobSpec, ctx: JobContext, spec: Spec): Record<string, string> {
    return {
      PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
      LANG: process.env.LANG ?? "C.UTF-8",
      ZONAL_VM_ID: this.settings.vmId,
      ZONAL_ADDRESS: this.settings.address,
      ZONAL_JOB_NAME: job.name,
      ZONAL_JOB_DIR: ctx.jobDir,
      ...(ctx.persistentDir ? { ZONAL_PERSISTENT_DIR: ctx.persistentDir } : {}),
      ...(spec.instance
        ? {
            ZONAL_DEPLOYMENT: spec.instance.deployment,
            ZONAL_INSTANCE_GROUP: spec.instance.group,
            ZONAL_INSTANCE_INDEX: String(spec.instance.index),
            ZONAL_INSTANCE_ID: spec.instance.id,
          }
        : {}),
      ...linkEnv(spec),
      ...this.settings.env,
    };
  }

  private makeRunner(job: JobSpec, spec: Spec, persistentDir: string | undefined): JobRunner {
    const type = jobType(job.type)!;
    const ctx = this.context(job, spec, persistentDir);
    return new JobRunner({
      job,
      type,
      ctx,
      logPath: this.logPath(job.name),
      env: this.env(job, ctx, spec),
      ...(this.opts.checkIntervalMs ? { checkIntervalMs: this.opts.checkIntervalMs } : {}),
    });
  }

  /** Applies a validated spec. Returns the names of jobs restarted because they changed. */
  async apply(spec: Spec): Promise<string[]> {
    const persistentDir = this.persistentDir(spec);
    mkdirSync(join(this.settings.ephemeralDir, "logs"), { recursive: true });
    const wanted = new Map(spec.jobs.map((j) => [j.name, j]));
    for (const [name, runner] of this.runners) {
      if (!wanted.has(name)) {
        await runner.stop({ drain: true });
        this.runners.delete(name);
      }
    }
    const restarted: string[] = [];
    // A new disk or new links change every job's environment: restart the running ones.
    const contextOf = (x: Spec | undefined) =>
      JSON.stringify([x?.persistent_disk ?? null, x?.links ?? {}, x?.cluster ?? null, x?.secrets ?? {}]);
    const contextChanged = contextOf(this.current) !== contextOf(spec);
    for (const job of spec.jobs) {
      const old = this.runners.get(job.name);
      if (old && JSON.stringify(old.spec) === JSON.stringify(job) && !contextChanged) continue;
      const wasActive = old !== undefined && old.status().state !== "stopped";
      if (old) await old.stop({ drain: true });
      const runner = this.makeRunner(job, spec, persistentDir);
      this.runners.set(job.name, runner);
      if (wasActive) {
        await runner.start();
        restarted.push(job.name);
      }
    }
    this.current = spec;
    return restarted;
  }

  async startAll(): Promise<void> {
    if (this.current) this.persistentDir(this.current);
    await Promise.all([...this.runners.values()].map((r) => r.start()));
  }

  async stopAll(opts: { drain?: boolean } = {}): Promise<void> {
    await Promise.all([...this.runners.values()].map((r) => r.stop(opts)));
  }

  /**
   * For a successor agent: every job handed over, its process left running (see
   * JobRunner.handOff). Refused before anything is handed when a job cannot be.
   */
  async handOff(): Promise<HandedJob[]> {
    const blockers = [...this.runners.values()].flatMap((r) => r.handOffBlocker() ?? []);
    if (blockers.length > 0) throw new Conflict(blockers.join("; "));
    const results = await Promise.allSettled([...this.runners.values()].map((r) => r.handOff()));
    const failed = results.flatMap((r) => (r.status === "rejected" ? [r.reason as unknown] : []));
    const handed = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    if (failed.length === 0) return handed;
    await this.adopt(handed); // those handed go on here
    throw failed[0];
  }

  /** Goes on supervising the jobs handed over (the same spec applied first). */
  async adopt(jobs: HandedJob[]): Promise<void> {
    const unknown = jobs.filter((j) => !this.runners.has(j.name)).map((j) => j.name);
    if (unknown.length > 0) throw new Conflict(`handed jobs not in the spec: ${unknown.join(", ")}`);
    await Promise.all(jobs.map((j) => this.runners.get(j.name)!.adopt(j)));
  }

  runner(name: string): JobRunner | undefined {
    return this.runners.get(name);
  }

  statuses(): JobStatus[] {
    return [...this.runners.values()].map((r) => r.status());
  }

  summary(): JobsSummary {
    return summarizeJobs(this.statuses().map((s) => s.state));
  }
}

/** `ZONAL_LINK_<NAME>=addr1,addr2` for each link (name upper-cased, `-` as `_`). */
export function linkEnv(spec: Spec): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, link] of Object.entries(spec.links)) {
    env[`ZONAL_LINK_${name.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`] = link.instances
      .map((i) => i.address)
      .join(",");
  }
  return env;
}
