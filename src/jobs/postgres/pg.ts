/**
 * PostgreSQL tools and SQL as the postgres job uses them: initdb, pg_basebackup and
 * pg_rewind run as the `postgres` system user (PostgreSQL refuses root); SQL goes
 * over TCP to the member's own address as the superuser.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import "../../lib/node-navigator.js"; // before pg: see there
import pg from "pg";
import { lookupUser, ownBy, ownedDir } from "../../lib/users.js";
import { parseLsn } from "./files.js";
import { PG_BIN, PG_USER, REPLICATION_USER, tlsFiles, type PgPaths, type PgSecrets } from "./config.js";

export interface ToolResult {
  code: number | null;
  output: string;
}

/** Runs a PostgreSQL binary as the postgres user; resolves with its exit code and output. */
export function runPgTool(
  tool: string,
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 300_000,
): Promise<ToolResult> {
  const user = lookupUser(PG_USER);
  return new Promise((resolve) => {
    const child = spawn(`${PG_BIN}/${tool}`, args, {
      uid: user.uid,
      gid: user.gid,
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C.UTF-8", HOME: user.home, ...env },
      cwd: "/",
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (err) => {
      clearTimeout(timer);
      resolve({ code: -1, output: err.message });
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output: output.trim().slice(-4000) });
    });
  });
}

/** Creates the parent of the data dir owned by postgres (0700), so tools running as postgres may write it. */
export function ensureDataParent(paths: PgPaths): void {
  ownedDir(dirname(paths.data), PG_USER, 0o700);
}

export const ownByPostgres = (path: string, mode?: number): void => ownBy(path, PG_USER, mode);

export const hasData = (paths: PgPaths): boolean => existsSync(`${paths.data}/PG_VERSION`);

export async function initdb(paths: PgPaths, secrets: PgSecrets): Promise<void> {
  ensureDataParent(paths);
  writeFileSync(paths.pwFile, secrets.postgres + "\n", { mode: 0o600 });
  ownByPostgres(paths.pwFile);
  try {
    const r = await runPgTool("initdb", [
      "-D",
      paths.data,
      "-U",
      PG_USER,
      "-k",
      "-E",
      "UTF8",
      "--auth=scram-sha-256",
      `--pwfile=${paths.pwFile}`,
    ]);
    if (r.code !== 0) throw new Error(`initdb failed: ${r.output}`);
  } finally {
    rmSync(paths.pwFile, { force: true });
  }
}

export async function basebackup(
  paths: PgPaths,
  leader: { address: string; port: number },
  secrets: PgSecrets,
): Promise<void> {
  ensureDataParent(paths);
  // Cloned beside the data directory and swapped in only once complete: a clone that
  // fails (the leader went away) leaves the old data as it was.
  const clone = `${paths.data}.clone`;
  rmSync(clone, { recursive: true, force: true });
  const r = await runPgTool(
    "pg_basebackup",
    [
      "-D",
      clone,
      "-h",
      leader.address,
      "-p",
      String(leader.port),
      "-U",
      REPLICATION_USER,
      "-X",
      "stream",
      "-c",
      "fast",
    ],
    { PGPASSWORD: secrets.replication, PGCONNECT_TIMEOUT: "5", ...verifyFull(paths) },
  );
  if (r.code !== 0) {
    rmSync(clone, { recursive: true, force: true });
    throw new Error(`pg_basebackup from ${leader.address} failed: ${r.output}`);
  }
  rmSync(paths.data, { recursive: true, force: true });
  renameSync(clone, paths.data);
}

/** True when a tool's output says it could not reach its server (nothing to conclude about the data). */
export const couldNotConnect = (output: string): boolean =>
  /could not connect|connection to server .* failed|timeout expired|Connection refused/i.test(output);

/**
 * Rewinds the (stopped) data dir onto the leader's timeline. False when pg_rewind cannot (then clone again).
 *
 * A CHECKPOINT on the leader first (what Patroni does after a promotion): pg_rewind
 * takes the timeline it writes beside the minimum recovery point from the source's
 * last checkpoint, and a leader promoted moments ago has not finished one on its new
 * timeline yet; the rewound member would then refuse to start ("requested timeline N
 * does not contain minimum recovery point … on timeline N-1").
 */
