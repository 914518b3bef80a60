/** Warm standby VMs: one per zone of each `standby` group, ready to take an instance over. */
import type { Kysely, Selectable } from "kysely";
import type { Resources } from "../placement/types.js";
import { SecretBox } from "../lib/secret-box.js";
import type { Database, StandbysTable } from "./schema.js";
import { openToken, sealToken } from "./sealed.js";

export interface StandbyRecord {
  id: string;
  deployment: string;
  group: string;
  zone: string;
  vmId: string | null;
  host: string | null;
  address: string | null;
  agentPort: number | null;
  agentToken: string | null;
  vmResources: Resources | null;
  createdAt: string;
}

export type StandbyPatch = Partial<
  Pick<StandbyRecord, "vmId" | "host" | "address" | "agentPort" | "agentToken" | "vmResources">
>;

function fromRow(r: Selectable<StandbysTable>, box: SecretBox): StandbyRecord {
  return {
    id: r.id,
    deployment: r.deployment,
    group: r.group_name,
    zone: r.zone,
    vmId: r.vm_id,
    host: r.host,
    address: r.address,
    agentPort: r.agent_port === null ? null : Number(r.agent_port),
    agentToken: openToken(box, r.agent_token),
    vmResources: r.vm_resources ? (JSON.parse(r.vm_resources) as Resources) : null,
    createdAt: r.created_at,
  };
}

export class Standbys {
  constructor(
    private readonly db: Kysely<Database>,
    private readonly box: SecretBox,
  ) {}

  async list(deployment?: string): Promise<StandbyRecord[]> {
    let q = this.db.selectFrom("standbys").selectAll();
    if (deployment !== undefined) q = q.where("deployment", "=", deployment);
    return (await q.orderBy("group_name").orderBy("zone").orderBy("created_at").execute()).map((r) =>
      fromRow(r, this.box),
    );
  }

  async get(id: string): Promise<StandbyRecord | undefined> {
    const row = await this.db.selectFrom("standbys").selectAll().where("id", "=", id).executeTakeFirst();
    return row && fromRow(row, this.box);
  }

  async insert(r: Pick<StandbyRecord, "id" | "deployment" | "group" | "zone">): Promise<StandbyRecord> {
    const now = new Date().toISOString();
    await this.db
      .insertInto("standbys")
      .values({
        id: r.id,
        deployment: r.deployment,
        group_name: r.group,
        zone: r.zone,
        vm_id: null,
        host: null,
        address: null,
        agent_port: null,
        agent_token: null,
        vm_resources: null,
        created_at: now,
      })
      .execute();
    return {
      ...r,
      vmId: null,
      host: null,
      address: null,
      agentPort: null,
      agentToken: null,
      vmResources: null,
      createdAt: now,
    };
  }

  async update(id: string, p: StandbyPatch): Promise<void> {
    const c: Partial<StandbysTable> = {};
    if (p.vmId !== undefined) c.vm_id = p.vmId;
    if (p.host !== undefined) c.host = p.host;
    if (p.address !== undefined) c.address = p.address;
    if (p.agentPort !== undefined) c.agent_port = p.agentPort;
    if (p.agentToken !== undefined) c.agent_token = sealToken(this.box, p.agentToken);
    if (p.vmResources !== undefined)
      c.vm_resources = p.vmResources === null ? null : JSON.stringify(p.vmResources);
    if (Object.keys(c).length > 0)
      await this.db.updateTable("standbys").set(c).where("id", "=", id).execute();
  }

  async delete(id: string): Promise<void> {
    await this.db.deleteFrom("standbys").where("id", "=", id).execute();
  }

  /** Seals the tokens earlier versions stored in plain text; returns how many. */
  async sealPlainTokens(): Promise<number> {
    const rows = await this.db.selectFrom("standbys").select(["id", "agent_token"]).execute();
    const plain = rows.filter((r) => r.agent_token !== null && !SecretBox.isSealed(r.agent_token));
    for (const r of plain) await this.update(r.id, { agentToken: r.agent_token });
    return plain.length;
  }
}
