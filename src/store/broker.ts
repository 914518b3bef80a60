/**
 * The broker's records: service instances, their bindings, and the asynchronous
 * operations the platform polls. Operations are never rewritten once ended, so a
 * platform that polls late still reads how its operation ended.
 */
import type { Kysely, Selectable } from "kysely";
import type {
  BrokerOperationsTable,
  Database,
  ServiceBindingsTable,
  ServiceInstancesTable,
} from "./schema.js";

export interface ServiceInstanceRecord {
  id: string;
  serviceId: string;
  planId: string;
  deployment: string;
  parameters: Record<string, unknown>;
  context: Record<string, unknown>;
  createdAt: string;
}

export interface ServiceBindingRecord {
  id: string;
  instanceId: string;
  request: Record<string, unknown>;
  username: string;
  passwordSealed: string;
  createdAt: string;
}

export type OperationKind = "provision" | "update" | "deprovision";
export type OperationState = "in progress" | "succeeded" | "failed";

export interface OperationRecord {
  id: string;
  instanceId: string;
  kind: OperationKind;
  state: OperationState;
  request: Record<string, unknown>;
  taskId: number | null;
  description: string | null;
  createdAt: string;
  endedAt: string | null;
}

const instance = (r: Selectable<ServiceInstancesTable>): ServiceInstanceRecord => ({
  id: r.id,
  serviceId: r.service_id,
  planId: r.plan_id,
  deployment: r.deployment,
  parameters: JSON.parse(r.parameters) as Record<string, unknown>,
  context: JSON.parse(r.context) as Record<string, unknown>,
  createdAt: r.created_at,
});

const binding = (r: Selectable<ServiceBindingsTable>): ServiceBindingRecord => ({
  id: r.id,
  instanceId: r.instance_id,
  request: JSON.parse(r.request) as Record<string, unknown>,
  username: r.username,
  passwordSealed: r.password_sealed,
  createdAt: r.created_at,
});

const operation = (r: Selectable<BrokerOperationsTable>): OperationRecord => ({
  id: r.id,
  instanceId: r.instance_id,
  kind: r.kind as OperationKind,
  state: r.state as OperationState,
  request: JSON.parse(r.request) as Record<string, unknown>,
  taskId: r.task_id,
  description: r.description,
  createdAt: r.created_at,
  endedAt: r.ended_at,
});

export class BrokerRecords {
  constructor(private readonly db: Kysely<Database>) {}

  async instance(id: string): Promise<ServiceInstanceRecord | undefined> {
    const r = await this.db
      .selectFrom("service_instances")
      .selectAll()
      .where("id", "=", id)
      .executeTakeFirst();
    return r && instance(r);
  }

  async instances(): Promise<ServiceInstanceRecord[]> {
    return (await this.db.selectFrom("service_instances").selectAll().orderBy("created_at").execute()).map(
      instance,
    );
  }

  /** A new instance with its provision operation, in one transaction. */
  async createInstance(i: Omit<ServiceInstanceRecord, "createdAt">, op: NewOperation): Promise<void> {
    const now = new Date().toISOString();
    await this.db.transaction().execute(async (tx) => {
      await tx
        .insertInto("service_instances")
        .values({
          id: i.id,
          service_id: i.serviceId,
          plan_id: i.planId,
          deployment: i.deployment,
          parameters: JSON.stringify(i.parameters),
          context: JSON.stringify(i.context),
          created_at: now,
        })
        .execute();
      await tx
        .insertInto("broker_operations")
        .values(opRow(i.id, op, now))
        .execute();
    });
  }

  async setPlan(id: string, planId: string, parameters: Record<string, unknown>): Promise<void> {
    await this.db
      .updateTable("service_instances")
      .set({ plan_id: planId, parameters: JSON.stringify(parameters) })
      .where("id", "=", id)
      .execute();
  }

