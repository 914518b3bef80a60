/**
 * Supervises one job like monit: starts its process (after the pre-start hook),
 * waits for its health check, restarts it with backoff when it exits or keeps
 * failing its check, and stops it (drain, SIGTERM, SIGKILL, post-stop).
 *
 * Every callback from a process or timer carries the generation it was started
 * in; callbacks from an older generation are ignored, so a stop racing an exit
 * or a restart cannot act twice.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { z } from "zod";
import { chownSync, closeSync, mkdirSync } from "node:fs";
import { errorMessage } from "../lib/errors.js";
import { Mutex } from "../lib/mutex.js";
import { isAlive, readStat, signalPid, processTree } from "../lib/proc.js";
import { sleep } from "../lib/sleep.js";
import type { AnyJobType, HealthCheck, JobContext, JobController, ProcessSpec } from "../jobs/job-type.js";
import { describeCheck, runCheck } from "./health-check.js";
import { backoffDelayMs, checkTransition, type JobState } from "./job-state.js";
import { appendAgentLine, openLogForAppend } from "./logs.js";
import type { HookName, JobSpec } from "./spec.js";
import { lookupUser } from "../lib/users.js";

export interface JobStatus {
  name: string;
  type: string;
  state: JobState;
  pid?: number;
  /** Restarts since the last explicit start. */
  restarts: number;
  healthy: boolean;
  /** When it entered its current state. */
  since: string;
  /** Why it is in this state, when that is worth saying. */
  message?: string;
  lastExit?: { code: number | null; signal: string | null; at: string };
  /** The last drain before a stop: how long it took, and why it did not finish (timed out, failed). */
  lastDrain?: { at: string; tookMs: number; error?: string };
}

/**
 * A job as one agent hands it to its successor (src/agent/handoff.ts): its state,
 * its process (pid and start time: a pid alone gets reused), its counters, and what
 * its controller handed over.
 */
export const handedJobSchema = z
  .object({
    name: z.string(),
    state: z.enum(["stopped", "starting", "running", "backoff", "failed"]),
    pid: z.number().int().positive().optional(),
    startTime: z.number().int().nonnegative().optional(),
    stopSignal: z.string().optional(),
    abortSignal: z.string().optional(),
    stopSignalTo: z.enum(["tree", "process"]).optional(),
    restarts: z.number().int().nonnegative(),
    consecutiveFailures: z.number().int().nonnegative(),
    since: z.string(),
    message: z.string().optional(),
    lastExit: z
      .object({ code: z.number().int().nullable(), signal: z.string().nullable(), at: z.string() })
      .strict()
      .optional(),
    lastDrain: z
      .object({ at: z.string(), tookMs: z.number(), error: z.string().optional() })
      .strict()
      .optional(),
    controller: z.unknown().optional(),
    /** The deadline of the lease the controller holds (epoch ms): the successor must run by then. */
    deadline: z.number().optional(),
  })
  .strict();
export type HandedJob = z.infer<typeof handedJobSchema>;

/** How often an adopted process (not this agent's child) is looked for in /proc. */
const ADOPTED_POLL_MS = 200;

/** How many failed health checks in a row make a running job restart. */
export const UNHEALTHY_AFTER = 3;
/** Running this long without trouble resets the backoff. */
const STABLE_AFTER_MS = 30_000;

export interface RunnerOptions {
  job: JobSpec;
  type: AnyJobType;
  ctx: JobContext;
  logPath: string;
  /** Base environment for the job's processes and hooks. */
  env: Record<string, string>;
  checkIntervalMs?: number;
}

