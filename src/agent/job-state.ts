/**
 * A supervised job's lifecycle, as monit runs it:
 *
 *   stopped ──start──▶ starting ──healthy──▶ running
 *      ▲                 │  ▲                   │
 *      │      exit/unhealthy  └──── backoff ◀───┘ exit, or health check failing
 *      │                 ▼
 *   stopping ◀── (any state but stopped) ── stop
 *   failed: could not be started at all (prepare or pre-start failed); waits for a start.
 *
 * Illegal transitions throw: they are bugs.
 */
export const JOB_STATES = ["stopped", "starting", "running", "backoff", "stopping", "failed"] as const;
export type JobState = (typeof JOB_STATES)[number];

const TRANSITIONS: Record<JobState, readonly JobState[]> = {
  stopped: ["starting", "failed"],
  starting: ["running", "backoff", "stopping", "failed"],
  running: ["backoff", "stopping"],
  backoff: ["starting", "stopping"],
  stopping: ["stopped"],
  failed: ["starting", "stopping", "stopped", "failed"],
};

export class IllegalTransition extends Error {
  constructor(job: string, from: JobState, to: JobState) {
    super(`job ${job}: illegal transition ${from} -> ${to}`);
  }
}

export function checkTransition(job: string, from: JobState, to: JobState): void {
  if (!TRANSITIONS[from].includes(to)) throw new IllegalTransition(job, from, to);
}

/** Delay before the Nth consecutive restart: 1 s, 2 s, 4 s ... capped at 30 s. */
export function backoffDelayMs(consecutiveFailures: number): number {
  return Math.min(1000 * 2 ** Math.max(0, consecutiveFailures - 1), 30_000);
}

/** One word for all jobs of a VM, as heartbeats report it. */
export const JOBS_SUMMARIES = ["none", "running", "starting", "failing", "stopped", "partial"] as const;
export type JobsSummary = (typeof JOBS_SUMMARIES)[number];

export function summarizeJobs(states: JobState[]): JobsSummary {
  if (states.length === 0) return "none";
  if (states.some((s) => s === "backoff" || s === "failed")) return "failing";
  if (states.every((s) => s === "running")) return "running";
  if (states.every((s) => s === "stopped")) return "stopped";
  if (states.some((s) => s === "starting")) return "starting";
  return "partial";
}
