/**
 * The local cloud: the `Cloud` interface implemented in-process over real
 * processes and directories, plus the fault API. The daemon (`daemon.ts`) serves
 * it over HTTP; the director talks to it through `LocalCloudClient`.
 *
 * Every change runs under one mutex and is written to the state file before the
 * call returns. A monitor loop notices VMs whose processes died on their own
 * (they become `crashed`) and powers off the VMs of failed hosts when due.
 *
 * The network (`network/`, as root): each VM's connections leave from its own
 * address; a VM that is not running (crashed, frozen, powered off, on a failed
 * host) answers nothing, as on a real cloud; network faults (partitions,
 * isolation, slow links) drop packets. Its table is rebuilt after every change
 * that touches it, and removed when the daemon stops or starts.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { InvalidInput, NotFound, Conflict, Unavailable } from "../../lib/errors.js";
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
import { attachSchema, controlPlaneSchema, failHostSchema, networkFaultSchema } from "./requests.js";
import { LocalNetwork } from "./network/network.js";
import {
  describeFault,
  parseTarget,
  type NetworkFault,
  type NetworkFaultSpec,
  type NetworkState,
} from "./network/faults.js";
import { chooseHost, type HostView } from "../scheduler.js";
import { StateFile, type AddressRecord, type DiskRecord, type VmRecord } from "./state.js";
import { bootAgent, consolePath, findVmByMarker, freezeVm, killVm, observe, thawVm } from "./vm-runtime.js";
import { readStat } from "../../lib/proc.js";
import { tailFile } from "../../lib/files.js";

export interface LocalCloudOptions {
  config: CloudConfig;
  dataDir: string;
  log?: Logger;
  /** How often the monitor loop looks at VM processes (default 250 ms). */
  monitorIntervalMs?: number;
}

export interface FaultReport {
  frozenVms: string[];
  /** VMs that answer nothing: crashed (their kernel), frozen, powered off, on a failed host. */
  silentVms: string[];
  failedHosts: { id: string; failedAt: string; powerOffAt?: string }[];
  network: Array<NetworkFault & { description: string }>;
  /** Why network faults cannot be made here, when they cannot. */
  networkUnavailable?: string;
}

/** Slow links with a delay at once (each has a delay queue of its own; 16 per cloud). */
const MAX_DELAYED_LINKS = 16;

/** The default delay between a host failing (its VMs go silent) and its VMs losing power. */
export const DEFAULT_HOST_POWER_OFF_AFTER_MS = 2000;

const newId = (prefix: string): string => `${prefix}-${randomBytes(5).toString("hex")}`;

/** A VM that answers nothing from outside: no running kernel (a loud crash of its processes answers). */
const isSilent = (vm: VmRecord): boolean =>
  vm.state === "stopped" ||
  vm.state === "frozen" ||
  vm.state === "unknown" ||
  (vm.state === "crashed" && vm.crash !== "processes");
const matches = (md: Metadata, filter?: VmFilter): boolean =>
  Object.entries(filter?.metadata ?? {}).every(([k, v]) => md[k] === v);

export class LocalCloudService implements Cloud {
  private readonly mutex = new Mutex();
  private readonly file: StateFile;
  private readonly hostsById: Map<string, HostConfig>;
  private readonly log: Logger;
  private monitorTimer: NodeJS.Timeout | undefined;
  private net: LocalNetwork | undefined;
  private netUnavailable = "the local cloud has not started";

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

  /**
   * Adopts the VMs a previous daemon left running, heals the network faults it left
   * (and removes whatever rules a crashed daemon left behind), then starts the monitor loop.
   */
  async start(): Promise<string[]> {
    const net = await LocalNetwork.detect(this.opts.config.addressBase, join(this.opts.dataDir, "delay.log"));
    if (net instanceof LocalNetwork) this.net = net;
    else this.netUnavailable = net.unavailable;
    const sentences = await this.mutex.run(async () => {
      const adopted = this.adopt();
      const healed = this.state.network.faults.length;
      this.state.network.faults = [];
      this.file.save();
      if (this.net) {
        await this.net.clear(this.state.network.delays ?? []);
        this.state.network.delays = [];
        await this.syncNetwork();
        if (healed > 0) adopted.push(`healed ${healed} network fault(s) left by the previous daemon`);
      } else adopted.push(`network: ${this.netUnavailable}`);
      return adopted;
    });
    this.monitorTimer = setInterval(() => void this.monitor(), this.opts.monitorIntervalMs ?? 250);
    this.monitorTimer.unref();
    return sentences;
  }

