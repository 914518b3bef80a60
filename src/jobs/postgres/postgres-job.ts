/**
 * Job type `postgres`: PostgreSQL 15 on the persistent disk, as a single primary or
 * as a member of a replicated cluster run by the cluster manager (manager.ts).
 *
 * prepare (before every start) renders the config and puts the data directory in
 * the role the manager decided: initdb to bootstrap, pg_basebackup to clone,
 * pg_rewind (or a fresh clone) to rejoin after having been primary, standby.signal
 * for a replica.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { defineJobType } from "../job-type.js";
import {
  pgPaths,
  pgSecrets,
  tlsFiles,
  PG_BIN,
  PG_USER,
  postgresConfigSchema,
  type PostgresConfig,
} from "./config.js";
import { pgHbaConf, postgresqlConf } from "./files.js";
import { PostgresManager } from "./manager.js";
import { ensureCertificate } from "../service-tls.js";
import { basebackup, couldNotConnect, hasData, initdb, ownByPostgres, PgConn, rewind } from "./pg.js";

export const postgresJob = defineJobType<PostgresConfig, PostgresManager>({
  type: "postgres",
  description: "PostgreSQL 15: a single primary, or a member of a synchronous replicated cluster",
  configSchema: postgresConfigSchema,
  needsPersistentDisk: true,
  clustered: (config) => config.cluster,

  controller: (ctx, config, handle) => new PostgresManager(ctx, config, handle),

  async prepare(ctx, config, manager) {
    const paths = pgPaths(ctx);
    const secrets = pgSecrets(ctx);
    mkdirSync(paths.socketDir, { recursive: true });
    ownByPostgres(ctx.jobDir);
    ownByPostgres(paths.socketDir, 0o700);
    writeFileSync(
      paths.conf,
      postgresqlConf({ address: ctx.address, config, paths, member: ctx.cluster?.member ?? "single" }),
    );
    writeFileSync(paths.hba, pgHbaConf());
    await ensureCertificate(ctx, paths.tlsDir, PG_USER);
    if (!manager) throw new Error("no cluster manager for this job");
    const role = await manager.awaitRole();
    const standbySignal = join(paths.data, "standby.signal");
    // Postgres is not running now (prepare runs before it starts): a lock file is a dead VM's leftover.
    rmSync(join(paths.data, "postmaster.pid"), { force: true });
    if (role.role === "primary") {
      if (!hasData(paths)) {
        if (!role.bootstrap) throw new Error("no data directory, and this member is not bootstrapping");
        ctx.log("initdb: bootstrapping a new database cluster");
        await initdb(paths, secrets);
      }
      rmSync(standbySignal, { force: true });
      return;
    }
    if (!hasData(paths)) {
      if (!role.leader) throw new Error("no data directory and no leader to clone from yet");
      ctx.log(`pg_basebackup from ${role.leader.member} (${role.leader.address})`);
      await basebackup(paths, role.leader, secrets);
    } else if (role.rewind && role.leader) {
      const r = await rewind(paths, role.leader, secrets);
      if (r.code === 0)
        ctx.log(`pg_rewind onto ${role.leader.member}: ${r.output.split("\n").at(-1) ?? "done"}`);
      else if (couldNotConnect(r.output)) {
        // The leader is away: nothing is known about this data; tried again later.
        throw new Error(
          `pg_rewind could not reach ${role.leader.member}: ${r.output.split("\n").at(-1) ?? ""}`,
        );
      } else {
        ctx.log(
          `pg_rewind failed (${r.output.split("\n").at(-1) ?? ""}); cloning again from ${role.leader.member}`,
        );
        await basebackup(paths, role.leader, secrets);
      }
      manager.rewound();
    }
    writeFileSync(standbySignal, "");
    ownByPostgres(standbySignal);
  },

  process(ctx, config) {
    const paths = pgPaths(ctx);
    return {
      command: `${PG_BIN}/postgres`,
      args: ["-D", paths.data, "-c", `config_file=${paths.conf}`],
      user: PG_USER,
      cwd: ctx.jobDir,
      // Fast shutdown: the postmaster terminates its backends (SIGTERM) and aborts their
      // transactions at once. Only the postmaster is signalled: SIGINT to a backend is a
      // query cancel, and a cancelled wait for a synchronous standby acknowledges the
      // commit to the client although no standby confirmed it.
      stopSignal: "SIGINT",
      stopSignalTo: "process",
      // Immediate shutdown, for a member that must stop now (it lost its role): a fast
      // one waits for standbys to take the last WAL, and a cut-off one never does.
      abortSignal: "SIGQUIT",
      env: { PGPORT: String(config.port) },
    };
  },

  healthCheck(ctx, config) {
    const conn = new PgConn(ctx.address, config.port, pgSecrets(ctx).postgres, tlsFiles(pgPaths(ctx)).ca);
    return {
      kind: "probe",
      describe: `SELECT 1 on ${ctx.address}:${config.port}`,
      async run() {
        try {
          await conn.query("SELECT 1");
        } finally {
          conn.reset();
        }
      },
    };
  },
});
