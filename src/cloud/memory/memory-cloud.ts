/**
 * A cloud in memory: zones, hosts, VMs, disks and virtual addresses as plain records,
 * with the same checks and answers as the other drivers (it passes the `Cloud`
 * contract suite). It runs nothing: a VM is a record, and its agent is whatever the
 * `agents` hook starts (the in-process tests give it a fake agent on the VM's
 * address). It exists so the orchestration core — executor, recovery, reconcile,
 * broker — can be tested in milliseconds; the real-process clouds (local, OpenStack)
 * stay what zonal runs on.
 */
import { randomBytes } from "node:crypto";
import { InvalidInput, NotFound } from "../../lib/errors.js";
import { parseWith } from "../../lib/validate.js";
import {
  DetachFailed,
  DiskInUse,
  HostUnavailable,
  NoAddressLeft,
  NoValidHost,
  ZoneMismatch,
  type AgentSettings,
  type Cloud,
  type CreateDiskRequest,
  type CreatedVm,
  type CreateVmRequest,
  type Disk,
  type DiskAttachment,
  type Metadata,
  type VirtualAddress,
  type Vm,
  type VmFilter,
  type Zone,
} from "../cloud.js";
import { chooseHost } from "../scheduler.js";
import { allocateAddressSchema, createDiskSchema, createVmSchema } from "../requests.js";
import type { Attributes } from "../../placement/types.js";

export interface MemoryHostConfig {
  name: string;
  cpu: number;
  ramMb: number;
  attributes?: Attributes;
}

/** Starts and stops a VM's agent (a VM is a record; its agent is the hook's). */
export interface MemoryAgents {
  /** The VM boots: its agent should answer on `vm.address:vm.agentPort` with `token`. */
  start(vm: Vm, token: string, settings: AgentSettings | undefined): Promise<void>;
  /** The VM stops, is powered off, crashes or loses its host: its agent answers nothing. */
  stop(vmId: string): Promise<void>;
  /** The VM is deleted: its agent is gone for good. */
  remove(vmId: string): Promise<void>;
}

export interface MemoryCloudOptions {
  zones: Array<{ name: string; hosts: MemoryHostConfig[] }>;
  /** Addresses are 127.<firstOctet + zone index>.<host index + 1>.<slot>; VIPs …<zone>.0.<n>. */
  firstOctet: number;
  agentPort?: number;
  agents?: MemoryAgents;
}

interface HostRecord {
  id: string;
  zone: string;
  up: boolean;
  attributes: Attributes;
  capacity: { cpu: number; ramMb: number };
  octets: [number, number];
}

interface VmRecord extends Vm {
  slot: number;
  token: string;
  settings: AgentSettings | undefined;
}

const newId = (prefix: string): string => `${prefix}-${randomBytes(5).toString("hex")}`;
const matches = (metadata: Metadata, filter?: VmFilter) =>
  Object.entries(filter?.metadata ?? {}).every(([k, v]) => metadata[k] === v);

export class MemoryCloud implements Cloud {
  private readonly hosts = new Map<string, HostRecord>();
  private readonly vms = new Map<string, VmRecord>();
  private readonly disks = new Map<string, Disk>();
  private readonly addresses = new Map<string, VirtualAddress>();

  constructor(private readonly o: MemoryCloudOptions) {
    o.zones.forEach((z, zi) =>
      z.hosts.forEach((h, hi) =>
        this.hosts.set(`${z.name}/${h.name}`, {
          id: `${z.name}/${h.name}`,
          zone: z.name,
          up: true,
          attributes: h.attributes ?? {},
          capacity: { cpu: h.cpu, ramMb: h.ramMb },
          octets: [o.firstOctet + zi, hi + 1],
        }),
      ),
    );
  }

  async zones(): Promise<Zone[]> {
    return this.o.zones.map((z) => ({
      name: z.name,
      hosts: [...this.hosts.values()]
        .filter((h) => h.zone === z.name)
        .map((h) => {
          const { used, usedSlots } = this.used(h.id);
          return {
            id: h.id,
            name: h.id.slice(h.zone.length + 1),
            zone: h.zone,
            state: h.up ? ("up" as const) : ("failed" as const),
            attributes: { ...h.attributes },
            capacity: { ...h.capacity },
            used: { ...used, vms: usedSlots.size },
          };
        }),
    }));
  }

  private requireZone(zone: string): void {
    if (!this.o.zones.some((z) => z.name === zone))
      throw new InvalidInput(
        `zone: no zone "${zone}" (zones: ${this.o.zones.map((z) => z.name).join(", ")})`,
        [{ field: "zone", problem: `no zone "${zone}"` }],
      );
  }

