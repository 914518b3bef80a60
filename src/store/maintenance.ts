/**
 * Hosts and zones in maintenance (`zonal host drain`, `zonal zone drain`): placement
 * puts nothing there, the planner moves what runs there elsewhere, and the health
 * monitor does not count the planned stops as failures. Kept in the settings table,
 * one row per target (`maintenance:host:z1/h2`, `maintenance:zone:z3`).
 */
import type { Settings } from "./settings.js";

import type { MaintenanceKind, MaintenanceRecord } from "../wire/maintenance.js";
export type { MaintenanceKind, MaintenanceRecord } from "../wire/maintenance.js";

/** What placement and the planner need: the reason per host and per zone. */
export interface MaintenanceView {
  hosts: ReadonlyMap<string, string>;
  zones: ReadonlyMap<string, string>;
}

const PREFIX = "maintenance:";

export class Maintenance {
  constructor(private readonly settings: Settings) {}

  async list(): Promise<MaintenanceRecord[]> {
    const rows = await this.settings.list(PREFIX);
    return rows
      .map((r) => JSON.parse(r.value) as MaintenanceRecord)
      .sort((a, b) => a.kind.localeCompare(b.kind) || a.target.localeCompare(b.target));
  }

  async view(): Promise<MaintenanceView> {
    const all = await this.list();
    return {
      hosts: new Map(all.filter((m) => m.kind === "host").map((m) => [m.target, m.reason])),
      zones: new Map(all.filter((m) => m.kind === "zone").map((m) => [m.target, m.reason])),
    };
  }

  async get(kind: MaintenanceKind, target: string): Promise<MaintenanceRecord | undefined> {
    const v = await this.settings.get(`${PREFIX}${kind}:${target}`);
    return v ? (JSON.parse(v) as MaintenanceRecord) : undefined;
  }

  /** Idempotent: a target already in maintenance keeps its first record. */
  async set(kind: MaintenanceKind, target: string, reason: string): Promise<MaintenanceRecord> {
    const had = await this.get(kind, target);
    if (had) return had;
    const rec: MaintenanceRecord = { kind, target, reason, since: new Date().toISOString() };
    await this.settings.set(`${PREFIX}${kind}:${target}`, JSON.stringify(rec));
    return rec;
  }

  /** Idempotent. */
  async clear(kind: MaintenanceKind, target: string): Promise<void> {
    await this.settings.delete(`${PREFIX}${kind}:${target}`);
  }
}
