/** Instances: one row per member of an instance group, with its VM and disk. */
import type { Kysely, Selectable } from "kysely";
import type { InstanceState } from "./instance-state.js";
import type { Resources } from "../placement/types.js";
import { SecretBox } from "../lib/secret-box.js";
import type { Database, InstancesTable } from "./schema.js";
import { openToken, sealToken } from "./sealed.js";

export interface InstanceRecord {
  id: string;
  deployment: string;
  group: string;
  index: number;
  zone: string;
  state: InstanceState;
  desired: "started" | "stopped";
  vmId: string | null;
  host: string | null;
  address: string | null;
  agentPort: number | null;
  agentToken: string | null;
  vmResources: Resources | null;
  diskId: string | null;
  diskSizeMb: number | null;
  specHash: string | null;
  vip: string | null;
  createdAt: string;
  updatedAt: string;
}

export type InstancePatch = Partial<
  Omit<InstanceRecord, "id" | "deployment" | "group" | "index" | "createdAt" | "updatedAt">
>;

function fromRow(r: Selectable<InstancesTable>, box: SecretBox): InstanceRecord {
  return {
    id: r.id,
    deployment: r.deployment,
    group: r.group_name,
    index: Number(r.idx),
    zone: r.zone,
    state: r.state as InstanceState,
    desired: r.desired as "started" | "stopped",
    vmId: r.vm_id,
    host: r.host,
    address: r.address,
    agentPort: r.agent_port === null ? null : Number(r.agent_port),
    agentToken: openToken(box, r.agent_token),
    vmResources: r.vm_resources ? (JSON.parse(r.vm_resources) as Resources) : null,
    diskId: r.disk_id,
    diskSizeMb: r.disk_size_mb === null ? null : Number(r.disk_size_mb),
    specHash: r.spec_hash,
    vip: r.vip,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function toColumns(p: InstancePatch, box: SecretBox): Partial<InstancesTable> {
  const c: Partial<InstancesTable> = {};
  if (p.zone !== undefined) c.zone = p.zone;
  if (p.state !== undefined) c.state = p.state;
  if (p.desired !== undefined) c.desired = p.desired;
  if (p.vmId !== undefined) c.vm_id = p.vmId;
  if (p.host !== undefined) c.host = p.host;
  if (p.address !== undefined) c.address = p.address;
  if (p.agentPort !== undefined) c.agent_port = p.agentPort;
  if (p.agentToken !== undefined) {
    c.agent_token = sealToken(box, p.agentToken);
    c.agent_token_hash = p.agentToken === null ? null : box.digest(p.agentToken);
  }
  if (p.vmResources !== undefined)
    c.vm_resources = p.vmResources === null ? null : JSON.stringify(p.vmResources);
  if (p.diskId !== undefined) c.disk_id = p.diskId;
  if (p.diskSizeMb !== undefined) c.disk_size_mb = p.diskSizeMb;
  if (p.specHash !== undefined) c.spec_hash = p.specHash;
  if (p.vip !== undefined) c.vip = p.vip;
  return c;
}

export class Instances {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly box: SecretBox,
  ) {}

  async list(deployment?: string): Promise<InstanceRecord[]> {
    let q = this.db.selectFrom("instances").selectAll();
    if (deployment !== undefined) q = q.where("deployment", "=", deployment);
    const rows = await q.orderBy("deployment").orderBy("group_name").orderBy("idx").execute();
    return rows.map((r) => fromRow(r, this.box));
  }

  async get(id: string): Promise<InstanceRecord | undefined> {
    const row = await this.db.selectFrom("instances").selectAll().where("id", "=", id).executeTakeFirst();
    return row && fromRow(row, this.box);
  }

  async byVm(vmId: string): Promise<InstanceRecord | undefined> {
    const row = await this.db
      .selectFrom("instances")
      .selectAll()
      .where("vm_id", "=", vmId)
      .executeTakeFirst();
    return row && fromRow(row, this.box);
  }

  async byToken(token: string): Promise<InstanceRecord | undefined> {
    const row = await this.db
      .selectFrom("instances")
      .selectAll()
      .where("agent_token_hash", "=", this.box.digest(token))
      .executeTakeFirst();
    return row && fromRow(row, this.box);
  }

  async insert(r: Omit<InstanceRecord, "createdAt" | "updatedAt">): Promise<InstanceRecord> {
    const now = new Date().toISOString();
    await this.db
      .insertInto("instances")
      .values({
        id: r.id,
        deployment: r.deployment,
        group_name: r.group,
        idx: r.index,
        zone: r.zone,
        state: r.state,
        desired: r.desired,
        vm_id: r.vmId,
        host: r.host,
        address: r.address,
        agent_port: r.agentPort,
        agent_token: sealToken(this.box, r.agentToken),
        agent_token_hash: r.agentToken === null ? null : this.box.digest(r.agentToken),
        vm_resources: r.vmResources ? JSON.stringify(r.vmResources) : null,
        disk_id: r.diskId,
        disk_size_mb: r.diskSizeMb,
        spec_hash: r.specHash,
        vip: r.vip,
        created_at: now,
        updated_at: now,
      })
      .execute();
    return { ...r, createdAt: now, updatedAt: now };
  }

  async update(id: string, patch: InstancePatch): Promise<void> {
    await this.db
      .updateTable("instances")
      .set({ ...toColumns(patch, this.box), updated_at: new Date().toISOString() })
      .where("id", "=", id)
      .execute();
  }

  async delete(id: string): Promise<void> {
    await this.db.deleteFrom("instances").where("id", "=", id).execute();
  }

  /** Seals the tokens earlier versions stored in plain text; returns how many. */
  async sealPlainTokens(): Promise<number> {
    const rows = await this.db.selectFrom("instances").select(["id", "agent_token"]).execute();
    const plain = rows.filter((r) => r.agent_token !== null && !SecretBox.isSealed(r.agent_token));
    for (const r of plain) await this.update(r.id, { agentToken: r.agent_token });
    return plain.length;
  }
}
