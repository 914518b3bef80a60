/**
 * A write checker for clustered PostgreSQL: one client writes numbered rows through
 * the cluster's address, each stamped by the member that committed it, and keeps
 * every number whose commit was acknowledged. `verify` then proves what failover
 * promises: every acknowledged row is there, and the rows' members never
 * interleave — at no moment did two members accept writes.
 */
import pg from "pg";
import { sleep } from "../lib/sleep.js";

export interface Ack {
  n: number;
  member: string;
  /** The WAL timeline the commit was written on: it grows with every promotion. */
  timeline: number;
  at: number;
}

export interface CheckerTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
}

export class PgChecker {
  readonly acked: Ack[] = [];
  readonly failures: Array<{ n: number; at: number; error: string }> = [];
  private next = 1;
  private stopped = false;
  private loop: Promise<void> | undefined;
  private client: pg.Client | undefined;

  /**
   * `target` may be a function, asked again at every reconnect (a cluster without a
   * virtual address: find its primary). `memberExpr` is the SQL that names the member.
   */
  constructor(
    private readonly target: CheckerTarget | (() => Promise<CheckerTarget>),
    private readonly table = "checks",
    private readonly memberExpr = "current_setting('zonal.member')",
  ) {}

  private async connect(): Promise<pg.Client> {
    if (this.client) return this.client;
    const target = typeof this.target === "function" ? await this.target() : this.target;
    // Client-side timeouts only: a server-side statement_timeout would cancel a commit
    // waiting for its synchronous standby, and PostgreSQL acknowledges a cancelled
    // wait (with a warning) although no standby confirmed it. A client that gives up
    // on a silent server simply drops the connection.
    const c = new pg.Client({
      ...target,
      connectionTimeoutMillis: 500,
      query_timeout: 1000,
    });
    c.on("error", () => undefined);
    await c.connect();
    this.client = c;
    return c;
  }

  private drop(): void {
    const c = this.client;
    this.client = undefined;
    void c?.end().catch(() => undefined);
  }

  async setup(): Promise<void> {
    const c = await this.connect();
    await c.query(
      `CREATE TABLE IF NOT EXISTS ${this.table} (n bigint PRIMARY KEY, member text NOT NULL, timeline text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`,
    );
  }

  start(): this {
    this.loop = (async () => {
      while (!this.stopped) {
        const n = this.next++;
        try {
          const c = await this.connect();
          const r = await c.query<{ member: string; timeline: string }>(
            `INSERT INTO ${this.table} (n, member, timeline)
             VALUES ($1, ${this.memberExpr}, substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))
             RETURNING member, timeline`,
            [n],
          );
          this.acked.push({
            n,
            member: r.rows[0]!.member,
            timeline: parseInt(r.rows[0]!.timeline, 16),
            at: Date.now(),
          });
          await sleep(10);
        } catch (err) {
          this.failures.push({ n, at: Date.now(), error: (err as Error).message });
          this.drop();
          await sleep(50);
        }
      }
    })();
    return this;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    this.drop();
  }

  /** Acknowledged writes since `t`. */
  since(t: number): Ack[] {
    return this.acked.filter((a) => a.at >= t);
  }

  /** The longest stretch without an acknowledged write, within [from, to]. */
  longestGap(from: number, to = Date.now()): number {
    let last = from;
    let gap = 0;
    for (const a of this.acked) {
      if (a.at < from || a.at > to) continue;
      gap = Math.max(gap, a.at - last);
      last = a.at;
    }
    return Math.max(gap, to - last);
  }

  /**
   * Reads every row back (from the current primary) and checks the promises: every
   * acknowledged row is present, and in commit order the timeline never goes back
   * and each timeline has one member — two members accepting writes at once would
   * break one or the other.
   */
  async verify(): Promise<{ missing: number[]; runs: string[]; interleaved: boolean; rows: number }> {
    let rows: Array<{ n: string; member: string; timeline: string }> = [];
    for (let attempt = 0; ; attempt++) {
      try {
        const c = await this.connect();
        rows = (
          await c.query<{ n: string; member: string; timeline: string }>(
            `SELECT n, member, timeline FROM ${this.table} ORDER BY n`,
          )
        ).rows;
        break;
      } catch (err) {
        this.drop();
        if (attempt > 50) throw err;
        await sleep(200);
      }
    }
    const present = new Set(rows.map((r) => Number(r.n)));
    const missing = this.acked.filter((a) => !present.has(a.n)).map((a) => a.n);
    const runs: string[] = [];
    let interleaved = false;
    let last: { member: string; tli: number } | undefined;
    const seen = new Map<number, string>();
    for (const r of rows) {
      const tli = parseInt(r.timeline, 16);
      if (last && tli < last.tli) interleaved = true;
      if ((seen.get(tli) ?? r.member) !== r.member) interleaved = true;
      seen.set(tli, r.member);
      if (!last || last.member !== r.member || last.tli !== tli) runs.push(`${r.member}@${tli}`);
      last = { member: r.member, tli };
    }
    return { missing, runs, interleaved, rows: rows.length };
  }
}
