/**
 * The one place where errors become HTTP responses, and where bearer tokens are
 * checked. Every zonal HTTP API (cloud daemon, agent, director) is a Fastify app
 * made by `createApi`.
 *
 * Error bodies are `{ "error": code, "message": text, "problems"?: [...] }`
 * (http-errors.ts, shared with json-api.ts: the agent's API without Fastify).
 */
import Fastify, {
  LogController,
  type FastifyInstance,
  type FastifyRequest,
  type FastifyServerOptions,
} from "fastify";
import { errorMessage, Unauthorized } from "./errors.js";
import { bearerToken, errorBody, tokensEqual } from "./http-errors.js";
import type { Logger } from "./log.js";

export interface ApiOptions {
  /** Every request must carry `Authorization: Bearer <token>`; routes listed in `open` are exempt. */
  token?: string;
  open?: string[];
  /** Routes under these prefixes authenticate themselves (e.g. the broker's /v2, with basic auth). */
  openPrefixes?: string[];
  logger?: FastifyServerOptions["logger"];
  /** Requests log here (`req.log`), and so does the audit, when given. */
  log?: Logger;
  /** One JSON line per request in `log` (needs it): who called, what, and how it ended. */
  audit?: AuditOptions;
  /** Serve HTTPS with this certificate and key (PEM) instead of plain HTTP. */
  https?: { cert: string; key: string };
}

/** One request, as the audit log records it: never a secret (no body, no query, no token). */
export interface AuditEntry {
  method: string;
  /** The route's pattern (`/v1/deployments/:name`), or the path when no route matched. */
  route: string;
  /** The path, without its query string. */
  path: string;
  status: number;
  ms: number;
  /** Who called, as `AuditOptions.who` names it. */
  who: string;
  /** The platform's user the request is for (OSB's originating identity), when it says. */
  originatingIdentity?: Record<string, unknown>;
  /** Why it failed, for a 5xx. */
  error?: string;
}

export interface AuditOptions {
  /** Names the caller without revealing its credentials: "operator", "vm-… (d/g/0)", "broker client admin". */
  who: (req: FastifyRequest) => Promise<string> | string;
  /** The platform user behind the request, when the request says (OSB). */
  originatingIdentity?: (req: FastifyRequest) => Record<string, unknown> | undefined;
  /** Requests not worth a line when they succeed (keepalives: heartbeats, lease renewals). */
  quiet?: (req: FastifyRequest) => boolean;
}

/** Why a request failed with a 5xx, for its audit line (error handlers note it). */
const failures = new WeakMap<FastifyRequest, string>();

export function noteFailure(req: FastifyRequest, err: unknown): void {
  failures.set(req, errorMessage(err));
}

export function createApi(opts: ApiOptions): FastifyInstance {
  const common = {
    bodyLimit: 4 * 1024 * 1024,
    // With a log of its own, no "incoming request" lines: the audit writes one per request.
    ...(opts.log
      ? { loggerInstance: opts.log, logController: new LogController({ disableRequestLogging: true }) }
      : { logger: opts.logger ?? false }),
  };
  // Fastify's types tell an HTTPS app (over https.Server) and one with a logger
  // instance of its own apart; callers only listen, inject, close and read
  // server.address(), which every kind has: one type for all.
  const make = Fastify as unknown as (options: object) => FastifyInstance;
  const app = make(opts.https ? { ...common, https: opts.https } : common);
  const open = new Set(opts.open ?? []);
  const audit = opts.audit;
  const log = opts.log;
  if (audit && log) {
    app.addHook("onResponse", async (req, reply) => {
      const status = reply.statusCode;
      if (status < 400 && audit.quiet?.(req)) return;
      const entry: AuditEntry = {
        method: req.method,
        route: req.routeOptions.url ?? req.url.split("?")[0]!,
        path: req.url.split("?")[0]!,
        status,
        ms: Math.round(reply.elapsedTime),
        who: await Promise.resolve(audit.who(req)).catch(() => "unknown"),
      };
      const identity = audit.originatingIdentity?.(req);
      if (identity) entry.originatingIdentity = identity;
      const failure = failures.get(req);
      if (status >= 500 && failure) entry.error = failure;
      log.info({ audit: entry }, "request");
    });
  }
  if (opts.token !== undefined) {
    const expected = opts.token;
    app.addHook("onRequest", async (req) => {
      const url = req.routeOptions.url ?? "";
      if (open.has(url) || (opts.openPrefixes ?? []).some((p) => url.startsWith(p))) return;
      const given = bearerToken(req.headers.authorization);
      if (given === undefined || !tokensEqual(given, expected)) {
        throw new Unauthorized("missing or wrong bearer token");
      }
    });
  }
  app.setErrorHandler((err, req, reply) => {
    const { status, body } = errorBody(err);
    if (status >= 500) {
      noteFailure(req, err);
      req.log.error({ err }, "request failed");
    }
    void reply.status(status).send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: "not_found", message: `no route ${req.method} ${req.url}` });
  });
  return app;
}
