/**
 * The director's tables, as Kysely types. The same schema runs on SQLite and on
 * PostgreSQL; timestamps are ISO-8601 text and structured values JSON text, so
 * both behave alike.
 */
import type { Generated } from "kysely";

export interface SettingsTable {
  key: string;
  value: string;
}

export interface DeploymentsTable {
  name: string;
  /** The validated manifest, JSON. */
  manifest: string;
  created_at: string;
  updated_at: string;
}

export interface InstancesTable {
  id: string;
  deployment: string;
  group_name: string;
  idx: number;
  zone: string;
  /** InstanceState (src/director/instance-state.ts). */
  state: string;
  /** "started" or "stopped": what the operator asked for. */
  desired: string;
  vm_id: string | null;
  host: string | null;
  address: string | null;
  agent_port: number | null;
  /** The VM's bearer token, sealed (src/lib/secret-box.ts). */
  agent_token: string | null;
  /** Its SHA-256, to find the instance a VM's call comes from. */
  agent_token_hash: string | null;
  /** The VM's resources (JSON) when it was created: a change means recreate. */
  vm_resources: string | null;
  disk_id: string | null;
  disk_size_mb: number | null;
  /** Hash of the last spec applied to the agent. */
  spec_hash: string | null;
  /** The instance's virtual address (standby groups): clients use it; it follows the instance. */
  vip: string | null;
  created_at: string;
  updated_at: string;
}

/** Warm standby VMs of `standby` groups: agent up, no jobs, one per zone of the group. */
export interface StandbysTable {
  id: string;
  deployment: string;
  group_name: string;
  zone: string;
  vm_id: string | null;
  host: string | null;
  address: string | null;
  agent_port: number | null;
  /** Sealed, like an instance's. */
  agent_token: string | null;
  vm_resources: string | null;
  created_at: string;
}

export interface TasksTable {
  id: Generated<number>;
  deployment: string | null;
  kind: string;
  /** TaskState: queued, running, done, failed. */
  state: string;
  description: string;
  /** What the task works on (JSON): the manifest for a deploy, the targets for recreate… */
  payload: string;
  progress_done: number;
  progress_total: number;
  result: string | null;
  /** The director process that runs it. */
  owner: string | null;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
}

export interface EventsTable {
  id: Generated<number>;
  task_id: number | null;
  deployment: string | null;
  /** `group/index` when the event is about one instance. */
  instance: string | null;
  at: string;
  level: string;
  stage: string;
  message: string;
}

export interface LocksTable {
  name: string;
  task_id: number;
  acquired_at: string;
}

/** Leases of the embedded lease store (src/ha/embedded). */
export interface LeasesTable {
  key: string;
  holder: string;
  token: number;
  value: string;
  ttl_ms: number;
  /** ms since epoch, the control plane's clock. */
  expires_at: number;
}

/** Service instances sold through the broker (src/broker): one deployment each. */
export interface ServiceInstancesTable {
  id: string;
  service_id: string;
  plan_id: string;
  deployment: string;
  /** JSON: the parameters it was provisioned (or last updated) with. */
  parameters: string;
  /** JSON: the platform's context object. */
  context: string;
  created_at: string;
}

export interface ServiceBindingsTable {
  id: string;
  instance_id: string;
  /** JSON: the bind request's service_id, plan_id, parameters, app_guid (to tell repeats from conflicts). */
  request: string;
  username: string;
  /** The role's password, sealed (src/lib/secret-box.ts). */
  password_sealed: string;
  created_at: string;
}

export interface BrokerOperationsTable {
  /** The `operation` string given to the platform. */
  id: string;
  instance_id: string;
  kind: string;
  /** "in progress" | "succeeded" | "failed" (the OSB words). */
  state: string;
  /** JSON: what was asked (plan, parameters), to tell a repeat from a different request. */
  request: string;
  task_id: number | null;
  description: string | null;
  created_at: string;
  ended_at: string | null;
}

export interface Database {
  settings: SettingsTable;
  deployments: DeploymentsTable;
  instances: InstancesTable;
  tasks: TasksTable;
  events: EventsTable;
  locks: LocksTable;
  standbys: StandbysTable;
  leases: LeasesTable;
  service_instances: ServiceInstancesTable;
  service_bindings: ServiceBindingsTable;
  broker_operations: BrokerOperationsTable;
}
