/**
 * The rolling update's view of clusters and load-balancer pairs (rolling.ts), made
 * of the control plane's two services: a clustered data service's members and its
 * switchover, or an LB pair's nodes and its VIP handover.
 */
import type { ClusterService } from "./cluster-service.js";
import type { LbService } from "./lb-service.js";
import type { GroupRoles, RollingControl } from "./rolling.js";

export function rollingControl(clusters: ClusterService, lbs: LbService): RollingControl {
  const clusterOf = async (deployment: string, group: string) =>
    (await clusters.status(deployment).catch(() => [])).find((c) => c.group === group);
  const pairOf = async (deployment: string, group: string) =>
    (await lbs.status(deployment).catch(() => [])).find((p) => p.group === group);
  return {
    async roles(deployment, group): Promise<GroupRoles | undefined> {
      const c = await clusterOf(deployment, group);
      if (c)
        return {
          leader: c.leader?.member ?? null,
          members: c.members.map((m) => ({ member: m.member, role: m.role, lag: m.lag })),
        };
      const p = await pairOf(deployment, group);
      if (p)
        return {
          leader: p.holder?.member ?? null,
          members: p.nodes.map((n) => ({ member: n.member, role: n.role ?? "unknown" })),
        };
      return undefined;
    },
    async switchover(deployment, group, to) {
      if (await clusterOf(deployment, group)) return clusters.switchover(deployment, { group, to });
      return lbs.switchover(deployment, to, 30_000, group);
    },
    drain: (inst) => lbs.drain(inst),
  };
}
