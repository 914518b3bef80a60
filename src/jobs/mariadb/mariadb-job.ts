/**
 * Job type `mariadb`: MariaDB 10.11 (Debian's) on the persistent disk, a single
 * server or a member of a Galera cluster (`cluster: true`). prepare renders my.cnf
 * and the init file, gets the server's certificate from the control plane's CA, and
 * initializes the data directory the first time (mariadb-install-db; root only
 * through the unix socket). A single server runs the init file at every start: the
 * admin account the control plane makes bindings with (TLS only) and the database.
 *
 * A cluster member finds where its data ends (grastate.dat, or `mariadbd
 * --wsrep-recover` after an unclean stop) and waits for its Galera manager to decide
 * how it starts: joining the Primary component (IST from that position when a donor
 * still has the writes since, SST by mariabackup otherwise), or bootstrapping a new
 * one — then, and only then, with the init file.
 */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { ConnectionConfig } from "mariadb";
import { writeFileAtomic } from "../../lib/files.js";
import { ownBy, ownedDir } from "../../lib/users.js";
import { defineJobType } from "../job-type.js";
import { ensureCertificate, tlsFiles } from "../service-tls.js";
import {
  localRoot,
  openConnection,
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
import { initSql, myCnf, type GaleraStart } from "./files.js";
import { GaleraManager } from "./galera-manager.js";
import { known, parseGrastate, parseRecoveredPosition, type Position } from "./galera.js";

/** A directory owned by mysql (created if missing). */
const mysqlDir = (path: string, mode: number) => ownedDir(path, MYSQL_USER, mode);

/** Runs one of the server's tools to its end; rejects with its output's tail when it fails. */
function runTool(command: string, args: string[]): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const child = spawn(command, args, {
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8" },
      cwd: "/",
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve() : reject(new Error(`${command} failed (${code}): ${output.slice(-2000)}`)),
    );
  });
}

/**
 * Runs mariadb-install-db into `<data>.new` (no option file but what it is given:
 * Debian's /etc/mysql is not the job's), then renames it into place: a half-finished
 * install is never taken for data, and is done again. Rejects with its output.
 */
async function installDb(paths: MariadbPaths): Promise<void> {
  const fresh = `${paths.data}.new`;
  rmSync(fresh, { recursive: true, force: true });
  mysqlDir(fresh, 0o700);
  await runTool(INSTALL_DB, [
    "--no-defaults",
    `--user=${MYSQL_USER}`,
    `--datadir=${fresh}`,
    "--auth-root-authentication-method=socket",
    "--skip-test-db",
  ]);
  rmSync(paths.data, { recursive: true, force: true });
  renameSync(fresh, paths.data);
}

/**
 * Where a Galera member's data ends: "empty" when it never held the cluster's data
 * (no saved state), its saved state after a clean stop, or what InnoDB says after an
 * unclean one (`--wsrep-recover`; null when even that cannot tell).
 */
async function localPosition(paths: MariadbPaths): Promise<Position | "empty" | null> {
  if (!existsSync(paths.grastate)) return "empty";
  const saved = parseGrastate(readFileSync(paths.grastate, "utf8"));
  if (saved && /^0{8}-/.test(saved.uuid)) return "empty";
  if (saved && known(saved)) return { uuid: saved.uuid, seqno: saved.seqno };
  rmSync(paths.recoverLog, { force: true });
  await runTool(MARIADBD, [
    `--defaults-file=${paths.cnf}`,
    `--user=${MYSQL_USER}`,
    "--wsrep-recover",
    `--log-error=${paths.recoverLog}`,
  ]).catch(() => undefined);
  const recovered = existsSync(paths.recoverLog)
    ? parseRecoveredPosition(readFileSync(paths.recoverLog, "utf8"))
    : null;
  return known(recovered) ? recovered : null;
}

