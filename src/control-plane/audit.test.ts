/** The audit log: one line per request, naming the caller, never a credential or a query string. */
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { pino } from "pino";
import { Unavailable } from "../lib/errors.js";
import { waitFor } from "../lib/sleep.js";
import type { ControlPlaneBroker } from "../broker/control-plane.js";
import type { FastifyRequest } from "fastify";
import { buildControlPlaneApi } from "./api.js";
import { controlPlaneAudit } from "./audit.js";
import type { Director } from "../director/director.js";

const TOKEN = "o".repeat(40);
const VM_TOKEN = "v".repeat(40);

function api() {
  const lines: Array<Record<string, unknown>> = [];
  const raw: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      raw.push(chunk.toString());
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  const starting = (): never => {
    throw new Unavailable("the director is still starting");
  };
  // Knows one VM's token; every route that needs more of it fails (a 500 to audit).
  const director = {
    ctx: {
      store: {
        instances: {
          byToken: async (t: string) =>
            t === VM_TOKEN ? { vmId: "vm-1", deployment: "d", group: "g", index: 0 } : undefined,
        },
      },
    },
  } as unknown as Director;
  const app = buildControlPlaneApi(
    () => director,
    TOKEN,
    () => ({ cloud: "test" }),
    starting as () => ControlPlaneBroker,
    { log: pino({ level: "info" }, sink) },
  );
  const audits = () => lines.filter((l) => l.audit).map((l) => l.audit as Record<string, unknown>);
  /** The audit lines once there are `n` (each is written by a hook after the answer). */
  const audited = (n: number) =>
    waitFor(() => (audits().length >= n ? audits() : undefined), {
      timeoutMs: 2000,
      intervalMs: 5,
      what: `${n} audit lines`,
    });
  return { app, audits, audited, raw };
}

describe("audit log", () => {
  it("names the operator, the route and the status; keeps no token and no query string", async () => {
    const { app, audited, raw } = api();
    const res = await app.inject({
      method: "GET",
      url: "/v1/deployments?password=hunter2",
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(res.statusCode, 500);
    await app.inject({ method: "GET", url: "/v1/deployments", headers: { authorization: "Bearer nope" } });
    await app.inject({
      method: "POST",
      url: "/v1/clusters/fence",
      headers: { authorization: `Bearer ${VM_TOKEN}` },
      payload: { key: "d/g", vmId: "vm-2" },
    });
    const [first, second, third] = await audited(3);
    assert.deepEqual(
      { who: first!.who, route: first!.route, path: first!.path, status: first!.status },
      { who: "operator", route: "/v1/deployments", path: "/v1/deployments", status: 500 },
    );
    assert.equal(typeof first!.error, "string", "a 5xx says why");
    assert.equal(second!.status, 401);
    assert.equal(second!.who, "an unknown bearer token");
    assert.equal(third!.who, "vm vm-1 (d/g/0)");
    assert.equal(third!.route, "/v1/clusters/fence");
    const all = raw.join("");
    assert.ok(!all.includes(TOKEN) && !all.includes("hunter2"), all);
    await app.close();
  });

  it("names a broker client by its user alone, with the platform's originating identity", async () => {
    const { app, audited, raw } = api();
    const identity = Buffer.from(JSON.stringify({ user_id: "alice" })).toString("base64");
    const res = await app.inject({
      method: "GET",
      url: "/v2/catalog",
      headers: {
        authorization: `Basic ${Buffer.from("admin:s3cret-pass").toString("base64")}`,
        "x-broker-api-version": "2.17",
        "x-broker-api-originating-identity": `cloudfoundry ${identity}`,
      },
    });
    assert.ok(res.statusCode >= 400, `the broker is not running here: ${res.statusCode}`);
    const [line] = await audited(1);
    assert.equal(line!.who, "broker client admin");
    assert.deepEqual(line!.originatingIdentity, { platform: "cloudfoundry", user_id: "alice" });
    assert.equal(line!.status, res.statusCode);
    assert.equal(res.statusCode, 503, "the broker is still starting here");
    assert.match(String(line!.error), /still starting/);
    assert.ok(!raw.join("").includes("s3cret-pass"));
    await app.close();
  });

  it("leaves out keepalives that succeed, and keeps the ones that fail", async () => {
    const { app, audits, audited } = api();
    await app.inject({ method: "POST", url: "/v1/heartbeats", payload: {} });
    const [line] = await audited(1);
    assert.equal(line!.status, 401, "a refused heartbeat is a line");
    assert.equal(audits().length, 1);
    const quiet = controlPlaneAudit(TOKEN, () => ({}) as Director).quiet!;
    const req = (url: string, body?: unknown) =>
      ({ routeOptions: { url }, body }) as unknown as FastifyRequest;
    assert.equal(quiet(req("/v1/heartbeats")), true);
    assert.equal(quiet(req("/v1/leases/renew")), true);
    assert.equal(
      quiet(req("/v1/leases/acquire", { key: "d/g/members/m0" })),
      true,
      "a member's re-registration",
    );
    assert.equal(
      quiet(req("/v1/leases/acquire", { key: "d/g/leader" })),
      false,
      "taking the leader lease is a line",
    );
    assert.equal(quiet(req("/v1/clusters/fence")), false);
    await app.close();
  });
});
