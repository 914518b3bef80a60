/**
 * A write checker for clustered PostgreSQL: writers insert numbered rows (one
 * sequence for all of them), each stamped by the member that committed it and the
 * timeline it was committed on, and keep every number whose commit was
 * acknowledged. One writer goes through the cluster's address (the VIP); more can
 * write to each member directly (`addDirect`), the way a client with an old address
 * would: a member that accepts a write it should not shows up there.
 *
 * `verify` reads the table back from a primary (after its replicas replayed) and
 * judges the history (write-history.ts): every acknowledged row is there, and there
 * were never two writers.
 */
import pg from "pg";
import { sleep } from "../lib/sleep.js";
import { judgeHistory, type Ack, type HistoryVerdict, type Row } from "./write-history.js";

export type { Ack } from "./write-history.js";

export interface CheckerTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** TLS, as zonal's bindings require from another address: the server checked against this CA. */
  ssl?: { ca: string };
}

/** A client that finds its server itself (a multi-host client) and hands back a connection. */
export interface Connector {
  connect(): Promise<pg.Client>;
}

type TargetSource = CheckerTarget | (() => Promise<CheckerTarget>) | Connector;

/** One client writing in a loop; reconnects (asking its target again) after a failure. */
class Writer {
  private client: pg.Client | undefined;
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly checker: PgChecker,
    readonly via: string,
    private readonly target: TargetSource,
  ) {}

  async connect(): Promise<pg.Client> {
    if (this.client) return this.client;
    if ("connect" in this.target) {
      this.client = await this.target.connect();
      return this.client;
    }
    const target = typeof this.target === "function" ? await this.target() : this.target;
    // Client-side timeouts only: a server-side statement_timeout would cancel a commit
    // waiting for its synchronous standby, and PostgreSQL acknowledges a cancelled
    // wait (with a warning) although no standby confirmed it. A client that gives up
    // on a silent server simply drops the connection.
    const c = new pg.Client({ ...target, connectionTimeoutMillis: 500, query_timeout: 1000 });
    c.on("error", () => undefined);
    try {
      await c.connect();
    } catch (err) {
      void c.end().catch(() => undefined);
      throw err;
    }
    this.client = c;
    return c;
  }

  drop(): void {
    const c = this.client;
    this.client = undefined;
    void c?.end().catch(() => undefined);
  }

  start(): void {
    this.loop = (async () => {
      while (!this.stopped) {
        const n = this.checker.nextNumber();
        try {
          const c = await this.connect();
          const r = await c.query<{ member: string; timeline: string }>(
            `INSERT INTO ${this.checker.table} (n, member, timeline)
             VALUES ($1, ${this.checker.memberExpr}, substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))
             RETURNING member, timeline`,
            [n],
          );
          this.checker.acked.push({
            n,
            member: r.rows[0]!.member,
            timeline: parseInt(r.rows[0]!.timeline, 16),
            at: Date.now(),
            via: this.via,
          });
          await sleep(10);
        } catch (err) {
          this.checker.failures.push({ n, at: Date.now(), via: this.via, error: (err as Error).message });
          this.drop();
          await sleep(50);
        }
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.loop;
    this.drop();
  }
}

export class PgChecker {
  readonly acked: Ack[] = [];
  readonly failures: Array<{ n: number; at: number; via: string; error: string }> = [];
  private next = 1;
  private readonly main: Writer;
  private readonly writers: Writer[] = [];

  /**
   * `target` may be a function, asked again at every reconnect (a cluster without a
   * virtual address: find its primary), or a connector that finds it itself (a
   * multi-host client). `memberExpr` is the SQL that names the member; `mainVia`
   * names the main writer in the history ("vip": through the cluster's address).
   */
  constructor(
    target: TargetSource,
    readonly table = "checks",
    readonly memberExpr = "current_setting('zonal.member')",
    readonly mainVia = "vip",
  ) {
    this.main = new Writer(this, mainVia, target);
    this.writers.push(this.main);
  }

  /** The next row number, unique across every writer. */
  nextNumber(): number {
    return this.next++;
  }

  async setup(): Promise<void> {
    const c = await this.main.connect();
    await c.query(
      `CREATE TABLE IF NOT EXISTS ${this.table} (n bigint PRIMARY KEY, member text NOT NULL, timeline text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`,
    );
  }

  start(): this {
    for (const w of this.writers) w.start();
    return this;
  }

  /** Starts one more writer, straight to one member (its own address). */
  addDirect(via: string, target: TargetSource): this {
    const w = new Writer(this, via, target);
    this.writers.push(w);
    w.start();
    return this;
  }

  async stop(): Promise<void> {
    await Promise.all(this.writers.map((w) => w.stop()));
  }

  /** Acknowledged writes since `t` (by the main writer unless `via` says otherwise). */
  since(t: number, via = this.mainVia): Ack[] {
    return this.acked.filter((a) => a.at >= t && a.via === via);
  }

  /** The longest stretch without an acknowledged write by the main writer (or `via`), within [from, to]. */
  longestGap(from: number, to = Date.now(), via = this.mainVia): number {
    let last = from;
    let gap = 0;
    for (const a of this.acked) {
      if (a.via !== via || a.at < from || a.at > to) continue;
      gap = Math.max(gap, a.at - last);
      last = a.at;
    }
    return Math.max(gap, to - last);
  }

  /**
   * Reads the rows back — from `from` (a primary whose replicas have replayed
   * everything), or through the cluster's address — and judges the history: all of
   * it, or (with `window`) the acknowledgements received within it, against the rows
   * numbered from the first of them on.
   */
  async verify(
    from?: CheckerTarget,
    window?: { from: number; to: number },
  ): Promise<HistoryVerdict & { rows: number }> {
    const acks = window ? this.acked.filter((a) => a.at >= window.from && a.at <= window.to) : this.acked;
    const firstN = acks.reduce((min, a) => Math.min(min, a.n), window ? this.next : 0);
    const { rows, readAt } = await this.readRows(from, firstN);
    // Writers may still run: a commit acknowledged after the read began may not be in it.
    const judged = acks.filter((a) => a.at < readAt);
    return { ...judgeHistory(judged, rows), rows: rows.length };
  }

  /** Rows numbered `firstN` and up, and when the read began; retried for about 10 s. */
  private async readRows(
    from: CheckerTarget | undefined,
    firstN: number,
  ): Promise<{ rows: Row[]; readAt: number }> {
    for (let attempt = 0; ; attempt++) {
      // A reader of its own for `from`, with room for a long table (a writer gives up after 1 s).
      const reader = from
        ? new pg.Client({ ...from, connectionTimeoutMillis: 2000, query_timeout: 60_000 })
        : undefined;
      reader?.on("error", () => undefined);
      try {
        if (reader) await reader.connect();
        const c = reader ?? (await this.main.connect());
        const readAt = Date.now();
        const r = await c.query<{ n: string; member: string; timeline: string }>(
          `SELECT n, member, timeline FROM ${this.table} WHERE n >= $1 ORDER BY n`,
          [firstN],
        );
        const rows = r.rows.map((x) => ({
          n: Number(x.n),
          member: x.member,
          timeline: parseInt(x.timeline, 16),
        }));
        return { rows, readAt };
      } catch (err) {
        if (!reader) this.main.drop();
        if (attempt > 50) throw err;
        await sleep(200);
      } finally {
        void reader?.end().catch(() => undefined);
      }
    }
  }
}
