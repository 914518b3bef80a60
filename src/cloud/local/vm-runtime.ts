/**
 * What a local VM is, as processes: a detached process group led by the VM's agent
 * (`zonal agent --vm-dir DIR`). Everything the agent starts (its jobs) stays in the
 * group, so the group is the VM: SIGKILL to the group is a crash or a hard power
 * off, SIGSTOP freezes it silently (the kernel keeps its sockets open and even
 * completes new handshakes, but nothing answers), SIGCONT thaws it.
 *
 * Every VM process also carries ZONAL_VM_ID in its environment, so a VM booted by a
 * daemon that died before recording its PID is still found and adopted.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Unavailable } from "../../lib/errors.js";
import { groupMembers, readStat, signalGroup, isZombie } from "../../lib/proc.js";
import { sleep } from "../../lib/sleep.js";
import type { ProcRef } from "./state.js";

/** The compiled CLI entry point the VM runs (`dist/src/cli/main.js`). */
const CLI_MAIN = fileURLToPath(new URL("../../cli/main.js", import.meta.url));

export const VM_MARKER = "ZONAL_VM_ID";

export type ProcObservation = "running" | "stopped" | "gone";

export function bootAgent(vmId: string, vmDir: string, extraEnv: Record<string, string> = {}): ProcRef {
  const consoleFd = openSync(join(vmDir, "console.log"), "a");
  try {
    const child = spawn(process.execPath, [CLI_MAIN, "agent", "--vm-dir", vmDir], {
      detached: true,
      cwd: vmDir,
      stdio: ["ignore", consoleFd, consoleFd],
      env: {
        PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
        LANG: "C.UTF-8",
        ...(process.env.ZONAL_LOG_LEVEL ? { ZONAL_LOG_LEVEL: process.env.ZONAL_LOG_LEVEL } : {}),
        ...extraEnv,
        [VM_MARKER]: vmId,
      },
    });
    child.on("error", () => {
      /* reported through the VM's state: its process is gone */
    });
    child.unref();
    const pid = child.pid;
    const st = pid === undefined ? undefined : readStat(pid);
    if (pid === undefined || !st) throw new Unavailable(`VM ${vmId}: the agent process did not start`);
    return { pid, startTime: st.startTime };
  } finally {
    closeSync(consoleFd);
  }
}

export function observe(proc: ProcRef): ProcObservation {
  const st = readStat(proc.pid);
  if (!st || isZombie(st) || st.startTime !== proc.startTime) {
    // The leader is gone; stragglers of the group still count as the VM running.
    return groupMembers(proc.pid, proc.startTime).length > 0 ? "running" : "gone";
  }
  return st.state === "T" ? "stopped" : "running";
}

/** SIGKILLs the whole VM and resolves once none of its processes is left. */
export async function killVm(proc: ProcRef, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (signalGroup(proc.pid, proc.startTime, "SIGKILL") > 0) {
    if (Date.now() > deadline) {
      throw new Unavailable(`VM process group ${proc.pid} did not die within ${timeoutMs} ms`);
    }
    await sleep(20);
  }
}

export function freezeVm(proc: ProcRef): void {
  signalGroup(proc.pid, proc.startTime, "SIGSTOP");
}

export function thawVm(proc: ProcRef): void {
  signalGroup(proc.pid, proc.startTime, "SIGCONT");
}

/** Finds the agent of `vmId` by the marker in its environment (a group leader carrying it). */
export function findVmByMarker(vmId: string): ProcRef | undefined {
  const needle = `${VM_MARKER}=${vmId}`;
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    let environ: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, "utf8");
    } catch {
      continue;
    }
    if (!environ.split("\0").includes(needle)) continue;
    const st = readStat(pid);
    if (st && !isZombie(st) && st.pgid === pid) return { pid, startTime: st.startTime };
  }
  return undefined;
}
