/**
 * The embedded lease store's HTTP API, mounted on the control plane:
 *
 *   POST /v1/leases/acquire {key, holder, ttlMs, value}  -> 200 lease | 409 lease_held
 *   POST /v1/leases/renew   {key, holder, token}         -> {renewed}
 *   POST /v1/leases/release {key, holder, token}         -> 204
 *   POST /v1/leases/break   {key, holder}                -> {broken}   (control plane token only)
 *   GET  /v1/leases/read?key=K                           -> lease | 404
 *   GET  /v1/leases/list?prefix=P                        -> [lease]
 *   POST /v1/leases/purge   {prefix}                     -> {purged}   (control plane token only)
 *
 * Callers authenticate with a bearer token; `authorize(token, key)` decides (agents
 * may only touch their own deployment's keys).
 */
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { Conflict, NotFound, Unauthorized } from "../../lib/errors.js";
import { bearerToken } from "../../lib/http-server.js";
import { parseWith } from "../../lib/validate.js";
import type { LeaseStore } from "../lease-store.js";

export type LeaseAccess = "agent" | "admin";
/** Resolves to who the caller is for this key, or undefined when it may not touch it. */
export type LeaseAuthorizer = (token: string, key: string) => Promise<LeaseAccess | undefined>;

export class LeaseHeld extends Conflict {
  override readonly code = "lease_held";
}

const key = z.string().min(1, "expected a key").max(512);
const holder = z.string().min(1, "expected a holder").max(256);
const acquireSchema = z
  .object({
    key,
    holder,
    ttlMs: z.number().int().min(500).max(604_800_000, "expected at most 7 days"),
    value: z.string().max(8192).default(""),
  })
  .strict();
const tokenSchema = z.object({ key, holder, token: z.number().int().positive() }).strict();
const breakSchema = z.object({ key, holder }).strict();

export const LEASE_ROUTES = [
  "/v1/leases/acquire",
  "/v1/leases/renew",
  "/v1/leases/release",
  "/v1/leases/break",
  "/v1/leases/read",
  "/v1/leases/list",
  "/v1/leases/purge",
];

/** `leases()` gives the store (the control plane may still be starting when the routes are mounted). */
export function mountLeaseApi(
  app: FastifyInstance,
  leases: () => LeaseStore,
  authorize: LeaseAuthorizer,
): void {
  const allow = async (authorization: string | undefined, k: string, need: LeaseAccess = "agent") => {
    const token = bearerToken(authorization);
    const who = token ? await authorize(token, k) : undefined;
    if (!who || (need === "admin" && who !== "admin"))
      throw new Unauthorized(`not allowed to ${need === "admin" ? "break" : "use"} lease ${k}`);
  };
  app.post("/v1/leases/acquire", async (req) => {
    const b = parseWith(acquireSchema, req.body, "acquire request");
    await allow(req.headers.authorization, b.key);
    const lease = await leases().acquire(b.key, b.holder, b.ttlMs, b.value);
    if (!lease) {
      const held = await leases().read(b.key);
      throw new LeaseHeld(`lease ${b.key} is held by ${held?.holder ?? "another holder"}`);
    }
    return lease;
  });
  app.post("/v1/leases/renew", async (req) => {
    const b = parseWith(tokenSchema, req.body, "renew request");
    await allow(req.headers.authorization, b.key);
    return { renewed: await leases().renew(b.key, b.holder, b.token) };
  });
  app.post("/v1/leases/release", async (req, reply) => {
    const b = parseWith(tokenSchema, req.body, "release request");
    await allow(req.headers.authorization, b.key);
    await leases().release(b.key, b.holder, b.token);
    return reply.status(204).send();
  });
  app.post("/v1/leases/break", async (req) => {
    const b = parseWith(breakSchema, req.body, "break request");
    await allow(req.headers.authorization, b.key, "admin");
    return { broken: await leases().break(b.key, b.holder) };
  });
  app.post("/v1/leases/purge", async (req) => {
    const b = parseWith(z.object({ prefix: key }).strict(), req.body, "purge request");
    await allow(req.headers.authorization, b.prefix, "admin");
    return { purged: await leases().purge(b.prefix) };
  });
  app.get<{ Querystring: { key?: string } }>("/v1/leases/read", async (req) => {
    const k = parseWith(key, req.query.key, "key");
    await allow(req.headers.authorization, k);
    const lease = await leases().read(k);
    if (!lease) throw new NotFound(`lease ${k} is free`);
    return lease;
  });
  app.get<{ Querystring: { prefix?: string } }>("/v1/leases/list", async (req) => {
    const prefix = parseWith(key, req.query.prefix, "prefix");
    await allow(req.headers.authorization, prefix);
    return leases().list(prefix);
  });
}
