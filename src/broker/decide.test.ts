import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { z } from "zod";
import type { OperationRecord, ServiceBindingRecord, ServiceInstanceRecord } from "../store/broker.js";
import type { Catalog } from "./catalog.js";
import { decideBind, decideDeprovision, decideProvision, decideUpdate, upgradeBatches } from "./decide.js";

const instance: ServiceInstanceRecord = {
  id: "i1",
  serviceId: "svc",
  planId: "p-single",
  deployment: "svc-1",
  parameters: { database: "orders" },
  context: {},
  createdAt: "",
};
const op = (
  kind: OperationRecord["kind"],
  state: OperationRecord["state"],
  request = {},
): OperationRecord => ({
  id: `${kind}-1`,
  instanceId: "i1",
  kind,
  state,
  request,
  taskId: 1,
  description: null,
  createdAt: "",
  endedAt: null,
});
const plan = (id: string, name: string, updatable_to: string[]) => ({
  id,
  name,
  description: name,
  template: "",
  updatable_to,
  maximum_polling_duration: 60,
  manifest: {},
  serviceId: "svc",
  maintenanceInfo: { version: "15.0.0" },
  provision: z.object({ database: z.string().optional() }).strict(),
});
const catalog: Catalog = {
  services: [
    {
      id: "svc",
      name: "postgresql",
      description: "pg",
      tags: [],
      maintenanceInfo: { version: "15.0.0" },
      plans: [
        plan("p-single", "single", ["cluster"]),
        plan("p-cluster", "cluster", []),
        plan("p-ssd", "cluster-ssd", []),
      ],
    },
    {
      id: "other",
      name: "other",
      description: "another service",
      tags: [],
      maintenanceInfo: undefined,
      plans: [{ ...plan("o-single", "single", []), serviceId: "other", maintenanceInfo: undefined }],
    },
  ],
};
const req = { service_id: "svc", plan_id: "p-single", parameters: { database: "orders" } };
const what = (d: { do: string; status?: number; error?: string; operation?: string }) =>
  [d.do, d.status, d.error, d.operation].filter((x) => x !== undefined).join(" ");