export class JobRunner {
  private state: JobState = "stopped";
  private since = new Date();
  private message: string | undefined;
  private child: ChildProcess | undefined;
  /** A process a predecessor agent started and handed over (not this agent's child). */
  private adopted: { pid: number; startTime: number } | undefined;
  private childSpec: Pick<ProcessSpec, "stopSignal" | "abortSignal" | "stopSignalTo"> | undefined;
  /** Handed over to a successor agent: nothing here acts on the job any more. */
  private handedOff = false;
  private exited: Promise<void> = Promise.resolve();
  private generation = 0;
  private restarts = 0;
  private consecutiveFailures = 0;
  private healthy = false;
  private runningSince = 0;
  private failedChecks = 0;
  private lastExit: JobStatus["lastExit"];
  private lastDrain: JobStatus["lastDrain"];
  private timers = new Set<NodeJS.Timeout>();
  private readonly ops = new Mutex();
  /** Stops asked for and not finished: a restart the controller asks for meanwhile is moot. */
  private stopsPending = 0;
  /** The job type's controller (a cluster manager), if it has one. */
  private readonly controller: JobController | undefined;

  constructor(private readonly o: RunnerOptions) {
    this.controller = o.type.controller?.(o.ctx, o.job.config, {
      restartProcess: (why, o) => this.restartProcess(why, o),
      processRunning: () => this.pid !== undefined && (this.state === "running" || this.state === "starting"),
    });
  }

  /** The job's process: this agent's child, or one adopted from its predecessor. */
  private get pid(): number | undefined {
    return this.child?.pid ?? this.adopted?.pid;
  }

  /** What the job's controller reports (undefined for jobs without one). */
  controllerStatus(): unknown {
    return this.controller?.status();
  }

  get name(): string {
    return this.o.job.name;
  }

  get spec(): JobSpec {
    return this.o.job;
  }

  status(): JobStatus {
    return {
      name: this.name,
      type: this.o.job.type,
      state: this.state,
      ...(this.pid !== undefined ? { pid: this.pid } : {}),
      restarts: this.restarts,
      healthy: this.healthy,
      since: this.since.toISOString(),
      ...(this.message ? { message: this.message } : {}),
      ...(this.lastExit ? { lastExit: this.lastExit } : {}),
      ...(this.lastDrain ? { lastDrain: this.lastDrain } : {}),
    };
  }

  /** Starts the job unless it runs already: prepare, pre-start hook, then the process. */
  start(): Promise<void> {
    return this.ops.run(async () => {
      if (this.handedOff || (this.state !== "stopped" && this.state !== "failed")) return;
      this.restarts = 0;
      this.consecutiveFailures = 0;
      this.note(`starting job ${this.name}`);
      try {
        mkdirSync(this.o.ctx.jobDir, { recursive: true });
        await this.controller?.start();
        await this.o.type.prepare?.(this.o.ctx, this.o.job.config, this.controller);
        await this.runHook("pre_start");
      } catch (err) {
        this.enter("failed", `could not start: ${errorMessage(err)}`);
        return;
      }
      this.spawnProcess();
    });
  }

  /**
   * For the job's controller: stops the process and starts it again (prepare runs
   * first, the pre-start hook does not). The controller keeps running.
   */
  restartProcess(why: string, o: { abort?: boolean; stopped?: () => Promise<unknown> } = {}): Promise<void> {
    // The stop waits for the controller, which waits for this: queued behind the stop
    // it would never run. The job is stopping anyway.
    if (this.stopsPending > 0) {
      this.note(`not restarting the process (${why}): the job is stopping`);
      return Promise.resolve();
    }
    if (this.handedOff) {
      this.note(`not restarting the process (${why}): the job was handed to a new agent`);
      return Promise.resolve();
    }
    return this.ops.run(async () => {
      if (this.state === "stopped" || this.state === "failed" || this.state === "stopping") return;
      this.note(`restarting the process${o.abort ? " at once" : ""}: ${why}`);
      this.clearTimers();
      this.enter("stopping");
      this.generation += 1;
      await this.terminate(o.abort);
      this.healthy = false;
      this.enter("stopped");
      await o.stopped?.().catch((err: unknown) => this.note(`after the stop (${why}): ${errorMessage(err)}`));
      try {
        await this.o.type.prepare?.(this.o.ctx, this.o.job.config, this.controller);
      } catch (err) {
        // Like a process that failed to start: tried again with backoff (prepare may
        // need a peer that is away for now, e.g. a leader to clone from).
        this.enter("starting");
        this.backoff(this.generation, `could not restart: ${errorMessage(err)}`);
        return;
      }
      this.spawnProcess();
    });
  }

