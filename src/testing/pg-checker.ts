/**
 * The write checker (write-checker.ts) for clustered PostgreSQL: each row is stamped
 * by the member that committed it (`memberExpr`) and the WAL timeline it was
 * committed on, which grows with every promotion; so an old primary that still
 * acknowledges a commit after a new one began shows up in the history.
 */
import pg from "pg";
import {
  WriteChecker,
  type CheckerDriver,
  type CheckerSession,
  type TargetSource,
  type Timeouts,
} from "./write-checker.js";
import type { Row } from "./write-history.js";

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

class PgSession implements CheckerSession {
  constructor(
    private readonly client: pg.Client,
    private readonly table: string,
    private readonly memberExpr: string,
  ) {}

  async insert(n: number): Promise<{ member: string; timeline: number }> {
    const r = await this.client.query<{ member: string; timeline: string }>(
      `INSERT INTO ${this.table} (n, member, timeline)
       VALUES ($1, ${this.memberExpr}, substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))
       RETURNING member, timeline`,
      [n],
    );
    return { member: r.rows[0]!.member, timeline: parseInt(r.rows[0]!.timeline, 16) };
  }

  async createTable(): Promise<void> {
    await this.client.query(
      `CREATE TABLE IF NOT EXISTS ${this.table} (n bigint PRIMARY KEY, member text NOT NULL, timeline text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`,
    );
  }

  async readRows(firstN: number): Promise<Row[]> {
    const r = await this.client.query<{ n: string; member: string; timeline: string }>(
      `SELECT n, member, timeline FROM ${this.table} WHERE n >= $1 ORDER BY n`,
      [firstN],
    );
    return r.rows.map((x) => ({ n: Number(x.n), member: x.member, timeline: parseInt(x.timeline, 16) }));
  }

  close(): void {
    void this.client.end().catch(() => undefined);
  }
}

/** A connector's connections keep the connector's own timeouts. */
class PgDriver implements CheckerDriver<CheckerTarget | Connector> {
  constructor(
    private readonly table: string,
    private readonly memberExpr: string,
  ) {}

  async connect(target: CheckerTarget | Connector, timeouts: Timeouts): Promise<CheckerSession> {
    const client = "connect" in target ? await target.connect() : await open(target, timeouts);
    return new PgSession(client, this.table, this.memberExpr);
  }
}

async function open(target: CheckerTarget, timeouts: Timeouts): Promise<pg.Client> {
  // Client-side timeouts only: a server-side statement_timeout would cancel a commit
  // waiting for its synchronous standby, and PostgreSQL acknowledges a cancelled
  // wait (with a warning) although no standby confirmed it. A client that gives up
  // on a silent server simply drops the connection.
  const c = new pg.Client({
    ...target,
    connectionTimeoutMillis: timeouts.connectMs,
    query_timeout: timeouts.queryMs,
  });
  c.on("error", () => undefined);
  try {
    await c.connect();
  } catch (err) {
    void c.end().catch(() => undefined);
    throw err;
  }
  return c;
}

export class PgChecker extends WriteChecker<CheckerTarget | Connector> {
  /**
   * `target` may be a function, asked again at every reconnect (a cluster without a
   * virtual address: find its primary), or a connector that finds it itself (a
   * multi-host client). `memberExpr` is the SQL that names the member; `mainVia`
   * names the main writer in the history ("vip": through the cluster's address).
   */
  constructor(
    target: TargetSource<CheckerTarget | Connector>,
    readonly table = "checks",
    readonly memberExpr = "current_setting('zonal.member')",
    mainVia = "vip",
  ) {
    super(new PgDriver(table, memberExpr), target, mainVia);
  }
}
