/**
 * The embedded lease store's HTTP API, mounted on the control plane:
 *
 *   POST /v1/leases/acquire {key, holder?, ttlMs, value}  -> 200 lease | 409 lease_held
 *   POST /v1/leases/renew   {key, holder?, token}         -> {renewed}
 *   POST /v1/leases/release {key, holder?, token}         -> 204
 *   POST /v1/leases/break   {key, holder}                 -> {broken}   (control plane token only)
 *   GET  /v1/leases/read?key=K                            -> lease | 404
 *   GET  /v1/leases/list?prefix=P                         -> [lease]
 *   POST /v1/leases/purge   {prefix}                      -> {purged}   (control plane token only)
 *
 * Callers authenticate with a bearer token; `authorize(token, key, intent)` says who
 * the caller is for that key. A VM acts only for itself: the holder is always the
 * calling VM (a body naming another is refused, 403), its TTL is capped, a JSON
 * value it publishes may carry only its own identity (its address, VM id, member
 * name: 403 otherwise), and a lease it reads shows its fencing token only when it
 * holds that lease (token 0 otherwise).
 */
import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { Conflict, Forbidden, NotFound, Unauthorized } from "../../lib/errors.js";
import { bearerToken } from "../../lib/http-errors.js";
import { invalidField, parseWith } from "../../lib/validate.js";
import type { Lease, LeaseStore } from "../lease-store.js";

/** Who calls, for one key. */
export type LeaseCaller =
  | { access: "admin" }
  | {
      access: "agent";
      /** The calling VM: the only holder it may act as. */
      holder: string;
      /** The longest TTL it may ask for. */
      maxTtlMs: number;
      /** Fields a JSON object it publishes as a value may carry only with these values. */
      identity: Record<string, string>;
    };
/** Reading (read, list) or changing (acquire, renew, release) a key. */
export type LeaseIntent = "read" | "write";
/** Resolves to who the caller is for this key, or undefined when it may not touch it. */
export type LeaseAuthorizer = (
  token: string,
  key: string,
  intent: LeaseIntent,
) => Promise<LeaseCaller | undefined>;

export class LeaseHeld extends Conflict {
  override readonly code = "lease_held";
}

const key = z.string().min(1, "expected a key").max(512);
const holder = z.string().min(1, "expected a holder").max(256);
const acquireSchema = z
  .object({
    key,
    holder: holder.optional(),
    ttlMs: z.number().int().min(500).max(604_800_000, "expected at most 7 days"),
    value: z.string().max(8192).default(""),
  })
  .strict();
const tokenSchema = z.object({ key, holder: holder.optional(), token: z.number().int().positive() }).strict();
const breakSchema = z.object({ key, holder }).strict();

/** The holder a call acts as: the calling VM, whatever the body says (a different one is refused). */
function holderFor(caller: LeaseCaller, given: string | undefined): string {
  if (caller.access === "admin") {
    if (given === undefined) throw invalidField("holder", "expected a holder");
    return given;
  }
  if (given !== undefined && given !== caller.holder)
    throw new Forbidden(
      `holder: expected ${caller.holder} (a VM holds leases only for itself), got ${given}`,
    );
  return caller.holder;
}

/** A VM's value may name only itself where it names anyone (its address above all: members connect to it). */
function checkValue(caller: LeaseCaller, value: string, ttlMs: number): void {
  if (caller.access === "admin") return;
  if (ttlMs > caller.maxTtlMs)
    throw invalidField("ttlMs", `expected at most ${caller.maxTtlMs} for a VM's lease`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return; // not JSON: names nobody
  }
  if (!parsed || typeof parsed !== "object") return;
  for (const [field, own] of Object.entries(caller.identity)) {
    if (!Object.hasOwn(parsed, field)) continue;
    const said = (parsed as Record<string, unknown>)[field];
    if (said !== own)
      throw new Forbidden(
        `value.${field}: expected ${own} (a VM publishes only its own), got ${JSON.stringify(said)}`,
      );
  }
}

/** What a caller sees of a lease: its fencing token only if it holds it. */
const shown = (caller: LeaseCaller, l: Lease): Lease =>
  caller.access === "admin" || caller.holder === l.holder ? l : { ...l, token: 0 };

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
  const allow = async (
    authorization: string | undefined,
    k: string,
    intent: LeaseIntent | "admin",
  ): Promise<LeaseCaller> => {
    const token = bearerToken(authorization);
    const who = token ? await authorize(token, k, intent === "read" ? "read" : "write") : undefined;
    if (!who || (intent === "admin" && who.access !== "admin"))
      throw new Unauthorized(
        `not allowed to ${intent === "admin" ? "break or purge" : intent === "read" ? "read" : "change"} lease ${k}`,
      );
    return who;
  };
  app.post("/v1/leases/acquire", async (req) => {
    const b = parseWith(acquireSchema, req.body, "acquire request");
    const who = await allow(req.headers.authorization, b.key, "write");
    const h = holderFor(who, b.holder);
    checkValue(who, b.value, b.ttlMs);
    const lease = await leases().acquire(b.key, h, b.ttlMs, b.value);
    if (!lease) {
      const held = await leases().read(b.key);
      throw new LeaseHeld(`lease ${b.key} is held by ${held?.holder ?? "another holder"}`);
    }
    return lease;
  });
  app.post("/v1/leases/renew", async (req) => {
    const b = parseWith(tokenSchema, req.body, "renew request");
    const who = await allow(req.headers.authorization, b.key, "write");
    return { renewed: await leases().renew(b.key, holderFor(who, b.holder), b.token) };
  });
  app.post("/v1/leases/release", async (req, reply) => {
    const b = parseWith(tokenSchema, req.body, "release request");
    const who = await allow(req.headers.authorization, b.key, "write");
    await leases().release(b.key, holderFor(who, b.holder), b.token);
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
    const who = await allow(req.headers.authorization, k, "read");
    const lease = await leases().read(k);
    if (!lease) throw new NotFound(`lease ${k} is free`);
    return shown(who, lease);
  });
  app.get<{ Querystring: { prefix?: string } }>("/v1/leases/list", async (req) => {
    const prefix = parseWith(key, req.query.prefix, "prefix");
    const who = await allow(req.headers.authorization, prefix, "read");
    return (await leases().list(prefix)).map((l) => shown(who, l));
  });
}
