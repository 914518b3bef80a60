/**
 * The Open Service Broker API v2.17 under /v2 on the control plane's port, with
 * HTTP basic auth (the broker's own credentials, not the director's token):
 *
 *   GET    /v2/catalog
 *   PUT    /v2/service_instances/:iid?accepts_incomplete=true        provision (async)
 *   GET    /v2/service_instances/:iid                                fetch
 *   PATCH  /v2/service_instances/:iid?accepts_incomplete=true        update (plan change: async)
 *   DELETE /v2/service_instances/:iid?service_id&plan_id&accepts_incomplete=true
 *   GET    /v2/service_instances/:iid/last_operation?operation=
 *   PUT    /v2/service_instances/:iid/service_bindings/:bid         bind (sync)
 *   GET    /v2/service_instances/:iid/service_bindings/:bid         fetch
 *   DELETE /v2/service_instances/:iid/service_bindings/:bid?service_id&plan_id
 *   GET    /v2/service_instances/:iid/service_bindings/:bid/last_operation
 *
 * Every answer is JSON; errors are `{error?, description}` as the spec's error
 * object. Requests need `X-Broker-API-Version: 2.x` (x >= 12; 412 otherwise, 400
 * when missing); `X-Broker-API-Request-Identity` is echoed; the originating identity
 * is logged with each change. Passwords never reach the log.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { ZonalError, errorMessage } from "../lib/errors.js";
import { tokensEqual } from "../lib/http-errors.js";
import { noteFailure } from "../lib/http-server.js";
import { formatProblems, problemsOf } from "../lib/validate.js";
import { catalogBody, bindParameters, serviceById, updateParameters } from "./catalog.js";
import type { Answer, Broker } from "./service.js";

export const MIN_MINOR_VERSION = 12;

export interface BrokerCredentials {
  username: string;
  password: string;
}

/** An answer that ends a request early (auth, headers, bad input). */
class OsbAnswer extends Error {
  constructor(readonly answer: Answer) {
    super(String(answer.body.description ?? answer.status));
  }
}
const bad = (description: string) => new OsbAnswer({ status: 400, body: { description } });

const nonEmpty = z.string().min(1, "expected a non-empty string");
const object = z.record(z.string(), z.unknown());
const provisionBody = z.object({
  service_id: nonEmpty,
  plan_id: nonEmpty,
  organization_guid: nonEmpty,
  space_guid: nonEmpty,
  context: object.default({}),
  parameters: object.default({}),
  maintenance_info: z.object({ version: nonEmpty }).optional(),
});
const updateBody = z.object({
  service_id: nonEmpty,
  plan_id: nonEmpty.optional(),
  context: object.optional(),
  parameters: object.optional(),
  maintenance_info: z.object({ version: nonEmpty }).optional(),
  previous_values: object.optional(),
});
const bindBody = z.object({
  service_id: nonEmpty,
  plan_id: nonEmpty,
  app_guid: nonEmpty.optional(),
  bind_resource: object.optional(),
  context: object.optional(),
  parameters: object.default({}),
});

function parse<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  if (value === undefined || value === null || typeof value !== "object" || Array.isArray(value))
    throw bad(`${what}: expected a JSON object`);
  const r = schema.safeParse(value);
  if (!r.success) throw bad(formatProblems(what, problemsOf(r.error)).replace(/\n\s*/g, " "));
  return r.data;
}

type Req = FastifyRequest<{
  Params: { iid: string; bid?: string };
  Querystring: Record<string, string | undefined>;
}>;

/** Who asked (the originating identity header, checked on every request), for the log. */
const identities = new WeakMap<FastifyRequest, Record<string, unknown> | undefined>();

