/**
 * The agent: the zonal process inside every VM. It applies specs, supervises the
 * jobs, serves its API on the VM's address, and sends heartbeats. It keeps
 * running (and its jobs keep serving) whatever happens to the director.
 *
 * The applied spec is kept on the ephemeral disk; after a reboot the agent loads
 * it but does not start the jobs: whoever rebooted the VM decides that.
 */
import { ZONAL_VERSION } from "../lib/version.js";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { errorMessage } from "../lib/errors.js";
import { tailFile, writeFileAtomic } from "../lib/files.js";
import type { LineLogger } from "../lib/line-log.js";
import { Mutex } from "../lib/mutex.js";
import { sleep } from "../lib/sleep.js";
import { z } from "zod";
import { parseWith } from "../lib/validate.js";
import { AddressForwarder, type AddressStatus } from "./addresses.js";
import { currentLoad, DiskMeter, type Heartbeat } from "./heartbeat.js";
import type { JobStatus } from "./job-runner.js";
import type { AgentSettingsFile } from "./settings.js";
import { parseSpec, type Spec } from "./spec.js";
import { jobTypesNamed, loadJobTypes } from "../jobs/job-modules.js";
import { Supervisor } from "./supervisor.js";
import { Conflict, Internal, NotFound, Unavailable } from "../lib/errors.js";
import type { ChildProcess } from "node:child_process";
import { closeListeners, liveListeners } from "../lib/handed-sockets.js";
import { handoffPath, READY_TIMEOUT_MS, sendConnections, startSuccessor, type Handoff } from "./handoff.js";
import type { HandedJob } from "./job-runner.js";

/** How long before a handed lease's deadline the successor must be ready (else this agent goes on). */
const HANDOVER_MARGIN_MS = 300;

/** The agent runs the zonal version it was installed with (`zonal version` lists every agent's). */
export const AGENT_VERSION = ZONAL_VERSION;

const addressesSchema = z
  .object({
    addresses: z.array(
      z
        .object({
          address: z.ipv4("expected an IPv4 address"),
          ports: z
            .array(z.number().int().min(1).max(65535, "expected a port up to 65535"))
            .min(1, "expected at least one port"),
        })
        .strict(),
    ),
  })
  .strict();

export interface AgentState {
  vmId: string;
  address: string;
  /** Virtual addresses this VM serves (see addresses.ts). */
  addresses: AddressStatus[];
  specVersion: string | null;
  instance: Spec["instance"] | null;
  jobsState: ReturnType<Supervisor["summary"]>;
  jobs: JobStatus[];
  disk: Heartbeat["disk"];
  load: number[];
}

export class Agent {
  readonly supervisor: Supervisor;
  readonly addresses: AddressForwarder;
  private readonly ops = new Mutex();
  private readonly meter = new DiskMeter();
  private readonly startedAt = new Date();
  /** The successor's pid once this agent handed over: it changes nothing from then on. */
  private handedTo: number | undefined;

  /** Refuses a change once this agent handed over (a request queued behind the handover). */
  private mustServe(): void {
    if (this.handedTo !== undefined)
      throw new Conflict(`this agent handed over to a new agent (pid ${this.handedTo}); ask again`);
  }

  constructor(
    readonly settings: AgentSettingsFile,
    private readonly log: LineLogger,
  ) {
    this.addresses = new AddressForwarder(settings.address);
    this.supervisor = new Supervisor(settings, {
      services: {
        token: settings.token,
        ...(settings.tls ? { ca: settings.tls.ca } : {}),
        ...(settings.heartbeat ? { controlPlaneUrl: new URL(settings.heartbeat.url).origin } : {}),
        setAddresses: (specs, o) => this.addresses.set(specs, o),
        cutConnections: () => this.addresses.cutConnections(),
      },
    });
    mkdirSync(join(settings.ephemeralDir, "logs"), { recursive: true });
  }

  private get specPath(): string {
    return join(this.settings.ephemeralDir, "agent", "spec.json");
  }

  /** Applies the spec saved on the ephemeral disk (its job types loaded first); jobs stay as they are. */
  private async applySaved(): Promise<Spec> {
    const body = JSON.parse(readFileSync(this.specPath, "utf8")) as unknown;
    await loadJobTypes(jobTypesNamed(body));
    const spec = parseSpec(body, this.specPath);
    await this.supervisor.apply(spec);
    return spec;
  }

