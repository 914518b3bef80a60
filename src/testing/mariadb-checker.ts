/**
 * The write checker (write-checker.ts) for a MariaDB Galera cluster, through the
 * `mariadb` connector. Each row is stamped by the node that committed it (Galera's
 * `wsrep_node_name`, which zonal sets to the member's name) and timeline 0: Galera
 * has no timelines, so `verify`'s `sharedTimelines` and `twoWriters` only say that
 * more than one node acknowledged a write at some point. What counts from `verify`
 * is `missing`; whether two nodes took writes at once is `writerRuns`, per fault
 * window.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import tls from "node:tls";
import type { Connection } from "mariadb";
import { clientTls, openConnection } from "../jobs/mariadb/config.js";
import type { CheckerTarget } from "./pg-checker.js";
import {
  WriteChecker,
  type CheckerDriver,
  type CheckerSession,
  type TargetSource,
  type Timeouts,
} from "./write-checker.js";
import { judgeWriterRuns, type Row, type WriterRuns } from "./write-history.js";

/** Where a writer connects: the same shape as PostgreSQL's (TLS checked against `ssl.ca` and `host`). */
export type MariadbTarget = CheckerTarget;

/**
 * A statement with a deadline on the client. The connector's `queryTimeout` is the
 * server's max_statement_time, which a silent server never enforces; past the
 * deadline the connection is cut, and a commit it carried may or may not be there
 * (it was never acknowledged).
 */
