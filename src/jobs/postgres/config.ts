/**
 * Job type `postgres`: its config, and where things live.
 *
 *   type: postgres
 *   properties:
 *     database: app          # created at bootstrap, owned by the bindings' roles' grants
 *     port: 5432
 *     cluster: true          # a member of a replicated cluster (the group's instances)
 *     synchronous: strict    # strict | on | off (cluster only; see README)
 *     status_port: 8008      # the member's read-only status API on its VM address
 *     parameters: { max_connections: 200 }
 *
 * The data directory is on the persistent disk (`<disk>/postgres/data`); config files
 * and the unix socket are in the job's directory. Passwords come from the
 * deployment's secrets (`postgres_password`, `replication_password`).
 */
import { join } from "node:path";
import { z } from "zod";
import type { JobContext } from "../job-type.js";
import { tlsFiles as serviceTlsFiles, type TlsFiles } from "../service-tls.js";

const port = z.number().int().min(1).max(65535, "expected a port up to 65535");

export const postgresConfigSchema = z
  .object({
    database: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,62}$/, "expected a database name of lowercase letters, digits and _")
      .default("app"),
    port: port.default(5432),
    cluster: z.boolean().default(false),
    synchronous: z.enum(["strict", "on", "off"]).default("strict"),
    status_port: port.default(8008),
    parameters: z
      .record(
        z.string().regex(/^[a-z_.]+$/, "expected a parameter name"),
        z.union([z.string(), z.number(), z.boolean()]),
      )
      .default({}),
  })
  .strict();

export type PostgresConfig = z.output<typeof postgresConfigSchema>;

export const PG_BIN = "/usr/lib/postgresql/15/bin";
export const PG_USER = "postgres";
export const REPLICATION_USER = "replicator";

export interface PgPaths {
  data: string;
  conf: string;
  hba: string;
  roleConf: string;
  roleFile: string;
  socketDir: string;
  pwFile: string;
  /** The member's certificate, key and the control plane's CA (tls.ts). */
  tlsDir: string;
}

export function pgPaths(ctx: JobContext): PgPaths {
  if (!ctx.persistentDir)
    throw new Error("the postgres job needs a persistent disk (persistent_disk_type in the manifest)");
  return {
    data: join(ctx.persistentDir, "postgres", "data"),
    conf: join(ctx.jobDir, "postgresql.conf"),
    hba: join(ctx.jobDir, "pg_hba.conf"),
    roleConf: join(ctx.jobDir, "role.conf"),
    roleFile: join(ctx.jobDir, "role.json"),
    socketDir: join(ctx.jobDir, "run"),
    pwFile: join(ctx.jobDir, "pwfile"),
    tlsDir: join(ctx.jobDir, "tls"),
  };
}

/** The member's certificate files (src/jobs/service-tls.ts), in its tls/ directory. */
export const tlsFiles = (paths: Pick<PgPaths, "tlsDir">): TlsFiles => serviceTlsFiles(paths.tlsDir);

export interface PgSecrets {
  postgres: string;
  replication: string;
}

export function pgSecrets(ctx: JobContext): PgSecrets {
  const postgres = ctx.secrets.postgres_password;
  const replication = ctx.secrets.replication_password;
  if (!postgres || !replication)
    throw new Error("the postgres job needs the secrets postgres_password and replication_password");
  return { postgres, replication };
}
