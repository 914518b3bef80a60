/** Tasks and their events: every step a task takes is an event, persisted as it happens. */
import type { Kysely, Selectable } from "kysely";
import type { Database, EventsTable, TasksTable } from "./schema.js";

import type { EventLevel, EventRecord, TaskKind, TaskRecord, TaskState } from "../wire/tasks.js";

export type { EventLevel, EventRecord, TaskKind, TaskRecord, TaskState } from "../wire/tasks.js";

function taskFromRow(r: Selectable<TasksTable>): TaskRecord {
  return {
    id: Number(r.id),
    deployment: r.deployment,
    kind: r.kind as TaskKind,
    state: r.state as TaskState,
    description: r.description,
    payload: JSON.parse(r.payload),
    progress: { done: Number(r.progress_done), total: Number(r.progress_total) },
    result: r.result,
    owner: r.owner,
    createdAt: r.created_at,
    startedAt: r.started_at,
    endedAt: r.ended_at,
  };
}

function eventFromRow(r: Selectable<EventsTable>): EventRecord {
  return {
    id: Number(r.id),
    taskId: r.task_id === null ? null : Number(r.task_id),
    deployment: r.deployment,
    instance: r.instance,
    at: r.at,
    level: r.level as EventLevel,
    stage: r.stage,
    message: r.message,
  };
}

export class Tasks {
  constructor(private readonly db: Kysely<Database>) {}

  async create(t: {
    deployment: string | null;
    kind: TaskKind;
    description: string;
    payload: unknown;
  }): Promise<TaskRecord> {
    const now = new Date().toISOString();
    const row = await this.db
      .insertInto("tasks")
      .values({
        deployment: t.deployment,
        kind: t.kind,
        state: "queued",
        description: t.description,
        payload: JSON.stringify(t.payload),
        progress_done: 0,
        progress_total: 0,
        result: null,
        owner: null,
        created_at: now,
        started_at: null,
        ended_at: null,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return taskFromRow(row);
  }

  async get(id: number): Promise<TaskRecord | undefined> {
    const row = await this.db.selectFrom("tasks").selectAll().where("id", "=", id).executeTakeFirst();
    return row && taskFromRow(row);
  }

  async list(o: { deployment?: string; states?: TaskState[]; limit?: number } = {}): Promise<TaskRecord[]> {
    let q = this.db.selectFrom("tasks").selectAll();
    if (o.deployment !== undefined) q = q.where("deployment", "=", o.deployment);
    if (o.states && o.states.length > 0) q = q.where("state", "in", o.states);
    const rows = await q
      .orderBy("id", "desc")
      .limit(o.limit ?? 50)
      .execute();
    return rows.map(taskFromRow);
  }

  async start(id: number, owner: string): Promise<void> {
    await this.db
      .updateTable("tasks")
      .set({ state: "running", owner, started_at: new Date().toISOString() })
      .where("id", "=", id)
      .execute();
  }

  async progress(id: number, done: number, total: number): Promise<void> {
    await this.db
      .updateTable("tasks")
      .set({ progress_done: done, progress_total: total })
      .where("id", "=", id)
      .execute();
  }

  async finish(id: number, state: "done" | "failed", result: string): Promise<void> {
    await this.db
      .updateTable("tasks")
      .set({ state, result, ended_at: new Date().toISOString() })
      .where("id", "=", id)
      .execute();
  }

  async addEvent(e: Omit<EventRecord, "id" | "at">): Promise<EventRecord> {
    const row = await this.db
      .insertInto("events")
      .values({
        task_id: e.taskId,
        deployment: e.deployment,
        instance: e.instance,
        at: new Date().toISOString(),
        level: e.level,
        stage: e.stage,
        message: e.message,
      })
      .returningAll()
      .executeTakeFirstOrThrow();
    return eventFromRow(row);
  }

  async events(
    o: { taskId?: number; deployment?: string; afterId?: number; limit?: number } = {},
  ): Promise<EventRecord[]> {
    let q = this.db.selectFrom("events").selectAll();
    if (o.taskId !== undefined) q = q.where("task_id", "=", o.taskId);
    if (o.deployment !== undefined) q = q.where("deployment", "=", o.deployment);
    if (o.afterId !== undefined) q = q.where("id", ">", o.afterId);
    if (o.afterId !== undefined || o.taskId !== undefined) {
      return (
        await q
          .orderBy("id", "asc")
          .limit(o.limit ?? 1000)
          .execute()
      ).map(eventFromRow);
    }
    const rows = await q
      .orderBy("id", "desc")
      .limit(o.limit ?? 100)
      .execute();
    return rows.reverse().map(eventFromRow);
  }
}
