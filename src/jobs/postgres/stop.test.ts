/**
 * How the agent stops and restarts PostgreSQL must never acknowledge a commit that
 * no synchronous standby confirmed. A real PostgreSQL 15 runs as the `postgres` job
 * under the agent's JobRunner with a synchronous standby nobody is: every commit
 * waits. Stopping or restarting the job must end that wait with an error for the
 * client, never with success (a SIGINT to a backend is a query cancel, and a
 * cancelled wait acknowledges the commit: the bug this file keeps away).
 */
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { JobRunner } from "../../agent/job-runner.js";
import { parseSpec } from "../../agent/spec.js";
import { waitFor } from "../../lib/sleep.js";
import { claimAddressBlock } from "../../testing/addresses.js";
import { serveCertificates } from "../../testing/service-ca.js";
import { jobType } from "../registry.js";

const PASSWORD = "pw-stop-test";

describe("stopping postgres while a commit waits for a synchronous standby", () => {
  const dir = mkdtempSync(join(tmpdir(), "zonal-pg-stop-"));
  const block = claimAddressBlock();
  const address = `127.${block.base}.7.7`;
  let runner: JobRunner;
  let certificates: Awaited<ReturnType<typeof serveCertificates>> | undefined;

  const client = async (): Promise<pg.Client> => {
    const c = new pg.Client({ host: address, port: 5432, user: "postgres", password: PASSWORD });
    c.on("error", () => undefined);
    await c.connect();
    return c;
  };

  before(async () => {
    const spec = parseSpec({
      jobs: [{ name: "db", type: "postgres", config: { database: "app" }, start_timeout_ms: 60_000 }],
    }).jobs[0]!;
    chmodSync(dir, 0o755); // postgres (the system user) must reach its data directory
    certificates = await serveCertificates(join(dir, "ca"), address);
    mkdirSync(join(dir, "disk"), { recursive: true });
    runner = new JobRunner({
      job: spec,
      type: jobType("postgres")!,
      ctx: {
        jobName: "db",
        vmId: "vm-stop-test",
        address,
        jobDir: join(dir, "jobs", "db"),
        persistentDir: join(dir, "disk"),
        links: {},
        cluster: null,
        secrets: { postgres_password: PASSWORD, replication_password: "r" },
        services: {
          token: "t",
          controlPlaneUrl: certificates.url,
          setAddresses: () => undefined,
          cutConnections: () => undefined,
        },
        log: () => {},
      },
      logPath: join(dir, "db.log"),
      env: { PATH: process.env.PATH ?? "" },
      checkIntervalMs: 200,
    });
    await runner.start();
    await waitFor(() => (runner.status().state === "running" ? true : undefined), {
      timeoutMs: 60_000,
      what: "postgres to run",
    }).catch((err: Error) => {
      throw new Error(`${err.message}; the job's log:\n${readFileSync(join(dir, "db.log"), "utf8")}`);
    });
    const c = await client();
    await c.query("CREATE TABLE IF NOT EXISTS t (n int PRIMARY KEY)");
    await c.query("ALTER SYSTEM SET synchronous_standby_names = 'nobody'");
    await c.query("SELECT pg_reload_conf()");
    await c.end();
  });

  after(async () => {
    await runner?.stop();
    await certificates?.close();
    rmSync(dir, { recursive: true, force: true });
    block.release();
  });

  /** Starts a commit that waits for the standby nobody is; resolves once it waits, with its outcome to come. */
  async function waitingCommit(n: number): Promise<{ outcome: Promise<string> }> {
    const c = await client();
    const outcome = c.query("INSERT INTO t VALUES ($1)", [n]).then(
      () => "acknowledged",
      (err: Error) => `failed: ${err.message}`,
    );
    const watcher = await client();
    await waitFor(
      async () =>
        (await watcher.query("SELECT 1 FROM pg_stat_activity WHERE wait_event = 'SyncRep'")).rowCount
          ? true
          : undefined,
      { timeoutMs: 10_000, intervalMs: 50, what: "the commit to wait for its standby" },
    );
    await watcher.end();
    return { outcome: outcome.finally(() => void c.end().catch(() => undefined)) };
  }

  it("a restart of the process does not acknowledge the waiting commit", async () => {
    const { outcome } = await waitingCommit(1);
    await runner.restartProcess("test: restart while a commit waits");
    assert.match(await outcome, /^failed: /);
    await waitFor(() => (runner.status().state === "running" ? true : undefined), {
      timeoutMs: 60_000,
      what: "postgres to run again",
    });
  });

  it("an abort (immediate shutdown, for a member that lost its role) does not acknowledge it either", async () => {
    const { outcome } = await waitingCommit(3);
    await runner.restartProcess("test: abort while a commit waits", { abort: true });
    assert.match(await outcome, /^failed: /);
    await waitFor(() => (runner.status().state === "running" ? true : undefined), {
      timeoutMs: 60_000,
      what: "postgres to run again",
    });
  });

  it("a stop of the job does not acknowledge the waiting commit", async () => {
    const { outcome } = await waitingCommit(2);
    await runner.stop();
    assert.match(await outcome, /^failed: /);
  });
});
