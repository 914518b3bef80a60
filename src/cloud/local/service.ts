/**
 * The local cloud: the `Cloud` interface implemented in-process over real
 * processes and directories, plus the fault API. The daemon (`daemon.ts`) serves
 * it over HTTP; the director talks to it through `LocalCloudClient`.
 *
 * Every change runs under one mutex and is written to the state file before the
 * call returns. A monitor loop notices VMs whose processes died on their own
 * (they become `crashed`) and powers off the VMs of failed hosts when due.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { InvalidInput, NotFound, Conflict } from "../../lib/errors.js";
import { Mutex } from "../../lib/mutex.js";
import { parseWith } from "../../lib/validate.js";
import { silentLogger, type Logger } from "../../lib/log.js";
import { SETTINGS_FILE, type AgentSettingsFile } from "../../agent/settings.js";
import {
  DetachFailed,
  DiskInUse,
  HostUnavailable,
  NoAddressLeft,
  NoValidHost,
  ZoneMismatch,
  type Cloud,
  type CreateDiskRequest,
  type CreateVmRequest,
  type CreatedVm,
  type Disk,
  type DiskAttachment,
  type Host,
  type Metadata,
  type Vm,
  type VirtualAddress,
  type VmFilter,
  type Zone,
} from "../cloud.js";
import { allHosts, type CloudConfig, type HostConfig } from "./config.js";
import { allocateAddressSchema, createDiskSchema, createVmSchema, metadataSchema } from "../requests.js";
import { attachSchema, failHostSchema } from "./requests.js";
import { chooseHost, type HostView } from "./scheduler.js";
import { StateFile, type AddressRecord, type DiskRecord, type VmRecord } from "./state.js";
import { bootAgent, findVmByMarker, freezeVm, killVm, observe, thawVm } from "./vm-runtime.js";

export interface LocalCloudOptions {
  config: CloudConfig;
  dataDir: string;
  log?: Logger;
  /** How often the monitor loop looks at VM processes (default 250 ms). */
  monitorIntervalMs?: number;
}

export interface FaultReport {
  frozenVms: string[];
  failedHosts: { id: string; failedAt: string; powerOffAt?: string }[];
}

/** The default delay between a host failing (its VMs go silent) and its VMs losing power. */
export const DEFAULT_HOST_POWER_OFF_AFTER_MS = 2000;

const newId = (prefix: string): string => `${prefix}-${randomBytes(5).toString("hex")}`;
const matches = (md: Metadata, filter?: VmFilter): boolean =>
  Object.entries(filter?.metadata ?? {}).every(([k, v]) => md[k] === v);

