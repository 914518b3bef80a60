/** `none`: a failed instance is reported and left as it is (e.g. a cluster that heals itself). */
import type { FailoverStrategy } from "./strategy.js";

export const none: FailoverStrategy = {
  name: "none",
  description: "a failed instance is reported and left as it is",
  recovers: false,
  instanceVip: false,
  warmStandbys: false,
  check: () => [],
};