describe("broker decisions (the spec's response tables)", () => {
  it("provision: new 202 (async only), repeats 202/200, other attributes 409, a failed one is retried", () => {
    assert.equal(what(decideProvision(undefined, req, false)), "refuse 422 AsyncRequired");
    assert.equal(what(decideProvision(undefined, req, true)), "provision");
    const running = { instance, last: op("provision", "in progress") };
    assert.equal(what(decideProvision(running, req, true)), "running provision-1");
    assert.equal(what(decideProvision(running, { ...req, plan_id: "p-cluster" }, true)), "refuse 409");
    assert.equal(what(decideProvision({ instance, last: op("provision", "succeeded") }, req, true)), "done");
    assert.equal(what(decideProvision({ instance, last: op("provision", "failed") }, req, true)), "retry");
    assert.equal(
      what(decideProvision({ instance, last: op("deprovision", "in progress") }, req, true)),
      "refuse 422 ConcurrencyError",
    );
  });

  it("update: same plan 200, allowed change 202, others 422 with the reason; busy 422; stale maintenance 422", () => {
    const done = op("provision", "succeeded");
    assert.equal(what(decideUpdate(catalog, instance, done, { plan_id: "p-single" }, true)), "done");
    assert.equal(what(decideUpdate(catalog, instance, done, { plan_id: "p-cluster" }, true)), "update");
    assert.equal(
      what(decideUpdate(catalog, instance, done, { plan_id: "p-cluster" }, false)),
      "refuse 422 AsyncRequired",
    );
    const refused = decideUpdate(catalog, instance, done, { plan_id: "p-ssd" }, true);
    assert.equal(what(refused), "refuse 422");
    assert.match((refused as { description: string }).description, /cannot change to cluster-ssd in place/);
    assert.equal(what(decideUpdate(catalog, instance, done, { plan_id: "nope" }, true)), "refuse 400");
    const wrongService = decideUpdate(
      catalog,
      instance,
      done,
      { service_id: "other", plan_id: "p-single" },
      true,
    );
    assert.equal(what(wrongService), "refuse 400", "an instance is updated within its own service");
    const otherService = decideUpdate(catalog, instance, done, { plan_id: "o-single" }, true);
    assert.equal(what(otherService), "refuse 400", "a plan of another service is no plan of this one");
    assert.match(
      (otherService as { description: string }).description,
      /no plan "o-single" in service postgresql/,
    );
    assert.equal(
      what(decideUpdate(catalog, instance, done, { maintenance_info: { version: "14.0.0" } }, true)),
      "refuse 422 MaintenanceInfoConflict",
    );
    const updating = op("update", "in progress", { plan_id: "p-cluster" });
    assert.equal(
      what(decideUpdate(catalog, instance, updating, { plan_id: "p-cluster" }, true)),
      "running update-1",
    );
    assert.equal(
      what(decideUpdate(catalog, instance, updating, { plan_id: "p-ssd" }, true)),
      "refuse 422 ConcurrencyError",
    );
  });

  it("deprovision: unknown 410, busy 422, repeat 202 with the same operation", () => {
    assert.equal(what(decideDeprovision(undefined, true)), "refuse 410");
    assert.equal(
      what(decideDeprovision({ instance, last: op("provision", "in progress") }, true)),
      "refuse 422 ConcurrencyError",
    );
    assert.equal(
      what(decideDeprovision({ instance, last: op("deprovision", "in progress") }, true)),
      "running deprovision-1",
    );
    assert.equal(what(decideDeprovision({ instance, last: op("provision", "failed") }, true)), "deprovision");
    assert.equal(
      what(decideDeprovision({ instance, last: op("provision", "failed") }, false)),
      "refuse 422 AsyncRequired",
    );
  });

  it("bind: made once, identical repeat done, other parameters 409, not while busy or failed", () => {
    const b = { service_id: "svc", plan_id: "p-single", parameters: {}, app_guid: "a" };
    const ready = { instance, last: op("provision", "succeeded") };
    const existing: ServiceBindingRecord = {
      id: "b1",
      instanceId: "i1",
      request: b,
      username: "u_000000000000",
      passwordSealed: "",
      createdAt: "",
    };
    assert.equal(what(decideBind(undefined, undefined, b)), "refuse 404");
    assert.equal(what(decideBind(ready, undefined, b)), "bind");
    assert.equal(what(decideBind(ready, existing, b)), "done");
    assert.equal(what(decideBind(ready, existing, { ...b, app_guid: "other" })), "refuse 409");
    assert.equal(
      what(decideBind({ instance, last: op("update", "in progress") }, undefined, b)),
      "refuse 422 ConcurrencyError",
    );
    assert.equal(what(decideBind({ instance, last: op("provision", "failed") }, undefined, b)), "refuse 422");
  });

  it("upgrade: the plan's maintenance_info while the instance runs another version redeploys it; its own is done", () => {
    const done = op("provision", "succeeded");
    const asked = { maintenance_info: { version: "15.0.0" } };
    assert.equal(what(decideUpdate(catalog, instance, done, asked, true, "14.2.0")), "update");
    assert.equal(
      what(decideUpdate(catalog, instance, done, asked, true, null)),
      "update",
      "an unknown version upgrades",
    );
    assert.equal(what(decideUpdate(catalog, instance, done, asked, true, "15.0.0")), "done");
    assert.equal(
      what(decideUpdate(catalog, instance, done, {}, true, "14.2.0")),
      "done",
      "no maintenance_info: no upgrade",
    );
    assert.equal(
      what(decideUpdate(catalog, instance, done, asked, false, "14.2.0")),
      "refuse 422 AsyncRequired",
    );
    const u = decideUpdate(catalog, instance, done, asked, true, "14.2.0");
    assert.deepEqual(u, { do: "update", planId: "p-single", version: "15.0.0" });
  });

  it("upgrade-services order: canaries alone first, then batches of max-in-flight, by id", () => {
    const ids = ["e", "b", "a", "d", "c"].map((id) => ({ id }));
    assert.deepEqual(
      upgradeBatches(ids, 1, 2).map(
        (b) => `${b.canary ? "canary" : "batch"}:${b.instances.map((i) => i.id).join("")}`,
      ),
      ["canary:a", "batch:bc", "batch:de"],
    );
    assert.deepEqual(
      upgradeBatches(ids, 0, 5).map((b) => b.instances.length),
      [5],
    );
  });
});
