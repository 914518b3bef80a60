/**
 * The Linux process table, read from /proc. The local cloud uses it to find every
 * process of a VM (its process group) and to tell a live process from a recycled
 * PID; the agent uses it to stop a job together with everything the job started.
 *
 * A process is identified by (pid, startTime): the kernel reuses PIDs, but a reused
 * PID has a different start time (clock ticks since boot, field 22 of stat).
 */
import { readFileSync, readdirSync } from "node:fs";

/** A process by its PID and its start time (a recycled PID is not it). */
export interface ProcRef {
  /** Its PID (for a VM: its agent, leader of the VM's process group). */
  pid: number;
  /** Its start time in clock ticks since boot (tells a recycled PID apart). */
  startTime: number;
}

export interface ProcStat {
  pid: number;
  /** R running, S sleeping, D disk sleep, T stopped, t traced, Z zombie, X dead. */
  state: string;
  ppid: number;
  pgid: number;
  sid: number;
  startTime: number;
}

/** Parses /proc/PID/stat; undefined when the process does not exist (or vanished while reading). */
export function readStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return undefined;
  }
  // The command name (field 2) is in parentheses and may itself contain spaces or ')'.
  const close = text.lastIndexOf(")");
  const rest = text.slice(close + 2).split(" ");
  // rest[0] is field 3 (state); field N is rest[N - 3].
  return {
    pid,
    state: rest[0] ?? "?",
    ppid: Number(rest[1]),
    pgid: Number(rest[2]),
    sid: Number(rest[3]),
    startTime: Number(rest[19]),
  };
}

/** All processes, zombies included. */
export function listProcesses(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(Number(name));
    if (st) out.push(st);
  }
  return out;
}

export const isZombie = (st: ProcStat): boolean => st.state === "Z" || st.state === "X";

/** True when the process exists, is not a zombie, and (if given) started at `startTime`. */
export function isAlive(pid: number, startTime?: number): boolean {
  const st = readStat(pid);
  if (!st || isZombie(st)) return false;
  return startTime === undefined || st.startTime === startTime;
}

/**
 * The live members of the process group led by (leaderPid, leaderStartTime).
 * Returns [] when the group is gone, or when its number now belongs to an
 * unrelated process (the leader PID was reused): such a group is not ours to signal.
 */
export function groupMembers(leaderPid: number, leaderStartTime: number): ProcStat[] {
  const all = listProcesses();
  const leader = all.find((p) => p.pid === leaderPid);
  if (leader && leader.startTime !== leaderStartTime) return [];
  return all.filter((p) => p.pgid === leaderPid && !isZombie(p));
}

/** PIDs of `pid` and all its live descendants, parents before children. */
export function processTree(pid: number): number[] {
  const all = listProcesses().filter((p) => !isZombie(p));
  const children = new Map<number, number[]>();
  for (const p of all) {
    const list = children.get(p.ppid) ?? [];
    list.push(p.pid);
    children.set(p.ppid, list);
  }
  const out: number[] = [];
  const queue = all.some((p) => p.pid === pid) ? [pid] : [];
  while (queue.length > 0) {
    const next = queue.shift()!;
    out.push(next);
    queue.push(...(children.get(next) ?? []));
  }
  return out;
}

/** Sends `signal` to a PID, ignoring a process that is already gone. Returns false if it was gone. */
export function signalPid(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw err;
  }
}

/**
 * Signals the process group of (leaderPid, leaderStartTime), but only when it is
 * still that group (see groupMembers). Returns the number of live members signalled.
 */
export function signalGroup(leaderPid: number, leaderStartTime: number, signal: NodeJS.Signals): number {
  const members = groupMembers(leaderPid, leaderStartTime);
  if (members.length === 0) return 0;
  signalPid(-leaderPid, signal);
  return members.length;
}
