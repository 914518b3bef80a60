/**
 * The one place where errors become HTTP error bodies, and where bearer tokens are
 * compared: shared by the Fastify APIs (http-server.ts) and the agent's lean one
 * (json-api.ts), without loading either.
 *
 * Error bodies are `{ "error": code, "message": text, "problems"?: [...] }`.
 */
import { timingSafeEqual } from "node:crypto";
import { InvalidInput, ZonalError, type FieldProblem } from "./errors.js";

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