  /** Stops the job: drain (when asked and running), SIGTERM, SIGKILL after the timeout, post-stop. */
  stop(opts: { drain?: boolean } = {}): Promise<void> {
    // A start that waits on the controller would hold this stop behind it.
    this.controller?.abandonStart?.();
    this.stopsPending += 1;
    return this.ops
      .run(() => this.stopNow(opts))
      .finally(() => {
        this.stopsPending -= 1;
      });
  }

  private async stopNow(opts: { drain?: boolean }): Promise<void> {
    if (this.state === "stopped" || this.handedOff) return;
    this.clearTimers();
    if (opts.drain && this.state === "running" && (this.o.type.drain || this.o.job.hooks.drain)) {
      const t0 = Date.now();
      try {
        await this.o.type.drain?.(this.o.ctx, this.o.job.config);
        await this.runHook("drain");
        this.lastDrain = { at: new Date().toISOString(), tookMs: Date.now() - t0 };
      } catch (err) {
        this.note(`drain failed, stopping anyway: ${errorMessage(err)}`);
        this.lastDrain = { at: new Date().toISOString(), tookMs: Date.now() - t0, error: errorMessage(err) };
      }
    }
    this.enter("stopping");
    this.generation += 1;
    // The process first, then its controller: a lease the controller holds must
    // outlive the writes it guards.
    await this.terminate();
    await this.controller
      ?.stop()
      .catch((err: unknown) => this.note(`controller did not stop cleanly: ${errorMessage(err)}`));
    try {
      await this.runHook("post_stop");
    } catch (err) {
      this.note(`post-stop failed: ${errorMessage(err)}`);
    }
    this.healthy = false;
    this.enter("stopped");
  }

  /**
   * For a successor agent (a new zonal version): stops supervising — no health check,
   * no restart, no stop — leaves the process running, hands the controller over, and
   * returns the job as it is. Waits for a start or stop in progress to finish. Rejects
   * when the job's controller cannot be handed over.
   */
  async handOff(): Promise<HandedJob> {
    const blocker = this.handOffBlocker();
    if (blocker) throw new Error(blocker);
    // The controller first, outside the mutex: a restart its last cycle asks for runs
    // (a step-down restarts the process before it gives up the lease).
    const handed = await this.controller?.handOff?.();
    return this.ops.run(async () => {
      this.handedOff = true;
      this.clearTimers();
      this.generation += 1;
      // Under the mutex the job is never half-way through a start or a stop.
      const { type: _type, healthy: _healthy, state, ...status } = this.status();
      const st = status.pid !== undefined ? readStat(status.pid) : undefined;
      this.note(
        `handed to a new agent${status.pid !== undefined ? ` (pid ${status.pid} keeps running)` : ""}`,
      );
      return {
        ...status,
        state: state === "stopping" ? "stopped" : state,
        ...(st ? { startTime: st.startTime } : {}),
        ...(this.childSpec?.stopSignal ? { stopSignal: this.childSpec.stopSignal } : {}),
        ...(this.childSpec?.abortSignal ? { abortSignal: this.childSpec.abortSignal } : {}),
        ...(this.childSpec?.stopSignalTo ? { stopSignalTo: this.childSpec.stopSignalTo } : {}),
        consecutiveFailures: this.consecutiveFailures,
        ...(handed !== undefined ? { controller: handed.state } : {}),
        ...(handed?.deadline != null ? { deadline: handed.deadline } : {}),
      };
    });
  }

  /** Why this job cannot be handed to a new agent, if it cannot. */
  handOffBlocker(): string | undefined {
    if (this.controller && !this.controller.handOff)
      return `job ${this.name}: its type's controller cannot be handed to a new agent`;
    return undefined;
  }