async function timedQuery<R>(conn: Connection, ms: number, sql: string, values?: unknown[]): Promise<R> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      cut(conn);
      reject(new Error(`no answer from the server within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([conn.query<R>(sql, values), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Cuts a connection whose statement is still running. The connector's `destroy()`
 * would open another connection to KILL the statement and leave that KILL's failure
 * unhandled (a node not yet ready refuses it: "WSREP has not yet prepared node"), an
 * unhandled rejection that fails the test file; closing the connection's own socket
 * fails the statement without a KILL. Sockets are known for TLS connections (below);
 * any other is destroyed the connector's way.
 */
function cut(conn: Connection): void {
  const socket = socketOf.get(conn);
  // With an error: the connector listens for 'error' (not 'close') and fails the statement.
  if (socket) socket.destroy(new Error("statement deadline passed: connection cut by the checker"));
  else conn.destroy();
}
const socketOf = new WeakMap<Connection, tls.TLSSocket>();
/** The TLS socket a connection being opened in this context gets (see noteLateTlsErrors). */
const opening = new AsyncLocalStorage<{ socket?: tls.TLSSocket }>();

class MariadbSession implements CheckerSession {
  constructor(
    private readonly conn: Connection,
    private readonly table: string,
    private readonly queryMs: number,
    /** Who this connection's server is: asked once, as a connection stays on one server. */
    private readonly member: string,
  ) {}

  async insert(n: number): Promise<{ member: string; timeline: number }> {
    await this.query(`INSERT INTO ${this.table} (n, member, timeline) VALUES (?, ?, 0)`, [n, this.member]);
    return { member: this.member, timeline: 0 };
  }

  async createTable(): Promise<void> {
    await this.query(
      `CREATE TABLE IF NOT EXISTS ${this.table} (n BIGINT PRIMARY KEY, member VARCHAR(64) NOT NULL, timeline BIGINT NOT NULL, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB`,
    );
  }

  async readRows(firstN: number): Promise<Row[]> {
    // The read waits until this node applied every write the cluster committed before
    // it (zonal's my.cnf says so too; the checker does not depend on it).
    await this.query("SET SESSION wsrep_sync_wait = 1");
    // BIGINT comes back as a bigint (or a number, as the connector is configured).
    const rows = await this.query<Array<{ n: bigint | number; member: string; timeline: bigint | number }>>(
      `SELECT n, member, timeline FROM ${this.table} WHERE n >= ? ORDER BY n`,
      [firstN],
    );
    return rows.map((r) => ({ n: Number(r.n), member: r.member, timeline: Number(r.timeline) }));
  }

  close(): void {
    void this.conn.end().catch(() => cut(this.conn));
  }

  private query<R = unknown>(sql: string, values?: unknown[]): Promise<R> {
    return timedQuery<R>(this.conn, this.queryMs, sql, values);
  }
}

class MariadbDriver implements CheckerDriver<MariadbTarget> {
  constructor(
    private readonly table: string,
    private readonly memberExpr: string,
  ) {}

  async connect(target: MariadbTarget, timeouts: Timeouts): Promise<CheckerSession> {
    const slot: { socket?: tls.TLSSocket } = {};
    const conn = await opening.run(slot, () =>
      openConnection({
        host: target.host,
        port: target.port,
        user: target.user,
        password: target.password,
        database: target.database,
        ...(target.ssl ? { ssl: clientTls(target.host, target.ssl.ca) } : {}),
        connectTimeout: timeouts.connectMs,
        queryTimeout: timeouts.queryMs,
      }),
    );
    if (slot.socket) socketOf.set(conn, slot.socket);
    try {
      const [row] = await timedQuery<Array<{ member: string }>>(
        conn,
        timeouts.queryMs,
        `SELECT ${this.memberExpr} AS member`,
      );
      return new MariadbSession(conn, this.table, timeouts.queryMs, String(row!.member));
    } catch (err) {
      void conn.end().catch(() => cut(conn));
      throw err;
    }
  }
}

/**
 * The `mariadb` connector (3.x) gives up on a connection whose TLS handshake outlasts
 * `connectTimeout` by removing its TLS socket's listeners and destroying it; the socket
 * may still report the reset of its half-made handshake afterwards, to no listener: an
 * uncaught exception that fails the test file though every test passed. A checker
 * connects while nodes die (its job), so in a process that uses a checker every TLS
 * socket gets a listener that notes such a report on stderr (other listeners still get
 * every error). A known limit of the connector, not of zonal's servers.
 */
function noteLateTlsErrors(): void {
  if (tlsPatched) return;
  tlsPatched = true;
  const connect = tls.connect;
  (tls as { connect: typeof tls.connect }).connect = ((...args: Parameters<typeof tls.connect>) => {
    const socket = connect(...args);
    const slot = opening.getStore();
    if (slot) slot.socket = socket;
    const note = (err: Error) => {
      if (socket.listenerCount("error") === 1)
        process.stderr.write(`mariadb checker: a TLS socket nobody listens to any more: ${err.message}\n`);
    };
    socket.on("error", note);
    // The connector drops every listener when it gives up: this one comes back.
    const removeAll = socket.removeAllListeners.bind(socket);
    socket.removeAllListeners = (event?: string | symbol) => {
      removeAll(event);
      if (event === undefined || event === "error") socket.on("error", note);
      return socket;
    };
    return socket;
  }) as typeof tls.connect;
}
let tlsPatched = false;

export class MariadbChecker extends WriteChecker<MariadbTarget> {
  /**
   * `target` may be a function, asked again at every reconnect. `memberExpr` is the
   * SQL that names the node, asked once per connection (a server without Galera
   * answers its host name; two on one host need another, such as `@@port`);
   * `mainVia` names the main writer in the history ("vip": through the cluster's
   * address).
   */
  constructor(
    target: TargetSource<MariadbTarget>,
    readonly table = "checks",
    readonly memberExpr = "@@wsrep_node_name",
    mainVia = "vip",
  ) {
    super(new MariadbDriver(table, memberExpr), target, mainVia);
    noteLateTlsErrors();
  }

  /**
   * Which nodes acknowledged writes, in time order, by every writer (those straight to
   * each node too) within `window` (all of the history without one): interleaved runs
   * are two nodes taking writes in the same period.
   */
  writerRuns(window?: { from: number; to: number }): WriterRuns {
    return judgeWriterRuns(this.ackedWithin(window));
  }
}
