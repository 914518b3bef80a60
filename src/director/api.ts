/**
 * The director's HTTP API (JSON, bearer token from `<home>/director/api-token`).
 *
 *   GET  /v1/info                              GET /v1/versions (the control plane's, every agent's)
 *   GET  /v1/cloud-config                      PUT /v1/cloud-config {cloud config}
 *   GET  /v1/deployments                       POST /v1/deployments {manifest} -> 202 task
 *   GET  /v1/deployments/:name (manifest)      DELETE /v1/deployments/:name -> 202 task
 *   POST /v1/deployments/:name/recreate|stop|start|upgrade-agents {target?: "GROUP[/INDEX]"} -> 202 task
 *   GET  /v1/deployments/:name/logs?instance=GROUP/INDEX[&job=J][&lines=N]
 *   GET  /v1/instances[?deployment=NAME]
 *   GET  /v1/tasks[?deployment=&limit=]        GET /v1/tasks/:id
 *   GET  /v1/tasks/:id/events[?after=ID]       GET /v1/events[?deployment=&limit=]
 *   GET  /v1/health[?deployment=NAME]          PUT /v1/health/override {deployment?, on}
 *                                              PUT /v1/health/pause {deployment?, on}
 *   GET  /v1/maintenance                       POST /v1/maintenance {kind: host|zone, target, reason?}
 *   DELETE /v1/maintenance/:kind/:target (the target URL-encoded: z1%2Fh2)
 *   GET  /v1/deployments/:name/lb              POST /v1/deployments/:name/lb/switchover {to?}
 *   GET  /v1/lb/backends (load-balancer nodes; their VM token)
 *   GET  /v1/deployments/:name/cluster (every clustered group: leader, VIP, members)
 *   POST /v1/deployments/:name/clusters/:group/switchover {to?}
 *   POST /v1/deployments/:name/clusters/:group/bootstrap {member, confirm: true}
 *   POST /v1/deployments/:name/switchover {to?, group?} (the only clustered group when none is named)
 *   POST /v1/deployments/:name/bindings {group?} -> 201 {group, username, credentials}
 *   DELETE /v1/deployments/:name/bindings/:username[?group=G]
 *   POST /v1/heartbeats (agents; their own VM token)
 *   POST /v1/clusters/vip {key, token}  POST /v1/clusters/fence {key, vmId}
 *   POST /v1/clusters/initialized {key}  (cluster members; their VM token)
 *   /v1/leases/* (the embedded lease store; see src/ha/embedded/api.ts)
 *   With agent TLS, what VMs call (heartbeats, leases, clusters/*, lb/backends) is
 *   also served on its own HTTPS listener (buildVmApi), and VMs are given that one.
 *   GET  /v1/broker (the broker's URL and basic-auth credentials)   GET /v1/broker/instances
 *   /v2/* the Open Service Broker API (basic auth; see src/broker/api.ts)
 */
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { heartbeatSchema } from "../agent/heartbeat.js";
import type { AuditOptions } from "../lib/http-server.js";
import { InvalidInput, Unauthorized } from "../lib/errors.js";
import { bearerToken } from "../lib/http-errors.js";
import { createApi } from "../lib/http-server.js";
import type { Logger } from "../lib/log.js";
import { parseWith } from "../lib/validate.js";
import { LEASE_ROUTES, mountLeaseApi } from "../ha/embedded/api.js";
import type { Director } from "./director.js";

type Q = { Querystring: Record<string, string | undefined> };

function intQuery(value: string | undefined, name: string, fallback: number, max = 1_000_000): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > max)
    throw new InvalidInput(`${name}: expected an integer from 0 to ${max}, got "${value}"`);
  return n;
}

function idParam(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0)
    throw new InvalidInput(`task id: expected a positive integer, got "${value}"`);
  return n;
}

