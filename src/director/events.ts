/** Where a running task reports what it does: events (persisted) and progress. */
import type { EventLevel } from "../store/tasks.js";

export interface TaskReporter {
  event(level: EventLevel, stage: string, message: string, instance?: string): Promise<void>;
  progress(done: number, total: number): Promise<void>;
}

/** A reporter that keeps everything in memory (tests, dry runs). */
export class MemoryReporter implements TaskReporter {
  readonly events: Array<{ level: EventLevel; stage: string; message: string; instance?: string }> = [];
  readonly progressLog: Array<[number, number]> = [];

  async event(level: EventLevel, stage: string, message: string, instance?: string): Promise<void> {
    this.events.push({ level, stage, message, ...(instance ? { instance } : {}) });
  }

  async progress(done: number, total: number): Promise<void> {
    this.progressLog.push([done, total]);
  }
}
