/**
 * The failover-strategy interface: what a group's `strategy` means to the manifest
 * checker, the planner and executor, the standby pool and the health monitor. Each
 * strategy is one file here; `registry.ts` is the one place they are listed, and
 * nothing else compares a strategy's name.
 */

/** A problem with a group under a strategy, by the group's field. */
export interface StrategyProblem {
  field: string;
  problem: string;
}

export interface FailoverStrategy {
  readonly name: string;
  /** One line for `--help`, the manifest's docs and events. */
  readonly description: string;
  /** The health monitor rebuilds a failed instance (false: it is left as it is, and reported). */
  readonly recovers: boolean;
  /**
   * Each instance has a virtual address of its own (the group's `ports` forwarded)
   * that follows it to its next VM: clients keep one address across a takeover.
   */
  readonly instanceVip: boolean;
  /**
   * A warm VM is kept ready in each of the group's zones; a recovery takes it over
   * (the fenced VM's disk and address) before it builds a new one.
   */
  readonly warmStandbys: boolean;
  /** What a group needs under this strategy; none when it fits. */
  check(group: { ports: readonly number[] }): StrategyProblem[];
}
