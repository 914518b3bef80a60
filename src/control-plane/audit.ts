/**
 * The control plane's audit log: one JSON line per request to the director API, the
 * VMs' listener and the broker, in the control plane's log (`"audit": {…}`): who
 * called (never a credential), the route and path (never a query string or body),
 * the status, the time taken, OSB's originating identity, and a 5xx's error.
 * Keepalives that succeed (heartbeats, lease renewals and reads, a member's
 * re-registration, backend polls) are left out: a VM sends several a second.
 */
import type { FastifyRequest } from "fastify";
import { basicCredentials, originatingIdentity } from "../broker/api.js";
import { bearerToken, tokensEqual } from "../lib/http-errors.js";
import type { AuditOptions } from "../lib/http-server.js";
import type { Director } from "../director/director.js";

const KEEPALIVES = new Set([
  "/v1/heartbeats",
  "/v1/leases/renew",
  "/v1/leases/read",
  "/v1/leases/list",
  "/v1/lb/backends",
]);

export function controlPlaneAudit(apiToken: string, director: () => Director): AuditOptions {
  return {
    who: async (req: FastifyRequest) => {
      if (req.url.startsWith("/v2/")) {
        const { user } = basicCredentials(req.headers.authorization);
        return user ? `broker client ${user}` : "anonymous";
      }
      const token = bearerToken(req.headers.authorization);
      if (!token) return "anonymous";
      if (tokensEqual(token, apiToken)) return "operator";
      const inst = await director().ctx.store.instances.byToken(token);
      return inst
        ? `vm ${inst.vmId ?? "-"} (${inst.deployment}/${inst.group}/${inst.index})`
        : "an unknown bearer token";
    },
    originatingIdentity: (req) => {
      try {
        return originatingIdentity(req.headers["x-broker-api-originating-identity"]);
      } catch {
        return undefined; // the broker refused it: its line says 400
      }
    },
    quiet: (req) =>
      KEEPALIVES.has(req.routeOptions.url ?? "") ||
      // A cluster member re-registers (acquires its members/ key) every renewal.
      (req.routeOptions.url === "/v1/leases/acquire" &&
        String((req.body as { key?: unknown } | undefined)?.key ?? "").includes("/members/")),
  };
}
