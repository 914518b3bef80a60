/**
 * Opens the state store and brings its schema up to date: SQLite in a file under
 * the data dir by default, PostgreSQL when a `postgres://` URL is given
 * (`DATABASE_URL`). Both run the same migrations.
 */
import { join } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import { Kysely, Migrator, PostgresDialect, SqliteDialect, type MigrationProvider } from "kysely";
import "../lib/node-navigator.js"; // before pg: see there
import pg from "pg";
import { Internal } from "../lib/errors.js";
import { migrations, type Dialect } from "./migrations.js";
import type { Database } from "./schema.js";

export interface OpenOptions {
  /** Where the SQLite file lives (`director.db`) when no URL is given. */
  dataDir: string;
  databaseUrl?: string;
}

export interface OpenedDatabase {
  db: Kysely<Database>;
  dialect: Dialect;
  /** Where it is, without secrets. */
  location: string;
}

export async function openDatabase(opts: OpenOptions): Promise<OpenedDatabase> {
  let opened: OpenedDatabase;
  if (opts.databaseUrl) {
    const url = new URL(opts.databaseUrl);
    if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
      throw new Internal(`DATABASE_URL: expected a postgres:// URL, got ${url.protocol}//…`);
    }
    const pool = new pg.Pool({ connectionString: opts.databaseUrl, max: 5 });
    opened = {
      db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }),
      dialect: "postgres",
      location: `postgres://${url.host}${url.pathname}`,
    };
  } else {
    const file = join(opts.dataDir, "director.db");
    const sqlite = new BetterSqlite3(file);
    sqlite.pragma("journal_mode = WAL");
    sqlite.pragma("synchronous = FULL");
    sqlite.pragma("busy_timeout = 5000");
    opened = {
      db: new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) }),
      dialect: "sqlite",
      location: file,
    };
  }
  const provider: MigrationProvider = { getMigrations: async () => migrations(opened.dialect) };
  const { error, results } = await new Migrator({ db: opened.db, provider }).migrateToLatest();
  if (error) {
    await opened.db.destroy();
    const failed = results?.find((r) => r.status === "Error")?.migrationName ?? "?";
    throw new Internal(`migration ${failed} failed on ${opened.location}: ${(error as Error).message}`);
  }
  return opened;
}