/** The document under `field` of a request body (a manifest, a cloud config): it must be an object. */
function bodyField(body: unknown, field: string): unknown {
  const value = body && typeof body === "object" ? (body as Record<string, unknown>)[field] : undefined;
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    throw new InvalidInput(`request body: expected a JSON object with "${field}", itself an object`, [
      { field, problem: "expected an object" },
    ]);
  }
  return value;
}

/** `director()` returns the director, or throws Unavailable while it is still starting. */
export function buildDirectorApi(
  director: () => Director,
  token: string,
  info: () => Record<string, unknown>,
  o: { log?: Logger; audit?: AuditOptions; https?: { cert: string; key: string } } = {},
): FastifyInstance {
  const app = createApi({
    token,
    ...(o.log ? { log: o.log, ...(o.audit ? { audit: o.audit } : {}) } : {}),
    ...(o.https ? { https: o.https } : {}),
    open: ["/v1/heartbeats", "/v1/health", "/v1/lb/backends", ...CLUSTER_ROUTES, ...LEASE_ROUTES],
    openPrefixes: ["/v2/"],
  });
  mountVmApi(app, director);
  app.get<{ Params: { name: string } }>("/v1/deployments/:name/lb", (req) =>
    director().lbs.status(req.params.name),
  );
  app.post<{ Params: { name: string } }>("/v1/deployments/:name/lb/switchover", async (req) => {
    const to = (req.body as { to?: unknown } | undefined)?.to;
    if (to !== undefined && (typeof to !== "string" || !/^m\d+$/.test(to)))
      throw new InvalidInput('to: expected a member name such as "m1"');
    return director().lbs.switchover(req.params.name, to);
  });
  app.get<{ Params: { name: string } }>("/v1/deployments/:name/cluster", (req) =>
    director().clusters.status(req.params.name),
  );
  app.post<{ Params: { name: string } }>("/v1/deployments/:name/switchover", async (req) => {
    const b = parseWith(
      switchoverSchema.extend({ group: groupName.optional() }),
      req.body ?? {},
      "switchover",
    );
    return director().clusters.switchover(req.params.name, b);
  });
  app.post<{ Params: { name: string; group: string } }>(
    "/v1/deployments/:name/clusters/:group/switchover",
    async (req) => {
      const b = parseWith(switchoverSchema, req.body ?? {}, "switchover");
      return director().clusters.switchover(req.params.name, { ...b, group: req.params.group });
    },
  );
  app.post<{ Params: { name: string; group: string } }>(
    "/v1/deployments/:name/clusters/:group/bootstrap",
    async (req) => {
      const b = parseWith(
        z
          .object({
            member: z.string().regex(/^m\d{1,3}$/, 'expected a member name such as "m1"'),
            confirm: z.literal(true, "expected true: a forced bootstrap may lose writes (see the warning)"),
          })
          .strict(),
        req.body ?? {},
        "bootstrap",
      );
      return director().clusters.forceBootstrap(req.params.name, req.params.group, b.member);
    },
  );
  app.post<{ Params: { name: string } }>("/v1/deployments/:name/bindings", async (req, reply) => {
    const b = parseWith(z.object({ group: groupName.optional() }).strict(), req.body ?? {}, "binding");
    return reply.status(201).send(await director().clusters.createBinding(req.params.name, b.group));
  });
  app.delete<{ Params: { name: string; username: string }; Querystring: { group?: string } }>(
    "/v1/deployments/:name/bindings/:username",
    async (req, reply) => {
      const q = parseWith(z.object({ group: groupName.optional() }).strict(), req.query, "query");
      await director().clusters.dropBinding(req.params.name, req.params.username, q.group);
      return reply.status(204).send();
    },
  );

  app.get("/v1/health", async () => ({ ok: true }));
  app.get("/v1/info", async () => ({ directorId: director().id, ...info() }));

  app.get("/v1/cloud-config", () => director().cloudConfig());
  app.put("/v1/cloud-config", (req) => director().setCloudConfig(bodyField(req.body, "cloudConfig")));

  app.get("/v1/deployments", () => director().deployments());
  app.post("/v1/deployments", async (req, reply) =>
    reply.status(202).send(await director().deploy(bodyField(req.body, "manifest"))),
  );
  app.get<{ Params: { name: string } }>("/v1/deployments/:name", (req) =>
    director().manifest(req.params.name),
  );
  app.delete<{ Params: { name: string } }>("/v1/deployments/:name", async (req, reply) =>
    reply.status(202).send(await director().deleteDeployment(req.params.name)),
  );
  for (const action of ["recreate", "stop", "start", "upgrade-agents"] as const) {
    app.post<{ Params: { name: string } }>(`/v1/deployments/:name/${action}`, async (req, reply) => {
      const target = (req.body as { target?: unknown } | undefined)?.target;
      if (target !== undefined && typeof target !== "string")
        throw new InvalidInput('target: expected "GROUP" or "GROUP/INDEX"');
      return reply.status(202).send(await director().action(action, req.params.name, target));
    });
  }
  app.get<{ Params: { name: string } } & Q>("/v1/deployments/:name/logs", (req) => {
    if (!req.query.instance) throw new InvalidInput("instance: expected GROUP/INDEX");
    return director().logs(
      req.params.name,
      req.query.instance,
      req.query.job,
      intQuery(req.query.lines, "lines", 100, 10_000),
    );
  });

  app.get<Q>("/v1/instances", (req) => director().instances(req.query.deployment));

  app.get<Q>("/v1/tasks", (req) =>
    director().tasks({
      ...(req.query.deployment ? { deployment: req.query.deployment } : {}),
      limit: intQuery(req.query.limit, "limit", 30, 1000),
    }),
  );
  app.get<{ Params: { id: string } }>("/v1/tasks/:id", (req) => director().task(idParam(req.params.id)));
  app.get<{ Params: { id: string } } & Q>("/v1/tasks/:id/events", async (req) => {
    const taskId = idParam(req.params.id);
    await director().task(taskId);
    return director().events({ taskId, afterId: intQuery(req.query.after, "after", 0) });
  });
  app.get<Q>("/v1/events", (req) =>
    director().events({
      ...(req.query.deployment ? { deployment: req.query.deployment } : {}),
      ...(req.query.task ? { taskId: idParam(req.query.task) } : {}),
      limit: intQuery(req.query.limit, "limit", 50, 10_000),
    }),
  );

  app.get("/v1/versions", () => director().versions());
  app.get("/v1/maintenance", () => director().maintenance());
  app.post("/v1/maintenance", async (req, reply) => {
    const b = parseWith(
      z
        .object({
          kind: z.enum(["host", "zone"]),
          target: z.string().min(1).max(200),
          reason: z.string().min(1).max(500).optional(),
        })
        .strict(),
      req.body ?? {},
      "maintenance",
    );
    return reply.status(202).send(await director().drain(b.kind, b.target, b.reason));
  });
  app.delete<{ Params: { kind: string; target: string } }>("/v1/maintenance/:kind/:target", (req) => {
    const kind = req.params.kind;
    if (kind !== "host" && kind !== "zone")
      throw new InvalidInput(`kind: expected host or zone, got "${kind}"`);
    return director().undrain(kind, req.params.target);
  });

  app.get<Q>("/v1/health/status", (req) => director().health(req.query.deployment));
  for (const which of ["override", "pause"] as const)
    app.put(`/v1/health/${which}`, (req) => {
      const body = (req.body ?? {}) as { deployment?: unknown; on?: unknown };
      if (typeof body.on !== "boolean") throw new InvalidInput("on: expected true or false");
      if (body.deployment !== undefined && typeof body.deployment !== "string")
        throw new InvalidInput("deployment: expected a name");
      return director().setHealthSwitch(which, body.deployment, body.on);
    });

  return app;
}

