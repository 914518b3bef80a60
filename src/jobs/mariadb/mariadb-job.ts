/**
 * Job type `mariadb`: MariaDB 10.11 (Debian's) on the persistent disk, a single
 * server for now. prepare renders my.cnf and the init file, gets the server's
 * certificate from the control plane's CA, and initializes the data directory the
 * first time (mariadb-install-db; root only through the unix socket). The server then
 * runs the init file at every start: the admin account the control plane makes
 * bindings with (TLS only) and the database.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import mariadb from "mariadb";
import { writeFileAtomic } from "../../lib/files.js";
import { ownBy, ownedDir } from "../../lib/users.js";
import { defineJobType } from "../job-type.js";
import { ensureCertificate, tlsFiles } from "../service-tls.js";
import {
  ADMIN_USER,
  INSTALL_DB,
  MARIADBD,
  MYSQL_USER,
  adminPassword,
  clientTls,
  mariadbConfigSchema,
  mariadbPaths,
  type MariadbConfig,
  type MariadbPaths,
} from "./config.js";
import { initSql, myCnf } from "./files.js";

/** A directory owned by mysql (created if missing). */
const mysqlDir = (path: string, mode: number) => ownedDir(path, MYSQL_USER, mode);

/**
 * Runs mariadb-install-db into `<data>.new` (no option file but what it is given:
 * Debian's /etc/mysql is not the job's), then renames it into place: a half-finished
 * install is never taken for data, and is done again. Rejects with its output.
 */
async function installDb(paths: MariadbPaths): Promise<void> {
  const fresh = `${paths.data}.new`;
  rmSync(fresh, { recursive: true, force: true });
  mysqlDir(fresh, 0o700);
  await new Promise<void>((resolve, reject) => {
    const child = spawn(
      INSTALL_DB,
      [
        "--no-defaults",
        `--user=${MYSQL_USER}`,
        `--datadir=${fresh}`,
        "--auth-root-authentication-method=socket",
        "--skip-test-db",
      ],
      { env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8" }, cwd: "/" },
    );
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`mariadb-install-db failed (${code}): ${output.slice(-2000)}`)),
    );
  });
  rmSync(paths.data, { recursive: true, force: true });
  renameSync(fresh, paths.data);
}

/** The data directory was initialized (its system tables exist). */
const hasData = (paths: MariadbPaths) => existsSync(join(paths.data, "mysql"));

export const mariadbJob = defineJobType<MariadbConfig>({
  type: "mariadb",
  description: "MariaDB 10.11 on a persistent disk (a single server; TLS for every TCP client)",
  configSchema: mariadbConfigSchema,
  needsPersistentDisk: true,

  async prepare(ctx, config) {
    const paths = mariadbPaths(ctx);
    mysqlDir(ctx.jobDir, 0o750);
    mysqlDir(paths.runDir, 0o750);
    mysqlDir(dirname(paths.data), 0o750);
    await ensureCertificate(ctx, paths.tlsDir, MYSQL_USER);
    writeFileSync(paths.cnf, myCnf({ address: ctx.address, config, paths }), { mode: 0o644 });
    writeFileAtomic(
      paths.initFile,
      initSql({ database: config.database, adminPassword: adminPassword(ctx) }),
      0o600,
    );
    ownBy(paths.initFile, MYSQL_USER);
    if (!hasData(paths)) {
      ctx.log("mariadb-install-db: initializing a new data directory");
      await installDb(paths);
    }
  },

  process(ctx) {
    const paths = mariadbPaths(ctx);
    return {
      command: MARIADBD,
      args: [`--defaults-file=${paths.cnf}`],
      user: MYSQL_USER,
      cwd: ctx.jobDir,
      // SIGTERM: a clean shutdown (InnoDB flushes; every acknowledged commit is on disk already).
      stopSignal: "SIGTERM",
    };
  },

  healthCheck(ctx, config) {
    const ca = tlsFiles(mariadbPaths(ctx).tlsDir).ca;
    return {
      kind: "probe",
      describe: `SELECT 1 over TLS on ${ctx.address}:${config.port}`,
      async run() {
        const conn = await mariadb.createConnection({
          host: ctx.address,
          port: config.port,
          user: ADMIN_USER,
          password: adminPassword(ctx),
          ssl: clientTls(ctx.address, readFileSync(ca, "utf8")),
          connectTimeout: 2000,
        });
        try {
          await conn.query("SELECT 1");
        } finally {
          await conn.end().catch(() => conn.destroy());
        }
      },
    };
  },
});
