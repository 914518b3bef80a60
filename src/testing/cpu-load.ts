/**
 * Full CPU for a test: one busy-looping process per core, at the same priority as
 * everything else. `stop()` kills exactly those processes (by PID and start time).
 */
import { spawn } from "node:child_process";
import { availableParallelism } from "node:os";
import { readStat, signalGroup } from "../lib/proc.js";

export class CpuLoad {
  private readonly procs: Array<{ pid: number; startTime: number }> = [];

  constructor(readonly workers = availableParallelism()) {}

  start(): this {
    for (let i = 0; i < this.workers; i++) {
      const child = spawn(process.execPath, ["-e", "for (;;) {}"], { detached: true, stdio: "ignore" });
      child.unref();
      this.procs.push({ pid: child.pid!, startTime: readStat(child.pid!)?.startTime ?? 0 });
    }
    return this;
  }

  stop(): void {
    for (const p of this.procs.splice(0)) signalGroup(p.pid, p.startTime, "SIGKILL");
  }
}