  private used(hostId: string) {
    const on = [...this.vms.values()].filter((v) => v.host === hostId);
    return {
      used: {
        cpu: on.reduce((n, v) => n + v.vmType.cpu, 0),
        ramMb: on.reduce((n, v) => n + v.vmType.ramMb, 0),
      },
      usedSlots: new Set(on.map((v) => v.slot)),
    };
  }

  async createVm(input: CreateVmRequest): Promise<CreatedVm> {
    const req = parseWith(createVmSchema, input, "VM request");
    this.requireZone(req.zone);
    const hosts = [...this.hosts.values()].filter((h) => h.zone === req.zone);
    const choice = chooseHost(
      hosts.map((h) => ({ ...h, ...this.used(h.id) })),
      req.vmType,
      req.hostHints,
    );
    if (!choice.ok)
      throw new NoValidHost(
        `no host in zone ${req.zone} can take the VM: ${choice.reasons.join("; ")}`,
        choice.reasons,
      );
    const host = this.hosts.get(choice.host)!;
    const vm: VmRecord = {
      id: newId("vm"),
      zone: req.zone,
      host: host.id,
      address: `127.${host.octets[0]}.${host.octets[1]}.${choice.slot}`,
      agentPort: this.o.agentPort ?? 6868,
      state: "running",
      vmType: req.vmType,
      metadata: { ...(req.metadata ?? {}) },
      disks: [],
      createdAt: new Date().toISOString(),
      slot: choice.slot,
      token: req.agent?.token ?? randomBytes(24).toString("hex"),
      settings: req.agent,
    };
    this.vms.set(vm.id, vm);
    await this.o.agents?.start(this.view(vm), vm.token, vm.settings);
    return { vm: this.view(vm), agentToken: vm.token };
  }

  private view(v: VmRecord): Vm {
    return {
      id: v.id,
      zone: v.zone,
      host: v.host,
      address: v.address,
      agentPort: v.agentPort,
      state: v.state,
      vmType: { ...v.vmType },
      metadata: { ...v.metadata },
      disks: [...this.disks.values()].filter((d) => d.attachedTo === v.id).map((d) => d.id),
      createdAt: v.createdAt,
    };
  }

  private requireVm(id: string): VmRecord {
    const vm = this.vms.get(id);
    if (!vm) throw new NotFound(`no VM ${id}`);
    return vm;
  }

  async deleteVm(id: string): Promise<void> {
    const vm = this.vms.get(id);
    if (!vm) return;
    await this.o.agents?.remove(id);
    for (const d of this.disks.values()) if (d.attachedTo === id) this.detach(d);
    for (const a of this.addresses.values()) if (a.holder === id) delete a.holder;
    this.vms.delete(id);
  }

  async vmExists(id: string): Promise<boolean> {
    return this.vms.has(id);
  }

  async getVm(id: string): Promise<Vm | undefined> {
    const vm = this.vms.get(id);
    return vm ? this.view(vm) : undefined;
  }

  async listVms(filter?: VmFilter): Promise<Vm[]> {
    return [...this.vms.values()].filter((v) => matches(v.metadata, filter)).map((v) => this.view(v));
  }

  async rebootVm(id: string): Promise<void> {
    const vm = this.requireVm(id);
    if (!this.hosts.get(vm.host)!.up)
      throw new HostUnavailable(`VM ${id} cannot boot: its host ${vm.host} has failed`);
    await this.o.agents?.stop(id);
    vm.state = "running";
    await this.o.agents?.start(this.view(vm), vm.token, vm.settings);
  }

  async powerOffVm(id: string): Promise<void> {
    const vm = this.requireVm(id);
    if (vm.state === "stopped") return;
    await this.o.agents?.stop(id);
    vm.state = "stopped";
  }

  async setVmMetadata(id: string, metadata: Metadata): Promise<void> {
    const vm = this.requireVm(id);
    vm.metadata = { ...vm.metadata, ...metadata };
  }

  async createDisk(input: CreateDiskRequest): Promise<Disk> {
    const req = parseWith(createDiskSchema, input, "disk request");
    this.requireZone(req.zone);
    const disk: Disk = {
      id: newId("disk"),
      zone: req.zone,
      sizeMb: req.sizeMb,
      state: "available",
      metadata: { ...(req.metadata ?? {}) },
      createdAt: new Date().toISOString(),
    };
    this.disks.set(disk.id, disk);
    return { ...disk, metadata: { ...disk.metadata } };
  }