  /** Loads the spec applied before a reboot (jobs stay stopped). */
  async restore(): Promise<void> {
    if (!existsSync(this.specPath)) return;
    try {
      const spec = await this.applySaved();
      this.log.info({ version: spec.version }, "restored the spec applied before boot; jobs stay stopped");
    } catch (err) {
      this.log.warn({ err: errorMessage(err) }, "could not restore the previous spec");
    }
  }

  /**
   * The successor's side of a handover: the same spec applied, then every job, its
   * controller and the virtual addresses (with their connections) adopted as the
   * predecessor left them. Rejects when anything cannot be adopted: the predecessor
   * then goes on itself.
   */
  async adopt(h: Handoff): Promise<void> {
    await this.ops.run(async () => {
      // The addresses first: a controller that finds its lease gone drops its VIP after.
      this.addresses.adopt(h.addresses);
      if (h.jobs.length > 0 || existsSync(this.specPath)) {
        await this.applySaved();
        await this.supervisor.adopt(h.jobs);
      }
    });
    this.log.info(
      { from: h.from, jobs: h.jobs.map((j) => `${j.name}:${j.state}${j.pid ? `:${j.pid}` : ""}`) },
      "took over from the previous agent; every job kept running",
    );
  }

  /**
   * Hands over to a successor started from the zonal files on disk now (a new
   * version), every job running on (handoff.ts). Resolves once the successor is
   * ready: this agent must then exit without touching its jobs (`exitAfterHandover`).
   * When the successor fails, this agent goes on with everything as before and
   * rejects with why.
   */
  handOver(o: { pauseHeartbeats(): void; resumeHeartbeats(): void }): Promise<{ pid: number; from: number }> {
    return this.ops.run(async () => {
      this.mustServe();
      const path = handoffPath(this.settings.ephemeralDir);
      const t0 = Date.now();
      let jobs: HandedJob[] = [];
      let successor: ChildProcess;
      try {
        jobs = await this.supervisor.handOff();
        o.pauseHeartbeats();
        // The successor must run before any lease handed over runs out (its watchdog
        // takes over the same deadline); otherwise this agent goes on, in time.
        const deadline = Math.min(...jobs.map((j) => j.deadline ?? Infinity));
        const budget = Math.min(READY_TIMEOUT_MS, deadline - Date.now() - HANDOVER_MARGIN_MS);
        if (budget <= 0)
          throw new Unavailable(
            `the leader lease runs out too soon to hand over (in ${deadline - Date.now()} ms)`,
          );
        successor = await startSuccessor(
          path,
          {
            from: { pid: process.pid, version: AGENT_VERSION },
            jobs,
            addresses: this.addresses.specs(),
            listeners: liveListeners(),
          },
          budget,
        );
      } catch (err) {
        this.log.warn({ err: errorMessage(err) }, "handover failed; this agent goes on");
        try {
          if (jobs.length > 0) await this.supervisor.adopt(jobs);
        } catch (again) {
          throw new Internal(
            `handover failed (${errorMessage(err)}), and this agent could not take its jobs back: ${errorMessage(again)}`,
          );
        } finally {
          o.resumeHeartbeats();
        }
        throw err;
      }
      // The successor serves now: this agent acts no more, stops accepting (the
      // sockets stay open in the successor) and passes its forwarded connections on.
      this.handedTo = successor.pid!;
      closeListeners();
      const connections = await this.addresses.quiesce();
      await sendConnections(successor, connections).catch((err: unknown) =>
        this.log.warn({ err: errorMessage(err) }, "connections not all handed over; the rest are cut"),
      );
      this.log.info(
        { successor: successor.pid, connections: connections.length, tookMs: Date.now() - t0 },
        "handed over to a new agent",
      );
      return { pid: successor.pid!, from: process.pid };
    });
  }

  info() {
    return {
      vmId: this.settings.vmId,
      address: this.settings.address,
      agentVersion: AGENT_VERSION,
      pid: process.pid,
      startedAt: this.startedAt.toISOString(),
    };
  }

  spec(): Spec | undefined {
    return this.supervisor.spec;
  }

  hasJob(name: string): boolean {
    return this.supervisor.runner(name) !== undefined;
  }