/** Lets Galera bootstrap from this node's data: its manager decided so, holding the lease. */
function markSafeToBootstrap(paths: MariadbPaths): void {
  if (!existsSync(paths.grastate)) return;
  const text = readFileSync(paths.grastate, "utf8");
  writeFileAtomic(paths.grastate, text.replace(/^safe_to_bootstrap:.*$/m, "safe_to_bootstrap: 1"), 0o660);
  ownBy(paths.grastate, MYSQL_USER);
}

/** The data directory was initialized (its system tables exist). */
const hasData = (paths: MariadbPaths) => existsSync(join(paths.data, "mysql"));

/** One statement on a connection of its own, closed after. */
async function queryOnce(options: ConnectionConfig, sql: string): Promise<void> {
  const conn = await openConnection(options);
  try {
    await conn.query(sql);
  } finally {
    await conn.end().catch(() => conn.destroy());
  }
}

export const mariadbJob = defineJobType<MariadbConfig, GaleraManager>({
  type: "mariadb",
  description:
    "MariaDB 10.11 on a persistent disk: a single server, or a Galera cluster member (TLS for every TCP client)",
  configSchema: mariadbConfigSchema,
  needsPersistentDisk: true,
  clustered: (config) => config.cluster,

  controller(ctx, config, handle) {
    return config.cluster ? new GaleraManager(ctx, config, handle) : undefined;
  },

  async prepare(ctx, config, manager) {
    const paths = mariadbPaths(ctx);
    mysqlDir(ctx.jobDir, 0o750);
    mysqlDir(paths.runDir, 0o750);
    mysqlDir(dirname(paths.data), 0o750);
    await ensureCertificate(ctx, paths.tlsDir, MYSQL_USER);
    writeFileAtomic(
      paths.initFile,
      initSql({ database: config.database, adminPassword: adminPassword(ctx) }),
      0o600,
    );
    ownBy(paths.initFile, MYSQL_USER);
    const cnf = (galera?: GaleraStart) =>
      writeFileSync(
        paths.cnf,
        myCnf({
          address: ctx.address,
          config,
          paths,
          ...(galera ? { galera, initFile: galera.bootstrap } : {}),
        }),
        { mode: 0o644 },
      );
    if (!manager) {
      cnf();
    } else {
      // A joining member's my.cnf first: --wsrep-recover reads it.
      const member = { clusterName: ctx.cluster!.key, nodeName: ctx.cluster!.member, position: null };
      cnf({ ...member, peers: [ctx.address], bootstrap: false });
      const at = hasData(paths) ? await localPosition(paths) : "empty";
      if (at === null) ctx.log("galera: this node's position could not be recovered");
      const plan = await manager.awaitStart(at);
      ctx.log(
        `galera: ${plan.bootstrap ? "bootstrapping a new Primary component" : `joining ${plan.peers.join(", ")}`}`,
      );
      if (plan.bootstrap) markSafeToBootstrap(paths);
      cnf({
        ...member,
        peers: plan.peers,
        bootstrap: plan.bootstrap,
        position: at !== "empty" && known(at) ? at : null,
      });
    }
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
    if (config.cluster) {
      // Alive, whatever the cluster's state: a node outside the Primary component (or
      // one whose commits wait while the cluster evicts a silent peer) is the Galera
      // manager's business, not a reason to kill the process.
      const paths = mariadbPaths(ctx);
      return {
        kind: "probe",
        describe: `SHOW STATUS through ${paths.socket}`,
        run: () => queryOnce(localRoot(paths, 2000), "SHOW STATUS LIKE 'wsrep_ready'"),
      };
    }
    const ca = tlsFiles(mariadbPaths(ctx).tlsDir).ca;
    return {
      kind: "probe",
      describe: `SELECT 1 over TLS on ${ctx.address}:${config.port}`,
      run: () =>
        queryOnce(
          {
            host: ctx.address,
            port: config.port,
            user: ADMIN_USER,
            password: adminPassword(ctx),
            ssl: clientTls(ctx.address, readFileSync(ca, "utf8")),
            connectTimeout: 2000,
          },
          "SELECT 1",
        ),
    };
  },
});
