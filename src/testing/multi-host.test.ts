/**
 * The multi-host client against real PostgreSQL: it skips an address that does not
 * answer and a server that does not take writes, keeps the first that does, and
 * fails when none does (never falls back to the first address).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { MultiHostClient, NoPrimary } from "./multi-host.js";
import { TestPostgres } from "./postgres.js";

describe("MultiHostClient", () => {
  const writable = new TestPostgres();
  const readOnly = new TestPostgres();
  const creds = { port: 5432, user: "postgres", password: "", database: "postgres" };
  /** An address of writable's block where nothing listens: connections are refused. */
  const nobody = () => writable.host.replace(/\.1$/, ".9");

  before(async () => {
    await Promise.all([writable.start(), readOnly.start()]);
    const c = new pg.Client(readOnly.url);
    await c.connect();
    await c.query("ALTER DATABASE postgres SET default_transaction_read_only = on");
    await c.end();
  });
  after(async () => {
    await writable.stop();
    await readOnly.stop();
  });

  it("keeps the first server in order that takes writes", async () => {
    const client = new MultiHostClient(() => [nobody(), readOnly.host, writable.host], creds);
    const c = await client.connect();
    try {
      assert.equal(c.host, writable.host);
      await c.query("CREATE TABLE IF NOT EXISTS t (n int)");
    } finally {
      await c.end();
    }
  });

  it("fails, naming what each address did, when none takes writes", async () => {
    const client = new MultiHostClient(() => [readOnly.host, nobody()], creds);
    await assert.rejects(client.connect(), (err: unknown) => {
      assert.ok(err instanceof NoPrimary);
      assert.equal(err.tried[0]!.outcome, "read-only");
      assert.equal(err.tried[1]!.host, nobody());
      return true;
    });
  });
});
