/**
 * Schema migrations, in order. Each runs once per database (Kysely's Migrator keeps
 * the record) and must work on both SQLite and PostgreSQL; `dialect` is passed in
 * for the one place they differ (auto-increment ids).
 */
import type { Kysely, Migration } from "kysely";

export type Dialect = "sqlite" | "postgres";

// Migrations see the database as it was then, not as `Database` types it now.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

export function migrations(dialect: Dialect): Record<string, Migration> {
  const serialId = (db: AnyDb, table: string) =>
    dialect === "postgres"
      ? db.schema.createTable(table).addColumn("id", "serial", (c) => c.primaryKey())
      : db.schema.createTable(table).addColumn("id", "integer", (c) => c.primaryKey().autoIncrement());

  return {
    "0001_initial": {
      async up(db: AnyDb) {
        await db.schema
          .createTable("settings")
          .addColumn("key", "text", (c) => c.primaryKey())
          .addColumn("value", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createTable("deployments")
          .addColumn("name", "text", (c) => c.primaryKey())
          .addColumn("manifest", "text", (c) => c.notNull())
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("updated_at", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createTable("instances")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("deployment", "text", (c) => c.notNull())
          .addColumn("group_name", "text", (c) => c.notNull())
          .addColumn("idx", "integer", (c) => c.notNull())
          .addColumn("zone", "text", (c) => c.notNull())
          .addColumn("state", "text", (c) => c.notNull())
          .addColumn("desired", "text", (c) => c.notNull())
          .addColumn("vm_id", "text")
          .addColumn("host", "text")
          .addColumn("address", "text")
          .addColumn("agent_port", "integer")
          .addColumn("agent_token", "text")
          .addColumn("vm_resources", "text")
          .addColumn("disk_id", "text")
          .addColumn("disk_size_mb", "integer")
          .addColumn("spec_hash", "text")
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("updated_at", "text", (c) => c.notNull())
          .addUniqueConstraint("instances_group_index", ["deployment", "group_name", "idx"])
          .execute();
        await serialId(db, "tasks")
          .addColumn("deployment", "text")
          .addColumn("kind", "text", (c) => c.notNull())
          .addColumn("state", "text", (c) => c.notNull())
          .addColumn("description", "text", (c) => c.notNull())
          .addColumn("payload", "text", (c) => c.notNull())
          .addColumn("progress_done", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("progress_total", "integer", (c) => c.notNull().defaultTo(0))
          .addColumn("result", "text")
          .addColumn("owner", "text")
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("started_at", "text")
          .addColumn("ended_at", "text")
          .execute();
        await serialId(db, "events")
          .addColumn("task_id", "integer")
          .addColumn("deployment", "text")
          .addColumn("instance", "text")
          .addColumn("at", "text", (c) => c.notNull())
          .addColumn("level", "text", (c) => c.notNull())
          .addColumn("stage", "text", (c) => c.notNull())
          .addColumn("message", "text", (c) => c.notNull())
          .execute();
        await db.schema.createIndex("events_task").on("events").columns(["task_id", "id"]).execute();
        await db.schema.createIndex("events_deployment").on("events").columns(["deployment", "id"]).execute();
        await db.schema
          .createTable("locks")
          .addColumn("name", "text", (c) => c.primaryKey())
          .addColumn("task_id", "integer", (c) => c.notNull())
          .addColumn("acquired_at", "text", (c) => c.notNull())
          .execute();
      },
    },
    "0002_standby_and_vips": {
      async up(db: AnyDb) {
        await db.schema.alterTable("instances").addColumn("vip", "text").execute();
        await db.schema
          .createTable("standbys")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("deployment", "text", (c) => c.notNull())
          .addColumn("group_name", "text", (c) => c.notNull())
          .addColumn("zone", "text", (c) => c.notNull())
          .addColumn("vm_id", "text")
          .addColumn("host", "text")
          .addColumn("address", "text")
          .addColumn("agent_port", "integer")
          .addColumn("agent_token", "text")
          .addColumn("vm_resources", "text")
          .addColumn("created_at", "text", (c) => c.notNull())
          .execute();
      },
    },
    "0003_leases": {
      async up(db: AnyDb) {
        await db.schema
          .createTable("leases")
          .addColumn("key", "text", (c) => c.primaryKey())
          .addColumn("holder", "text", (c) => c.notNull())
          .addColumn("token", "bigint", (c) => c.notNull())
          .addColumn("value", "text", (c) => c.notNull())
          .addColumn("ttl_ms", "integer", (c) => c.notNull())
          .addColumn("expires_at", "bigint", (c) => c.notNull())
          .execute();
      },
    },
    "0004_broker": {
      async up(db: AnyDb) {
        await db.schema
          .createTable("service_instances")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("service_id", "text", (c) => c.notNull())
          .addColumn("plan_id", "text", (c) => c.notNull())
          .addColumn("deployment", "text", (c) => c.notNull())
          .addColumn("parameters", "text", (c) => c.notNull())
          .addColumn("context", "text", (c) => c.notNull())
          .addColumn("created_at", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createTable("service_bindings")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("instance_id", "text", (c) => c.notNull())
          .addColumn("request", "text", (c) => c.notNull())
          .addColumn("username", "text", (c) => c.notNull())
          .addColumn("password_sealed", "text", (c) => c.notNull())
          .addColumn("created_at", "text", (c) => c.notNull())
          .execute();
        await db.schema
          .createTable("broker_operations")
          .addColumn("id", "text", (c) => c.primaryKey())
          .addColumn("instance_id", "text", (c) => c.notNull())
          .addColumn("kind", "text", (c) => c.notNull())
          .addColumn("state", "text", (c) => c.notNull())
          .addColumn("request", "text", (c) => c.notNull())
          .addColumn("task_id", "integer")
          .addColumn("description", "text")
          .addColumn("created_at", "text", (c) => c.notNull())
          .addColumn("ended_at", "text")
          .execute();
        await db.schema
          .createIndex("broker_operations_instance")
          .on("broker_operations")
          .columns(["instance_id", "created_at"])
          .execute();
      },
    },
    "0005_agent_token_hash": {
      // Tokens are sealed from now on; the store seals the plain ones it finds on open.
      async up(db: AnyDb) {
        await db.schema.alterTable("instances").addColumn("agent_token_hash", "text").execute();
        await db.schema
          .createIndex("instances_agent_token_hash")
          .on("instances")
          .column("agent_token_hash")
          .execute();
      },
    },
  };
}