  /** Forgets an instance and its bindings (its operations stay, for late polls). */
  async deleteInstance(id: string): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom("service_bindings").where("instance_id", "=", id).execute();
      await tx.deleteFrom("service_instances").where("id", "=", id).execute();
    });
  }

  /** A deprovision that ended: the instance and its bindings go, the operation ends succeeded, at once. */
  async finishDeprovision(opId: string, instanceId: string, description: string): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx.deleteFrom("service_bindings").where("instance_id", "=", instanceId).execute();
      await tx.deleteFrom("service_instances").where("id", "=", instanceId).execute();
      await tx
        .updateTable("broker_operations")
        .set({ state: "succeeded", description, ended_at: new Date().toISOString() })
        .where("id", "=", opId)
        .where("state", "=", "in progress")
        .execute();
    });
  }

  async addOperation(instanceId: string, op: NewOperation): Promise<void> {
    await this.db
      .insertInto("broker_operations")
      .values(opRow(instanceId, op, new Date().toISOString()))
      .execute();
  }

  async operation(id: string): Promise<OperationRecord | undefined> {
    const r = await this.db
      .selectFrom("broker_operations")
      .selectAll()
      .where("id", "=", id)
      .executeTakeFirst();
    return r && operation(r);
  }

  /** The instance's newest operation. */
  async lastOperation(instanceId: string): Promise<OperationRecord | undefined> {
    const r = await this.db
      .selectFrom("broker_operations")
      .selectAll()
      .where("instance_id", "=", instanceId)
      .orderBy("created_at", "desc")
      .orderBy("id", "desc")
      .executeTakeFirst();
    return r && operation(r);
  }

  /** The instance's newest provision or update that succeeded: what it runs now. */
  async lastSucceededChange(instanceId: string): Promise<OperationRecord | undefined> {
    const r = await this.db
      .selectFrom("broker_operations")
      .selectAll()
      .where("instance_id", "=", instanceId)
      .where("state", "=", "succeeded")
      .where("kind", "in", ["provision", "update"])
      .orderBy("created_at", "desc")
      .orderBy("id", "desc")
      .executeTakeFirst();
    return r && operation(r);
  }

  async unfinishedOperations(): Promise<OperationRecord[]> {
    return (
      await this.db.selectFrom("broker_operations").selectAll().where("state", "=", "in progress").execute()
    ).map(operation);
  }

  async setTask(opId: string, taskId: number): Promise<void> {
    await this.db.updateTable("broker_operations").set({ task_id: taskId }).where("id", "=", opId).execute();
  }

  /** Ends an operation once; a second end is ignored (returns false). */
  async endOperation(opId: string, state: Exclude<OperationState, "in progress">, description: string) {
    const r = await this.db
      .updateTable("broker_operations")
      .set({ state, description, ended_at: new Date().toISOString() })
      .where("id", "=", opId)
      .where("state", "=", "in progress")
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async binding(id: string): Promise<ServiceBindingRecord | undefined> {
    const r = await this.db
      .selectFrom("service_bindings")
      .selectAll()
      .where("id", "=", id)
      .executeTakeFirst();
    return r && binding(r);
  }

  async bindings(instanceId: string): Promise<ServiceBindingRecord[]> {
    return (
      await this.db
        .selectFrom("service_bindings")
        .selectAll()
        .where("instance_id", "=", instanceId)
        .orderBy("created_at")
        .execute()
    ).map(binding);
  }

  async addBinding(b: Omit<ServiceBindingRecord, "createdAt">): Promise<void> {
    await this.db
      .insertInto("service_bindings")
      .values({
        id: b.id,
        instance_id: b.instanceId,
        request: JSON.stringify(b.request),
        username: b.username,
        password_sealed: b.passwordSealed,
        created_at: new Date().toISOString(),
      })
      .execute();
  }

  async deleteBinding(id: string): Promise<void> {
    await this.db.deleteFrom("service_bindings").where("id", "=", id).execute();
  }
}

export interface NewOperation {
  id: string;
  kind: OperationKind;
  request: Record<string, unknown>;
  taskId?: number;
}

function opRow(instanceId: string, op: NewOperation, now: string) {
  return {
    id: op.id,
    instance_id: instanceId,
    kind: op.kind,
    state: "in progress",
    request: JSON.stringify(op.request),
    task_id: op.taskId ?? null,
    description: null,
    created_at: now,
    ended_at: null,
  };
}
