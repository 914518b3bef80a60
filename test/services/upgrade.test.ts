/**
 * Upgrading service instances to their plan's new version (its template's
 * `version`): a platform's OSB PATCH with the plan's maintenance_info upgrades one;
 * `zonal upgrade-services` upgrades the rest — a PostgreSQL `cluster` instance among
 * them, under a checker writing through its VIP (its members roll one at a time, the
 * primary last after a switchover: every acknowledged row stays, one writer at a
 * time). Then a broken template (PostgreSQL refuses its config): the canary fails,
 * the command exits 1 naming it and why, and the other instance is left as it was.
 */
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse, stringify } from "yaml";
import { OsbClient, type OsbEndpoint } from "../../src/broker/client.js";
import { repoPath } from "../../src/cli/home.js";
import type { BindingView } from "../../src/director/cluster-service.js";
import type { PgCredentials } from "../../src/jobs/postgres/service.js";
import { waitFor } from "../../src/lib/sleep.js";
import { roleTarget } from "../../src/testing/cluster-faults.js";
import { PgChecker } from "../../src/testing/pg-checker.js";
import { ZonalHarness } from "../../src/testing/zonal-harness.js";
import type { BrokerInstanceView } from "../../src/wire/broker.js";

type Row = BrokerInstanceView;

const SERVICE_ID = "8d3f2c1e-6a4b-4f0e-9c7d-2b5a1e3f4c60";
const PLANS = {
  single: "5f1c9a2e-0b7d-4e3a-8c6f-1a2b3c4d5e01",
  cluster: "5f1c9a2e-0b7d-4e3a-8c6f-1a2b3c4d5e03",
};

