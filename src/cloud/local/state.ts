/**
 * The local cloud's state file: hosts' fault state, VMs, disks. Held in memory,
 * written atomically after every change (`<data-dir>/state.json`), so a daemon
 * killed at any point restarts with a consistent view and adopts its VMs.
 */
import { writeFileAtomic, readJsonIfExists } from "../../lib/files.js";
import type { Metadata, VmState, VmType } from "../cloud.js";
import type { NetworkFault } from "./network/faults.js";
import type { DelayQueue } from "./network/delay.js";
import type { ProcRef } from "../../lib/proc.js";

export type { ProcRef } from "../../lib/proc.js";

export interface VmRecord {
  id: string;
  zone: string;
  host: string;
  address: string;
  /** Last octet of the address; unique per host. */
  slot: number;
  state: VmState;
  vmType: VmType;
  metadata: Metadata;
  createdAt: string;
  /** The running process group, when the VM is powered on (or frozen, or silenced by a host failure). */
  proc?: ProcRef;
  bootCount: number;
  /**
   * How a crashed VM died: its kernel (a panic, a lost host: the VM answers nothing)
   * or only its processes (OOM, a segfault: the live kernel answers with resets).
   */
  crash?: "kernel" | "processes";
}

export interface DiskRecord {
  id: string;
  zone: string;
  sizeMb: number;
  attachedTo?: string;
  metadata: Metadata;
  createdAt: string;
}

export interface HostRecord {
  state: "up" | "failed";
  failedAt?: string;
  /** When a failed host's silenced VMs lose power (ISO time). */
  powerOffAt?: string;
}

export interface AddressRecord {
  address: string;
  zone: string;
  holder?: string;
  metadata: Metadata;
}

export interface NetworkRecord {
  faults: NetworkFault[];
  /** Slow links' delay queues (delay.py processes): stopped when their fault heals, or at start. */
  delays?: DelayQueue[];
  /** The control plane's process and its own address, as it registered them. */
  controlPlane?: { pid: number; startTime: number; address: string };
}

export interface LocalState {
  version: 1;
  hosts: Record<string, HostRecord>;
  vms: Record<string, VmRecord>;
  disks: Record<string, DiskRecord>;
  addresses: Record<string, AddressRecord>;
  network: NetworkRecord;
}

export class StateFile {
  readonly state: LocalState;

  constructor(private readonly path: string) {
    const loaded = readJsonIfExists(path) as LocalState | undefined;
    if (loaded && loaded.version !== 1)
      throw new Error(`${path}: unsupported state version ${String(loaded.version)}`);
    const state: LocalState = {
      version: 1,
      hosts: {},
      vms: {},
      disks: {},
      addresses: {},
      network: { faults: [] },
      ...(loaded ?? {}),
    };
    // Tables keyed by ids from requests have no prototype: `vms["__proto__"]` or
    // `vms["constructor"]` is no VM, and writing one sets nothing but its own entry.
    for (const t of ["hosts", "vms", "disks", "addresses"] as const)
      (state as unknown as Record<string, object>)[t] = Object.assign(
        Object.create(null) as object,
        state[t],
      );
    this.state = state;
  }

  save(): void {
    writeFileAtomic(this.path, JSON.stringify(this.state, null, 2) + "\n", 0o600);
  }
}
