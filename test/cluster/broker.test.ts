/**
 * The broker end to end, as a developer without a platform uses it (the `zonal`
 * service commands, which call the OSB API): a `cluster` instance, bound, used with
 * psql through the returned `uri`; its primary's VM killed, and the same `uri` works
 * again within seconds with every acknowledged row; unbind makes the credentials
 * fail; deprovision leaves no VM, disk, lease or address. Then a `single` instance
 * grows into a `cluster` in place, keeping its data.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { ClusterView } from "../../src/director/cluster-service.js";
import { waitFor } from "../../src/lib/sleep.js";
import { ZonalHarness } from "../../src/testing/zonal-harness.js";

const PSQL = "/usr/lib/postgresql/15/bin/psql";

/** Runs SQL through psql with a connection URI; returns stdout, or throws with psql's error. */
/** The CA bindings name, as a file for psql (PGSSLROOTCERT): their URIs say sslmode=verify-full. */
let caFile: string | undefined;

function psql(uri: string, sql: string): string {
  const r = spawnSync(PSQL, [uri, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql], {
    encoding: "utf8",
    timeout: 15_000,
    env: { ...process.env, PGCONNECT_TIMEOUT: "3", ...(caFile ? { PGSSLROOTCERT: caFile } : {}) },
  });
  if (r.status !== 0) throw new Error(`psql: ${(r.stderr || r.error?.message || "").trim()}`);
  return r.stdout.trim();
}

interface Credentials {
  uri: string;
  ca_cert: string;
  multihost_uri: string;
  host: string;
  username: string;
  password: string;
  database: string;
}
interface ServiceView {
  id: string;
  plan: string;
  deployment: string;
  lastOperation: { state: string };
}

