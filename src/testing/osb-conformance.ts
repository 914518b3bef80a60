/**
 * OSB v2.17 conformance, written from the spec's response tables: each endpoint's
 * success, repeat, conflict, gone, async-required and bad-input rows, through real
 * HTTP against a control plane. One suite for every service and every setting: the
 * real one (test/broker/osb.test.ts: the local cloud, a `single` plan instance is a
 * real PostgreSQL 15 VM) and the in-process one (src/broker/osb.test.ts: the memory
 * cloud, fake agents, the memo test service). A 4xx must change nothing: checked by
 * reading back after each.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { OsbClient, type OsbEndpoint } from "../broker/client.js";
import type { DirectorClient } from "../director/client.js";
import { waitFor } from "../lib/sleep.js";

interface Catalog {
  services: Array<{
    id: string;
    name: string;
    bindable: boolean;
    plans: Array<{
      id: string;
      name: string;
      schemas: Record<string, unknown>;
      maintenance_info?: { version: string };
    }>;
  }>;
}

/** What the suite runs against, and what it expects of that catalog's service. */
export interface OsbSubject {
  /** Starts the control plane; its director client. */
  up(): Promise<DirectorClient>;
  teardown(): Promise<void>;
  /** How often an operation is polled (ms). */
  pollMs: number;
  /**
   * Holds the service's starts until the returned release: a subject whose provision
   * ends in a few milliseconds gives it while the suite checks an operation in progress.
   * Without it, the provision must last longer than those few requests (real VMs do).
   */
  holdStarts?: () => () => void;
  service: {
    name: string;
    plans: string[];
    /** The plan instances are provisioned with; it can change in place to `canChangeTo` only (null: to none). */
    first: string;
    canChangeTo: string | null;
    cannotChangeTo: string;
    /** Good provision parameters (update may not change them). */
    parameters: Record<string, unknown>;
    /** Bad provision parameters, and the 400's description. */
    badParameters: [Record<string, unknown>, RegExp];
    credentialKeys: string[];
    checkCredentials(credentials: Record<string, unknown>): void;
  };
}