export async function rewind(
  paths: PgPaths,
  leader: { address: string; port: number },
  secrets: PgSecrets,
): Promise<ToolResult> {
  const conn = new PgConn(leader.address, leader.port, secrets.postgres, tlsFiles(paths).ca);
  try {
    await conn.query("CHECKPOINT");
  } catch (err) {
    const why = String(err);
    // Unreachable: nothing is known about this data, tried again later. Refused
    // otherwise: like a failed rewind (a fresh clone).
    return {
      code: 1,
      output: /ECONNREFUSED|ETIMEDOUT|EHOSTUNREACH|ECONNRESET|timeout|terminated/i.test(why)
        ? `could not connect to ${leader.address} for a CHECKPOINT: ${why}`
        : `CHECKPOINT on ${leader.address} failed: ${why}`,
    };
  } finally {
    conn.reset();
  }
  return runPgTool(
    "pg_rewind",
    [
      "-D",
      paths.data,
      `--source-server=host=${leader.address} port=${leader.port} user=${PG_USER} dbname=postgres connect_timeout=2`,
    ],
    { PGPASSWORD: secrets.postgres, ...verifyFull(paths) },
  );
}

/** libpq's environment for a member-to-member connection: TLS, the peer's certificate checked against the CA and its address. */
const verifyFull = (paths: PgPaths) => ({ PGSSLMODE: "verify-full", PGSSLROOTCERT: tlsFiles(paths).ca });

/** A superuser SQL connection to one member; reconnects after a failure. */
export class PgConn {
  private client: pg.Client | undefined;

  constructor(
    private readonly host: string,
    private readonly port: number,
    private readonly password: string,
    /** The CA the member's certificate is checked against (TLS with the address verified). */
    private readonly caFile: string,
  ) {}

  async query<T extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params: unknown[] = [],
  ): Promise<T[]> {
    if (!this.client) {
      const client = new pg.Client({
        host: this.host,
        port: this.port,
        user: PG_USER,
        password: this.password,
        database: "postgres",
        ssl: { ca: readFileSync(this.caFile, "utf8") },
        connectionTimeoutMillis: 2000,
        query_timeout: 10_000,
        statement_timeout: 10_000,
      });
      client.on("error", () => this.reset());
      await client.connect();
      this.client = client;
    }
    try {
      return (await this.client.query<T>(sql, params)).rows;
    } catch (err) {
      if ((err as { code?: string }).code === undefined) this.reset();
      throw err;
    }
  }

  reset(): void {
    const c = this.client;
    this.client = undefined;
    void c?.end().catch(() => undefined);
  }
}

export interface PgState {
  running: boolean;
  inRecovery: boolean | null;
  /** The newest WAL position this member has: written (primary) or received (replica). */
  lsn: string | null;
  timeline: number | null;
  /** The upstream a replica streams from, if it does. */
  upstream: string | null;
}

export async function observe(conn: PgConn): Promise<PgState> {
  try {
    const [row] = await conn.query<{
      rec: boolean;
      cur: string | null;
      rcv: string | null;
      rpl: string | null;
      tli: number | null;
      up: string | null;
    }>(
      `SELECT pg_is_in_recovery() AS rec,
              CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END AS cur,
              pg_last_wal_receive_lsn()::text AS rcv,
              pg_last_wal_replay_lsn()::text AS rpl,
              CASE WHEN pg_is_in_recovery()
                THEN COALESCE((SELECT received_tli FROM pg_stat_wal_receiver), (SELECT timeline_id FROM pg_control_checkpoint()))
                -- a primary's timeline is its current WAL file's (the checkpoint's lags behind a promotion)
                ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END AS tli,
              (SELECT sender_host FROM pg_stat_wal_receiver WHERE status = 'streaming') AS up`,
    );
    const r = row!;
    return {
      running: true,
      inRecovery: r.rec,
      lsn: r.rec ? (greater(r.rcv, r.rpl) ?? null) : r.cur,
      timeline: r.tli === null ? null : Number(r.tli),
      upstream: r.up,
    };
  } catch {
    return { running: false, inRecovery: null, lsn: null, timeline: null, upstream: null };
  }
}

function greater(a: string | null, b: string | null): string | null {
  if (!a) return b;
  if (!b) return a;
  return parseLsn(a)! >= parseLsn(b)! ? a : b;
}