const CLUSTER_ROUTES = [
  "/v1/clusters/vip",
  "/v1/clusters/fence",
  "/v1/clusters/initialized",
  "/v1/certificates",
  "/v1/bootstrap",
];
const clusterKey = z.string().min(1, "expected a cluster key (deployment/group)").max(256);
const clusterKeySchema = z.object({ key: clusterKey }).strict();
const groupName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, "expected a group name");
const switchoverSchema = z
  .object({
    to: z
      .string()
      .regex(/^m\d+$/, 'expected a member name such as "m1"')
      .optional(),
  })
  .strict();
const vipSchema = z.object({ key: clusterKey, token: z.number().int().positive() }).strict();
const fenceSchema = z.object({ key: clusterKey, vmId: z.string().min(1).max(256) }).strict();

/**
 * What VMs call, each with its own VM token (these routes are open to the API
 * token): heartbeats, the embedded lease store, cluster members' VIP moves and
 * fencing, load-balancer nodes' backends.
 */
function mountVmApi(app: FastifyInstance, director: () => Director): void {
  mountLeaseApi(
    app,
    () => director().ctx.leases,
    (t, key, intent) => director().clusters.authorize(t, key, intent),
  );
  const vmToken = (authorization: string | undefined) => {
    const t = bearerToken(authorization);
    if (!t) throw new Unauthorized("cluster members call with their VM's bearer token");
    return t;
  };
  app.post("/v1/clusters/vip", async (req) => {
    const b = parseWith(vipSchema, req.body, "VIP request");
    return director().clusters.moveVip(vmToken(req.headers.authorization), b.key, b.token);
  });
  app.post("/v1/clusters/fence", async (req) => {
    const b = parseWith(fenceSchema, req.body, "fencing request");
    return director().clusters.fence(vmToken(req.headers.authorization), b.key, b.vmId);
  });
  // A new VM trades the one-time code from its injected settings for its token and certificate.
  app.post("/v1/bootstrap", async (req) => {
    const b = parseWith(
      z.object({ code: z.string().regex(/^[0-9a-f]{64}$/, "expected 64 hex digits") }).strict(),
      req.body,
      "bootstrap request",
    );
    return director().bootstraps.pickUp(b.code);
  });
  app.post("/v1/certificates", async (req) => {
    parseWith(z.object({}).strict(), req.body ?? {}, "certificate request");
    return director().clusters.serviceCertificate(vmToken(req.headers.authorization));
  });
  app.post("/v1/clusters/initialized", async (req) => {
    const b = parseWith(clusterKeySchema, req.body, "init marker request");
    return director().clusters.markInitialized(vmToken(req.headers.authorization), b.key);
  });
  app.get("/v1/lb/backends", (req) => director().lbs.backends(vmToken(req.headers.authorization)));
  app.post("/v1/heartbeats", async (req, reply) => {
    const given = bearerToken(req.headers.authorization);
    if (!given) throw new Unauthorized("heartbeats need the VM's bearer token");
    const beat = parseWith(heartbeatSchema, req.body, "heartbeat");
    // A VM nobody owns is refused like any unknown token (the book still tells the zombie hunt).
    if ((await director().recordHeartbeat(given, beat)) === "unknown-vm")
      throw new Unauthorized(`heartbeat for ${beat.vmId}: no instance or standby owns this VM`);
    return reply.status(204).send();
  });
}

/**
 * The VMs' listener when TLS is on: HTTPS with the director's certificate from the
 * agent CA, serving only what VMs call (the same handlers as the API's).
 */
export function buildVmApi(
  director: () => Director,
  https: { cert: string; key: string },
  audit?: { log: Logger; options: AuditOptions },
): FastifyInstance {
  const app = createApi({
    https,
    ...(audit ? { log: audit.log, audit: audit.options } : {}),
  });
  mountVmApi(app, director);
  return app;
}
