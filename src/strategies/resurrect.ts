/** `resurrect` (the default): a failed instance gets a new VM in its zone, with its disk re-attached. */
import type { FailoverStrategy } from "./strategy.js";

export const resurrect: FailoverStrategy = {
  name: "resurrect",
  description: "a failed instance gets a new VM in its zone, its persistent disk re-attached",
  recovers: true,
  instanceVip: false,
  warmStandbys: false,
  check: () => [],
};
