/**
 * What a local VM is, as processes: a detached process group led by the VM's agent
 * (`zonal-agent --vm-dir DIR`). Everything the agent starts (its jobs) stays in the
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
import { AGENT_NODE_FLAGS } from "../../agent/node-flags.js";
import { Unavailable } from "../../lib/errors.js";
import { groupMembers, isZombie, readStat, signalGroup, signalPid } from "../../lib/proc.js";
import { sleep } from "../../lib/sleep.js";
import type { ProcRef } from "./state.js";

/**
 * The agent the VM runs: the bundle `npm run build` makes of the agent's entry point
 * (dist/agent/zonal-agent.mjs, scripts/build-agent.mjs): the agent alone, not the CLI.
 */
const AGENT_MAIN = fileURLToPath(new URL("../../../agent/zonal-agent.mjs", import.meta.url));

export const VM_MARKER = "ZONAL_VM_ID";

/** Where a VM's agent writes its stdout and stderr: the VM's console. */
export const consolePath = (vmDir: string): string => join(vmDir, "console.log");

export type ProcObservation = "running" | "stopped" | "gone";

/**
 * Boots the VM: its agent, detached, as the leader of a new process group. With
 * `cgroupProcs` (the `cgroup.procs` file of the VM's cgroup), the leader moves itself
 * into the VM's cgroup before it becomes the agent, so every process of the VM is
 * in it from its first packet on.
 */
export function bootAgent(
  vmId: string,
  vmDir: string,
  o: { cgroupProcs?: string; extraEnv?: Record<string, string> } = {},
): ProcRef {
  const consoleFd = openSync(consolePath(vmDir), "a");
  const agent = [process.execPath, ...AGENT_NODE_FLAGS, AGENT_MAIN, "--vm-dir", vmDir];
  const [command, ...args] = o.cgroupProcs
    ? ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', o.cgroupProcs, ...agent]
    : agent;
  try {
    const child = spawn(command!, args, {
      detached: true,
      cwd: vmDir,
      stdio: ["ignore", consoleFd, consoleFd],
      env: {
        PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
        LANG: "C.UTF-8",
        ...(process.env.ZONAL_LOG_LEVEL ? { ZONAL_LOG_LEVEL: process.env.ZONAL_LOG_LEVEL } : {}),
        ...o.extraEnv,
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

/**
 * Every live process of the VM: its process group, and every process carrying the
 * VM's marker in its environment — programs that start sessions of their own (each
 * PostgreSQL backend does) leave the group, but not the environment.
 */
export function vmProcesses(vmId: string, proc?: ProcRef): number[] {
  const pids = new Set(proc ? groupMembers(proc.pid, proc.startTime).map((p) => p.pid) : []);
  const needle = `${VM_MARKER}=${vmId}`;
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || pids.has(Number(name))) continue;
    try {
      if (readFileSync(`/proc/${name}/environ`, "utf8").split("\0").includes(needle)) {
        const st = readStat(Number(name));
        if (st && !isZombie(st)) pids.add(Number(name));
      }
    } catch {
      /* gone, or not ours to read */
    }
  }
  return [...pids];
}

function signalVm(vmId: string, proc: ProcRef | undefined, signal: NodeJS.Signals): number {
  if (proc) signalGroup(proc.pid, proc.startTime, signal);
  const pids = vmProcesses(vmId, proc);
  for (const pid of pids) signalPid(pid, signal);
  return pids.length;
}

/** SIGKILLs every process of the VM and resolves once none is left. */
export async function killVm(vmId: string, proc: ProcRef | undefined, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (signalVm(vmId, proc, "SIGKILL") > 0) {
    if (Date.now() > deadline)
      throw new Unavailable(`processes of VM ${vmId} did not die within ${timeoutMs} ms`);
    await sleep(20);
  }
}

/** Suspends every process of the VM (twice: a process forked meanwhile is caught the second time). */
export function freezeVm(vmId: string, proc: ProcRef | undefined): void {
  signalVm(vmId, proc, "SIGSTOP");
  signalVm(vmId, proc, "SIGSTOP");
}

export function thawVm(vmId: string, proc: ProcRef | undefined): void {
  signalVm(vmId, proc, "SIGCONT");
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