  /** Stops the monitor loop and removes the network's rules. VMs keep running: they outlive the daemon. */
  async stop(): Promise<void> {
    if (this.monitorTimer) clearInterval(this.monitorTimer);
    await this.mutex.run(async () => {
      if (!this.net) return;
      this.state.network.faults = [];
      await this.net.clear(this.state.network.delays ?? []);
      this.state.network.delays = [];
      this.file.save();
    });
  }

  // ---- network ------------------------------------------------------------------------

  private networkState(): NetworkState {
    const cp = this.state.network.controlPlane;
    return {
      zones: this.opts.config.zones.map((z) => z.name),
      hosts: allHosts(this.opts.config).map((h) => ({ id: h.id, zone: h.zone })),
      vms: Object.values(this.state.vms).map((v) => ({
        id: v.id,
        zone: v.zone,
        host: v.host,
        address: v.address,
      })),
      vips: Object.values(this.state.addresses).map((a) => ({
        address: a.address,
        ...(a.holder ? { holder: a.holder } : {}),
      })),
      ...(cp ? { controlPlane: cp.address } : {}),
    };
  }

  /** Rebuilds the network's table from the state (under the mutex). */
  private async syncNetwork(): Promise<void> {
    if (!this.net) return;
    const silentVms = new Set(
      Object.values(this.state.vms)
        .filter(isSilent)
        .map((v) => v.id),
    );
    const cp = this.state.network.controlPlane;
    this.state.network.delays = await this.net.sync({
      delays: this.state.network.delays ?? [],
      state: this.networkState(),
      members: Object.values(this.state.vms).map((v) => ({ id: v.id, address: v.address })),
      ...(cp ? { controlPlane: { address: cp.address } } : {}),
      silent: [
        ...Object.values(this.state.vms)
          .filter((v) => silentVms.has(v.id))
          .map((v) => v.address),
        // A virtual address held by a dead VM, or by none, answers nothing either.
        ...Object.values(this.state.addresses)
          .filter((a) => !a.holder || silentVms.has(a.holder))
          .map((a) => a.address),
      ],
      // One held by a running VM takes new connections there only, once it listens. A
      // VM whose processes died keeps the address configured in its kernel: resets.
      held: Object.values(this.state.addresses).flatMap((a) =>
        a.holder && this.state.vms[a.holder]?.state === "running"
          ? [{ address: a.address, holder: a.holder }]
          : [],
      ),
      // Nor do their sockets, on any address (a virtual address that moved on).
      gone: [...silentVms],
      faults: this.state.network.faults,
    });
    this.file.save();
  }

  /** For changes that must happen even if the rules cannot follow (fencing): the failure is logged. */
  private async syncNetworkOrLog(): Promise<void> {
    await this.syncNetwork().catch((err: unknown) =>
      this.log.error({ err }, "network rules could not be updated"),
    );
  }

  private requireNetwork(): LocalNetwork {
    if (!this.net) throw new Unavailable(`network faults are not available here: ${this.netUnavailable}`);
    return this.net;
  }

  /**
   * The control plane registers its process and its own address: its connections
   * then leave from that address, and `control-plane` is a fault target. An address
   * it shares (127.0.0.1) is not its own: then it is not a target.
   */
  registerControlPlane(input: {
    pid: number;
    address: string;
  }): Promise<{ network: boolean; reason?: string }> {
    const req = parseWith(controlPlaneSchema, input, "control plane");
    return this.mutex.run(async () => {
      if (!this.net) return { network: false, reason: this.netUnavailable };
      const st = readStat(req.pid);
      if (!st) throw new NotFound(`process ${req.pid} does not exist`);
      if (req.address === "127.0.0.1") {
        delete this.state.network.controlPlane;
        this.file.save();
        await this.syncNetwork();
        return { network: false, reason: "the control plane listens on 127.0.0.1, an address it shares" };
      }
      this.net.adopt("control-plane", req.pid, st.startTime);
      this.state.network.controlPlane = { pid: req.pid, startTime: st.startTime, address: req.address };
      this.file.save();
      await this.syncNetwork();
      this.log.info({ pid: req.pid, address: req.address }, "control plane registered");
      return { network: true };
    });
  }

