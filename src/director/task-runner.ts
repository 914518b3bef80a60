/**
 * Runs tasks: one async flow per task, at most one per deployment (the lock).
 * A task is persisted before it runs and every event as it happens; a director
 * that dies mid-task resumes it on restart. Resuming re-plans from live state,
 * so finished steps are not redone (STYLE.md point 5: handlers are idempotent).
 */
import { Conflict, errorMessage } from "../lib/errors.js";
import { Mutex } from "../lib/mutex.js";
import type { EventLevel, TaskKind, TaskRecord } from "../store/tasks.js";
import type { DirectorContext } from "./context.js";
import type { TaskReporter } from "./events.js";

export type TaskHandler = (task: TaskRecord, report: TaskReporter) => Promise<string>;

export const lockName = (deployment: string) => `deployment:${deployment}`;

/** Recoveries take their instance's lock (in the task), not the deployment's: a deploy does not starve them. */
const takesDeploymentLock = (kind: TaskKind): boolean => kind !== "recover";

class StoreReporter implements TaskReporter {
  constructor(
    private readonly ctx: DirectorContext,
    private readonly task: TaskRecord,
  ) {}

  async event(level: EventLevel, stage: string, message: string, instance?: string): Promise<void> {
    await this.ctx.store.tasks.addEvent({
      taskId: this.task.id,
      deployment: this.task.deployment,
      instance: instance ?? null,
      level,
      stage,
      message,
    });
    this.ctx.log[level]({ task: this.task.id, deployment: this.task.deployment, instance, stage }, message);
  }

  async progress(done: number, total: number): Promise<void> {
    await this.ctx.store.tasks.progress(this.task.id, done, total);
  }
}

export class TaskRunner {
  private readonly running = new Map<number, Promise<void>>();
  private readonly submitting = new Mutex();
  private stopped = false;

  constructor(
    private readonly ctx: DirectorContext,
    private readonly owner: string,
    private readonly handlers: Record<TaskKind, TaskHandler>,
  ) {}

  /** Creates and starts a task; Conflict when its deployment is locked by another task. */
  submit(t: {
    deployment: string | null;
    kind: TaskKind;
    description: string;
    payload: unknown;
  }): Promise<TaskRecord> {
    return this.submitting.run(async () => {
      if (this.stopped) throw new Conflict("the director is shutting down");
      if (t.deployment && takesDeploymentLock(t.kind)) {
        const holder = await this.ctx.store.locks.holder(lockName(t.deployment));
        if (holder !== undefined) {
          const other = await this.ctx.store.tasks.get(holder);
          throw new Conflict(
            `deployment ${t.deployment} is locked by task ${holder} (${other?.kind ?? "?"}, ${other?.state ?? "?"}); ` +
              `wait for it: zonal task ${holder} --follow`,
          );
        }
      }
      const task = await this.ctx.store.tasks.create(t);
      if (t.deployment && takesDeploymentLock(t.kind))
        await this.ctx.store.locks.acquire(lockName(t.deployment), task.id);
      this.launch(task);
      return task;
    });
  }

  /** Picks up the tasks a previous director left running or queued. */
  async resume(): Promise<number[]> {
    const left = (await this.ctx.store.tasks.list({ states: ["running", "queued"], limit: 1000 })).reverse();
    for (const task of left) {
      await new StoreReporter(this.ctx, task).event(
        "warn",
        "resume",
        `resumed after a director restart (was ${task.state}${task.owner ? ` under ${task.owner}` : ""})`,
      );
      if (task.deployment && takesDeploymentLock(task.kind)) {
        const got = await this.ctx.store.locks.acquire(lockName(task.deployment), task.id);
        if (!got.acquired) {
          await this.ctx.store.tasks.finish(task.id, "failed", `deployment locked by task ${got.holder}`);
          continue;
        }
      }
      this.launch(task);
    }
    return left.map((t) => t.id);
  }

  private launch(task: TaskRecord): void {
    const p = this.run(task).finally(() => this.running.delete(task.id));
    this.running.set(task.id, p);
  }

  private async run(task: TaskRecord): Promise<void> {
    const report = new StoreReporter(this.ctx, task);
    await this.ctx.store.tasks.start(task.id, this.owner);
    let state: "done" | "failed" = "done";
    let result: string;
    try {
      result = await this.handlers[task.kind](task, report);
      await report.event("info", "done", result);
    } catch (err) {
      state = "failed";
      result = errorMessage(err);
      await report.event("error", "failed", result).catch(() => undefined);
    }
    await this.ctx.store.tasks.finish(task.id, state, result);
    if (task.deployment && takesDeploymentLock(task.kind))
      await this.ctx.store.locks.release(lockName(task.deployment), task.id);
  }

  /** Resolves when every running task has ended (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running.values()]);
  }

  stop(): void {
    this.stopped = true;
  }
}
