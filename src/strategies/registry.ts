/**
 * The failover strategies, by name: the one place they are listed. The manifest's
 * `strategy` enum is made from it.
 */
import { none } from "./none.js";
import { resurrect } from "./resurrect.js";
import { standby } from "./standby.js";
import type { FailoverStrategy } from "./strategy.js";

export type { FailoverStrategy, StrategyProblem } from "./strategy.js";

const strategies = [resurrect, standby, none] as const;

/** Every strategy's name, the default first (a tuple, for zod's enum). */
export const STRATEGY_NAMES = strategies.map((s) => s.name) as [string, ...string[]];
export const DEFAULT_STRATEGY = resurrect.name;

const byName = new Map<string, FailoverStrategy>(strategies.map((s) => [s.name, s]));

/** The strategy of this name; throws for a name the manifest checker would have refused. */
export function strategy(name: string): FailoverStrategy {
  const s = byName.get(name);
  if (!s) throw new Error(`no failover strategy "${name}" (known: ${STRATEGY_NAMES.join(", ")})`);
  return s;
}

/** A group's strategy. */
export const strategyOf = (group: { strategy: string }): FailoverStrategy => strategy(group.strategy);
