/** What the director's parts share: the store, the cloud, who this director is. */
import { AgentClient } from "../agent/client.js";
import type { AgentBootstrapper, AgentSettings, AgentTlsIssuer, Cloud } from "../cloud/cloud.js";
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
  /**
   * When set (VMs off loopback), agents serve HTTPS with certificates this issuer
   * signs, and the director trusts only its CA when it calls them. Unset: plain HTTP.
   */
  agentTls?: AgentTlsIssuer;
  /**
   * The control plane's CA for data services' certificates (PostgreSQL serves TLS
   * with one; bindings carry its certificate). Made on first use.
   */
  serviceCa?: () => Promise<ServiceCa>;
  /** With agent TLS: where cloud drivers deposit agents' secrets for a one-time pickup. */
  agentBootstrap?: AgentBootstrapper;
}

/** What a CA does for data services: issue a certificate for names, and show its own. */
export interface ServiceCa {
  caPem: string;
  issue(req: {
    commonName: string;
    ips?: string[];
    dnsNames?: string[];
  }): Promise<{ certPem: string; keyPem: string }>;
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

/**
 * How often agents beat. Twice a second: the control plane can then hold a VM
 * silent after a second without one (two missed beats), which a fencing request
 * needs. Costs two small POSTs a second per VM.
 */
export const HEARTBEAT_INTERVAL_MS = 500;

/** What a new VM's agent gets from the cloud: its token, the heartbeat URL, TLS when on. */
export function agentSettings(ctx: DirectorContext, token: string): AgentSettings {
  return {
    token,
    heartbeat: { url: ctx.heartbeatUrl, intervalMs: HEARTBEAT_INTERVAL_MS },
    ...(ctx.agentTls ? { tls: ctx.agentTls } : {}),
    ...(ctx.agentBootstrap ? { bootstrap: ctx.agentBootstrap } : {}),
  };
}

/**
 * The one place the director makes AgentClients (for instances, standbys and the
 * health monitor's probes): HTTPS trusting only the agent CA when TLS is on.
 */
export function agentClient(
  ctx: Pick<DirectorContext, "agentTls">,
  vm: { address: string; agentPort: number; agentToken: string },
  timeoutMs: number,
): AgentClient {
  return new AgentClient({
    address: vm.address,
    port: vm.agentPort,
    token: vm.agentToken,
    timeoutMs,
    ...(ctx.agentTls ? { ca: ctx.agentTls.caPem } : {}),
  });
}

/** The agent of an instance's VM; Conflict when the instance has no VM. */
export function agentOf(ctx: DirectorContext, inst: InstanceRecord, timeoutMs = 10_000): AgentClient {
  if (!inst.address || !inst.agentToken || !inst.agentPort) {
    throw new Conflict(`instance ${inst.group}/${inst.index} has no VM to talk to`);
  }
  return agentClient(
    ctx,
    { address: inst.address, agentPort: inst.agentPort, agentToken: inst.agentToken },
    timeoutMs,
  );
}