  /**
   * Goes on supervising a job its predecessor agent handed over (or, after a
   * handover that failed, this agent's own): the same process, checked and
   * restarted as before. Its exit is seen in /proc (it is not this agent's child:
   * the exit status went elsewhere); a process that is gone already is restarted.
   */
  adopt(h: HandedJob): Promise<void> {
    return this.ops.run(async () => {
      this.handedOff = false;
      const gen = ++this.generation;
      this.restarts = h.restarts;
      this.consecutiveFailures = h.consecutiveFailures;
      this.lastExit = h.lastExit;
      this.lastDrain = h.lastDrain;
      this.childSpec = {
        ...(h.stopSignal ? { stopSignal: h.stopSignal as NodeJS.Signals } : {}),
        ...(h.abortSignal ? { abortSignal: h.abortSignal as NodeJS.Signals } : {}),
        ...(h.stopSignalTo ? { stopSignalTo: h.stopSignalTo } : {}),
      };
      // The process first, then its controller: the controller's first look must see it running.
      this.state = h.state;
      this.since = new Date(h.since);
      this.message = h.message;
      const alive = (): boolean => h.pid !== undefined && isAlive(h.pid, h.startTime);
      let watch = false;
      if (h.state === "running" || h.state === "starting") {
        if (h.pid === undefined || h.startTime === undefined || !alive()) {
          this.note("adopted from the previous agent: its process is gone");
          this.backoff(gen, "process exited while the agent was handed over");
        } else {
          this.child = undefined;
          this.adopted = { pid: h.pid, startTime: h.startTime };
          this.healthy = h.state === "running";
          this.runningSince = Date.now();
          this.exited = new Promise((resolve) => {
            const poll = (): void => {
              if (alive()) return void setTimeout(poll, ADOPTED_POLL_MS);
              this.onExit(
                gen,
                null,
                null,
                "exited (seen in /proc: it was adopted, its exit status went elsewhere)",
              );
              resolve();
            };
            setTimeout(poll, ADOPTED_POLL_MS);
          });
          this.note(`adopted from the previous agent: pid ${h.pid}, ${h.state}`);
          watch = true;
        }
      } else if (h.state === "backoff") {
        this.note("adopted from the previous agent while in backoff: restarting");
        this.after(1000, () => {
          if (gen === this.generation && this.state === "backoff") void this.restartFromBackoff(gen);
        });
      } else this.note(`adopted from the previous agent: ${h.state}`);
      if (h.controller !== undefined) await this.controller?.start(h.controller);
      if (watch) this.watchHealth(gen, Date.now());
    });
  }

  // ---- internals ---------------------------------------------------------------------

  private enter(next: JobState, message?: string): void {
    checkTransition(this.name, this.state, next);
    this.state = next;
    this.since = new Date();
    this.message = message;
    if (message) this.note(message);
  }

  /** A line from the agent in the job's log. */
  private note(line: string): void {
    appendAgentLine(this.o.logPath, line);
  }