  /** Makes a network fault; its targets are checked now and resolved again at every change. */
  addNetworkFault(input: NetworkFaultSpec): Promise<NetworkFault & { description: string }> {
    const spec = parseWith(networkFaultSchema, input, "network fault") as NetworkFaultSpec;
    return this.mutex.run(async () => {
      this.requireNetwork();
      const s = this.networkState();
      if (spec.kind === "partition") {
        parseTarget(spec.a, s, "a");
        parseTarget(spec.b, s, "b");
        if (spec.a === spec.b)
          throw new InvalidInput(`b: "${spec.b}" is A itself`, [{ field: "b", problem: "same as a" }]);
      } else parseTarget(spec.target, s, "target");
      const delayed = this.state.network.faults.filter((f) => f.kind === "slow" && f.delayMs > 0).length;
      if (spec.kind === "slow" && spec.delayMs > 0 && delayed >= MAX_DELAYED_LINKS)
        throw new InvalidInput(
          `delayMs: at most ${MAX_DELAYED_LINKS} slow links with a delay at once (heal one first)`,
          [{ field: "delayMs", problem: "too many delayed links" }],
        );
      const fault: NetworkFault = { ...spec, id: newId("net"), since: new Date().toISOString() };
      this.state.network.faults.push(fault);
      try {
        await this.syncNetwork();
      } catch (err) {
        this.state.network.faults.pop();
        await this.syncNetwork().catch(() => undefined);
        throw err;
      }
      this.file.save();
      this.log.warn({ fault: fault.id, what: describeFault(fault) }, "fault: network");
      return { ...fault, description: describeFault(fault) };
    });
  }

