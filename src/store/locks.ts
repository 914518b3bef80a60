/** Deployment locks: at most one task works on a deployment at a time. */
import type { Kysely } from "kysely";
import type { Database } from "./schema.js";

export class Locks {
  constructor(private readonly db: Kysely<Database>) {}

  /** Takes the lock for `taskId`; returns the task that holds it when someone else does. */
  async acquire(
    name: string,
    taskId: number,
  ): Promise<{ acquired: true } | { acquired: false; holder: number }> {
    return this.db.transaction().execute(async (trx) => {
      const held = await trx
        .selectFrom("locks")
        .select("task_id")
        .where("name", "=", name)
        .executeTakeFirst();
      if (held) {
        const holder = Number(held.task_id);
        return holder === taskId ? { acquired: true as const } : { acquired: false as const, holder };
      }
      await trx
        .insertInto("locks")
        .values({ name, task_id: taskId, acquired_at: new Date().toISOString() })
        .execute();
      return { acquired: true as const };
    });
  }

  async holder(name: string): Promise<number | undefined> {
    const row = await this.db
      .selectFrom("locks")
      .select("task_id")
      .where("name", "=", name)
      .executeTakeFirst();
    return row ? Number(row.task_id) : undefined;
  }

  /** Releases the lock if `taskId` holds it. */
  async release(name: string, taskId: number): Promise<void> {
    await this.db.deleteFrom("locks").where("name", "=", name).where("task_id", "=", taskId).execute();
  }
}