/** Mounts /v2. `broker()` throws Unavailable while the control plane is starting. */
export function mountBrokerApi(
  app: FastifyInstance,
  broker: () => Broker,
  credentials: () => BrokerCredentials,
): void {
  void app.register(
    async (osb) => {
      osb.addHook("onRequest", async (req, reply) => {
        const echo = req.headers["x-broker-api-request-identity"];
        if (typeof echo === "string") void reply.header("X-Broker-API-Request-Identity", echo);
        checkAuth(req.headers.authorization, credentials());
        checkVersion(req.headers["x-broker-api-version"]);
        identities.set(req, originatingIdentity(req.headers["x-broker-api-originating-identity"]));
      });
      osb.setErrorHandler((err, req, reply) => {
        if (err instanceof OsbAnswer) {
          if (err.answer.status === 401) void reply.header("WWW-Authenticate", 'Basic realm="zonal broker"');
          return reply.status(err.answer.status).send(err.answer.body);
        }
        // Unreadable bodies and the like (Fastify's own 4xx): 400 with the parser's reason. Anything
        // else that failed underneath (the director, a primary that does not answer) is a 5xx: OSB's
        // 4xx rows have meanings of their own (409: exists with other attributes) a platform acts on.
        const parserStatus = (err as { statusCode?: number }).statusCode;
        const code =
          err instanceof ZonalError
            ? err.status === 503
              ? 503
              : 500
            : typeof parserStatus === "number" && parserStatus >= 400 && parserStatus < 500
              ? 400
              : 500;
        if (code >= 500) {
          noteFailure(req, err);
          req.log.error({ err: errorMessage(err) }, "broker request failed");
        }
        return reply.status(code).send({ description: errorMessage(err) });
      });
      const send = (reply: FastifyReply, a: Answer) => reply.status(a.status).send(a.body);
      const identity = (req: FastifyRequest) => identities.get(req);
      const ids = (req: Req) => {
        const { iid, bid } = req.params;
        for (const [name, v] of [
          ["instance_id", iid],
          ["binding_id", bid],
        ] as const) {
          if (v !== undefined && (v.length === 0 || v.length > 255))
            throw bad(`${name}: expected 1 to 255 characters`);
        }
        return { iid, bid: bid ?? "" };
      };
      const asyncOk = (req: Req) => req.query.accepts_incomplete === "true";
      const b = () => broker();

      osb.get("/catalog", async () => catalogBody(b().catalog));

      osb.put("/service_instances/:iid", async (req: Req, reply) => {
        const { iid } = ids(req);
        const body = parse(provisionBody, req.body, "provision request");
        const svc = serviceById(b().catalog, body.service_id);
        if (!svc) throw bad(`service_id: no service "${body.service_id}" in the catalog`);
        const plan = svc.plans.find((p) => p.id === body.plan_id);
        if (!plan) throw bad(`plan_id: no plan "${body.plan_id}" in service ${svc.name}`);
        parse(plan.provision, body.parameters, "parameters");
        const version = plan.maintenanceInfo?.version;
        if (body.maintenance_info && body.maintenance_info.version !== version)
          return send(reply, {
            status: 422,
            body: {
              error: "MaintenanceInfoConflict",
              description: `The maintenance information for the requested Service Plan has changed: it is ${version ?? "not set"}.`,
            },
          });
        req.log.info({ instance: iid, identity: identity(req) }, "provision requested");
        return send(
          reply,
          await b().provision(
            iid,
            { service_id: body.service_id, plan_id: body.plan_id, parameters: body.parameters },
            body.context,
            asyncOk(req),
          ),
        );
      });

      osb.get("/service_instances/:iid", async (req: Req, reply) =>
        send(reply, await b().fetchInstance(ids(req).iid)),
      );

      osb.patch("/service_instances/:iid", async (req: Req, reply) => {
        const { iid } = ids(req);
        const body = parse(updateBody, req.body, "update request");
        if (!serviceById(b().catalog, body.service_id))
          throw bad(`service_id: no service "${body.service_id}" in the catalog`);
        if (body.parameters) parse(updateParameters, body.parameters, "parameters");
        req.log.info({ instance: iid, identity: identity(req) }, "update requested");
        return send(
          reply,
          await b().update(
            iid,
            {
              service_id: body.service_id,
              ...(body.plan_id ? { plan_id: body.plan_id } : {}),
              ...(body.maintenance_info ? { maintenance_info: body.maintenance_info } : {}),
            },
            asyncOk(req),
          ),
        );
      });

      osb.delete("/service_instances/:iid", async (req: Req, reply) => {
        const { iid } = ids(req);
        requireQuery(req, "service_id", "plan_id");
        req.log.info({ instance: iid, identity: identity(req) }, "deprovision requested");
        return send(reply, await b().deprovision(iid, asyncOk(req)));
      });

      osb.get("/service_instances/:iid/last_operation", async (req: Req, reply) => {
        const op = req.query.operation;
        if (op !== undefined && op.length === 0) throw bad("operation: expected a non-empty string");
        const a = await b().lastOperation(ids(req).iid, op);
        if (a.status === 200 && a.body.state === "in progress") void reply.header("Retry-After", "2");
        return send(reply, a);
      });

      osb.put("/service_instances/:iid/service_bindings/:bid", async (req: Req, reply) => {
        const { iid, bid } = ids(req);
        const body = parse(bindBody, req.body, "bind request");
        const svc = serviceById(b().catalog, body.service_id);
        if (!svc) throw bad(`service_id: no service "${body.service_id}" in the catalog`);
        if (!svc.plans.some((p) => p.id === body.plan_id))
          throw bad(`plan_id: no plan "${body.plan_id}" in service ${svc.name}`);
        parse(bindParameters, body.parameters, "parameters");
        req.log.info({ instance: iid, binding: bid, identity: identity(req) }, "bind requested");
        return send(
          reply,
          await b().bind(iid, bid, {
            service_id: body.service_id,
            plan_id: body.plan_id,
            parameters: body.parameters,
            ...(body.app_guid ? { app_guid: body.app_guid } : {}),
          }),
        );
      });

      osb.get("/service_instances/:iid/service_bindings/:bid", async (req: Req, reply) => {
        const { iid, bid } = ids(req);
        return send(reply, await b().fetchBinding(iid, bid));
      });

      osb.delete("/service_instances/:iid/service_bindings/:bid", async (req: Req, reply) => {
        const { iid, bid } = ids(req);
        requireQuery(req, "service_id", "plan_id");
        req.log.info({ instance: iid, binding: bid, identity: identity(req) }, "unbind requested");
        return send(reply, await b().unbind(iid, bid));
      });

      // Bindings are made and removed synchronously; this answers for platforms that poll anyway.
      osb.get("/service_instances/:iid/service_bindings/:bid/last_operation", async (req: Req, reply) => {
        const { iid, bid } = ids(req);
        const found = await b().fetchBinding(iid, bid);
        return found.status === 200
          ? send(reply, { status: 200, body: { state: "succeeded" } })
          : send(reply, { status: 404, body: { description: "no such service binding" } });
      });
    },
    { prefix: "/v2" },
  );
}

