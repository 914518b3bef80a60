/**
 * The data-service plug-in interface: what the control plane, the broker and the CLI
 * need to know about a service that runs as a job type (PostgreSQL, an HAProxy pair,
 * …) — its secrets, how to read a member's status, how bindings are made and what
 * they look like, the broker's parameters. They speak only to this interface; a
 * service's name appears nowhere outside its own folder but in `services.ts`, the
 * registry.
 *
 * The agent-side half of a service is its job type (job-type.ts): the two halves of
 * one service live in one folder (src/jobs/<service>/).
 */
import type { z } from "zod";
import type { ClusterHealth, MemberRole } from "./cluster-order.js";

/**
 * Where a service instance takes connections, as the control plane finds it: the
 * writer's address (the cluster's VIP, a standby group's VIP, or the single
 * instance's address) and every member's, with what the service needs to log in.
 */
export interface ServiceEndpoint {
  deployment: string;
  group: string;
  /** The writer's address: what clients should use. */
  host: string;
  /** Every member's address (multi-host clients find the writer themselves). */
  hosts: string[];
  /** The job's properties from the manifest (port, database, …). */
  properties: Record<string, unknown>;
  /** The deployment's secrets (the service's own, from `secrets`). */
  secrets: Record<string, string>;
  /** The control plane's CA (PEM) that signed every member's certificate. */
  ca: string;
}

/**
 * Bindings: a user of the service with its own password. The broker keeps the
 * password sealed and hands out `credentials` as they are (opaque to it).
 */
export interface ServiceBindings {
  /**
   * Makes the user with this password, or sets the password of one that exists: a
   * repeat after a crash converges. Rejects with InvalidInput for a name or password
   * the service does not take, Conflict when the service cannot be reached or refuses.
   */
  create(at: ServiceEndpoint, username: string, password: string): Promise<void>;
  /** Removes the user, its connections and what it owns (idempotent). Rejects like `create`. */
  drop(at: ServiceEndpoint, username: string): Promise<void>;
  /** What an application gets: addresses, user, password, URIs, the CA. */
  credentials(at: ServiceEndpoint, username: string, password: string): Record<string, unknown>;
}

/** A member's state, read from its controller's status (what `zonal cluster` shows). */
export interface MemberState {
  /** e.g. primary, replica, starting; "unreachable" when its agent did not answer. */
  role: string;
  /** Timeline, generation or epoch (null when the service has none). */
  timeline: number | null;
  /** Its position in the service's log (an LSN, a seqno), as the service prints it. */
  position: string | null;
  /** The address it replicates from now, or null. */
  upstream: string | null;
  /** Members in the component it belongs to (Galera's cluster size); absent when the service has no such notion. */
  size?: number | null;
  /** Its controller's last decision, as a sentence. */
  decision: string | null;
}

/** What `member` reports for a status it cannot read (a shape it does not know). */
export const UNREADABLE_MEMBER: MemberState = {
  role: "unknown",
  timeline: null,
  position: null,
  upstream: null,
  decision: "unreadable status",
};

/** The broker's side: parameters a service instance may be provisioned with. */
export interface ServiceParameters {
  /** Provision parameters (JSON Schema in the catalog comes from it); errors name the field. */
  provision: z.ZodType<Record<string, unknown>>;
  /** The job's properties with the parameters applied (the plan's template is not changed). */
  apply(properties: Record<string, unknown>, parameters: Record<string, unknown>): Record<string, unknown>;
}

export interface DataService {
  /** The job type this service runs as (its agent-side half). */
  readonly type: string;
  readonly description: string;
  /**
   * Names of the passwords the service needs: each made once per deployment (random),
   * sealed in the store, and given to the VMs of the groups that run the service.
   */
  readonly secrets?: readonly string[];
  /** A member's state from its controller's status (an unknown shape: check it). */
  member?(controller: unknown): MemberState;
  /**
   * The role (as `member` reports it) of a member that can take over in a planned
   * switchover; absent: the service has no planned switchover.
   */
  readonly followerRole?: string;
  /**
   * The cluster may be told to bootstrap from a member the operator names (when it
   * cannot choose one itself); `warning` says what that may lose. Absent: no such thing.
   */
  readonly forcedBootstrap?: { warning: string };
  /** How far `position` is behind the leader's (in the service's unit), or null when unknown. */
  lag?(leader: string, position: string): number | null;
  /**
   * Updates one member at a time while the cluster serves: the order (followers first,
   * the leader last, after a switchover) and when an updated member has caught up so
   * the next may go. Absent: the executor's canary and batch policy alone.
   */
  readonly update?: {
    order(members: MemberRole[], leader: string | null): string[];
    caughtUp(member: MemberRole): boolean;
  };
  /** The cluster's health from its members (whole, degraded, down), for `zonal cluster`. */
  health?(members: MemberRole[], leader: string | null): ClusterHealth;
  /** Users with their own password; absent: the service has no bindings. */
  readonly bindings?: ServiceBindings;
  /** The broker's parameters; absent: none. */
  readonly parameters?: ServiceParameters;
  /**
   * A load-balancer pair: the control plane serves its nodes their backends and the
   * pair's status; `statusPort` is where a node's status API listens.
   */
  readonly loadBalancer?: { statusPort(properties: Record<string, unknown>): number };
}

/** A load balancer's backend server and its state, as the node's status reports it. */
export interface BackendState {
  backend: string;
  server: string;
  status: string;
}

/** What a load-balancer node's controller reports (its status API and `zonal lb`). */
export interface LbNodeStatus {
  member: string;
  role: "active" | "standby" | "single";
  holder: string | null;
  leaseToken: number | null;
  configVersion: string | null;
  backends: BackendState[];
  /** HAProxy workers of earlier configs still finishing their connections (null: unknown). */
  oldWorkers?: number | null;
  decision: string;
}