export class LocalCloudService implements Cloud {
  private readonly mutex = new Mutex();
  private readonly file: StateFile;
  private readonly hostsById: Map<string, HostConfig>;
  private readonly log: Logger;
  private monitorTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: LocalCloudOptions) {
    this.log = opts.log ?? silentLogger;
    for (const dir of ["vms", "disks"]) mkdirSync(join(opts.dataDir, dir), { recursive: true });
    this.file = new StateFile(join(opts.dataDir, "state.json"));
    this.hostsById = new Map(allHosts(opts.config).map((h) => [h.id, h]));
  }

  private get state() {
    return this.file.state;
  }

  // ---- lifecycle -------------------------------------------------------------------

  /** Adopts the VMs a previous daemon left running, then starts the monitor loop. */
  async start(): Promise<string[]> {
    const sentences = await this.mutex.run(() => this.adopt());
    this.monitorTimer = setInterval(() => void this.monitor(), this.opts.monitorIntervalMs ?? 250);
    this.monitorTimer.unref();
    return sentences;
  }

  /** Stops the monitor loop. VMs keep running: they outlive the daemon. */
  async stop(): Promise<void> {
    if (this.monitorTimer) clearInterval(this.monitorTimer);
    await this.mutex.run(() => undefined);
  }

  private adopt(): string[] {
    const sentences: string[] = [];
    for (const hostId of Object.keys(this.state.hosts)) {
      if (!this.hostsById.has(hostId)) sentences.push(`host ${hostId} is no longer in the cloud file`);
    }
    for (const vm of Object.values(this.state.vms)) {
      if (!this.hostsById.has(vm.host)) {
        sentences.push(`VM ${vm.id} is on host ${vm.host}, which the cloud file no longer has`);
      }
      if (vm.state === "stopped" || vm.state === "crashed") continue;
      const proc = vm.proc ?? findVmByMarker(vm.id);
      if (proc && observe(proc) !== "gone") {
        vm.proc = proc;
        sentences.push(`adopted VM ${vm.id} (${vm.state}, pid ${proc.pid})`);
      } else if (vm.state !== "unknown") {
        vm.state = "crashed";
        vm.proc = undefined;
        sentences.push(`VM ${vm.id} died while the daemon was away: crashed`);
      }
    }
    this.file.save();
    return sentences;
  }

  private async monitor(): Promise<void> {
    await this.mutex.run(async () => {
      let changed = false;
      const now = Date.now();
      for (const vm of Object.values(this.state.vms)) {
        if (!vm.proc) continue;
        const host = this.state.hosts[vm.host];
        if (vm.state === "unknown" && host?.powerOffAt && Date.parse(host.powerOffAt) <= now) {
          await killVm(vm.id, vm.proc);
          vm.proc = undefined;
          changed = true;
          this.log.info({ vm: vm.id, host: vm.host }, "failed host lost power: VM is off");
          continue;
        }
        if (observe(vm.proc) === "gone") {
          vm.proc = undefined;
          if (vm.state === "running" || vm.state === "frozen") vm.state = "crashed";
          changed = true;
          this.log.warn({ vm: vm.id }, "VM processes are gone: crashed");
        }
      }
      if (changed) this.file.save();
    });
  }

  // ---- views -------------------------------------------------------------------------

  private hostView(h: HostConfig): HostView & { vms: number } {
    const vms = Object.values(this.state.vms).filter((vm) => vm.host === h.id);
    return {
      id: h.id,
      up: (this.state.hosts[h.id]?.state ?? "up") === "up",
      attributes: h.attributes,
      capacity: { cpu: h.cpu, ramMb: h.ramMb },
      used: {
        cpu: vms.reduce((n, vm) => n + vm.vmType.cpu, 0),
        ramMb: vms.reduce((n, vm) => n + vm.vmType.ramMb, 0),
      },
      usedSlots: new Set(vms.map((vm) => vm.slot)),
      vms: vms.length,
    };
  }

  private toHost(h: HostConfig): Host {
    const view = this.hostView(h);
    return {
      id: h.id,
      name: h.name,
      zone: h.zone,
      state: view.up ? "up" : "failed",
      attributes: { ...h.attributes },
      capacity: { cpu: h.cpu, ramMb: h.ramMb },
      used: { ...view.used, vms: view.vms },
    };
  }

  private toVm(r: VmRecord): Vm {
    return {
      id: r.id,
      zone: r.zone,
      host: r.host,
      address: r.address,
      agentPort: this.opts.config.agentPort,
      state: r.state,
      vmType: r.vmType,
      metadata: { ...r.metadata },
      disks: Object.values(this.state.disks)
        .filter((d) => d.attachedTo === r.id)
        .map((d) => d.id),
      createdAt: r.createdAt,
    };
  }

  private toDisk(d: DiskRecord): Disk {
    return {
      id: d.id,
      zone: d.zone,
      sizeMb: d.sizeMb,
      state: d.attachedTo ? "in-use" : "available",
      ...(d.attachedTo ? { attachedTo: d.attachedTo } : {}),
      metadata: { ...d.metadata },
      createdAt: d.createdAt,
    };
  }

  private vmDir(id: string): string {
    return join(this.opts.dataDir, "vms", id);
  }

  private diskDir(id: string): string {
    return join(this.opts.dataDir, "disks", id);
  }

  private requireVm(id: string): VmRecord {
    const vm = this.state.vms[id];
    if (!vm) throw new NotFound(`VM ${id} does not exist`);
    return vm;
  }

  private requireDisk(id: string): DiskRecord {
    const disk = this.state.disks[id];
    if (!disk) throw new NotFound(`disk ${id} does not exist`);
    return disk;
  }

  private requireZone(zone: string, field = "zone"): void {
    if (!this.opts.config.zones.some((z) => z.name === zone)) {
      const known = this.opts.config.zones.map((z) => z.name).join(", ");
      throw new InvalidInput(`${field}: unknown zone "${zone}" (known: ${known})`, [
        { field, problem: `unknown zone "${zone}"` },
      ]);
    }
  }

  // ---- Cloud: zones and VMs ---------------------------------------------------------

  async zones(): Promise<Zone[]> {
    return this.opts.config.zones.map((z) => ({ name: z.name, hosts: z.hosts.map((h) => this.toHost(h)) }));
  }

  async hosts(): Promise<Host[]> {
    return allHosts(this.opts.config).map((h) => this.toHost(h));
  }

  createVm(input: CreateVmRequest): Promise<CreatedVm> {
    const req = parseWith(createVmSchema, input, "VM request");
    return this.mutex.run(() => {
      this.requireZone(req.zone);
      for (const [i, hint] of (req.hostHints ?? []).entries()) {
        const host = this.hostsById.get(hint);
        if (!host || host.zone !== req.zone) {
          throw new InvalidInput(`hostHints[${i}]: "${hint}" is not a host of zone ${req.zone}`, [
            { field: `hostHints[${i}]`, problem: `not a host of zone ${req.zone}` },
          ]);
        }
      }
      const zone = this.opts.config.zones.find((z) => z.name === req.zone)!;
      const choice = chooseHost(
        zone.hosts.map((h) => this.hostView(h)),
        req.vmType,
        req.hostHints,
      );
      if (!choice.ok) {
        throw new NoValidHost(
          `no host in zone ${req.zone} can take the VM: ${choice.reasons.join("; ")}`,
          choice.reasons,
        );
      }
      const host = this.hostsById.get(choice.host)!;
      const id = newId("vm");
      const token = req.agent?.token ?? randomBytes(24).toString("hex");
      const record: VmRecord = {
        id,
        zone: req.zone,
        host: host.id,
        address: `127.${host.zoneOctet}.${host.hostOctet}.${choice.slot}`,
        slot: choice.slot,
        state: "stopped",
        vmType: req.vmType,
        metadata: req.metadata ?? {},
        createdAt: new Date().toISOString(),
        bootCount: 0,
      };
      const dir = this.vmDir(id);
      const settings: AgentSettingsFile = {
        vmId: id,
        address: record.address,
        agentPort: this.opts.config.agentPort,
        token,
        ...(req.agent?.heartbeat
          ? {
              heartbeat: { url: req.agent.heartbeat.url, intervalMs: req.agent.heartbeat.intervalMs ?? 1000 },
            }
          : {}),
        disksDir: join(dir, "disks"),
        ephemeralDir: join(dir, "ephemeral"),
        env: req.agent?.env ?? {},
      };
      mkdirSync(settings.disksDir, { recursive: true });
      mkdirSync(settings.ephemeralDir, { recursive: true });
      writeFileSync(join(dir, SETTINGS_FILE), JSON.stringify(settings, null, 2), { mode: 0o600 });
      // Recorded before it boots: a daemon that dies in between finds the VM by its marker.
      this.state.vms[id] = record;
      this.file.save();
      this.boot(record);
      this.file.save();
      this.log.info({ vm: id, host: host.id, address: record.address }, "VM created");
      return { vm: this.toVm(record), agentToken: token };
    });
  }

  private boot(vm: VmRecord): void {
    vm.proc = bootAgent(vm.id, this.vmDir(vm.id));
    vm.state = "running";
    vm.bootCount += 1;
  }

  private async powerDown(vm: VmRecord): Promise<void> {
    await killVm(vm.id, vm.proc ?? findVmByMarker(vm.id));
    vm.proc = undefined;
  }

  deleteVm(id: string): Promise<void> {
    return this.mutex.run(async () => {
      const vm = this.state.vms[id];
      if (!vm) return;
      await this.powerDown(vm);
      for (const disk of Object.values(this.state.disks)) {
        if (disk.attachedTo === id) delete disk.attachedTo;
      }
      for (const a of Object.values(this.state.addresses)) if (a.holder === id) delete a.holder;
      delete this.state.vms[id];
      this.file.save();
      rmSync(this.vmDir(id), { recursive: true, force: true });
      this.log.info({ vm: id }, "VM deleted");
    });
  }

  async vmExists(id: string): Promise<boolean> {
    return id in this.state.vms;
  }

  async getVm(id: string): Promise<Vm | undefined> {
    const vm = this.state.vms[id];
    return vm && this.toVm(vm);
  }

  async listVms(filter?: VmFilter): Promise<Vm[]> {
    return Object.values(this.state.vms)
      .filter((vm) => matches(vm.metadata, filter))
      .map((vm) => this.toVm(vm));
  }

  rebootVm(id: string): Promise<void> {
    return this.mutex.run(async () => {
      const vm = this.requireVm(id);
      if (this.state.hosts[vm.host]?.state === "failed") {
        throw new HostUnavailable(`VM ${id} cannot boot: its host ${vm.host} has failed`);
      }
      await this.powerDown(vm);
      this.boot(vm);
      this.file.save();
      this.log.info({ vm: id }, "VM rebooted");
    });
  }

  powerOffVm(id: string): Promise<void> {
    return this.mutex.run(async () => {
      const vm = this.requireVm(id);
      await this.powerDown(vm);
      vm.state = "stopped";
      this.file.save();
      this.log.info({ vm: id }, "VM powered off");
    });
  }

  setVmMetadata(id: string, metadata: Metadata): Promise<void> {
    const md = parseWith(metadataSchema, metadata, "metadata");
    return this.mutex.run(() => {
      const vm = this.requireVm(id);
      Object.assign(vm.metadata, md);
      this.file.save();
    });
  }

  /** The agent settings of a VM, token included (what an IaaS admin can read as user data). */
  async agentSettings(id: string): Promise<{ address: string; agentPort: number; token: string }> {
    const vm = this.requireVm(id);
    const settings = JSON.parse(
      readFileSync(join(this.vmDir(id), SETTINGS_FILE), "utf8"),
    ) as AgentSettingsFile;
    return { address: vm.address, agentPort: settings.agentPort, token: settings.token };
  }

  // ---- Cloud: disks -------------------------------------------------------------------

  createDisk(input: CreateDiskRequest): Promise<Disk> {
    const req = parseWith(createDiskSchema, input, "disk request");
    return this.mutex.run(() => {
      this.requireZone(req.zone);
      const disk: DiskRecord = {
        id: newId("disk"),
        zone: req.zone,
        sizeMb: req.sizeMb,
        metadata: req.metadata ?? {},
        createdAt: new Date().toISOString(),
      };
      mkdirSync(this.diskDir(disk.id), { recursive: true, mode: 0o755 });
      this.state.disks[disk.id] = disk;
      this.file.save();
      this.log.info({ disk: disk.id, zone: disk.zone }, "disk created");
      return this.toDisk(disk);
    });
  }

  attachDisk(diskId: string, vmId: string): Promise<DiskAttachment> {
    parseWith(attachSchema, { vmId }, "attach request");
    return this.mutex.run(() => {
      const disk = this.requireDisk(diskId);
      const vm = this.requireVm(vmId);
      const device = join(this.vmDir(vmId), "disks", diskId);
      if (disk.attachedTo === vmId) return { diskId, vmId, device };
      if (disk.attachedTo) {
        throw new DiskInUse(
          `disk ${diskId} is attached to VM ${disk.attachedTo}; detach it first (with force if that VM is dead)`,
        );
      }
      if (disk.zone !== vm.zone) {
        throw new ZoneMismatch(`disk ${diskId} is in zone ${disk.zone}, VM ${vmId} in zone ${vm.zone}`);
      }
      if (!existsSync(device)) symlinkSync(this.diskDir(diskId), device);
      disk.attachedTo = vmId;
      this.file.save();
      this.log.info({ disk: diskId, vm: vmId }, "disk attached");
      return { diskId, vmId, device };
    });
  }

  detachDisk(diskId: string, opts: { force?: boolean } = {}): Promise<void> {
    return this.mutex.run(() => {
      const disk = this.requireDisk(diskId);
      const vmId = disk.attachedTo;
      if (!vmId) return;
      const vm = this.state.vms[vmId];
      if (vm && !opts.force && (vm.state === "crashed" || vm.state === "frozen" || vm.state === "unknown")) {
        throw new DetachFailed(
          `disk ${diskId} stays attached: VM ${vmId} is ${vm.state} and cannot release it; ` +
            `fence the VM, then detach with force`,
        );
      }
      rmSync(join(this.vmDir(vmId), "disks", diskId), { force: true });
      delete disk.attachedTo;
      this.file.save();
      this.log.info({ disk: diskId, vm: vmId, force: Boolean(opts.force) }, "disk detached");
    });
  }

  deleteDisk(id: string): Promise<void> {
    return this.mutex.run(() => {
      const disk = this.state.disks[id];
      if (!disk) return;
      if (disk.attachedTo)
        throw new DiskInUse(`disk ${id} is attached to VM ${disk.attachedTo}; detach it first`);
      delete this.state.disks[id];
      this.file.save();
      rmSync(this.diskDir(id), { recursive: true, force: true });
      this.log.info({ disk: id }, "disk deleted");
    });
  }

  async getDisk(id: string): Promise<Disk | undefined> {
    const disk = this.state.disks[id];
    return disk && this.toDisk(disk);
  }

  async listDisks(filter?: VmFilter): Promise<Disk[]> {
    return Object.values(this.state.disks)
      .filter((d) => matches(d.metadata, filter))
      .map((d) => this.toDisk(d));
  }

  // ---- Cloud: virtual addresses ----------------------------------------------------------
  // A zone's virtual addresses are 127.Z.0.N: host octet 0 is never a host's.

  allocateAddress(input: { zone: string; metadata?: Metadata }): Promise<VirtualAddress> {
    const req = parseWith(allocateAddressSchema, input, "address request");
    return this.mutex.run(() => {
      this.requireZone(req.zone);
      const octet = this.opts.config.zones.find((z) => z.name === req.zone)!.hosts[0]!.zoneOctet;
      const taken = new Set(Object.keys(this.state.addresses));
      for (let n = 1; n <= 254; n++) {
        const address = `127.${octet}.0.${n}`;
        if (taken.has(address)) continue;
        const rec: AddressRecord = { address, zone: req.zone, metadata: req.metadata ?? {} };
        this.state.addresses[address] = rec;
        this.file.save();
        this.log.info({ address, zone: req.zone }, "address allocated");
        return { ...rec, metadata: { ...rec.metadata } };
      }
      throw new NoAddressLeft(`zone ${req.zone} has no free virtual address (254 in use)`);
    });
  }

  assignAddress(address: string, vmId: string): Promise<VirtualAddress> {
    return this.mutex.run(() => {
      const rec = this.state.addresses[address];
      if (!rec) throw new NotFound(`address ${address} is not allocated`);
      this.requireVm(vmId);
      if (rec.holder !== vmId) {
        this.log.info({ address, from: rec.holder, to: vmId }, "address assigned");
        rec.holder = vmId;
        this.file.save();
      }
      return { ...rec, metadata: { ...rec.metadata } };
    });
  }

  releaseAddress(address: string): Promise<void> {
    return this.mutex.run(() => {
      if (!this.state.addresses[address]) return;
      delete this.state.addresses[address];
      this.file.save();
      this.log.info({ address }, "address released");
    });
  }

  async listAddresses(filter?: VmFilter): Promise<VirtualAddress[]> {
    return Object.values(this.state.addresses)
      .filter((a) => matches(a.metadata, filter))
      .map((a) => ({ ...a, metadata: { ...a.metadata } }));
  }

  // ---- faults ---------------------------------------------------------------------------

  /** A kernel panic: every process of the VM gets SIGKILL. Its disks stay attached. */
  crashVm(id: string): Promise<void> {
    return this.mutex.run(async () => {
      const vm = this.requireVm(id);
      if (vm.state !== "running" && vm.state !== "frozen") {
        throw new Conflict(`VM ${id} is ${vm.state}; only a running or frozen VM can crash`);
      }
      await this.powerDown(vm);
      vm.state = "crashed";
      this.file.save();
      this.log.warn({ vm: id }, "fault: VM crashed");
    });
  }

  /** Suspends every process of the VM: silent, connections stay open, nothing answers. */
  freezeVm(id: string): Promise<void> {
    return this.mutex.run(() => {
      const vm = this.requireVm(id);
      if (vm.state === "frozen") return;
      if (vm.state !== "running" || !vm.proc)
        throw new Conflict(`VM ${id} is ${vm.state}; only a running VM can freeze`);
      freezeVm(vm.id, vm.proc);
      vm.state = "frozen";
      this.file.save();
      this.log.warn({ vm: id }, "fault: VM frozen");
    });
  }

  thawVm(id: string): Promise<void> {
    return this.mutex.run(() => {
      const vm = this.requireVm(id);
      if (vm.state === "running") return;
      if (vm.state !== "frozen" || !vm.proc)
        throw new Conflict(`VM ${id} is ${vm.state}; only a frozen VM can thaw`);
      thawVm(vm.id, vm.proc);
      vm.state = "running";
      this.file.save();
      this.log.warn({ vm: id }, "fault: VM thawed");
    });
  }

  private requireHost(id: string): HostConfig {
    const host = this.hostsById.get(id);
    if (!host) {
      throw new NotFound(`host ${id} does not exist (hosts are named zone/host, e.g. z1/h1)`);
    }
    return host;
  }

  /**
   * A host fails: its VMs go silent at once (frozen, state `unknown`), then lose
   * power after `powerOffAfterMs`. No VM can be created on it until it is restored.
   */
  failHost(id: string, opts: { powerOffAfterMs?: number } = {}): Promise<void> {
    const o = parseWith(failHostSchema, opts, "host failure");
    return this.mutex.run(() => this.failHostLocked(id, o.powerOffAfterMs));
  }

  private failHostLocked(id: string, powerOffAfterMs = DEFAULT_HOST_POWER_OFF_AFTER_MS): void {
    this.requireHost(id);
    if (this.state.hosts[id]?.state === "failed") return;
    const now = Date.now();
    this.state.hosts[id] = {
      state: "failed",
      failedAt: new Date(now).toISOString(),
      powerOffAt: new Date(now + powerOffAfterMs).toISOString(),
    };
    for (const vm of Object.values(this.state.vms)) {
      if (vm.host !== id) continue;
      freezeVm(vm.id, vm.proc);
      vm.state = "unknown";
    }
    this.file.save();
    this.log.warn({ host: id, powerOffAfterMs }, "fault: host failed");
  }

  /** A failed host comes back. Its VMs come back powered off, never running. */
  restoreHost(id: string): Promise<void> {
    return this.mutex.run(() => this.restoreHostLocked(id));
  }

  private async restoreHostLocked(id: string): Promise<void> {
    this.requireHost(id);
    if (this.state.hosts[id]?.state !== "failed") return;
    for (const vm of Object.values(this.state.vms)) {
      if (vm.host !== id) continue;
      await this.powerDown(vm);
      vm.state = "stopped";
    }
    this.state.hosts[id] = { state: "up" };
    this.file.save();
    this.log.warn({ host: id }, "fault: host restored");
  }

  private zoneHosts(zone: string): HostConfig[] {
    const z = this.opts.config.zones.find((x) => x.name === zone);
    if (!z) throw new NotFound(`zone ${zone} does not exist`);
    return z.hosts;
  }

  failZone(zone: string, opts: { powerOffAfterMs?: number } = {}): Promise<void> {
    const o = parseWith(failHostSchema, opts, "zone failure");
    return this.mutex.run(() => {
      for (const h of this.zoneHosts(zone)) this.failHostLocked(h.id, o.powerOffAfterMs);
    });
  }

  restoreZone(zone: string): Promise<void> {
    return this.mutex.run(async () => {
      for (const h of this.zoneHosts(zone)) await this.restoreHostLocked(h.id);
    });
  }

  async faults(): Promise<FaultReport> {
    return {
      frozenVms: Object.values(this.state.vms)
        .filter((vm) => vm.state === "frozen")
        .map((vm) => vm.id),
      failedHosts: Object.entries(this.state.hosts)
        .filter(([, h]) => h.state === "failed")
        .map(([id, h]) => ({
          id,
          failedAt: h.failedAt!,
          ...(h.powerOffAt ? { powerOffAt: h.powerOffAt } : {}),
        })),
    };
  }
}
