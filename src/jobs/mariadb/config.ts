/**
 * Job type `mariadb`: its properties, and where things live.
 *
 *   type: mariadb
 *   properties:
 *     database: app          # created at first start; bindings get every right on it
 *     port: 3306
 *     cluster: true          # a member of a Galera cluster (the group's 3 instances)
 *     status_port: 8009      # the member's status API (cluster only)
 *     parameters: { max_connections: 200 }   # more server variables for my.cnf
 *
 * The data directory is on the persistent disk (`<disk>/mariadb/data`); my.cnf, the
 * socket, the init file and the certificate are in the job's directory. The admin
 * password (the control plane makes bindings with it) comes from the deployment's
 * secrets (`mariadb_admin_password`).
 */
import { join } from "node:path";
import { checkServerIdentity } from "node:tls";
import mariadb, { type Connection, type ConnectionConfig } from "mariadb";
import { z } from "zod";
import type { JobContext } from "../job-type.js";

const port = z.number().int().min(1).max(65535, "expected a port up to 65535");

/** Server variables the job sets itself: security, addresses, paths, durability, replication. */
const RESERVED =
  /^(ssl|tls|require_secure_transport|init_file|bind_address|port|socket|datadir|pid_file|skip_networking|skip_grant_tables|skip_name_resolve|innodb_flush_log_at_trx_commit|innodb_autoinc_lock_mode|sync_binlog|binlog_format|default_storage_engine|read_only|wsrep|plugin|secure_)/;

export const mariadbConfigSchema = z
  .object({
    database: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,62}$/, "expected a database name of lowercase letters, digits and _")
      .default("app"),
    port: port.default(3306),
    cluster: z.boolean().default(false),
    status_port: port.default(8009),
    parameters: z
      .record(
        z
          .string()
          .regex(/^[a-z_]+$/, "expected a server variable name")
          .refine(
            (k) => !RESERVED.test(k),
            "set by zonal (TLS, addresses, paths, durability): not a parameter",
          ),
        z.union([z.string().regex(/^[A-Za-z0-9_.:/-]*$/, "expected a plain value"), z.number(), z.boolean()]),
      )
      .default({}),
  })
  .strict();

export type MariadbConfig = z.output<typeof mariadbConfigSchema>;

export const MARIADBD = "/usr/sbin/mariadbd";
export const INSTALL_DB = "/usr/bin/mariadb-install-db";
export const GALERA_PROVIDER = "/usr/lib/galera/libgalera_smm.so";
/** Galera's ports on a member's address: group communication, incremental and full state transfer. */
export const GALERA_PORTS = { gcomm: 4567, ist: 4568, sst: 4444 } as const;
/** The system user mariadbd runs as (Debian's package makes it). */
export const MYSQL_USER = "mysql";
/** The account the control plane makes bindings with (TLS only, from anywhere). */
export const ADMIN_USER = "zonal_admin";
export const ADMIN_SECRET = "mariadb_admin_password";

export interface MariadbPaths {
  data: string;
  cnf: string;
  /** SQL run at every server start (the admin account, the database): idempotent. */
  initFile: string;
  socket: string;
  runDir: string;
  tlsDir: string;
  /** Galera's saved state (uuid, seqno, safe_to_bootstrap) in the data directory. */
  grastate: string;
  /** What the last `mariadbd --wsrep-recover` logged. */
  recoverLog: string;
}

export function mariadbPaths(ctx: JobContext): MariadbPaths {
  if (!ctx.persistentDir)
    throw new Error("the mariadb job needs a persistent disk (persistent_disk_type in the manifest)");
  return {
    data: join(ctx.persistentDir, "mariadb", "data"),
    cnf: join(ctx.jobDir, "my.cnf"),
    initFile: join(ctx.jobDir, "init.sql"),
    runDir: join(ctx.jobDir, "run"),
    socket: join(ctx.jobDir, "run", "mysqld.sock"),
    tlsDir: join(ctx.jobDir, "tls"),
    grastate: join(ctx.persistentDir, "mariadb", "data", "grastate.dat"),
    recoverLog: join(ctx.jobDir, "run", "wsrep-recover.log"),
  };
}

/** The admin password from the deployment's secrets. */
export function adminPassword(ctx: JobContext): string {
  const pw = ctx.secrets[ADMIN_SECRET];
  if (!pw) throw new Error(`the spec has no ${ADMIN_SECRET} (the director makes it for mariadb groups)`);
  return pw;
}

/**
 * TLS options for a client of the server at `host`: its certificate must chain to
 * `ca` and name `host` (an IP address: the connector would otherwise check the name
 * "localhost").
 */
export function clientTls(
  host: string,
  ca: string,
): { ca: string; checkServerIdentity: typeof checkServerIdentity } {
  return { ca, checkServerIdentity: (_name, cert) => checkServerIdentity(host, cert) };
}

/**
 * A connection to a server. A server that goes away makes a connection emit an error
 * event; with nobody listening that would end the process holding it (the agent, the
 * control plane), so every connection gets `onError` (default: nothing).
 *
 * `queryTimeout` (the session's max_statement_time) is set here, awaited, rather than
 * by the connector: the connector sets it with a promise nobody awaits, and a server
 * that resets the connection at that moment ends the process with an unhandled
 * rejection.
 */
export async function openConnection(
  options: ConnectionConfig,
  onError: () => void = () => undefined,
): Promise<Connection> {
  const { queryTimeout, ...rest } = options;
  const conn = await mariadb.createConnection(rest);
  conn.on("error", onError);
  if (queryTimeout) {
    try {
      // No `timeout` on this one: the connector would wrap it in SET STATEMENT … FOR, which undoes it.
      await conn.query(`SET max_statement_time=${queryTimeout / 1000}`);
    } catch (err) {
      conn.destroy();
      throw err;
    }
  }
  return conn;
}

/** How the agent reaches its own server: root through the unix socket (unix_socket authentication). */
export const localRoot = (paths: Pick<MariadbPaths, "socket">, timeoutMs: number): ConnectionConfig => ({
  socketPath: paths.socket,
  user: "root",
  connectTimeout: timeoutMs,
});