/** The user and password of an `Authorization: Basic` header (empty when there is none). */
export function basicCredentials(header: string | undefined): { user: string; pass: string } {
  const m = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header ?? "");
  const given = m ? Buffer.from(m[1]!, "base64").toString("utf8") : "";
  const colon = given.indexOf(":");
  return colon >= 0 ? { user: given.slice(0, colon), pass: given.slice(colon + 1) } : { user: "", pass: "" };
}

function checkAuth(header: string | undefined, expected: BrokerCredentials): void {
  const { user, pass } = basicCredentials(header);
  // Both compared, always: the time taken does not tell which one was wrong.
  const okUser = tokensEqual(user, expected.username);
  const okPass = tokensEqual(pass, expected.password);
  if (!okUser || !okPass)
    throw new OsbAnswer({
      status: 401,
      body: { description: "HTTP basic authentication with the broker's credentials is required" },
    });
}

function checkVersion(header: string | string[] | undefined): void {
  if (header === undefined)
    throw new OsbAnswer({
      status: 400,
      body: { description: "the X-Broker-API-Version header is required (use 2.17)" },
    });
  const m = /^(\d+)\.(\d+)$/.exec(String(header));
  if (!m || m[1] !== "2" || Number(m[2]) < MIN_MINOR_VERSION)
    throw new OsbAnswer({
      status: 412,
      body: {
        description: `X-Broker-API-Version ${String(header)} is not supported: this broker speaks 2.${MIN_MINOR_VERSION} to 2.17 (use 2.17)`,
      },
    });
}

function requireQuery(req: Req, ...names: string[]): void {
  const missing = names.filter((n) => !req.query[n]);
  if (missing.length > 0) throw bad(`${missing.join(" and ")}: required query parameter(s) missing`);
}

/** `Platform base64(JSON)` → what to log; a malformed header is refused. */
export function originatingIdentity(
  header: string | string[] | undefined,
): Record<string, unknown> | undefined {
  if (header === undefined) return undefined;
  const m = /^(\S+) (\S+)$/.exec(String(header));
  if (!m) throw bad('X-Broker-API-Originating-Identity: expected "PLATFORM base64(JSON object)"');
  try {
    const value = JSON.parse(Buffer.from(m[2]!, "base64").toString("utf8")) as unknown;
    if (!value || typeof value !== "object" || Array.isArray(value)) throw new Error("not an object");
    return { platform: m[1], ...(value as Record<string, unknown>) };
  } catch {
    throw bad("X-Broker-API-Originating-Identity: the value is not base64 of a JSON object");
  }
}
