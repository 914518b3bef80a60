/**
 * The write checker against real PostgreSQL: two independent servers both taking
 * writes is two writers, and a row deleted behind its back is an acknowledged
 * write lost. (A checker that could not see these would prove nothing.)
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import pg from "pg";
import { waitFor } from "../lib/sleep.js";
import { PgChecker } from "./pg-checker.js";
import { TestPostgres } from "./postgres.js";

describe("PgChecker", () => {
  const a = new TestPostgres();
  const b = new TestPostgres();
  const target = (p: TestPostgres) => ({
    host: p.host,
    port: p.port,
    user: "postgres",
    password: "",
    database: "postgres",
  });

  before(async () => {
    await Promise.all([a.start(), b.start()]);
  });
  after(async () => {
    await a.stop();
    await b.stop();
  });

  it("catches a planted double writer and a planted lost row", async () => {
    const table = "planted";
    for (const p of [a, b]) {
      const c = new pg.Client(p.url);
      await c.connect();
      await c.query(
        `CREATE TABLE ${table} (n bigint PRIMARY KEY, member text NOT NULL, timeline text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`,
      );
      await c.end();
    }
    // Each server names itself by its address: two members, both on timeline 1.
    const checker = new PgChecker(target(a), table, "host(inet_server_addr())");
    checker.start();
    checker.addDirect("b", target(b));
    await waitFor(
      () => (checker.since(0).length > 20 && checker.since(0, "b").length > 20 ? true : undefined),
      {
        timeoutMs: 20_000,
        what: "writes on both servers",
      },
    );
    await checker.stop();

    const clean = await checker.verify(target(a));
    assert.equal(clean.twoWriters, true, "two servers writing is two writers");
    assert.deepEqual(clean.sharedTimelines[0]?.members.sort(), [a.host, b.host].sort());

    const lost = checker.since(0)[5]!;
    const c = new pg.Client(a.url);
    await c.connect();
    await c.query(`DELETE FROM ${table} WHERE n = $1`, [lost.n]);
    await c.end();
    const v = await checker.verify(target(a));
    assert.ok(
      v.missing.some((m) => m.n === lost.n),
      `row ${lost.n} acknowledged by ${lost.member} and deleted is reported missing`,
    );
  });
});
