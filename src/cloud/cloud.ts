/**
 * The `Cloud` interface: everything the director knows about an IaaS (the CPI).
 * Drivers: `local` (the embedded local cloud daemon), `openstack`.
 *
 * Conventions for every method:
 * - "Idempotent" means calling it again after success changes nothing and succeeds.
 * - A method that rejects with a `retryable` error (Unavailable) may or may not have
 *   taken effect; each method says what a failure can leave behind. Callers find
 *   leftovers by the metadata they set and clean them up.
 * - Errors other than the ones listed are bugs.
 */
import { Conflict, InvalidInput, NotFound, Unavailable } from "../lib/errors.js";
import type { Attributes } from "../placement/types.js";

export type { AttributeValue, Attributes } from "../placement/types.js";
export type Metadata = Record<string, string>;

export type HostState = "up" | "failed";

export interface Host {
  /** `zone/name`, unique in the cloud. */
  id: string;
  name: string;
  zone: string;
  state: HostState;
  /** Aggregate metadata, e.g. `{ ssd: true }`. */
  attributes: Attributes;
  capacity: { cpu: number; ramMb: number };
  /** What the VMs placed on the host reserve (deleted VMs free theirs). */
  used: { cpu: number; ramMb: number; vms: number };
}

export interface Zone {
  name: string;
  hosts: Host[];
}

/**
 * Power and health of a VM as the cloud sees it:
 * - running: powered on (its agent may still be booting);
 * - stopped: powered off; nothing of it runs; reboot powers it on;
 * - crashed: it died without being asked (a kernel panic); nothing of it runs;
 * - frozen: its processes are suspended; it is silent but holds its connections;
 * - unknown: its host has failed; nothing of it runs any more (the host lost power).
 */
export type VmState = "running" | "stopped" | "crashed" | "frozen" | "unknown";

export interface VmType {
  cpu: number;
  ramMb: number;
  /** Host attributes the VM needs, e.g. `{ ssd: true }`. */
  hostAttributes?: Attributes;
}

export interface Vm {
  id: string;
  zone: string;
  /** `zone/name` of the host it runs on. */
  host: string;
  /** The VM's own IP address; its agent listens there. */
  address: string;
  /** The port the VM's agent listens on. */
  agentPort: number;
  state: VmState;
  vmType: VmType;
  metadata: Metadata;
  /** Ids of the disks attached to it. */
  disks: string[];
  createdAt: string;
}

export interface AgentSettings {
  /** Bearer token for the agent's API and its heartbeats; the cloud generates one when absent. */
  token?: string;
  /** Where the agent sends heartbeats, and how often (default 1000 ms). */
  heartbeat?: { url: string; intervalMs?: number };
  /** Extra environment for the agent process. */
  env?: Record<string, string>;
  /**
   * TLS for the agent's API and its heartbeats (off loopback). The driver calls
   * `issue(address)` once it knows the VM's address and hands the agent the CA, its
   * certificate and key. Drivers whose VMs live on loopback may ignore it.
   */
  tls?: AgentTlsIssuer;
  /**
   * For clouds whose VMs can read their injected settings for life (OpenStack's
   * metadata service): the driver deposits the agent's token and certificate here and
   * injects only a one-time code (see src/agent/bootstrap.ts).
   */
  bootstrap?: AgentBootstrapper;
}

/** What an agent must keep to itself: its bearer token, and its TLS certificate and key. */
export interface AgentSecrets {
  token: string;
  tls?: { cert: string; key: string };
}

export interface AgentBootstrapper {
  /** Keeps `secrets` for one pickup; the code to inject, and where the agent trades it. */
  deposit(secrets: AgentSecrets): Promise<{ url: string; code: string }>;
}

export interface AgentTlsIssuer {
  /** The CA that signs agent and director certificates (PEM). */
  caPem: string;
  /** A certificate and key for an agent serving at `address` (an IP). Rejects: Internal. */
  issue(address: string): Promise<{ certPem: string; keyPem: string }>;
}

