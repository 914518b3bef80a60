/**
 * `standby`: a warm VM waits in each zone; a failed instance's VM is fenced and the
 * standby takes over its disk and its virtual address (resurrected as a last resort,
 * or when the instance relocates to another zone).
 */
import type { FailoverStrategy } from "./strategy.js";

export const standby: FailoverStrategy = {
  name: "standby",
  description: "a warm VM per zone takes over a failed instance's disk and virtual address",
  recovers: true,
  instanceVip: true,
  warmStandbys: true,
  check: (group) =>
    group.ports.length === 0
      ? [
          {
            field: "ports",
            problem: "a standby group needs the ports its jobs serve, for its virtual addresses",
          },
        ]
      : [],
};
