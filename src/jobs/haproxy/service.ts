/**
 * An HAProxy pair as a data service (the control plane's half; haproxy-job.ts is the
 * agent's): a load balancer, whose nodes the control plane serves their backends and
 * whose status it reads from each node's status API.
 */
import type { DataService } from "../data-service.js";

export const haproxyService: DataService = {
  type: "haproxy",
  description: "HAProxy 2.6: an active/standby load-balancer pair with a VIP",
  loadBalancer: {
    statusPort: (properties) => (properties.status_port as number | undefined) ?? 8404,
  },
};