export interface CreateVmRequest {
  zone: string;
  /** Preferred hosts (`zone/name`) in order; the cloud picks another fitting host if none fits. */
  hostHints?: string[];
  vmType: VmType;
  metadata?: Metadata;
  agent?: AgentSettings;
  /**
   * VMs created with the same group are kept on different hosts of a zone where the
   * zone allows it (anti-affinity: an OpenStack server group). Drivers that place by
   * `hostHints` alone (local) ignore it.
   */
  group?: string;
}

export interface CreatedVm {
  vm: Vm;
  /** The agent's token (the one given, or the generated one). Only returned here. */
  agentToken: string;
}

export type DiskState = "available" | "in-use";

export interface Disk {
  id: string;
  zone: string;
  sizeMb: number;
  state: DiskState;
  /** The VM it is attached to, when in use. */
  attachedTo?: string;
  metadata: Metadata;
  createdAt: string;
}

export interface CreateDiskRequest {
  zone: string;
  sizeMb: number;
  metadata?: Metadata;
}

export interface DiskAttachment {
  diskId: string;
  vmId: string;
  /** Where the disk appears inside the VM (a path on the local cloud, a device on OpenStack). */
  device: string;
}

export interface VmFilter {
  /** Only VMs whose metadata has all these key/value pairs. */
  metadata?: Metadata;
}

export interface Cloud {
  /** Zones with their hosts, attributes, capacity and state. Read-only. */
  zones(): Promise<Zone[]>;

  /**
   * Tells the cloud a host is in zonal's maintenance (`reason`) or back (null), where
   * the cloud has such a notion (OpenStack: its nova-compute service disabled with
   * the reason, so nothing else is scheduled there). A host zonal put in maintenance
   * still counts as up in `zones()`. Absent: the cloud has none (the local cloud).
   */
  setHostMaintenance?(hostId: string, reason: string | null): Promise<void>;

  /**
   * Creates a VM in `zone` and powers it on with an agent holding `agent` settings.
   * Not idempotent: each call makes a new VM.
   * Rejects: InvalidInput (unknown zone or host hint, bad vm type), NoValidHost (no host
   * in the zone is up, has the attributes and the free capacity; the message names each
   * host's reason), Unavailable (may have left a VM behind: find it by metadata).
   */
  createVm(req: CreateVmRequest): Promise<CreatedVm>;

  /**
   * Deletes a VM: kills whatever runs in it, detaches its disks (they become
   * `available`) and frees its address and capacity. Idempotent: an unknown VM is
   * already deleted. Works whatever the state of the VM or its host.
   * Rejects: Unavailable (the VM may or may not be deleted; call again).
   */
  deleteVm(id: string): Promise<void>;

  /** True when a VM with this id exists (in any state). Read-only. */
  vmExists(id: string): Promise<boolean>;

  /** The VM, or undefined when it does not exist. Read-only. */
  getVm(id: string): Promise<Vm | undefined>;

  /** VMs matching the filter (all when none). Read-only. */
  listVms(filter?: VmFilter): Promise<Vm[]>;

  /**
   * Hard reboot: kills whatever runs in the VM and boots it again with the same
   * settings, disks and address. Powers on a stopped or crashed VM. Idempotent in
   * effect (the VM ends up freshly booted).
   * Rejects: NotFound, HostUnavailable (its host has failed), Unavailable.
   */
  rebootVm(id: string): Promise<void>;

  /**
   * The last `lines` lines of the VM's console: what its agent printed at boot (its
   * log until it listens, and why it stopped if it did; OpenStack's
   * `os-getConsoleOutput`). Read-only. Absent: the cloud keeps none.
   * Rejects: NotFound, Unavailable.
   */
  consoleOutput?(id: string, lines: number): Promise<string[]>;

  /**
   * Hard power off: fencing. Resolves only once nothing of the VM runs any more, so a
   * resolved call means the VM can no longer act. Idempotent: a stopped VM stays
   * stopped. Works on a VM whose host has failed.
   * Rejects: NotFound (the VM does not exist, so it cannot act either), Unavailable
   * (the VM may still run: it is NOT fenced).
   */
  powerOffVm(id: string): Promise<void>;