  private after(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  private clearTimers(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private processEnv(spec: ProcessSpec, home: string): Record<string, string> {
    return { HOME: home, ...this.o.env, ...(spec.env ?? {}) };
  }

  private spawnProcess(): void {
    const gen = ++this.generation;
    this.enter("starting");
    this.healthy = false;
    this.failedChecks = 0;
    let spec: ProcessSpec;
    let child: ChildProcess;
    const logFd = openLogForAppend(this.o.logPath);
    try {
      spec = this.o.type.process(this.o.ctx, this.o.job.config);
      const user = spec.user ? lookupUser(spec.user) : undefined;
      if (user) chownSync(this.o.ctx.jobDir, user.uid, user.gid);
      child = spawn(spec.command, spec.args, {
        cwd: spec.cwd ?? this.o.ctx.jobDir,
        env: this.processEnv(spec, user?.home ?? this.o.ctx.jobDir),
        stdio: ["ignore", logFd, logFd],
        ...(user ? { uid: user.uid, gid: user.gid } : {}),
      });
    } catch (err) {
      closeSync(logFd);
      this.onExit(gen, null, null, `could not spawn: ${errorMessage(err)}`);
      return;
    }
    closeSync(logFd);
    this.child = child;
    this.childSpec = spec;
    this.exited = new Promise((resolve) => {
      child.once("error", (err) => {
        this.onExit(gen, null, null, `could not spawn ${spec.command}: ${err.message}`);
        resolve();
      });
      child.once("exit", (code, signal) => {
        this.onExit(gen, code, signal);
        resolve();
      });
    });
    const commandLine = [spec.command, ...spec.args].join(" ").replace(/\s+/g, " ");
    const shown = commandLine.length > 100 ? `${commandLine.slice(0, 97)}...` : commandLine;
    this.note(`started ${shown} (pid ${child.pid ?? "?"})`);
    this.watchHealth(gen, Date.now());
  }

  private onExit(gen: number, code: number | null, signal: string | null, why?: string): void {
    if (gen !== this.generation) {
      this.lastExit = { code, signal, at: new Date().toISOString() };
      return;
    }
    this.child = undefined;
    this.adopted = undefined;
    this.healthy = false;
    this.lastExit = { code, signal, at: new Date().toISOString() };
    if (this.state === "stopping" || this.state === "stopped") return;
    this.clearTimers();
    this.backoff(gen, `process ${why ?? `exited (${signal ? `signal ${signal}` : `code ${code}`})`}`);
  }

  /** Waits (longer each time), then prepares and starts the process again. */
  private backoff(gen: number, what: string): void {
    this.restarts += 1;
    this.consecutiveFailures += 1;
    const delay = backoffDelayMs(this.consecutiveFailures);
    const message = `${what}; restart ${this.restarts} in ${delay} ms`;
    if (this.state === "backoff") {
      this.message = message;
      this.note(message);
    } else this.enter("backoff", message);
    this.after(delay, () => {
      if (gen === this.generation && this.state === "backoff") void this.restartFromBackoff(gen);
    });
  }

  /**
   * A restart after an exit runs prepare first, like every start: the process must
   * come up in the role its controller decided last (a postgres that was told to be a
   * replica never comes back as a primary because it crashed in between).
   */
  private restartFromBackoff(gen: number): Promise<void> {
    return this.ops.run(async () => {
      if (gen !== this.generation || this.state !== "backoff") return;
      try {
        await this.o.type.prepare?.(this.o.ctx, this.o.job.config, this.controller);
      } catch (err) {
        if (gen === this.generation && this.state === "backoff")
          this.backoff(gen, `could not prepare: ${errorMessage(err)}`);
        return;
      }
      if (gen === this.generation && this.state === "backoff") this.spawnProcess();
    });
  }

  private watchHealth(gen: number, startedAt: number): void {
    const check: HealthCheck | undefined = this.o.type.healthCheck?.(this.o.ctx, this.o.job.config);
    const interval = this.o.checkIntervalMs ?? 1000;
    const tick = async (): Promise<void> => {
      if (gen !== this.generation || (this.state !== "starting" && this.state !== "running")) return;
      let problem: string | undefined;
      if (check) {
        try {
          await runCheck(check);
        } catch (err) {
          problem = errorMessage(err);
        }
      }
      if (gen !== this.generation) return;
      if (this.state === "starting") {
        if (!problem) {
          this.enter("running");
          this.healthy = true;
          this.runningSince = Date.now();
          this.note(check ? `healthy: ${describeCheck(check)}` : "running (no health check)");
          void this.runHook("post_start").catch((err: unknown) =>
            this.note(`post-start failed: ${errorMessage(err)}`),
          );
        } else if (Date.now() - startedAt > this.o.job.start_timeout_ms) {
          this.message = `not healthy after ${this.o.job.start_timeout_ms} ms: ${problem}`;
          this.note(this.message);
          this.killTree("SIGKILL");
          return;
        }
      } else if (problem) {
        this.failedChecks += 1;
        this.healthy = false;
        this.message = `health check failed ${this.failedChecks}x: ${problem}`;
        if (this.failedChecks >= UNHEALTHY_AFTER) {
          this.note(`${this.message}; restarting`);
          this.killTree("SIGKILL");
          return;
        }
      } else {
        this.failedChecks = 0;
        this.healthy = true;
        this.message = undefined;
        if (this.consecutiveFailures > 0 && Date.now() - this.runningSince > STABLE_AFTER_MS) {
          this.consecutiveFailures = 0;
        }
      }
      this.after(this.state === "starting" ? Math.min(interval, 250) : interval, () => void tick());
    };
    this.after(check ? Math.min(interval, 100) : 0, () => void tick());
  }

  /** The job's process and its descendants, as they are now. */
  private tree(): Array<{ pid: number; startTime: number }> {
    const pid = this.pid;
    if (pid === undefined) return [];
    return processTree(pid).flatMap((p) => {
      const st = readStat(p);
      return st ? [{ pid: p, startTime: st.startTime }] : [];
    });
  }

  /** Signals the job's process alone; returns its tree as it was (what must be gone afterwards). */
  private signalProcess(signal: NodeJS.Signals): Array<{ pid: number; startTime: number }> {
    const tree = this.tree();
    if (this.pid !== undefined) signalPid(this.pid, signal);
    return tree;
  }

  private killTree(signal: NodeJS.Signals): Array<{ pid: number; startTime: number }> {
    const tree = this.tree();
    for (const p of tree) signalPid(p.pid, signal);
    return tree;
  }

  /**
   * SIGTERM (or the job's stop signal) to the process tree (or to the process alone,
   * when its type says so), SIGKILL to whatever is left after the timeout; resolves
   * only once every process of the tree is gone.
   */
  private async terminate(abort = false): Promise<void> {
    if (this.pid === undefined) return;
    const signal = abort
      ? (this.childSpec?.abortSignal ?? "SIGKILL")
      : (this.childSpec?.stopSignal ?? "SIGTERM");
    const tree =
      this.childSpec?.stopSignalTo === "process" ? this.signalProcess(signal) : this.killTree(signal);
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      sleep(this.o.job.stop_timeout_ms).then(() => true),
    ]);
    if (timedOut) this.note(`did not stop within ${this.o.job.stop_timeout_ms} ms: SIGKILL`);
    // Children started after the SIGTERM count too; those orphaned by it are in `tree`.
    const all = [...tree, ...this.killTree("SIGKILL")];
    const alive = () => all.filter((p) => isAlive(p.pid, p.startTime));
    for (let i = 0; alive().length > 0; i++) {
      for (const p of alive()) signalPid(p.pid, "SIGKILL");
      if (i > 500)
        throw new Error(
          `job ${this.name}: processes ${alive()
            .map((p) => p.pid)
            .join(", ")} survive SIGKILL`,
        );
      await sleep(10);
    }
    await this.exited;
    this.child = undefined;
    this.adopted = undefined;
  }

  private runHook(name: HookName): Promise<void> {
    const command = this.o.job.hooks[name];
    if (!command) return Promise.resolve();
    const hook = name.replace("_", "-");
    this.note(`running ${hook} hook`);
    const timeoutMs = this.o.job.hook_timeout_ms;
    return new Promise((resolve, reject) => {
      const logFd = openLogForAppend(this.o.logPath);
      const child = spawn("/bin/sh", ["-c", command], {
        cwd: this.o.ctx.jobDir,
        env: { HOME: this.o.ctx.jobDir, ...this.o.env, ZONAL_HOOK: hook },
        stdio: ["ignore", logFd, logFd],
      });
      closeSync(logFd);
      const timer = setTimeout(() => {
        for (const pid of processTree(child.pid ?? -1)) signalPid(pid, "SIGKILL");
        reject(new Error(`${hook} hook timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      child.once("error", (err) => {
        clearTimeout(timer);
        reject(new Error(`${hook} hook: ${err.message}`));
      });
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new Error(`${hook} hook exited with ${signal ? `signal ${signal}` : `code ${code}`}`));
      });
    });
  }
}