  private requireDisk(id: string): Disk {
    const disk = this.disks.get(id);
    if (!disk) throw new NotFound(`no disk ${id}`);
    return disk;
  }

  async attachDisk(diskId: string, vmId: string): Promise<DiskAttachment> {
    const disk = this.requireDisk(diskId);
    const vm = this.requireVm(vmId);
    const attachment = { diskId, vmId, device: `/dev/disk/by-id/memory-${diskId}` };
    if (disk.attachedTo === vmId) return attachment;
    if (disk.attachedTo) throw new DiskInUse(`disk ${diskId} is attached to ${disk.attachedTo}`);
    if (disk.zone !== vm.zone)
      throw new ZoneMismatch(`disk ${diskId} is in zone ${disk.zone}, VM ${vmId} in zone ${vm.zone}`);
    disk.attachedTo = vmId;
    disk.state = "in-use";
    return attachment;
  }

  private detach(disk: Disk): void {
    delete disk.attachedTo;
    disk.state = "available";
  }

  async detachDisk(diskId: string, opts: { force?: boolean } = {}): Promise<void> {
    const disk = this.requireDisk(diskId);
    const vm = disk.attachedTo ? this.vms.get(disk.attachedTo) : undefined;
    // As the local cloud: a VM that crashed, froze or lost its host cannot let go of its disk.
    if (vm && !opts.force && (vm.state === "crashed" || vm.state === "frozen" || vm.state === "unknown"))
      throw new DetachFailed(
        `disk ${diskId} stays attached: VM ${vm.id} is ${vm.state} and cannot release it; fence the VM, then detach with force`,
      );
    this.detach(disk);
  }

  async deleteDisk(id: string): Promise<void> {
    const disk = this.disks.get(id);
    if (!disk) return;
    if (disk.attachedTo) throw new DiskInUse(`disk ${id} is attached to ${disk.attachedTo}`);
    this.disks.delete(id);
  }

  async getDisk(id: string): Promise<Disk | undefined> {
    const d = this.disks.get(id);
    return d ? { ...d, metadata: { ...d.metadata } } : undefined;
  }

  async listDisks(filter?: VmFilter): Promise<Disk[]> {
    return [...this.disks.values()]
      .filter((d) => matches(d.metadata, filter))
      .map((d) => ({ ...d, metadata: { ...d.metadata } }));
  }

  async allocateAddress(input: { zone: string; metadata?: Metadata }): Promise<VirtualAddress> {
    const req = parseWith(allocateAddressSchema, input, "address request");
    this.requireZone(req.zone);
    const octet = this.o.firstOctet + this.o.zones.findIndex((z) => z.name === req.zone);
    for (let n = 1; n <= 254; n++) {
      const address = `127.${octet}.0.${n}`;
      if (this.addresses.has(address)) continue;
      const rec: VirtualAddress = { address, zone: req.zone, metadata: { ...(req.metadata ?? {}) } };
      this.addresses.set(address, rec);
      return { ...rec, metadata: { ...rec.metadata } };
    }
    throw new NoAddressLeft(`zone ${req.zone} has no free virtual address (254 in use)`);
  }

  async assignAddress(address: string, vmId: string): Promise<VirtualAddress> {
    const rec = this.addresses.get(address);
    if (!rec) throw new NotFound(`address ${address} is not allocated`);
    this.requireVm(vmId);
    rec.holder = vmId;
    return { ...rec, metadata: { ...rec.metadata } };
  }

  async releaseAddress(address: string): Promise<void> {
    this.addresses.delete(address);
  }

  async listAddresses(filter?: VmFilter): Promise<VirtualAddress[]> {
    return [...this.addresses.values()]
      .filter((a) => matches(a.metadata, filter))
      .map((a) => ({ ...a, metadata: { ...a.metadata } }));
  }

  // ---- faults, as seen from outside ------------------------------------------------------

  /** The VM's kernel is gone: its agent answers nothing; the cloud reports it crashed. */
  async crashVm(id: string): Promise<void> {
    const vm = this.requireVm(id);
    await this.o.agents?.stop(id);
    vm.state = "crashed";
  }

  /** The host is lost: its VMs' agents answer nothing and the host reports failed. */
  async failHost(hostId: string): Promise<void> {
    const host = this.hosts.get(hostId);
    if (!host) throw new NotFound(`no host ${hostId}`);
    host.up = false;
    for (const vm of this.vms.values()) {
      if (vm.host !== hostId) continue;
      await this.o.agents?.stop(vm.id);
      vm.state = "unknown";
    }
  }
}
