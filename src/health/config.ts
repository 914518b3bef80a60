/** The health monitor's knobs (flags of `zonal up` / `zonal control-plane`). */
export interface HealthConfig {
  /** An instance with no heartbeat for this long is unresponsive (agents beat every 1 s). */
  unresponsiveAfterMs: number;
  /** Job restarts (since the jobs were last started) that make an instance failing. */
  maxJobRestarts: number;
  /** How often the director checks that each agent still answers it. */
  probeIntervalMs: number;
  /** Unanswered probes in a row that make a heartbeating instance unreachable. */
  probeFailures: number;
  /** A deployment (or everything) is in meltdown when more than this share is down at once... */
  meltdownShare: number;
  /** ...and at least this many instances are down. */
  meltdownMin: number;
  /**
   * A down verdict must hold this long before anything is done about it, so failures
   * that happen together (up to one heartbeat apart) are seen together by the guard.
   */
  confirmMs: number;
  /** How often the monitor looks (its cadence). */
  tickMs: number;
}

export const DEFAULT_HEALTH: HealthConfig = {
  unresponsiveAfterMs: 3000,
  maxJobRestarts: 5,
  probeIntervalMs: 2000,
  probeFailures: 3,
  meltdownShare: 0.5,
  meltdownMin: 2,
  confirmMs: 1000,
  tickMs: 250,
};
