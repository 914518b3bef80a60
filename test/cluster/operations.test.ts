/**
 * A cluster whose leases live in etcd (three members, Debian's etcd-server):
 * planned switchover under write load, a crashed primary failing over through the
 * etcd lease, and bindings (database roles) made and dropped through the primary.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { parse, stringify } from "yaml";
import { repoPath } from "../../src/cli/home.js";
import type { ClusterView } from "../../src/director/cluster-service.js";
import { EtcdLeaseStore } from "../../src/ha/etcd/store.js";
import { waitFor } from "../../src/lib/sleep.js";
import { TestEtcd } from "../../src/testing/etcd.js";
import { bindingOf, roleTarget, timeline } from "../../src/testing/cluster-faults.js";
import { PgChecker } from "../../src/testing/pg-checker.js";
import { ZonalHarness } from "../../src/testing/zonal-harness.js";

/** A socket that connects from `localAddress` (pg opens it with connect(port, host)). */
function socketFrom(localAddress: string): Socket {
  const socket = new Socket();
  const connect = socket.connect.bind(socket) as (o: {
    port: number;
    host: string;
    localAddress: string;
  }) => Socket;
  (socket as unknown as { connect: (port: number, host: string) => Socket }).connect = (port, host) =>
    connect({ port, host, localAddress });
  return socket;
}

describe("clustered postgres on etcd leases: switchover, failover, roles", () => {
  const etcd = new TestEtcd(3);
  const z = new ZonalHarness();
  const cluster = async () =>
    (await z.director.http.request<ClusterView[]>("GET", "/v1/deployments/pg/cluster"))[0]!;
  const role = () => bindingOf(z, "pg");

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
    const checker = new PgChecker(roleTarget(r), "switch");
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
    const checker = new PgChecker(roleTarget(r), "crash");
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
    assert.ok(gap <= 3000, `writes paused ${gap} ms\n${await timeline(z, t0, "pg")}`);
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
    assert.equal(
      r.uri,
      `postgres://${r.username}:${encodeURIComponent(r.password)}@${r.host}:5432/app?sslmode=verify-full`,
    );
    assert.match(
      r.multihost_uri,
      /^postgres:\/\/u_\w+:[^@]+@127\.\d+\.\d+\.\d+:5432,127\.\d+\.\d+\.\d+:5432,127\.\d+\.\d+\.\d+:5432\/app\?target_session_attrs=read-write&sslmode=verify-full$/,
    );
    const app = new pg.Client(roleTarget(r));
    await app.connect();
    await app.query("CREATE TABLE notes (id int PRIMARY KEY, body text)");
    await app.query("INSERT INTO notes VALUES (1, 'kept after unbind')");
    const ended = new Promise<void>((resolve) => app.on("error", () => resolve()));
    await z.director.http.request("DELETE", `/v1/deployments/pg/bindings/${r.username}`);
    await ended; // its connection was terminated
    await app.end().catch(() => undefined);
    await assert.rejects(
      (async () => {
        const again = new pg.Client(roleTarget(r));
        await again.connect();
      })(),
      /password authentication failed|does not exist/,
    );
    const other = await role();
    const c = new pg.Client(roleTarget(other));
    await c.connect();
    const rows = await c.query("SELECT tableowner FROM pg_tables WHERE tablename = 'notes'");
    assert.equal(rows.rows[0]?.tableowner, "postgres", "the dropped role's objects were reassigned");
    await c.end();
    await z.director.http.request("DELETE", `/v1/deployments/pg/bindings/${r.username}`); // idempotent
  });

  it("serves TLS with the control plane's CA: psql verify-full connects; plain text from another address is refused", async () => {
    const r = await role();
    assert.equal(r.sslmode, "verify-full");
    const dir = mkdtempSync(join(tmpdir(), "zonal-pg-ca-"));
    try {
      const caFile = join(dir, "ca.crt");
      writeFileSync(caFile, r.ca_cert);
      const psql = (env: Record<string, string>) =>
        spawnSync(
          "/usr/lib/postgresql/15/bin/psql",
          [r.uri, "-X", "-q", "-t", "-A", "-c", "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"],
          { encoding: "utf8", timeout: 15_000, env: { ...process.env, PGCONNECT_TIMEOUT: "3", ...env } },
        );
      const ok = psql({ PGSSLROOTCERT: caFile });
      assert.equal(ok.status, 0, ok.stderr);
      assert.equal(ok.stdout.trim(), "t", "the session is encrypted");
      console.log(`# psql ${r.uri.replace(/:[^:@]+@/, ":***@")} (sslmode=verify-full): connected over TLS`);
      const wrongCa = psql({ PGSSLROOTCERT: "/etc/ssl/certs/ca-certificates.crt" });
      assert.notEqual(wrongCa.status, 0, "a CA that did not sign the member's certificate is refused");
      // From another address (as another VM would connect): without TLS, no pg_hba line lets it in.
      const from = `127.${z.addressBase}.250.250`;
      const client = (ssl: pg.ClientConfig["ssl"]) =>
        new pg.Client({
          ...roleTarget(r),
          connectionTimeoutMillis: 3000,
          ssl,
          stream: () => socketFrom(from),
        });
      const plain = client(false);
      await assert.rejects(plain.connect(), /no pg_hba\.conf entry .* no encryption/);
      await plain.end().catch(() => undefined);
      console.log(`# a plain-text connection from ${from} was refused: no pg_hba.conf entry, no encryption`);
      const tls = client({ ca: r.ca_cert });
      await tls.connect();
      assert.equal(
        (await tls.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")).rows[0]?.ssl,
        true,
      );
      await tls.end();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