describe("the broker end to end", () => {
  const z = new ZonalHarness();
  const deploymentOf = (name: string) =>
    z.json<ServiceView[]>("services", "--json").find((s) => s.id === name)!.deployment;

  const caDir = mkdtempSync(join(tmpdir(), "zonal-broker-ca-"));
  before(() => z.up());
  after(async () => {
    await z.teardown();
    rmSync(caDir, { recursive: true, force: true });
  });
  /** `zonal bind …`: its credentials, and their CA written for psql. */
  const bind = (...args: string[]): Credentials => {
    const creds = z.json<Credentials>("bind", ...args);
    assert.ok(creds.ca_cert.startsWith("-----BEGIN CERTIFICATE-----"), "bindings carry the CA's certificate");
    caFile = join(caDir, "ca.crt");
    writeFileSync(caFile, creds.ca_cert);
    return creds;
  };

  it("a cluster instance: bind, psql, primary killed, the same uri works again with every row; unbind; deprovision leaves nothing", async () => {
    const t0 = Date.now();
    const created = z.json<{ state: string; seconds: number }>(
      "create-service",
      "postgresql",
      "cluster",
      "orders",
      "--wait",
      "--json",
    );
    assert.equal(created.state, "succeeded");
    console.log(`# cluster instance usable after ${Date.now() - t0} ms`);
    const deployment = deploymentOf("orders");
    const creds = bind("orders", "app1", "--json");
    assert.match(creds.uri, /^postgres:\/\//);
    psql(creds.uri, "CREATE TABLE rows (n int PRIMARY KEY)");
    const acked: number[] = [];
    for (let n = 1; n <= 20; n++) {
      psql(creds.uri, `INSERT INTO rows VALUES (${n})`);
      acked.push(n);
    }
    assert.equal(psql(creds.uri, "SELECT count(*) FROM rows"), "20");

    const view = (
      await z.director.http.request<ClusterView[]>("GET", `/v1/deployments/${deployment}/cluster`)
    )[0]!;
    const killedAt = Date.now();
    await z.client.crashVm(view.leader!.vmId);
    let n = 21;
    await waitFor(
      () => {
        try {
          psql(creds.uri, `INSERT INTO rows VALUES (${n})`);
          acked.push(n++);
          return true;
        } catch {
          return undefined;
        }
      },
      { timeoutMs: 30_000, intervalMs: 200, what: "the same uri to take writes again" },
    );
    const back = Date.now() - killedAt;
    console.log(`# the same uri took writes again ${back} ms after the primary's VM was killed`);
    assert.ok(back <= 10_000, `writes through the uri resumed after ${back} ms (within 10 s)`);
    const present = psql(creds.uri, "SELECT n FROM rows ORDER BY n").split("\n").map(Number);
    assert.deepEqual(
      acked.filter((x) => !present.includes(x)),
      [],
      "every acknowledged row is present",
    );

    const unbound = z.zonal("unbind", "orders", "app1");
    assert.equal(unbound.code, 0, unbound.err);
    assert.throws(() => psql(creds.uri, "SELECT 1"), /password authentication failed|does not exist/);

    const deleted = z.json<{ state: string }>("delete-service", "orders", "--wait", "--json");
    assert.equal(deleted.state, "succeeded");
    const md = { deployment };
    assert.deepEqual(await z.client.listVms({ metadata: md }), [], "no VM left");
    assert.deepEqual(await z.client.listDisks({ metadata: md }), [], "no disk left");
    assert.deepEqual(await z.client.listAddresses({ metadata: md }), [], "no address left");
    const leases = await z.director.http.request<unknown[]>("GET", "/v1/leases/list", {
      query: { prefix: `${deployment}/` },
    });
    assert.deepEqual(leases, [], "no lease left");
    assert.deepEqual(z.json<ServiceView[]>("services", "--json"), []);
  });

  it("provision and deprovision each survive a control-plane restart in their middle", async () => {
    const started = z.json<{ status: number; operation: string }>(
      "create-service",
      "postgresql",
      "cluster",
      "restarted",
      "--json",
    );
    assert.equal(started.status, 202);
    await new Promise((r) => setTimeout(r, 1500)); // its VMs are being made
    await z.stopControlPlane("SIGKILL");
    await z.up();
    const end = await waitFor(
      () => {
        const s = z.json<ServiceView[]>("services", "--json").find((x) => x.id === "restarted")!;
        return s.lastOperation.state === "in progress" ? undefined : s;
      },
      { timeoutMs: 180_000, intervalMs: 1000, what: "the provision to end after the restart" },
    );
    assert.equal(end.lastOperation.state, "succeeded");
    const deployment = end.deployment;
    const creds = bind("restarted", "--json");
    assert.equal(psql(creds.uri, "SELECT 1"), "1");
    // Deprovision, with the control plane killed again in its middle.
    const del = z.json<{ status: number }>("delete-service", "restarted", "--json");
    assert.equal(del.status, 202);
    await z.stopControlPlane("SIGKILL");
    await z.up();
    await waitFor(() => (z.json<ServiceView[]>("services", "--json").length === 0 ? true : undefined), {
      timeoutMs: 120_000,
      intervalMs: 1000,
      what: "the deprovision to end after the restart",
    });
    assert.deepEqual(await z.client.listVms({ metadata: { deployment } }), []);
    assert.deepEqual(await z.client.listDisks({ metadata: { deployment } }), []);
  });

  it("a single instance grows into a cluster in place, keeping its data", async () => {
    const created = z.json<{ state: string }>(
      "create-service",
      "postgresql",
      "single",
      "grow",
      "--wait",
      "--json",
    );
    assert.equal(created.state, "succeeded");
    const before = bind("grow", "b1", "--json");
    psql(before.uri, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('from the single node')");
    const t0 = Date.now();
    const updated = z.json<{ state: string; description?: string }>(
      "update-service",
      "grow",
      "--plan",
      "cluster",
      "--wait",
      "--json",
    );
    assert.equal(updated.state, "succeeded", updated.description);
    console.log(`# single -> cluster took ${Date.now() - t0} ms`);
    assert.equal(z.json<ServiceView[]>("services", "--json")[0]!.plan, "cluster");
    const view = (
      await z.director.http.request<ClusterView[]>("GET", `/v1/deployments/${deploymentOf("grow")}/cluster`)
    )[0]!;
    assert.equal(view.members.length, 3);
    await waitFor(
      async () => {
        const v = (
          await z.director.http.request<ClusterView[]>(
            "GET",
            `/v1/deployments/${deploymentOf("grow")}/cluster`,
          )
        )[0]!;
        return v.members.filter((m) => m.role === "replica").length === 2 && v.leader ? true : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500, what: "a leader and two replicas" },
    );
    const after = bind("grow", "b2", "--json");
    // The new binding connects through the cluster's VIP; the old binding's role (which
    // owns the table) finds the primary through its multi-host uri.
    assert.ok(after.uri.includes(`@${view.vip}:`), `${after.uri} uses the VIP ${view.vip}`);
    assert.equal(psql(after.uri, "SELECT current_user"), after.username);
    assert.equal(psql(before.multihost_uri, "SELECT v FROM kept"), "from the single node");
    assert.equal(z.zonal("delete-service", "grow", "--wait").code, 0);
  });
});