describe("upgrading service instances to their plan's new version", () => {
  const z = new ZonalHarness();
  let dir: string;
  let checker: PgChecker | undefined;
  const rows = () => z.json<Row[]>("services").sort((x, y) => x.id.localeCompare(y.id));
  const row = (id: string) => rows().find((r) => r.id === id)!;

  /** The plan templates at `version`, with `parameters` for PostgreSQL. */
  function writeTemplates(version: string, parameters: Record<string, unknown>, only?: "single" | "cluster") {
    for (const name of ["single", "cluster"] as const) {
      if (only && only !== name) continue;
      const t = parse(readFileSync(repoPath("examples", "broker-plans", `${name}.yml`), "utf8")) as {
        version?: string;
        instance_groups: Array<{ jobs: Array<{ properties: Record<string, unknown> }> }>;
      };
      t.version = version;
      t.instance_groups[0]!.jobs[0]!.properties.parameters = parameters;
      writeFileSync(join(dir, "broker-plans", `${name}.yml`), stringify(t));
    }
  }

  /** The control plane restarted, as an operator does after editing the broker's templates. */
  async function restart() {
    await z.stopControlPlane("SIGTERM");
    await z.up("--broker-config", join(dir, "broker.yml"));
  }

  before(async () => {
    dir = join(z.dir, "broker");
    mkdirSync(join(dir, "broker-plans"), { recursive: true });
    copyFileSync(repoPath("examples", "broker.yml"), join(dir, "broker.yml"));
    for (const f of ["single-standby.yml", "cluster-ssd.yml", "mariadb-single.yml", "mariadb-cluster.yml"])
      copyFileSync(repoPath("examples", "broker-plans", f), join(dir, "broker-plans", f));
    writeTemplates("1.0.0", {});
    await z.up("--broker-config", join(dir, "broker.yml"));
    const made = await Promise.all(
      [
        ["cluster", "orders"],
        ["single", "a"],
        ["single", "b"],
      ].map(([plan, name]) => z.zonalAsync("create-service", "postgresql", plan!, name!, "--wait")),
    );
    for (const r of made) assert.equal(r.code, 0, r.err + r.out);
    const b = await z.director.http.request<BindingView>(
      "POST",
      `/v1/deployments/${row("orders").deployment}/bindings`,
      {
        body: {},
      },
    );
    checker = await new PgChecker(roleTarget(b.credentials as PgCredentials), "upgrade").begin();
  });
  after(async () => {
    await checker?.stop();
    await z.teardown();
  });

  it("shows the version each instance runs; a new template version makes them behind", async () => {
    assert.deepEqual(
      rows().map((r) => [r.id, r.version, r.behind]),
      [
        ["a", "1.0.0", false],
        ["b", "1.0.0", false],
        ["orders", "1.0.0", false],
      ],
    );
    writeTemplates("1.1.0", { max_connections: 150 });
    await restart();
    const catalog = await osb().call<{
      services: Array<{ plans: Array<{ name: string; maintenance_info?: { version: string } }> }>;
    }>("GET", "/catalog");
    const pg = catalog.body.services[0]!;
    assert.equal(pg.plans.find((p) => p.name === "single")?.maintenance_info?.version, "1.1.0");
    assert.deepEqual(
      rows().map((r) => [r.id, r.version, r.latest, r.behind]),
      [
        ["a", "1.0.0", "1.1.0", true],
        ["b", "1.0.0", "1.1.0", true],
        ["orders", "1.0.0", "1.1.0", true],
      ],
    );
  });

  let ep: OsbEndpoint;
  const osb = () =>
    new OsbClient({ ...ep, ...(z.director.endpoint.ca ? { ca: z.director.endpoint.ca } : {}) });

  it("a platform upgrades one instance with an OSB PATCH carrying the plan's maintenance_info", async () => {
    const stale = await osb().call("PATCH", "/service_instances/a", {
      query: { accepts_incomplete: "true" },
      body: { service_id: SERVICE_ID, maintenance_info: { version: "1.0.0" } },
    });
    assert.equal(stale.status, 422, "an old maintenance_info is refused");
    assert.equal((stale.body as { error?: string }).error, "MaintenanceInfoConflict");
    const r = await osb().call<{ operation?: string }>("PATCH", "/service_instances/a", {
      query: { accepts_incomplete: "true" },
      body: { service_id: SERVICE_ID, plan_id: PLANS.single, maintenance_info: { version: "1.1.0" } },
    });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    await waitFor(
      async () => {
        const s = await osb().call<{ state: string; description?: string }>(
          "GET",
          "/service_instances/a/last_operation",
          {
            query: { operation: r.body.operation },
          },
        );
        if (s.body.state === "failed") throw new Error(`upgrade of a failed: ${s.body.description}`);
        return s.body.state === "succeeded" ? true : undefined;
      },
      { timeoutMs: 180_000, intervalMs: 1000, what: "a's upgrade" },
    );
    const got = await osb().call<{ maintenance_info?: { version: string } }>("GET", "/service_instances/a");
    assert.equal(got.body.maintenance_info?.version, "1.1.0", "the instance reports what it runs now");
    const again = await osb().call("PATCH", "/service_instances/a", {
      query: { accepts_incomplete: "true" },
      body: { service_id: SERVICE_ID, maintenance_info: { version: "1.1.0" } },
    });
    assert.equal(again.status, 200, "already there: nothing to do");
  });

  it("zonal upgrade-services upgrades the rest, the cluster rolling under writes", async () => {
    const t0 = Date.now();
    const r = await z.zonalAsync("upgrade-services", "--canaries", "1", "--max-in-flight", "2");
    const t1 = Date.now();
    assert.equal(r.code, 0, r.err + r.out);
    console.log(
      r.out
        .split("\n")
        .map((l) => `# ${l}`)
        .join("\n"),
    );
    assert.match(r.out, /2 to upgrade/);
    assert.match(r.out, /canary: b\n/);
    assert.match(r.out, /upgraded 2 of 2/);
    assert.deepEqual(
      rows().map((x) => [x.id, x.version, x.behind]),
      [
        ["a", "1.1.0", false],
        ["b", "1.1.0", false],
        ["orders", "1.1.0", false],
      ],
    );
    const pause = checker!.longestGap(t0, t1);
    console.log(`# upgrade-services: ${t1 - t0} ms; the cluster's longest write pause ${pause} ms`);
    const v = await checker!.verify();
    assert.deepEqual(v.missing, [], "every acknowledged row is there");
    assert.equal(v.twoWriters, false, v.runs.join(" -> "));
    const nothing = z.zonal("upgrade-services");
    assert.equal(nothing.code, 0, nothing.err);
    assert.match(nothing.out, /0 to upgrade/);
  });

  it("a broken template stops at the canary, names it and why, leaves the other as it was", async () => {
    // PostgreSQL refuses max_connections 0 (it must exceed the reserved connections).
    writeTemplates("1.2.0", { max_connections: 0 }, "single");
    await restart();
    const r = await z.zonalAsync("upgrade-services", "--canaries", "1", "--max-in-flight", "2");
    console.log(
      r.out
        .split("\n")
        .map((l) => `# ${l}`)
        .join("\n"),
    );
    assert.equal(r.code, 1, "never success over a failure");
    assert.match(r.out, /FAILED a: .*jobs did not start/);
    assert.match(r.out, /not upgraded b: an earlier batch failed/);
    assert.equal(row("b").version, "1.1.0");
    assert.equal(row("orders").version, "1.1.0");
    const bInstances = await z.director.http.request<Array<{ state: string }>>(
      "GET",
      `/v1/instances?deployment=${row("b").deployment}`,
    );
    assert.deepEqual(
      bInstances.map((i) => i.state),
      ["running"],
      "b still serves on its old version",
    );
  });

  before(async () => {
    ep = await z.director.http.request<OsbEndpoint>("GET", "/v1/broker");
  });
});