  /** Heals one network fault, or all of them; returns the ids healed. */
  healNetwork(id?: string): Promise<string[]> {
    return this.mutex.run(async () => {
      const faults = this.state.network.faults;
      if (id !== undefined && !faults.some((f) => f.id === id)) {
        const known = faults.map((f) => f.id).join(", ") || "none";
        throw new NotFound(`network fault ${id} does not exist (in effect: ${known})`);
      }
      const healed = faults.filter((f) => id === undefined || f.id === id).map((f) => f.id);
      this.state.network.faults = faults.filter((f) => !healed.includes(f.id));
      this.file.save();
      await this.syncNetwork();
      if (healed.length > 0) this.log.warn({ healed }, "fault: network healed");
      return healed;
    });
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
          if (vm.state === "running" || vm.state === "frozen") {
            // Died on their own: the VM's kernel lives on and answers with resets.
            vm.crash = vm.state === "running" ? "processes" : "kernel";
            vm.state = "crashed";
          }
          changed = true;
          this.log.warn({ vm: vm.id }, "VM processes are gone: crashed");
        }
      }
      if (changed) {
        this.file.save();
        await this.syncNetworkOrLog();
      }
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
    return this.mutex.run(async () => {
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
      await this.syncNetwork();
      this.log.info({ vm: id, host: host.id, address: record.address }, "VM created");
      return { vm: this.toVm(record), agentToken: token };
    });
  }

  private boot(vm: VmRecord): void {
    vm.proc = bootAgent(vm.id, this.vmDir(vm.id), {
      ...(this.net ? { cgroupProcs: this.net.cgroupProcs(vm.id) } : {}),
    });
    vm.state = "running";
    delete vm.crash;
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
      await this.syncNetwork();
      this.net?.forget(id);
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
      await this.syncNetwork();
      this.log.info({ vm: id }, "VM rebooted");
    });
  }

  powerOffVm(id: string): Promise<void> {
    return this.mutex.run(async () => {
      const vm = this.requireVm(id);
      vm.state = "stopped";
      // Silent first: its dying sockets send nothing anyone sees. Fencing does not
      // depend on it: the VM is powered off whatever the network's rules did.
      await this.syncNetworkOrLog();
      await this.powerDown(vm);
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

  /** The last `lines` lines of the VM's console (its agent's stdout and stderr, across boots). */
  async consoleOutput(id: string, lines: number): Promise<string[]> {
    if (!Number.isInteger(lines) || lines < 1 || lines > 1000)
      throw new InvalidInput(`lines: expected a whole number from 1 to 1000, got ${String(lines)}`, [
        { field: "lines", problem: "expected 1..1000" },
      ]);
    this.requireVm(id);
    return tailFile(consolePath(this.vmDir(id)), lines);
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
    return this.mutex.run(async () => {
      this.requireZone(req.zone);
      const octet = this.opts.config.zones.find((z) => z.name === req.zone)!.hosts[0]!.zoneOctet;
      const taken = new Set(Object.keys(this.state.addresses));
      for (let n = 1; n <= 254; n++) {
        const address = `127.${octet}.0.${n}`;
        if (taken.has(address)) continue;
        const rec: AddressRecord = { address, zone: req.zone, metadata: req.metadata ?? {} };
        this.state.addresses[address] = rec;
        this.file.save();
        await this.syncNetwork();
        this.log.info({ address, zone: req.zone }, "address allocated");
        return { ...rec, metadata: { ...rec.metadata } };
      }
      throw new NoAddressLeft(`zone ${req.zone} has no free virtual address (254 in use)`);
    });
  }

  assignAddress(address: string, vmId: string): Promise<VirtualAddress> {
    return this.mutex.run(async () => {
      const rec = this.state.addresses[address];
      if (!rec) throw new NotFound(`address ${address} is not allocated`);
      this.requireVm(vmId);
      if (rec.holder !== vmId) {
        this.log.info({ address, from: rec.holder, to: vmId }, "address assigned");
        rec.holder = vmId;
        this.file.save();
        await this.syncNetwork();
      }
      return { ...rec, metadata: { ...rec.metadata } };
    });
  }

  releaseAddress(address: string): Promise<void> {
    return this.mutex.run(async () => {
      if (!this.state.addresses[address]) return;
      delete this.state.addresses[address];
      this.file.save();
      await this.syncNetwork();
      this.log.info({ address }, "address released");
    });
  }

  async listAddresses(filter?: VmFilter): Promise<VirtualAddress[]> {
    return Object.values(this.state.addresses)
      .filter((a) => matches(a.metadata, filter))
      .map((a) => ({ ...a, metadata: { ...a.metadata } }));
  }

  // ---- faults ---------------------------------------------------------------------------

  /**
   * A kernel panic: the VM's addresses go silent (no packet in or out, as when a real
   * VM's kernel is gone), then every process of the VM gets SIGKILL. Its disks stay
   * attached. Without the network (not root) the crash is loud: resets answer.
   */
  crashVm(id: string): Promise<void> {
    return this.crash(id, "kernel");
  }

  /**
   * Every process of the VM dies (OOM, a segfault) while its kernel lives on: its
   * addresses answer with resets. A VM whose processes died is `crashed` either way.
   */
  killVmProcesses(id: string): Promise<void> {
    return this.crash(id, "processes");
  }

  private crash(id: string, how: "kernel" | "processes"): Promise<void> {
    return this.mutex.run(async () => {
      const vm = this.requireVm(id);
      if (vm.state !== "running" && vm.state !== "frozen") {
        throw new Conflict(`VM ${id} is ${vm.state}; only a running or frozen VM can crash`);
      }
      vm.state = "crashed";
      vm.crash = how;
      await this.syncNetworkOrLog(); // silent before it dies: its sockets' last packets reach nobody
      await this.powerDown(vm);
      this.file.save();
      this.log.warn(
        { vm: id },
        how === "kernel" ? "fault: VM crashed (kernel panic)" : "fault: VM's processes killed",
      );
    });
  }

  /** Suspends every process of the VM: silent, connections stay open, nothing answers. */
  freezeVm(id: string): Promise<void> {
    return this.mutex.run(async () => {
      const vm = this.requireVm(id);
      if (vm.state === "frozen") return;
      if (vm.state !== "running" || !vm.proc)
        throw new Conflict(`VM ${id} is ${vm.state}; only a running VM can freeze`);
      vm.state = "frozen";
      await this.syncNetwork();
      freezeVm(vm.id, vm.proc);
      this.file.save();
      this.log.warn({ vm: id }, "fault: VM frozen");
    });
  }

  thawVm(id: string): Promise<void> {
    return this.mutex.run(async () => {
      const vm = this.requireVm(id);
      if (vm.state === "running") return;
      if (vm.state !== "frozen" || !vm.proc)
        throw new Conflict(`VM ${id} is ${vm.state}; only a frozen VM can thaw`);
      thawVm(vm.id, vm.proc);
      vm.state = "running";
      this.file.save();
      await this.syncNetwork();
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
    return this.mutex.run(async () => {
      this.failHostLocked(id, o.powerOffAfterMs);
      await this.syncNetwork();
    });
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
    return this.mutex.run(async () => {
      await this.restoreHostLocked(id);
      await this.syncNetwork();
    });
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
    return this.mutex.run(async () => {
      for (const h of this.zoneHosts(zone)) this.failHostLocked(h.id, o.powerOffAfterMs);
      await this.syncNetwork();
    });
  }

  restoreZone(zone: string): Promise<void> {
    return this.mutex.run(async () => {
      for (const h of this.zoneHosts(zone)) await this.restoreHostLocked(h.id);
      await this.syncNetwork();
    });
  }

  async faults(): Promise<FaultReport> {
    return {
      frozenVms: Object.values(this.state.vms)
        .filter((vm) => vm.state === "frozen")
        .map((vm) => vm.id),
      silentVms: this.net
        ? Object.values(this.state.vms)
            .filter(isSilent)
            .map((vm) => vm.id)
        : [],
      network: this.state.network.faults.map((f) => ({ ...f, description: describeFault(f) })),
      ...(this.net ? {} : { networkUnavailable: this.netUnavailable }),
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
