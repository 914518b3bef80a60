/**
 * Is one instance healthy? A pure decider that returns a verdict and a sentence
 * (STYLE.md point 4). Silence is what counts — never a TCP reset: a frozen VM or a
 * failed host just stops sending heartbeats. Two more cases a heartbeat alone
 * misses: jobs that keep failing, and an agent that beats but no longer answers.
 */
import type { InstanceState } from "../store/instance-state.js";
import type { HealthConfig } from "./config.js";

export type Health = "healthy" | "unresponsive" | "failing" | "unreachable" | "not-judged";

export interface VerdictInput {
  key: string;
  state: InstanceState;
  desired: "started" | "stopped";
  /** When the instance last changed (ms since epoch): a fresh VM gets a full timeout to report. */
  changedAt: number;
  lastBeat?: { at: number; jobsState: string; restarts: number; failingJobs: string[] };
  /** Unanswered director → agent probes in a row. */
  probeFailures: number;
  now: number;
  /** When the monitor started: instances get a full timeout after a director restart. */
  monitorStartedAt: number;
}

export interface Verdict {
  health: Health;
  sentence: string;
}

const JUDGED: ReadonlySet<InstanceState> = new Set(["running", "stopped", "failed"]);

export function judge(i: VerdictInput, cfg: HealthConfig): Verdict {
  if (!JUDGED.has(i.state))
    return { health: "not-judged", sentence: `${i.key} is ${i.state}; a task works on it` };
  const since = i.lastBeat?.at ?? Math.max(i.monitorStartedAt, i.changedAt);
  const silent = i.now - since;
  if (silent > cfg.unresponsiveAfterMs) {
    const what = i.lastBeat ? "no heartbeat" : "no heartbeat yet";
    return {
      health: "unresponsive",
      sentence: `${i.key} is unresponsive: ${what} for ${(silent / 1000).toFixed(1)} s`,
    };
  }
  const b = i.lastBeat;
  if (b && i.desired === "started" && b.jobsState === "failing" && b.restarts >= cfg.maxJobRestarts) {
    return {
      health: "failing",
      sentence: `${i.key} is failing: its jobs restarted ${b.restarts} times (${b.failingJobs.join(", ") || "jobs failing"})`,
    };
  }
  if (i.probeFailures >= cfg.probeFailures) {
    return {
      health: "unreachable",
      sentence: `${i.key} is unreachable: it sends heartbeats but did not answer the director ${i.probeFailures} times in a row`,
    };
  }
  return { health: "healthy", sentence: `${i.key} is healthy` };
}

export const isDown = (h: Health): boolean => h === "unresponsive" || h === "failing" || h === "unreachable";
