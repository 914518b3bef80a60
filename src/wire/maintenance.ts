/** Hosts and zones in maintenance, as the director's API sends them (the store keeps them: src/store/maintenance.ts). */
export type MaintenanceKind = "host" | "zone";

export interface MaintenanceRecord {
  kind: MaintenanceKind;
  /** A host's id (`zone/name`) or a zone's name. */
  target: string;
  reason: string;
  since: string;
}
