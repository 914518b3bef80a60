/** The vocabulary of placement: hosts as placement sees them, and what is asked of them. */
/** A host's or a VM type's attributes (a cloud reports them; placement matches on them). */
export type AttributeValue = string | number | boolean;
export type Attributes = Record<string, AttributeValue>;

export interface PlacementHost {
  /** `zone/name`. */
  id: string;
  zone: string;
  up: boolean;
  /** Why the host is in maintenance (drained: nothing is placed there); absent when it is not. */
  maintenance?: string;
  attributes: Attributes;
  capacity: { cpu: number; ramMb: number };
  /** What is reserved on it already (VMs that stay where they are). */
  used: { cpu: number; ramMb: number };
}

export interface Resources {
  cpu: number;
  ramMb: number;
  /** Host attributes required, e.g. `{ ssd: true }`. */
  hostAttributes?: Attributes;
}

/** One instance that needs a host. */
export interface HostRequest {
  /** `group/index`, used in messages. */
  key: string;
  group: string;
  zone: string;
  resources: Resources;
}

/** Where the instances of each group already run (for anti-affinity and spreading). */
export type GroupHosts = Map<string, Map<string, number>>;

export interface PlacementFailure {
  key: string;
  zone: string;
  /** One line per host of the zone: why it was rejected. */
  reasons: string[];
}

export interface PlacementResult {
  /** key → host id, for every request that found a host. */
  hosts: Map<string, string>;
  failures: PlacementFailure[];
  /** Sentences about soft rules that had to bend ("web/4: anti-affinity relaxed in z1"). */
  notes: string[];
}