  /** Merges `metadata` into the VM's metadata. Idempotent. Rejects: NotFound. */
  setVmMetadata(id: string, metadata: Metadata): Promise<void>;

  /**
   * Creates an empty persistent disk in `zone`. Not idempotent.
   * Rejects: InvalidInput (unknown zone, bad size), Unavailable (may have left a disk).
   */
  createDisk(req: CreateDiskRequest): Promise<Disk>;

  /**
   * Attaches a disk to a VM in the same zone; the disk then is the VM's persistent store.
   * Idempotent when already attached to that VM.
   * Rejects: NotFound (disk or VM), DiskInUse (attached to another VM: detach it
   * first, with `force` when that VM is dead), ZoneMismatch.
   */
  attachDisk(diskId: string, vmId: string): Promise<DiskAttachment>;

  /**
   * Detaches a disk. Idempotent when it is not attached. Without `force`, a disk
   * attached to a VM that is crashed, frozen or on a failed host cannot be detached
   * (the VM cannot let it go): DetachFailed, and the disk stays in use. `force`
   * always detaches, whatever the VM does; fence the VM first.
   * Rejects: NotFound, DetachFailed.
   */
  detachDisk(diskId: string, opts?: { force?: boolean }): Promise<void>;

  /**
   * Deletes a disk and its data. Idempotent: an unknown disk is already deleted.
   * Rejects: DiskInUse (detach first).
   */
  deleteDisk(id: string): Promise<void>;

  /** The disk, or undefined when it does not exist. Read-only. */
  getDisk(id: string): Promise<Disk | undefined>;

  /** Disks matching the filter (all when none). Read-only. */
  listDisks(filter?: VmFilter): Promise<Disk[]>;

  /**
   * Reserves a virtual address (VIP) in `zone`. Not idempotent: each call reserves a
   * new one. Rejects: InvalidInput (unknown zone), NoAddressLeft, Unavailable (may have
   * reserved one: find it by metadata).
   */
  allocateAddress(req: { zone: string; metadata?: Metadata }): Promise<VirtualAddress>;

  /**
   * Makes `vmId` the only holder of `address` (moves it from any other holder).
   * Idempotent. The cloud only permits the traffic (like a Neutron allowed address
   * pair); the VM binds the address itself, which on the local cloud succeeds only
   * once no other VM serves it: callers fence the old holder first.
   * Rejects: NotFound (address or VM).
   */
  assignAddress(address: string, vmId: string): Promise<VirtualAddress>;

  /** Frees a virtual address. Idempotent: an unknown address is already free. */
  releaseAddress(address: string): Promise<void>;

  /** Reserved virtual addresses, with their holders. Read-only. */
  listAddresses(filter?: VmFilter): Promise<VirtualAddress[]>;
}

export interface VirtualAddress {
  address: string;
  zone: string;
  /** The VM allowed to hold it, if any. */
  holder?: string;
  /** An address outside the cloud that forwards to it (an OpenStack floating IP), if any. */
  publicAddress?: string;
  metadata: Metadata;
}

/** The project's quota does not allow it (cores, RAM, instances, volumes, ports). Raise the quota. */
export class QuotaExceeded extends Conflict {
  override readonly code = "quota_exceeded";
}

/** Every virtual address of the zone is taken. */
export class NoAddressLeft extends Conflict {
  override readonly code = "no_address_left";
}

/** No host can take the VM. `reasons` has one line per host, e.g. "z2/h1: lacks ssd". */
export class NoValidHost extends Conflict {
  override readonly code = "no_valid_host";
  constructor(
    message: string,
    readonly reasons: string[] = [],
  ) {
    super(message);
  }
}

export class DiskInUse extends Conflict {
  override readonly code = "disk_in_use";
}

export class DetachFailed extends Conflict {
  override readonly code = "detach_failed";
}

export class ZoneMismatch extends Conflict {
  override readonly code = "zone_mismatch";
}

/** The VM's host has failed; the VM cannot be booted until the host is restored. */
export class HostUnavailable extends Unavailable {
  override readonly code = "host_unavailable";
}

export { InvalidInput, NotFound, Unavailable };
