/**
 * A cluster whose leases live in etcd (three members, Debian's etcd-server):
 * planned switchover under write load, a crashed primary failing over through the
 * etcd lease, and database roles for bindings made and dropped through the primary.
 */
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { parse, stringify } from "yaml";
import { repoPath } from "../../src/cli/home.js";
import type { ClusterView, DatabaseRole } from "../../src/director/cluster-service.js";
import { EtcdLeaseStore } from "../../src/ha/etcd/store.js";
import { waitFor } from "../../src/lib/sleep.js";
import { TestEtcd } from "../../src/testing/etcd.js";
import { PgChecker } from "../../src/testing/pg-checker.js";
import { ZonalHarness } from "../../src/testing/zonal-harness.js";

describe("clustered postgres on etcd leases: switchover, failover, roles", () => {
  const etcd = new TestEtcd(3);
  const z = new ZonalHarness();
  const cluster = async () =>
    (await z.director.http.request<ClusterView[]>("GET", "/v1/deployments/pg/cluster"))[0]!;
  const role = () => z.director.http.request<DatabaseRole>("POST", "/v1/deployments/pg/roles", { body: {} });

  before(async () => {
    await etcd.start();
    await z.up();
    const m = parse(readFileSync(repoPath("examples", "postgres-cluster.yml"), "utf8")) as Record<
      string,
      unknown
    >;
    m.leases = { store: "etcd", etcd_endpoints: etcd.endpoints, ttl: "5s", renew: "1s" };
    const path = join(z.dir, "pg.yml");
    writeFileSync(path, stringify(m));
    const r = z.zonal("deploy", path);
    assert.equal(r.code, 0, r.err + r.out);
  });
  after(async () => {
    await z.teardown();
    await etcd.stop();
  });

  it("elects its leader in etcd", async () => {
    const c = await cluster();
    const lease = await new EtcdLeaseStore(etcd.endpoints).read("pg/postgres/leader");
    assert.equal(lease?.holder, c.leader?.vmId);
    assert.equal(lease?.token, c.leader?.token, "the fencing token is etcd's create revision");
  });

  it("switches over under write load without losing or splitting writes", async () => {
    const r = await role();
    const checker = new PgChecker(
      { host: r.host, port: r.port, user: r.username, password: r.password, database: r.database },
      "switch",
    );
    await checker.setup();
    checker.start();
    await waitFor(() => (checker.acked.length > 30 ? true : undefined), {
      timeoutMs: 20_000,
      what: "writes",
    });
    const before = await cluster();
    const t0 = Date.now();
    const out = z.json<{ from: string; to: string; tookMs: number }>("switchover", "-d", "pg");
    assert.equal(out.from, before.leader!.member);
    await waitFor(
      async () =>
        (await cluster()).members.find((m) => m.member === out.to)?.role === "primary" &&
        checker.since(Date.now() - 500).length > 5
          ? true
          : undefined,
      {
        timeoutMs: 30_000,
        intervalMs: 200,
        what: `${out.to} to lead and take writes`,
      },
    );
    const gap = checker.longestGap(t0);
    await checker.stop();
    console.log(`# switchover ${out.from} -> ${out.to}: write gap ${gap} ms`);
    assert.ok(gap < 3000, `writes paused ${gap} ms`);
    const v = await checker.verify();
    assert.deepEqual(v.missing, []);
    assert.equal(v.twoWriters, false, v.runs.join(" -> "));
    await waitFor(
      async () =>
        (await cluster()).members.find((m) => m.member === out.from)?.role === "replica" ? true : undefined,
      {
        timeoutMs: 30_000,
        what: `${out.from} to follow as a replica`,
      },
    );
  });

  it("fails over a crashed primary through the etcd lease in seconds", async () => {
    const r = await role();
    const checker = new PgChecker(
      { host: r.host, port: r.port, user: r.username, password: r.password, database: r.database },
      "crash",
    );
    await checker.setup();
    checker.start();
    await waitFor(() => (checker.acked.length > 30 ? true : undefined), {
      timeoutMs: 20_000,
      what: "writes",
    });
    const old = (await cluster()).leader!;
    const t0 = Date.now();
    await z.client.crashVm(old.vmId);
    await waitFor(
      async () =>
        (await cluster()).leader?.vmId !== old.vmId && checker.since(t0).length > 10 ? true : undefined,
      {
        timeoutMs: 30_000,
        intervalMs: 100,
        what: "a new leader taking writes",
      },
    );
    const gap = checker.longestGap(t0);
    await checker.stop();
    console.log(`# etcd crash failover: write gap ${gap} ms`);
    assert.ok(gap <= 3000, `writes paused ${gap} ms`);
    const v = await checker.verify();
    assert.deepEqual(v.missing, []);
    assert.equal(v.twoWriters, false);
    const lease = await new EtcdLeaseStore(etcd.endpoints).read("pg/postgres/leader");
    assert.ok(lease && lease.token > old.token, "the new leader's token is larger");
    // The crashed member is resurrected on a new VM (no address meanwhile): the next
    // cases need the whole cluster back, its three members answering.
    await waitFor(
      async () => {
        const c = await cluster();
        return c.members.length === 3 &&
          c.members.every((m) => m.address && (m.role === "primary" || m.role === "replica"))
          ? true
          : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 500, what: `the crashed member ${old.member} back as a replica` },
    );
  });

  it("makes a role per binding through the primary, and drops it with its connections, keeping its data", async () => {
    const r = await role();
    assert.match(r.username, /^u_[0-9a-f]{12}$/);
    assert.equal(r.hosts.length, 3, "every member's address, for multi-host URIs");
    assert.equal(r.uri, `postgres://${r.username}:${encodeURIComponent(r.password)}@${r.host}:5432/app`);
    assert.match(
      r.multiHostUri,
      /^postgres:\/\/u_\w+:[^@]+@127\.\d+\.\d+\.\d+:5432,127\.\d+\.\d+\.\d+:5432,127\.\d+\.\d+\.\d+:5432\/app\?target_session_attrs=read-write$/,
    );
    const app = new pg.Client({
      host: r.host,
      port: r.port,
      user: r.username,
      password: r.password,
      database: r.database,
    });
    await app.connect();
    await app.query("CREATE TABLE notes (id int PRIMARY KEY, body text)");
    await app.query("INSERT INTO notes VALUES (1, 'kept after unbind')");
    const ended = new Promise<void>((resolve) => app.on("error", () => resolve()));
    await z.director.http.request("DELETE", `/v1/deployments/pg/roles/${r.username}`);
    await ended; // its connection was terminated
    await app.end().catch(() => undefined);
    await assert.rejects(
      (async () => {
        const again = new pg.Client({
          host: r.host,
          port: r.port,
          user: r.username,
          password: r.password,
          database: r.database,
        });
        await again.connect();
      })(),
      /password authentication failed|does not exist/,
    );
    const other = await role();
    const c = new pg.Client({
      host: other.host,
      port: other.port,
      user: other.username,
      password: other.password,
      database: other.database,
    });
    await c.connect();
    const rows = await c.query("SELECT tableowner FROM pg_tables WHERE tablename = 'notes'");
    assert.equal(rows.rows[0]?.tableowner, "postgres", "the dropped role's objects were reassigned");
    await c.end();
    await z.director.http.request("DELETE", `/v1/deployments/pg/roles/${r.username}`); // idempotent
  });
});
