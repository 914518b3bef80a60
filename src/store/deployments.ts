/** Deployments: name and the last manifest that was deployed (or is being deployed). */
import type { Kysely } from "kysely";
import type { Database } from "./schema.js";

export interface DeploymentRecord {
  name: string;
  manifest: unknown;
  createdAt: string;
  updatedAt: string;
}

export class Deployments {
  constructor(private readonly db: Kysely<Database>) {}

  async get(name: string): Promise<DeploymentRecord | undefined> {
    const row = await this.db
      .selectFrom("deployments")
      .selectAll()
      .where("name", "=", name)
      .executeTakeFirst();
    return (
      row && {
        name: row.name,
        manifest: JSON.parse(row.manifest),
        createdAt: row.created_at,
        updatedAt: row.updated_at,
      }
    );
  }

  async list(): Promise<DeploymentRecord[]> {
    const rows = await this.db.selectFrom("deployments").selectAll().orderBy("name").execute();
    return rows.map((row) => ({
      name: row.name,
      manifest: JSON.parse(row.manifest),
      createdAt: row.created_at,
      updatedAt: row.updated_at,
    }));
  }

  async save(name: string, manifest: unknown): Promise<void> {
    const now = new Date().toISOString();
    const text = JSON.stringify(manifest);
    await this.db
      .insertInto("deployments")
      .values({ name, manifest: text, created_at: now, updated_at: now })
      .onConflict((oc) => oc.column("name").doUpdateSet({ manifest: text, updated_at: now }))
      .execute();
  }

  async delete(name: string): Promise<void> {
    await this.db.deleteFrom("deployments").where("name", "=", name).execute();
  }
}
