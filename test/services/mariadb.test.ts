/**
 * MariaDB as a second data service, on the local cloud with Debian's mariadb-server:
 * deploy a single server, make a binding through the director (the same route as
 * PostgreSQL's), write over TLS checked against the binding's CA, see plain TCP
 * refused, crash the VM and find every acknowledged row on the resurrected one with
 * the same credentials, then drop the binding.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import mariadb from "mariadb";
import type { BindingView } from "../../src/director/cluster-service.js";
import type { InstanceView } from "../../src/director/director.js";
import { clientTls } from "../../src/jobs/mariadb/config.js";
import type { MariadbCredentials } from "../../src/jobs/mariadb/service.js";
import { join } from "node:path";
import { repoPath } from "../../src/cli/home.js";
import { AgentCa } from "../../src/director/agent-ca.js";
import { waitFor } from "../../src/lib/sleep.js";
import { ZonalHarness } from "../../src/testing/zonal-harness.js";

describe("mariadb: a single server, bindings over TLS, resurrected with its data", () => {
  const z = new ZonalHarness();
  let creds: MariadbCredentials;
  let username = "";
  const connect = (
    c: MariadbCredentials,
    ssl: false | ReturnType<typeof clientTls> = clientTls(c.host, c.ca_cert),
  ) =>
    mariadb.createConnection({
      host: c.host,
      port: c.port,
      user: c.username,
      password: c.password,
      database: c.database,
      ...(ssl === false ? {} : { ssl }),
      connectTimeout: 3000,
    });

  before(async () => {
    await z.up();
    const r = z.zonal("deploy", repoPath("examples", "mariadb-single.yml"));
    assert.equal(r.code, 0, r.err + r.out);
  });
  after(() => z.teardown());

  it("makes a binding: a user with its own password, TLS credentials with the CA", async () => {
    const b = await z.director.http.request<BindingView>("POST", "/v1/deployments/maria/bindings", {
      body: {},
    });
    assert.equal(b.group, "mariadb");
    creds = b.credentials as MariadbCredentials;
    username = b.username;
    assert.match(
      creds.uri,
      /^mysql:\/\/u_[0-9a-f]{12}:.+@127\.\d+\.\d+\.\d+:3306\/app\?ssl-mode=VERIFY_IDENTITY$/,
    );
    assert.match(creds.jdbcUrl, /^jdbc:mariadb:\/\/.+sslMode=verify-full/);
    assert.ok(creds.ca_cert.startsWith("-----BEGIN CERTIFICATE-----"));
    const c = await connect(creds);
    try {
      const [tls] = (await c.query("SHOW SESSION STATUS LIKE 'Ssl_version'")) as Array<{ Value: string }>;
      assert.match(tls!.Value, /^TLSv1\.[23]$/);
      await c.query("CREATE TABLE t (n INT PRIMARY KEY) ENGINE=InnoDB");
      for (let n = 1; n <= 50; n++) await c.query("INSERT INTO t VALUES (?)", [n]);
    } finally {
      await c.end();
    }
  });

  it("refuses plain TCP, and a server certificate from another CA", async () => {
    // Refused at login: the server takes no plain TCP (require_secure_transport), and the user requires SSL.
    await assert.rejects(connect(creds, false), /insecure transport|Access denied/);
    const other = await AgentCa.openOrCreate(join(z.dir, "another-ca"));
    await assert.rejects(
      connect({ ...creds, ca_cert: other.caPem }),
      /self-signed|unable to verify|certificate/i,
    );
  });

  it("comes back on a new VM after a crash with every acknowledged row; the same credentials work", async () => {
    const [before] = await z.director.http.request<InstanceView[]>("GET", "/v1/instances", {
      query: { deployment: "maria" },
    });
    await z.client.crashVm(before!.vmId!);
    const back = await waitFor(
      async () => {
        const [now] = await z.director.http.request<InstanceView[]>("GET", "/v1/instances", {
          query: { deployment: "maria" },
        });
        return now!.vmId !== before!.vmId && now!.state === "running" ? now : undefined;
      },
      { timeoutMs: 120_000, intervalMs: 500, what: "the resurrected mariadb" },
    );
    assert.equal(back.diskId, before!.diskId, "the same disk");
    const again = await z.director.http.request<BindingView>("POST", "/v1/deployments/maria/bindings", {
      body: {},
    });
    assert.notEqual(again.username, username);
    const c = await waitFor(() => connect(creds).catch(() => undefined), {
      timeoutMs: 30_000,
      intervalMs: 500,
      what: "the binding's login",
    });
    try {
      const rows = (await c.query("SELECT COUNT(*) AS n, MAX(n) AS top FROM t")) as Array<{
        n: bigint;
        top: number;
      }>;
      assert.equal(Number(rows[0]!.n), 50);
      assert.equal(rows[0]!.top, 50);
    } finally {
      await c.end();
    }
  });

  it("drops a binding: its user can no longer log in; dropping again is fine", async () => {
    await z.director.http.request("DELETE", `/v1/deployments/maria/bindings/${username}`);
    await assert.rejects(connect(creds), /Access denied/);
    await z.director.http.request("DELETE", `/v1/deployments/maria/bindings/${username}`);
  });

  it("is sold by the broker: create-service mariadb single, bind, the credentials log in, unbind, delete", async () => {
    const market = z.zonal("marketplace");
    assert.equal(market.code, 0, market.err);
    assert.match(market.out, /mariadb/);
    const made = z.zonal("create-service", "mariadb", "single", "shop", "--database", "shop", "--wait");
    assert.equal(made.code, 0, made.err + made.out);
    const bound = z.json<MariadbCredentials>("bind", "shop", "web", "--json");
    assert.equal(bound.database, "shop");
    const c = await connect(bound);
    try {
      await c.query("CREATE TABLE orders (id INT PRIMARY KEY)");
      await c.query("INSERT INTO orders VALUES (1)");
    } finally {
      await c.end();
    }
    assert.equal(z.zonal("unbind", "shop", "web").code, 0);
    await assert.rejects(connect(bound), /Access denied/);
    const gone = z.zonal("delete-service", "shop", "--wait");
    assert.equal(gone.code, 0, gone.err + gone.out);
  });
});
