/**
 * A client that finds the primary itself, as libpq does with a multi-host URI and
 * `target_session_attrs=read-write`: it tries each address in order, and keeps the
 * first connection whose server takes writes (not in recovery, not read-only). When
 * none does, it fails: there is no fallback to the first address, so a client never
 * writes to (or reads from) a member it did not find to be a primary.
 *
 * bench/failover writes through one of these to zonal and to Patroni alike, so both
 * are measured along the same client path.
 */
import pg from "pg";
import type { CheckerTarget } from "./pg-checker.js";

/** Every address was tried and none was a primary; `tried` says what each one did. */
export class NoPrimary extends Error {
  constructor(readonly tried: Array<{ host: string; outcome: string }>) {
    super(`no primary among ${tried.map((t) => `${t.host} (${t.outcome})`).join(", ") || "no addresses"}`);
  }
}

export type Credentials = Omit<CheckerTarget, "host">;

/**
 * Client-side timeouts only, like the write checker's (no statement_timeout: a
 * cancelled wait for a synchronous standby is acknowledged by PostgreSQL).
 */
const TIMEOUTS = { connectionTimeoutMillis: 500, query_timeout: 1000 };

export class MultiHostClient {
  /** `hosts` is asked at every connect: the addresses as the system reports them now. */
  constructor(
    private readonly hosts: () => string[],
    private readonly credentials: Credentials,
  ) {}

  /** The first server, in order, that takes writes; throws NoPrimary when none does. */
  async connect(): Promise<pg.Client> {
    const tried: Array<{ host: string; outcome: string }> = [];
    for (const host of this.hosts()) {
      const c = new pg.Client({ ...this.credentials, host, ...TIMEOUTS });
      c.on("error", () => undefined);
      try {
        await c.connect();
        const r = await c.query<{ read_only: boolean }>(
          "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on' AS read_only",
        );
        if (!r.rows[0]!.read_only) return c;
        tried.push({ host, outcome: "read-only" });
      } catch (err) {
        tried.push({ host, outcome: (err as Error).message });
      }
      void c.end().catch(() => undefined);
    }
    throw new NoPrimary(tried);
  }
}
