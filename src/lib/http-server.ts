/**
 * The one place where errors become HTTP responses, and where bearer tokens are
 * checked. Every zonal HTTP API (cloud daemon, agent, director) is a Fastify app
 * made by `createApi`.
 *
 * Error bodies are `{ "error": code, "message": text, "problems"?: [...] }`.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import { timingSafeEqual } from "node:crypto";
import { InvalidInput, Unauthorized, ZonalError, type FieldProblem } from "./errors.js";

export interface ErrorBody {
  error: string;
  message: string;
  problems?: FieldProblem[];
  [extra: string]: unknown;
}

export function errorBody(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof ZonalError) {
    const body: ErrorBody = { ...err.details(), error: err.code, message: err.message };
    if (err instanceof InvalidInput && err.problems.length > 0) body.problems = err.problems;
    return { status: err.status, body };
  }
  // Fastify's own client errors (bad JSON, wrong content type, body too large).
  const status = (err as { statusCode?: number }).statusCode;
  if (typeof status === "number" && status >= 400 && status < 500) {
    return { status, body: { error: "invalid_input", message: (err as Error).message } };
  }
  return { status: 500, body: { error: "internal", message: (err as Error).message ?? String(err) } };
}

export function tokensEqual(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Returns the bearer token of an Authorization header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer (\S+)$/i.exec(header ?? "");
  return m?.[1];
}

export interface ApiOptions {
  /** Every request must carry `Authorization: Bearer <token>`; routes listed in `open` are exempt. */
  token?: string;
  open?: string[];
  /** Routes under these prefixes authenticate themselves (e.g. the broker's /v2, with basic auth). */
  openPrefixes?: string[];
  logger?: FastifyServerOptions["logger"];
  /** Serve HTTPS with this certificate and key (PEM) instead of plain HTTP. */
  https?: { cert: string; key: string };
}

export function createApi(opts: ApiOptions): FastifyInstance {
  const common = { logger: opts.logger ?? false, bodyLimit: 4 * 1024 * 1024 };
  // An HTTPS Fastify app is typed over https.Server; callers only listen, inject,
  // close and read server.address(), which both kinds of server have.
  const app = opts.https
    ? (Fastify({ ...common, https: opts.https }) as unknown as FastifyInstance)
    : Fastify(common);
  const open = new Set(opts.open ?? []);
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
    if (status >= 500) req.log.error({ err }, "request failed");
    void reply.status(status).send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: "not_found", message: `no route ${req.method} ${req.url}` });
  });
  return app;
}
