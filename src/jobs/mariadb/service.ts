/**
 * MariaDB as a data service (the control plane's half; mariadb-job.ts is the agent's):
 * its admin password, bindings as users made through the server over TLS (each with
 * its own password and every right on the instance's database, TLS required), the
 * credentials' shape (mysql:// URI, JDBC URL for MariaDB Connector/J), and the
 * broker's `database` parameter.
 */
import type { Connection } from "mariadb";
import { z } from "zod";
import { Conflict, errorMessage } from "../../lib/errors.js";
import { GiveUp, waitFor } from "../../lib/sleep.js";
import { checkBindingUser, databaseParameters } from "../bindings.js";
import { clusterHealth, updateOrder, type RoleRules } from "../cluster-order.js";
import {
  UNREADABLE_MEMBER,
  type DataService,
  type MemberState,
  type ServiceEndpoint,
} from "../data-service.js";
import { ADMIN_SECRET, ADMIN_USER, clientTls, mariadbConfigSchema, openConnection } from "./config.js";

/** The job's properties with their defaults (the manifest checked them against the same schema). */
const configOf = (at: ServiceEndpoint) => mariadbConfigSchema.parse(at.properties);
const portOf = (at: ServiceEndpoint) => configOf(at).port;
const databaseOf = (at: ServiceEndpoint) => configOf(at).database;

/** What a binding's credentials hold. */
export type MariadbCredentials = {
  /** mysql://user:password@HOST:port/database?ssl-mode=VERIFY_IDENTITY */
  uri: string;
  /** For MariaDB Connector/J: TLS with the server's certificate checked against the CA file the app writes ca_cert to. */
  jdbcUrl: string;
  host: string;
  port: number;
  database: string;
  username: string;
  password: string;
  /** Every server's address. */
  hosts: string[];
  /** The control plane's CA (PEM) that signed the server's certificate. */
  ca_cert: string;
};

function credentials(at: ServiceEndpoint, username: string, password: string): MariadbCredentials {
  const port = portOf(at);
  const database = databaseOf(at);
  const u = encodeURIComponent(username);
  const p = encodeURIComponent(password);
  return {
    uri: `mysql://${u}:${p}@${at.host}:${port}/${encodeURIComponent(database)}?ssl-mode=VERIFY_IDENTITY`,
    jdbcUrl: `jdbc:mariadb://${at.host}:${port}/${encodeURIComponent(database)}?user=${u}&password=${p}&sslMode=verify-full`,
    host: at.host,
    port,
    database,
    username,
    password,
    hosts: at.hosts,
    ca_cert: at.ca,
  };
}

/** Runs `run` as the admin on the server, over TLS checked against the CA (retried a few seconds while it starts or moves). */
async function admin<T>(at: ServiceEndpoint, run: (c: Connection) => Promise<T>): Promise<T> {
  const conn = await waitFor(
    async () => {
      try {
        return await openConnection({
          host: at.host,
          port: portOf(at),
          user: ADMIN_USER,
          password: at.secrets[ADMIN_SECRET] ?? "",
          ssl: clientTls(at.host, at.ca),
          connectTimeout: 3000,
          queryTimeout: 30_000,
        });
      } catch (err) {
        if (!/ECONNREFUSED|EHOSTUNREACH|timeout|starting|shutdown/i.test(errorMessage(err)))
          throw new GiveUp(errorMessage(err));
        throw err;
      }
    },
    { timeoutMs: 10_000, intervalMs: 300, what: `mariadb at ${at.host}:${portOf(at)}` },
  );
  try {
    return await run(conn);
  } finally {
    await conn.end().catch(() => conn.destroy());
  }
}

async function createUser(at: ServiceEndpoint, username: string, password: string): Promise<void> {
  checkBindingUser(username, password);
  try {
    await admin(at, async (c) => {
      const account = `'${username}'@'%'`;
      await c.query(`CREATE USER IF NOT EXISTS ${account} IDENTIFIED BY '${password}' REQUIRE SSL`);
      await c.query(`ALTER USER ${account} IDENTIFIED BY '${password}' REQUIRE SSL`);
      await c.query(`GRANT ALL PRIVILEGES ON \`${databaseOf(at)}\`.* TO ${account}`);
    });
  } catch (err) {
    throw new Conflict(`could not create a user in ${at.deployment}: ${errorMessage(err)}`);
  }
}

/** Drops a user (idempotent): its sessions are ended first. */
async function dropUser(at: ServiceEndpoint, username: string): Promise<void> {
  checkBindingUser(username);
  try {
    await admin(at, async (c) => {
      const account = `'${username}'@'%'`;
      // Locked first: no new session can start between the kills and the drop.
      await c.query(`ALTER USER IF EXISTS ${account} ACCOUNT LOCK`);
      const sessions = (await c.query("SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?", [
        username,
      ])) as Array<{ ID: number | bigint }>;
      for (const s of sessions) await c.query(`KILL CONNECTION ${Number(s.ID)}`).catch(() => undefined);
      await c.query(`DROP USER IF EXISTS ${account}`);
    });
  } catch (err) {
    throw new Conflict(`could not drop user ${username} in ${at.deployment}: ${errorMessage(err)}`);
  }
}

/** The Galera manager's status (galera-manager.ts), as far as the control plane reads it. */
const statusSchema = z
  .object({
    role: z.string().max(40).optional(),
    node: z
      .object({
        state: z.string().max(40).nullable().optional(),
        size: z.number().int().nullable().optional(),
        seqno: z.number().int().nullable().optional(),
      })
      .passthrough()
      .optional(),
    stoppedAt: z
      .union([z.object({ seqno: z.number().int() }).passthrough(), z.string().max(10), z.null()])
      .optional(),
    decision: z.string().max(1000).optional(),
  })
  .passthrough();

/** A Galera member: its role (writer, synced, donor, joining, non-primary, …), its Galera state in the decision. */
function member(controller: unknown): MemberState {
  const s = statusSchema.safeParse(controller ?? {});
  if (!s.success) return UNREADABLE_MEMBER;
  const n = s.data.node;
  // Running: what it committed last; stopped, waiting to start: where its data ends.
  const at =
    typeof s.data.stoppedAt === "object" && s.data.stoppedAt !== null ? s.data.stoppedAt.seqno : null;
  const seqno = n?.seqno ?? at;
  return {
    role: s.data.role ?? "unknown",
    timeline: null,
    position: seqno === null ? null : String(seqno),
    upstream: null,
    size: n?.size ?? null,
    decision: [n?.state ? `[${n.state}]` : "", s.data.decision ?? ""].join(" ").trim() || null,
  };
}

/** A Galera node is back in step once it is Synced again (IST or SST done). */
const roles: RoleRules = { leader: "writer", follower: "synced", caughtUp: (m) => m.role === "synced" };

export const mariadbService: DataService = {
  type: "mariadb",
  description: "MariaDB 10.11",
  secrets: [ADMIN_SECRET],
  member,
  // A Synced node takes the writer's lease in a switchover.
  followerRole: "synced",
  forcedBootstrap: {
    warning:
      "the named node starts a new Primary component from its own data: writes that only the other nodes committed are lost, and those nodes then copy this one's data (SST)",
  },
  lag(leader, position) {
    const a = Number(leader);
    const b = Number(position);
    return Number.isInteger(a) && Number.isInteger(b) ? Math.max(0, a - b) : null;
  },
  update: { order: updateOrder, caughtUp: roles.caughtUp },
  health: (members, leader) => clusterHealth(members, leader, roles),
  bindings: { create: createUser, drop: dropUser, credentials },
  parameters: databaseParameters,
};