  state(): AgentState {
    const spec = this.supervisor.spec;
    return {
      vmId: this.settings.vmId,
      address: this.settings.address,
      addresses: this.addresses.statuses(),
      specVersion: spec?.version ?? null,
      instance: spec?.instance ?? null,
      jobsState: this.supervisor.summary(),
      jobs: this.supervisor.statuses(),
      disk: this.diskUsage(spec),
      load: currentLoad(),
    };
  }

  private diskUsage(spec: Spec | undefined): Heartbeat["disk"] {
    let persistent: Heartbeat["disk"]["persistent"] = null;
    if (spec?.persistent_disk) {
      const dir = join(this.settings.disksDir, spec.persistent_disk.id);
      if (existsSync(dir)) persistent = { id: spec.persistent_disk.id, ...this.meter.usage(dir) };
    }
    return { persistent, ephemeral: this.meter.usage(this.settings.ephemeralDir) };
  }

  heartbeat(seq: number): Heartbeat {
    const s = this.state();
    return {
      vmId: s.vmId,
      seq,
      sentAt: new Date().toISOString(),
      agentStartedAt: this.startedAt.toISOString(),
      specVersion: s.specVersion,
      instance: s.instance ?? null,
      jobsState: s.jobsState,
      addresses: s.addresses.map((a) => ({ address: a.address, port: a.port, state: a.state })),
      jobs: s.jobs.map((j) => ({ name: j.name, state: j.state, restarts: j.restarts, healthy: j.healthy })),
      disk: s.disk,
      load: s.load,
    };
  }

  async apply(body: unknown): Promise<{ restarted: string[]; state: AgentState }> {
    // Only the job types this spec names are loaded (each once): a VM pays for what it runs.
    await loadJobTypes(jobTypesNamed(body));
    const spec = parseSpec(body);
    return this.ops.run(async () => {
      this.mustServe();
      const restarted = await this.supervisor.apply(spec);
      mkdirSync(join(this.settings.ephemeralDir, "agent"), { recursive: true });
      writeFileAtomic(this.specPath, JSON.stringify(spec, null, 2), 0o600);
      this.log.info({ version: spec.version, jobs: spec.jobs.map((j) => j.name), restarted }, "spec applied");
      return { restarted, state: this.state() };
    });
  }

  start(waitMs: number): Promise<AgentState> {
    return this.ops.run(async () => {
      this.mustServe();
      await this.supervisor.startAll();
      const deadline = Date.now() + waitMs;
      while (Date.now() < deadline) {
        const states = this.supervisor.statuses().map((j) => j.state);
        if (states.every((s) => s === "running") || states.some((s) => s === "backoff" || s === "failed"))
          break;
        await sleep(100);
      }
      return this.state();
    });
  }

  stop(drain: boolean): Promise<AgentState> {
    return this.ops.run(async () => {
      this.mustServe();
      await this.supervisor.stopAll({ drain });
      return this.state();
    });
  }

  restartJob(name: string): Promise<JobStatus> {
    return this.ops.run(async () => {
      this.mustServe();
      const runner = this.supervisor.runner(name);
      if (!runner) throw new NotFound(`no job ${name} on this VM`);
      await runner.stop({ drain: true });
      await runner.start();
      return runner.status();
    });
  }

  /** What a job's controller reports (e.g. a postgres member's role, timeline, LSN). */
  async jobStatus(name: string): Promise<unknown> {
    const runner = this.supervisor.runner(name);
    if (!runner) throw new NotFound(`no job ${name} on this VM`);
    return { job: name, ...runner.status(), controller: (await runner.controllerStatus()) ?? null };
  }

  logs(name: string, lines: number): string[] {
    return tailFile(this.supervisor.logPath(name), lines);
  }

  /** Serves exactly these virtual addresses (not kept across reboots: whoever reboots decides). */
  setAddresses(body: unknown): AddressStatus[] {
    const specs = parseWith(addressesSchema, body, "addresses").addresses;
    this.mustServe();
    this.addresses.set(specs);
    this.log.info({ addresses: specs }, "virtual addresses set");
    return this.addresses.statuses();
  }

  /** Stops every job (without draining); for agent shutdown. */
  async shutdown(): Promise<void> {
    this.addresses.close();
    await this.ops.run(() => this.supervisor.stopAll({ drain: false }));
  }
}
