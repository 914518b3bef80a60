/** What the director's parts share: the store, the cloud, who this director is. */
import { AgentClient } from "../agent/client.js";
import type { Cloud } from "../cloud/cloud.js";
import { Conflict } from "../lib/errors.js";
import type { Logger } from "../lib/log.js";
import type { InstanceRecord } from "../store/instances.js";
import type { Store } from "../store/store.js";
import type { EmbeddedLeaseStore } from "../ha/embedded/store.js";
import type { InstanceLocks } from "./instance-locks.js";

export interface DirectorContext {
  store: Store;
  cloud: Cloud;
  /** Written into every VM's and disk's metadata, so this director knows its own. */
  directorId: string;
  /** Where agents send heartbeats. */
  heartbeatUrl: string;
  log: Logger;
  /** Which instances a task works on right now. */
  instanceLocks: InstanceLocks;
  /** The embedded lease store (clusters elect their leaders in it unless they use etcd). */
  leases: EmbeddedLeaseStore;
  /** Where agents reach the control plane (leases, cluster VIP moves, fencing requests). */
  controlPlaneUrl: string;
}

/** Metadata every VM and disk of an instance carries. */
export function instanceMetadata(ctx: DirectorContext, inst: InstanceRecord): Record<string, string> {
  return {
    director: ctx.directorId,
    deployment: inst.deployment,
    instance: inst.id,
    group: inst.group,
    index: String(inst.index),
  };
}

export function agentOf(inst: InstanceRecord, timeoutMs = 10_000): AgentClient {
  if (!inst.address || !inst.agentToken || !inst.agentPort) {
    throw new Conflict(`instance ${inst.group}/${inst.index} has no VM to talk to`);
  }
  return new AgentClient({ address: inst.address, port: inst.agentPort, token: inst.agentToken, timeoutMs });
}
