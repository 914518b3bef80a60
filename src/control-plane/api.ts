/**
 * The control plane's API on one listener: the director's routes (src/director/api.ts)
 * and the service broker's (OSB under /v2 with its own basic auth, and the director
 * token's view of it: `GET /v1/broker`, `GET /v1/broker/instances`, `POST
 * /v1/broker/instances/:id/upgrade` — to the version its plan offers now), with one audit
 * log for both.
 */
import type { FastifyInstance } from "fastify";
import type { Logger } from "pino";
import { mountBrokerApi } from "../broker/api.js";
import type { ControlPlaneBroker } from "../broker/control-plane.js";
import { buildDirectorApi } from "../director/api.js";
import type { Director } from "../director/director.js";
import { controlPlaneAudit } from "./audit.js";

/** `director()` and `broker()` return theirs, or throw Unavailable while they are starting (or failed to). */
export function buildControlPlaneApi(
  director: () => Director,
  token: string,
  info: () => Record<string, unknown>,
  broker: () => ControlPlaneBroker,
  o: { log?: Logger; https?: { cert: string; key: string } } = {},
): FastifyInstance {
  const app = buildDirectorApi(director, token, info, {
    ...o,
    ...(o.log ? { audit: controlPlaneAudit(token, director) } : {}),
  });
  mountBrokerApi(
    app,
    () => broker().broker,
    () => broker().credentials,
  );
  app.get("/v1/broker", (req) => ({ url: `${req.protocol}://${req.host}/v2`, ...broker().credentials }));
  app.get("/v1/broker/instances", () => broker().broker.list());
  app.post<{ Params: { id: string } }>("/v1/broker/instances/:id/upgrade", async (req, reply) => {
    const a = await broker().broker.upgrade(req.params.id);
    return reply.status(a.status).send(a.body);
  });
  return app;
}
