/**
 * PostgreSQL as a data service (the control plane's half; postgres-job.ts is the
 * agent's): the superuser and replication passwords, a member's state from its
 * cluster manager's status, bindings as login roles made through the primary, and
 * the broker's `database` parameter.
 */
import "../../lib/node-navigator.js"; // before pg: see there
import pg from "pg";
import { z } from "zod";
import { Conflict, errorMessage } from "../../lib/errors.js";
import { GiveUp, waitFor } from "../../lib/sleep.js";
import { checkBindingUser, databaseParameters } from "../bindings.js";
import { clusterHealth, updateOrder, type MemberRole, type RoleRules } from "../cluster-order.js";
import {
  UNREADABLE_MEMBER,
  type DataService,
  type MemberState,
  type ServiceEndpoint,
} from "../data-service.js";
import { PG_USER, postgresConfigSchema } from "./config.js";

/** What a binding's credentials hold (OSB `credentials`, and `zonal db-role`). */
export type PgCredentials = {
  /** postgres://user:password@HOST:port/database?sslmode=verify-full */
  uri: string;
  jdbcUrl: string;
  /** The address clients should use (the cluster's VIP, or the single instance's address). */
  host: string;
  port: number;
  database: string;
  username: string;
  password: string;
  /** Every member's address, for clients that find the primary themselves. */
  hosts: string[];
  /** Every member, and target_session_attrs=read-write: libpq-style clients find the primary without the VIP. */
  multihost_uri: string;
  /** Always "verify-full": the server's certificate is checked against ca_cert and the host. */
  sslmode: "verify-full";
  /** The control plane's CA (PEM) that signed every member's certificate. */
  ca_cert: string;
};

/** The job's properties with their defaults (the manifest checked them against the same schema). */
const configOf = (at: ServiceEndpoint) => postgresConfigSchema.parse(at.properties);
const portOf = (at: ServiceEndpoint) => configOf(at).port;
const databaseOf = (at: ServiceEndpoint) => configOf(at).database;

function credentials(at: ServiceEndpoint, username: string, password: string): PgCredentials {
  const port = portOf(at);
  const database = databaseOf(at);
  const auth = `${username}:${encodeURIComponent(password)}`;
  const db = encodeURIComponent(database);
  // pgJDBC checks the server's certificate against the CA a file names; the app writes ca_cert there.
  const q = `user=${encodeURIComponent(username)}&password=${encodeURIComponent(password)}&ssl=true&sslmode=verify-full`;
  return {
    uri: `postgres://${auth}@${at.host}:${port}/${db}?sslmode=verify-full`,
    jdbcUrl: `jdbc:postgresql://${at.host}:${port}/${db}?${q}`,
    host: at.host,
    port,
    database,
    username,
    password,
    hosts: at.hosts,
    multihost_uri: `postgres://${auth}@${at.hosts.map((h) => `${h}:${port}`).join(",")}/${db}?target_session_attrs=read-write&sslmode=verify-full`,
    sslmode: "verify-full",
    ca_cert: at.ca,
  };
}

/** Runs `run` on a superuser connection to the primary, over TLS checked against the CA. */
async function sql<T>(at: ServiceEndpoint, database: string, run: (c: pg.Client) => Promise<T>): Promise<T> {
  // The primary's address may be moving (a failover, a VIP being bound): connecting is
  // retried for a few seconds; a refusal that lasts is the error.
  const client = await waitFor(
    async () => {
      const c = new pg.Client({
        host: at.host,
        port: portOf(at),
        user: PG_USER,
        password: at.secrets.postgres_password ?? "",
        database,
        ssl: { ca: at.ca },
        connectionTimeoutMillis: 3000,
        query_timeout: 30_000,
      });
      try {
        await c.connect();
        return c;
      } catch (err) {
        await c.end().catch(() => undefined);
        if (!/ECONNREFUSED|EHOSTUNREACH|timeout|starting up|shutting down|recovery/i.test(errorMessage(err)))
          throw new GiveUp(errorMessage(err));
        throw err; // retried; the last one is named if it lasts
      }
    },
    { timeoutMs: 10_000, intervalMs: 300, what: `postgres at ${at.host}:${portOf(at)}` },
  );
  try {
    return await run(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function createRole(at: ServiceEndpoint, username: string, password: string): Promise<void> {
  checkBindingUser(username, password);
  const database = databaseOf(at);
  try {
    await sql(at, PG_USER, async (c) => {
      const exists = await c.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [username]);
      await c.query(
        `${exists.rowCount === 0 ? "CREATE" : "ALTER"} ROLE ${username} LOGIN PASSWORD '${password}'`,
      );
      await c.query(`GRANT CONNECT, CREATE, TEMPORARY ON DATABASE "${database}" TO ${username}`);
    });
    await sql(at, database, async (c) => {
      await c.query(`GRANT USAGE, CREATE ON SCHEMA public TO ${username}`);
    });
  } catch (err) {
    throw new Conflict(`could not create a role in ${at.deployment}: ${errorMessage(err)}`);
  }
}

/** Drops a role: its objects go to postgres, its connections are ended. Idempotent. */
async function dropRole(at: ServiceEndpoint, username: string): Promise<void> {
  checkBindingUser(username);
  await sql(at, PG_USER, async (c) => {
    const exists = await c.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [username]);
    if (exists.rowCount === 0) return;
    await c.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", [username]);
    await sql(at, databaseOf(at), async (d) => {
      await d.query(`REASSIGN OWNED BY ${username} TO ${PG_USER}`);
      await d.query(`DROP OWNED BY ${username}`);
    });
    await c.query(`DROP OWNED BY ${username}`);
    await c.query(`DROP ROLE ${username}`);
  });
}

const lsnBytes = (lsn: string): bigint | null => {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(lsn);
  return m ? (BigInt(`0x${m[1]}`) << 32n) + BigInt(`0x${m[2]}`) : null;
};

/** The cluster manager's status (manager.ts), as far as the control plane reads it. */
const statusSchema = z
  .object({
    role: z.string().max(40).optional(),
    timeline: z.number().int().nullable().optional(),
    lsn: z.string().max(40).nullable().optional(),
    upstream: z.string().max(255).nullable().optional(),
    decision: z.string().max(1000).optional(),
  })
  .passthrough();

function member(controller: unknown): MemberState {
  const s = statusSchema.safeParse(controller ?? {});
  if (!s.success) return UNREADABLE_MEMBER;
  return {
    role: s.data.role ?? "unknown",
    timeline: s.data.timeline ?? null,
    position: s.data.lsn ?? null,
    upstream: s.data.upstream ?? null,
    decision: s.data.decision ?? null,
  };
}

/** A replica is back in step once it streams within 1 MiB of the primary's WAL. */
const roles: RoleRules = {
  leader: "primary",
  follower: "replica",
  caughtUp: (m: MemberRole) =>
    m.role === "replica" && m.lag !== undefined && m.lag !== null && m.lag < 1_048_576,
};

export const postgresService: DataService = {
  type: "postgres",
  description: "PostgreSQL 15",
  secrets: ["postgres_password", "replication_password"],
  member,
  followerRole: "replica",
  lag(leader, position) {
    const a = lsnBytes(leader);
    const b = lsnBytes(position);
    return a === null || b === null ? null : Number(a > b ? a - b : 0n);
  },
  update: { order: updateOrder, caughtUp: roles.caughtUp },
  health: (members, leader) => clusterHealth(members, leader, roles),
  bindings: { create: createRole, drop: dropRole, credentials },
  parameters: databaseParameters,
};
