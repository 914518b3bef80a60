/** Key/value settings: the director's id, the cloud config. */
import type { Kysely } from "kysely";
import type { Database } from "./schema.js";

export class Settings {
  constructor(private readonly db: Kysely<Database>) {}

  async get(key: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom("settings")
      .select("value")
      .where("key", "=", key)
      .executeTakeFirst();
    return row?.value;
  }

  /** Every setting whose key starts with `prefix`, by key. */
  async list(prefix: string): Promise<Array<{ key: string; value: string }>> {
    const rows = await this.db.selectFrom("settings").select(["key", "value"]).orderBy("key").execute();
    return rows.filter((r) => r.key.startsWith(prefix));
  }

  /** Idempotent. */
  async delete(key: string): Promise<void> {
    await this.db.deleteFrom("settings").where("key", "=", key).execute();
  }

  async set(key: string, value: string): Promise<void> {
    await this.db
      .insertInto("settings")
      .values({ key, value })
      .onConflict((oc) => oc.column("key").doUpdateSet({ value }))
      .execute();
  }
}