export function osbConformance(name: string, subject: OsbSubject): void {
  describe(`OSB v2.17 conformance: ${name}`, () => {
    const s = subject.service;
    let director: DirectorClient;
    let ep: OsbEndpoint;
    let osb: OsbClient;
    let service: Catalog["services"][number];
    const plan = (name: string) => service.plans.find((p) => p.name === name)!.id;
    const iid = `i-${randomUUID()}`;
    const bid = `b-${randomUUID()}`;
    let provision: Record<string, unknown>;
    const instanceCount = async () =>
      (await director.http.request<unknown[]>("GET", "/v1/broker/instances")).length;

    before(async () => {
      director = await subject.up();
      ep = await director.http.request<OsbEndpoint>("GET", "/v1/broker");
      osb = new OsbClient(ep);
      const services = (await osb.call<Catalog>("GET", "/catalog")).body.services;
      service = services.find((x) => x.name === s.name)!;
      assert.ok(service, `the catalog sells ${s.name} (it has ${services.map((x) => x.name).join(", ")})`);
      provision = {
        service_id: service.id,
        plan_id: plan(s.first),
        organization_guid: "org-1",
        space_guid: "space-1",
        context: { platform: "cloudfoundry", instance_name: "db" },
        parameters: s.parameters,
      };
    });
    after(() => subject.teardown());

    it(`catalog: one bindable ${s.name} service, its plans with draft-4 parameter schemas`, async () => {
      const r = await osb.call<Catalog>("GET", "/catalog");
      assert.equal(r.status, 200);
      assert.equal(service.name, s.name);
      assert.equal(service.bindable, true);
      assert.deepEqual(
        service.plans.map((p) => p.name),
        s.plans,
      );
      const create = (
        service.plans[0]!.schemas as { service_instance: { create: { parameters: Record<string, unknown> } } }
      ).service_instance.create.parameters;
      assert.equal(create.$schema, "http://json-schema.org/draft-04/schema#");
      assert.ok(service.plans[0]!.maintenance_info?.version);
    });

    it("headers: 401 without or with wrong basic auth, 412 for an unsupported version, 400 without one; request identity echoed", async () => {
      const wrong = new OsbClient({ ...ep, password: "nope" });
      const r401 = await wrong.call("GET", "/catalog");
      assert.equal(r401.status, 401);
      assert.match(r401.headers.get("www-authenticate") ?? "", /^Basic/);
      const r412 = await osb.call("GET", "/catalog", { headers: { "x-broker-api-version": "1.9" } });
      assert.equal(r412.status, 412);
      assert.match(String(r412.body.description), /2\.17/);
      const noVersion = await fetch(`${ep.url}/catalog`, {
        headers: {
          authorization: `Basic ${Buffer.from(`${ep.username}:${ep.password}`).toString("base64")}`,
        },
      });
      assert.equal(noVersion.status, 400);
      const echoed = await osb.call("GET", "/catalog", {
        headers: { "x-broker-api-request-identity": "req-42" },
      });
      assert.equal(echoed.headers.get("x-broker-api-request-identity"), "req-42");
      const badIdentity = await osb.call("GET", "/catalog", {
        headers: { "x-broker-api-originating-identity": "cloudfoundry not-base64-json" },
      });
      assert.equal(badIdentity.status, 400);
    });

    it("provision: bad input is 400 naming the field, and changes nothing", async () => {
      const cases: Array<[Record<string, unknown>, RegExp]> = [
        [{ ...provision, service_id: undefined }, /service_id/],
        [{ ...provision, plan_id: "no-such-plan" }, /plan_id: no plan/],
        [{ ...provision, organization_guid: "" }, /organization_guid/],
        [{ ...provision, parameters: s.badParameters[0] }, s.badParameters[1]],
        [{ ...provision, parameters: { size: 3 } }, /parameters/],
      ];
      for (const [body, message] of cases) {
        const r = await osb.call("PUT", `/service_instances/${iid}`, {
          body,
          query: { accepts_incomplete: "true" },
        });
        assert.equal(r.status, 400, JSON.stringify(r.body));
        assert.match(String(r.body.description), message);
      }
      const unreadable = await fetch(`${ep.url}/service_instances/${iid}?accepts_incomplete=true`, {
        method: "PUT",
        headers: {
          authorization: `Basic ${Buffer.from(`${ep.username}:${ep.password}`).toString("base64")}`,
          "x-broker-api-version": "2.17",
          "content-type": "application/json",
        },
        body: "{not json",
      });
      assert.equal(unreadable.status, 400);
      assert.ok(((await unreadable.json()) as { description?: string }).description);
      assert.equal(await instanceCount(), 0, "no instance was made");
    });

    it("provision: 422 AsyncRequired without accepts_incomplete, 422 MaintenanceInfoConflict on a stale version", async () => {
      const sync = await osb.call("PUT", `/service_instances/${iid}`, { body: provision });
      assert.equal(sync.status, 422);
      assert.equal(sync.body.error, "AsyncRequired");
      const stale = await osb.call("PUT", `/service_instances/${iid}`, {
        body: { ...provision, maintenance_info: { version: "0.0.1" } },
        query: { accepts_incomplete: "true" },
      });
      assert.equal(stale.status, 422);
      assert.equal(stale.body.error, "MaintenanceInfoConflict");
      assert.equal(await instanceCount(), 0);
    });

    let operation = "";
    it("provision: 202 with an operation; a repeat is 202 with the same one; other attributes 409; fetch 404 meanwhile", async () => {
      const release = subject.holdStarts?.();
      try {
        await provisionInProgress();
      } finally {
        release?.();
      }
    });
    const provisionInProgress = async () => {
      const r = await osb.call("PUT", `/service_instances/${iid}`, {
        body: provision,
        query: { accepts_incomplete: "true" },
      });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      operation = String(r.body.operation);
      assert.ok(operation.length > 0);
      const again = await osb.call("PUT", `/service_instances/${iid}`, {
        body: provision,
        query: { accepts_incomplete: "true" },
      });
      assert.equal(again.status, 202);
      assert.equal(again.body.operation, operation);
      const other = await osb.call("PUT", `/service_instances/${iid}`, {
        body: { ...provision, plan_id: plan(s.canChangeTo ?? s.cannotChangeTo) },
        query: { accepts_incomplete: "true" },
      });
      assert.equal(other.status, 409);
      assert.equal((await osb.call("GET", `/service_instances/${iid}`)).status, 404);
      const busy = await osb.call("DELETE", `/service_instances/${iid}`, {
        query: { service_id: service.id, plan_id: plan(s.first), accepts_incomplete: "true" },
      });
      assert.equal(busy.status, 422);
      assert.equal(busy.body.error, "ConcurrencyError");
      const early = await osb.call("PUT", `/service_instances/${iid}/service_bindings/${bid}`, {
        body: { service_id: service.id, plan_id: plan(s.first) },
      });
      assert.equal(early.status, 422, "no binding while provisioning");
    };

    it("last_operation: in progress, then succeeded; unknown instance 404", async () => {
      const first = await osb.call("GET", `/service_instances/${iid}/last_operation`, {
        query: { operation },
      });
      assert.equal(first.status, 200);
      assert.ok(["in progress", "succeeded"].includes(String(first.body.state)));
      const end = await waitFor(
        async () => {
          const r = await osb.call("GET", `/service_instances/${iid}/last_operation`, {
            query: { operation, service_id: service.id, plan_id: plan(s.first) },
          });
          return r.body.state === "in progress" ? undefined : r;
        },
        { timeoutMs: 120_000, intervalMs: subject.pollMs, what: "the provision to end" },
      );
      assert.equal(end.body.state, "succeeded", String(end.body.description));
      assert.equal((await osb.call("GET", `/service_instances/nope/last_operation`)).status, 404);
    });

    it("provision repeated once done: 200; fetch instance: 200 with plan and parameters", async () => {
      const r = await osb.call("PUT", `/service_instances/${iid}`, {
        body: provision,
        query: { accepts_incomplete: "true" },
      });
      assert.equal(r.status, 200);
      const f = await osb.call("GET", `/service_instances/${iid}`);
      assert.equal(f.status, 200);
      assert.equal(f.body.plan_id, plan(s.first));
      assert.deepEqual(f.body.parameters, s.parameters);
    });

    it("update: same plan 200, a plan it cannot change to 422 with a reason, bad parameters 400; nothing changes", async () => {
      const same = await osb.call("PATCH", `/service_instances/${iid}`, {
        body: { service_id: service.id, plan_id: plan(s.first) },
        query: { accepts_incomplete: "true" },
      });
      assert.equal(same.status, 200);
      assert.deepEqual(same.body, {});
      const refused = await osb.call("PATCH", `/service_instances/${iid}`, {
        body: { service_id: service.id, plan_id: plan(s.cannotChangeTo) },
        query: { accepts_incomplete: "true" },
      });
      assert.equal(refused.status, 422);
      assert.match(
        String(refused.body.description),
        new RegExp(
          `cannot change to ${s.cannotChangeTo} in place ${s.canChangeTo ? `\\(it can change to: ${s.canChangeTo}\\)` : "\\(it changes to no other plan\\)"}`,
        ),
      );
      const badParams = await osb.call("PATCH", `/service_instances/${iid}`, {
        body: { service_id: service.id, parameters: s.parameters },
        query: { accepts_incomplete: "true" },
      });
      assert.equal(badParams.status, 400);
      const noService = await osb.call("PATCH", `/service_instances/${iid}`, {
        body: { plan_id: plan(s.canChangeTo ?? s.cannotChangeTo) },
      });
      assert.equal(noService.status, 400);
      assert.match(String(noService.body.description), /service_id/);
      assert.equal((await osb.call("GET", `/service_instances/${iid}`)).body.plan_id, plan(s.first));
    });

    let credentials: Record<string, unknown> = {};
    it("bind: 201 with credentials; identical repeat 200 with the same; other parameters 409; bad input 400", async () => {
      const body = { service_id: service.id, plan_id: plan(s.first), app_guid: "app-1" };
      const missing = await osb.call("PUT", `/service_instances/${iid}/service_bindings/${bid}`, {
        body: { plan_id: plan(s.first) },
      });
      assert.equal(missing.status, 400);
      const r = await osb.call<{ credentials: Record<string, unknown> }>(
        "PUT",
        `/service_instances/${iid}/service_bindings/${bid}`,
        { body },
      );
      assert.equal(r.status, 201, JSON.stringify(r.body));
      credentials = r.body.credentials;
      for (const k of s.credentialKeys) assert.ok(k in credentials, `credentials.${k}`);
      s.checkCredentials(credentials);
      const again = await osb.call<{ credentials: Record<string, unknown> }>(
        "PUT",
        `/service_instances/${iid}/service_bindings/${bid}`,
        { body },
      );
      assert.equal(again.status, 200);
      assert.deepEqual(again.body.credentials, credentials);
      const other = await osb.call("PUT", `/service_instances/${iid}/service_bindings/${bid}`, {
        body: { ...body, app_guid: "app-2" },
      });
      assert.equal(other.status, 409);
      const fetched = await osb.call<{ credentials: Record<string, unknown> }>(
        "GET",
        `/service_instances/${iid}/service_bindings/${bid}`,
      );
      assert.equal(fetched.status, 200);
      assert.deepEqual(fetched.body.credentials, credentials);
      const polled = await osb.call(
        "GET",
        `/service_instances/${iid}/service_bindings/${bid}/last_operation`,
      );
      assert.equal(polled.body.state, "succeeded");
      assert.equal((await osb.call("GET", `/service_instances/${iid}/service_bindings/nope`)).status, 404);
    });

    it("unbind: 400 without service_id and plan_id, 200 {}, then 410 Gone", async () => {
      const path = `/service_instances/${iid}/service_bindings/${bid}`;
      assert.equal((await osb.call("DELETE", path)).status, 400);
      assert.equal((await osb.call("GET", path)).status, 200, "the 400 changed nothing");
      const q = { service_id: service.id, plan_id: plan(s.first) };
      const r = await osb.call("DELETE", path, { query: q });
      assert.equal(r.status, 200);
      assert.deepEqual(r.body, {});
      assert.equal((await osb.call("DELETE", path, { query: q })).status, 410);
      assert.equal((await osb.call("GET", path)).status, 404);
    });

    it("deprovision: 400 without ids, 422 AsyncRequired, 202; repeat 202 same operation; then last_operation 410 and DELETE 410", async () => {
      const path = `/service_instances/${iid}`;
      assert.equal((await osb.call("DELETE", path, { query: { accepts_incomplete: "true" } })).status, 400);
      const q = { service_id: service.id, plan_id: plan(s.first) };
      const sync = await osb.call("DELETE", path, { query: q });
      assert.equal(sync.status, 422);
      assert.equal(sync.body.error, "AsyncRequired");
      const r = await osb.call("DELETE", path, { query: { ...q, accepts_incomplete: "true" } });
      assert.equal(r.status, 202);
      const op = String(r.body.operation);
      const again = await osb.call("DELETE", path, { query: { ...q, accepts_incomplete: "true" } });
      assert.equal(again.status, 202);
      assert.equal(again.body.operation, op);
      const gone = await waitFor(
        async () => {
          const s = await osb.call("GET", `${path}/last_operation`, { query: { operation: op } });
          return s.status === 410 ? s : s.body.state === "failed" ? s : undefined;
        },
        { timeoutMs: 60_000, intervalMs: subject.pollMs, what: "the deprovision to end" },
      );
      assert.equal(gone.status, 410, JSON.stringify(gone.body));
      assert.equal(
        (await osb.call("DELETE", path, { query: { ...q, accepts_incomplete: "true" } })).status,
        410,
      );
      assert.equal(await instanceCount(), 0);
      const deployments = await director.http.request<unknown[]>("GET", "/v1/deployments");
      assert.equal(deployments.length, 0, "its deployment is gone");
    });
  });
}
