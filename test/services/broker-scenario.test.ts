/**
 * One scenario for every service the broker sells and each of its plans `single` and
 * `cluster`, as a developer without a platform runs it (the `zonal` service commands,
 * which call the OSB API): provision, bind, write with the returned credentials over
 * TLS, crash the VM that takes writes (the single instance's; the cluster's writer),
 * and the same credentials write again — on the resurrected VM, or on the node that
 * took over — with every acknowledged row; unbind makes them fail; deprovision leaves
 * no VM or disk.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import mariadb from "mariadb";
import pg from "pg";
import type { ClusterView } from "../../src/director/cluster-service.js";
import type { InstanceView } from "../../src/director/director.js";
import { clientTls } from "../../src/jobs/mariadb/config.js";
import { waitFor } from "../../src/lib/sleep.js";
import { ZonalHarness } from "../../src/testing/zonal-harness.js";

interface Credentials {
  host: string;
  port: number;
  database: string;
  username: string;
  password: string;
  ca_cert: string;
}

/** Runs SQL as the binding's user over TLS checked against its CA; resolves with the rows. */
type Sql = (c: Credentials, sql: string) => Promise<Array<Record<string, unknown>>>;

const postgresSql: Sql = async (c, sql) => {
  const client = new pg.Client({
    host: c.host,
    port: c.port,
    database: c.database,
    user: c.username,
    password: c.password,
    ssl: { ca: c.ca_cert },
    connectionTimeoutMillis: 3000,
  });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return (await client.query(sql)).rows as Array<Record<string, unknown>>;
  } finally {
    await client.end().catch(() => undefined);
  }
};

const mariadbSql: Sql = async (c, sql) => {
  const conn = await mariadb.createConnection({
    host: c.host,
    port: c.port,
    database: c.database,
    user: c.username,
    password: c.password,
    ssl: clientTls(c.host, c.ca_cert),
    connectTimeout: 3000,
  });
  try {
    return (await conn.query(sql)) as Array<Record<string, unknown>>;
  } finally {
    await conn.end().catch(() => conn.destroy());
  }
};

const SERVICES: Array<{ service: string; sql: Sql; refused: RegExp }> = [
  { service: "postgresql", sql: postgresSql, refused: /password authentication failed|does not exist/ },
  { service: "mariadb", sql: mariadbSql, refused: /Access denied/ },
];

describe("the broker's scenario for every service it sells", () => {
  const z = new ZonalHarness();
  before(() => z.up());
  after(() => z.teardown());

  for (const { service, sql, refused } of SERVICES)
    for (const plan of ["single", "cluster"]) {
      it(`${service} ${plan}: bind, write, the writer's VM crashed, the same credentials write again with every row; unbind; deprovision`, async () => {
        const name = `scenario-${service}-${plan}`;
        const made = z.json<{ state: string }>("create-service", service, plan, name, "--wait", "--json");
        assert.equal(made.state, "succeeded");
        const creds = z.json<Credentials>("bind", name, "app", "--json");
        await sql(creds, "CREATE TABLE n (v INT PRIMARY KEY)");
        for (let v = 1; v <= 20; v++) await sql(creds, `INSERT INTO n VALUES (${v})`);

        const deployment = z
          .json<Array<{ id: string; deployment: string }>>("services", "--json")
          .find((s) => s.id === name)!.deployment;
        const [inst] = await z.director.http.request<InstanceView[]>("GET", "/v1/instances", {
          query: { deployment },
        });
        // The cluster's writer (its lease is taken a moment after the last member is up).
        const writer =
          plan === "cluster"
            ? await waitFor(
                async () =>
                  (
                    await z.director.http.request<ClusterView[]>(
                      "GET",
                      `/v1/deployments/${encodeURIComponent(deployment)}/cluster`,
                    )
                  )[0]?.leader?.vmId,
                { timeoutMs: 30_000, intervalMs: 250, what: `${name}'s writer` },
              )
            : inst!.vmId!;
        const crashedAt = Date.now();
        await z.client.crashVm(writer);
        await waitFor(
          () =>
            sql(creds, "INSERT INTO n VALUES (21)").then(
              () => true,
              () => undefined,
            ),
          {
            timeoutMs: 180_000,
            intervalMs: 500,
            what: `${service}'s credentials to write again`,
          },
        );
        console.log(
          `# ${service} ${plan}: the same credentials wrote again ${Date.now() - crashedAt} ms after the crash`,
        );
        const rows = await sql(creds, "SELECT v FROM n ORDER BY v");
        assert.deepEqual(
          rows.map((r) => Number(r.v)),
          Array.from({ length: 21 }, (_, i) => i + 1),
          "every acknowledged row",
        );

        assert.equal(z.zonal("unbind", name, "app").code, 0);
        await assert.rejects(sql(creds, "SELECT 1"), refused);
        const gone = z.zonal("delete-service", name, "--wait");
        assert.equal(gone.code, 0, gone.out + gone.err);
        assert.deepEqual(await z.client.listVms({ metadata: { deployment } }), [], "no VM left");
        assert.deepEqual(await z.client.listDisks({ metadata: { deployment } }), [], "no disk left");
      });
    }
});
