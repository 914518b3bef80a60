/**
 * An HAProxy pair as a data service (the control plane's half; haproxy-job.ts is the
 * agent's): a load balancer, whose nodes the control plane serves their backends and
 * whose status it reads from each node's status API.
 */
import { clusterHealth, updateOrder, type RoleRules } from "../cluster-order.js";
import type { DataService } from "../data-service.js";

/** The standby is ready to take over once it runs warm as the standby again. */
const roles: RoleRules = { leader: "active", follower: "standby", caughtUp: (m) => m.role === "standby" };

export const haproxyService: DataService = {
  type: "haproxy",
  description: "HAProxy 2.6: an active/standby load-balancer pair with a VIP",
  update: { order: updateOrder, caughtUp: roles.caughtUp },
  health: (members, leader) => clusterHealth(members, leader, roles),
  loadBalancer: {
    statusPort: (properties) => (properties.status_port as number | undefined) ?? 8404,
  },
};
