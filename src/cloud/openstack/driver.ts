/**
 * `OpenStackCloud`: the `openstack` driver of the `Cloud` interface, over Nova,
 * Cinder, Neutron and Glance (see README.md for what maps to what).
 *
 * Safety: `powerOffVm` resolves only when Nova reports the server SHUTOFF, or when
 * its compute host is marked forced-down (the operator's statement that the host is
 * fenced). A server on a host that is merely unreachable is NOT fenced: Unavailable.
 */
import { randomBytes } from "node:crypto";
import { InvalidInput, NotFound, Unavailable } from "../../lib/errors.js";
import { memoUntilFailure } from "../../lib/memo.js";
import { parseWith } from "../../lib/validate.js";
import { sleep } from "../../lib/sleep.js";
import { unfitReason } from "../../placement/filters.js";
import {
  DetachFailed,
  DiskInUse,
  HostUnavailable,
  NoAddressLeft,
  NoValidHost,
  QuotaExceeded,
  ZoneMismatch,
  type Cloud,
  type CreateDiskRequest,
  type CreatedVm,
  type CreateVmRequest,
  type Disk,
  type DiskAttachment,
  type Host,
  type Metadata,
  type VirtualAddress,
  type Vm,
  type VmFilter,
  type Zone,
} from "../cloud.js";
import { Cinder, type CinderVolume } from "./cinder.js";
import type { OpenStackConfig } from "./config.js";
import {
  flavorFor,
  matches,
  metadataOfTags,
  metadataTags,
  TAG,
  tagValue,
  vmStateOf,
  vmTypeOf,
  zonesOf,
  ZONAL_MAINTENANCE,
} from "./decide.js";
import { Neutron, type NeutronPort } from "./neutron.js";
import { Nova, type NovaServer, type NovaService } from "./nova.js";
import { OpenStackError, OpenStackSession } from "./session.js";
import { allocateAddressSchema, createDiskSchema, createVmSchema } from "../requests.js";
import { agentUserData } from "./user-data.js";

const POLL_MS = 500;

export class OpenStackCloud implements Cloud {
  readonly session: OpenStackSession;
  private readonly nova: Nova;
  private readonly cinder: Cinder;
  private readonly neutron: Neutron;
  /** The VMs' network, the floating IP network and the agent image, by id (looked up once). */
  private readonly networkId = memoUntilFailure(() => this.neutron.networkId(this.settings.network));
  private readonly floatingNetworkId = memoUntilFailure(() =>
    this.neutron.networkId(this.settings.floating_network!),
  );
  private readonly imageId = memoUntilFailure(() => this.findImage(this.settings.image));

  constructor(
    readonly config: OpenStackConfig,
    session?: OpenStackSession,
  ) {
    this.session = session ?? new OpenStackSession(config.credentials);
    this.nova = new Nova(this.session);
    this.cinder = new Cinder(this.session);
    this.neutron = new Neutron(this.session);
  }

  private get settings() {
    return this.config.settings;
  }

  /**
   * What an operator checks before pointing the director at this cloud: login, the
   * Nova microversion, zones and hosts, and that the image and networks resolve.
   * Rejects with the first thing that is wrong.
   */
  check(): Promise<{
    novaMicroversion: string;
    zones: Zone[];
    imageId: string;
    networkId: string;
    floatingNetworkId?: string;
  }> {
    return guard(async () => {
      const [novaMicroversion, zones, imageId, networkId] = await Promise.all([
        this.nova.version(),
        this.zones(),
        this.imageId(),
        this.networkId(),
      ]);
      const floatingNetworkId = this.settings.floating_network ? await this.floatingNetworkId() : undefined;
      return {
        novaMicroversion,
        zones,
        imageId,
        networkId,
        ...(floatingNetworkId ? { floatingNetworkId } : {}),
      };
    });
  }

  // ---- zones ----

  zones(): Promise<Zone[]> {
    return guard(async () => {
      const [azs, aggregates, hypervisors, services] = await Promise.all([
        this.nova.availabilityZones(),
        this.nova.aggregates(),
        this.nova.hypervisors(),
        this.nova.computeServices(),
      ]);
      return zonesOf(
        azs.map((z) => z.zoneName),
        aggregates,
        hypervisors,
        services,
      );
    });
  }

  setHostMaintenance(hostId: string, reason: string | null): Promise<void> {
    return guard(async () => {
      const name = hostId.split("/").slice(1).join("/");
      const svc = (await this.nova.computeServices()).find((s) => s.host === name);
      if (!svc) throw new NotFound(`no compute service on host ${hostId}`);
      const why =
        reason === null
          ? null
          : reason.startsWith(ZONAL_MAINTENANCE)
            ? reason
            : `${ZONAL_MAINTENANCE} ${reason}`;
      await this.nova.setServiceStatus(svc.id, why);
    });
  }

  // ---- VMs ----

  createVm(req: CreateVmRequest): Promise<CreatedVm> {
    return guard(async () => {
      const { agent: _agent, ...request } = req; // the agent settings hold a function (the TLS issuer)
      parseWith(createVmSchema, request, "VM request");
      const zones = await this.zones();
      const zone = knownZone(zones, req.zone);
      for (const [i, hint] of (req.hostHints ?? []).entries())
        if (!zone.hosts.some((h) => h.id === hint))
          throw new InvalidInput(`hostHints[${i}]: "${hint}" is not a host of zone ${req.zone}`, [
            { field: `hostHints[${i}]`, problem: `not a host of zone ${req.zone}` },
          ]);

      const host = chooseHint(zone.hosts, req);
      const flavorId = await this.flavorId(req);
      let groupId = req.group ? await this.serverGroupId(req.group) : undefined;
      const [networkId, imageRef] = await Promise.all([this.networkId(), this.imageId()]);
      const name = `zonal-${randomBytes(4).toString("hex")}`;
      const port = await this.neutron.createPort({ networkId, name, tags: [TAG.vmPort] });
      const address = port.fixed_ips[0]?.ip_address;
      try {
        if (!address) throw new Unavailable(`Neutron gave port ${port.id} no fixed IP`);
        const token = req.agent?.token ?? randomBytes(24).toString("hex");
        const tls = req.agent?.tls;
        const issued = tls ? await tls.issue(address) : undefined;
        // The user data stays readable from the metadata service: with a bootstrapper it
        // carries a one-time code, and the token and key are picked up once.
        const deposited =
          req.agent?.bootstrap && issued
            ? await req.agent.bootstrap.deposit({ token, tls: { cert: issued.certPem, key: issued.keyPem } })
            : undefined;
        const userData = agentUserData({
          ...(deposited ? { bootstrap: deposited } : {}),
          address,
          agentPort: this.settings.agent_port,
          token,
          ...(req.agent?.heartbeat ? { heartbeat: req.agent.heartbeat } : {}),
          ...(req.agent?.env ? { env: req.agent.env } : {}),
          ...(tls && issued ? { tls: { ca: tls.caPem, cert: issued.certPem, key: issued.keyPem } } : {}),
          ...(this.settings.agent_tarball_url ? { tarballUrl: this.settings.agent_tarball_url } : {}),
        });
        const boot = (onHost: string | undefined) =>
          this.nova.createServer({
            name,
            imageRef,
            flavorRef: flavorId,
            availability_zone: zone.name,
            ...(onHost ? { host: onHost } : {}),
            networks: [{ port: port.id }],
            metadata: req.metadata ?? {},
            user_data: Buffer.from(userData).toString("base64"),
            ...(groupId ? { schedulerHints: { group: groupId } } : {}),
          });
        // The group's last VM may have been deleted (and the group with it) meanwhile: once more with a new one.
        const attempt = async (onHost: string | undefined) => {
          try {
            return await this.bootAndWait(boot, onHost);
          } catch (err) {
            if (!(req.group && err instanceof OpenStackError && /group/i.test(err.message))) throw err;
            groupId = await this.serverGroupId(req.group);
            return this.bootAndWait(boot, onHost);
          }
        };
        let server = await attempt(host?.name);
        if (!server && host) server = await attempt(undefined); // the hint did not fit after all
        if (!server)
          throw new NoValidHost(`Nova found no valid host in zone ${zone.name} for ${describe(req)}`, []);
        const services = await this.nova.computeServices();
        return { vm: this.toVm(server, services, new Map([[server.id, address]])), agentToken: token };
      } catch (err) {
        await this.neutron.deletePort(port.id).catch(() => undefined);
        throw err;
      }
    });
  }

  /**
   * Boots a server and waits for ACTIVE. Undefined when Nova found no valid host
   * (the server is deleted again); other failures reject, with the server deleted.
   */
  private async bootAndWait(
    boot: (host: string | undefined) => Promise<{ id: string }>,
    host: string | undefined,
  ): Promise<NovaServer | undefined> {
    const { id } = await boot(host);
    try {
      const server = await this.waitServer(
        id,
        (s) => s.status === "ACTIVE" || s.status === "ERROR",
        "ACTIVE",
      );
      if (server.status === "ACTIVE") return server;
      const fault = server.fault?.message ?? "no fault recorded";
      await this.deleteServerAndWait(id);
      if (/no valid host/i.test(fault)) return undefined;
      throw new Unavailable(`server ${id} went to ERROR while booting: ${fault}`);
    } catch (err) {
      if (err instanceof Unavailable && /timed out/.test(err.message))
        await this.deleteServerAndWait(id).catch(() => undefined);
      throw err;
    }
  }

  deleteVm(id: string): Promise<void> {
    return guard(async () => {
      const server = await this.nova.server(id);
      const ports = await this.neutron.ports({ deviceId: id });
      for (const vip of await this.neutron.ports({ tags: [TAG.vip, TAG.holder(id)] }))
        await this.neutron.setTags(
          vip.id,
          (vip.tags ?? []).filter((t) => t !== TAG.holder(id)),
        );
      if (server) await this.deleteServerAndWait(id);
      for (const p of ports) if ((p.tags ?? []).includes(TAG.vmPort)) await this.neutron.deletePort(p.id);
      // A group's server group goes with its last VM (a VM created meanwhile makes a new one).
      // Nova may still list a server it has just deleted as a member: only servers that
      // exist count, so of VMs deleted side by side the last to finish removes the group.
      for (const gid of server?.server_groups ?? []) {
        const group = await this.nova.serverGroup(gid);
        if (!group || !group.name.startsWith("zonal-")) continue;
        const members = await Promise.all(group.members.map((m) => this.nova.server(m)));
        if (members.every((m) => m === undefined || m.status === "DELETED"))
          await this.nova.deleteServerGroup(gid);
      }
    });
  }

  vmExists(id: string): Promise<boolean> {
    return guard(async () => (await this.nova.server(id)) !== undefined);
  }

  getVm(id: string): Promise<Vm | undefined> {
    return guard(async () => {
      const server = await this.nova.server(id);
      if (!server || server.status === "DELETED") return undefined;
      const [services, ports] = await Promise.all([
        this.nova.computeServices(),
        this.neutron.ports({ deviceId: id }),
      ]);
      return this.toVm(server, services, addressesOf(ports));
    });
  }

  listVms(filter?: VmFilter): Promise<Vm[]> {
    return guard(async () => {
      const [servers, services, ports] = await Promise.all([
        this.nova.servers(),
        this.nova.computeServices(),
        this.networkId().then((networkId) => this.neutron.ports({ networkId })),
      ]);
      const addresses = addressesOf(ports);
      return servers
        .filter((s) => s.status !== "DELETED" && matches(s.metadata, filter?.metadata))
        .sort((a, b) => a.created.localeCompare(b.created) || a.id.localeCompare(b.id))
        .map((s) => this.toVm(s, services, addresses));
    });
  }

  rebootVm(id: string): Promise<void> {
    return guard(async () => {
      const server = await this.mustServer(id);
      if (await this.hostDown(server))
        throw new HostUnavailable(`VM ${id}: its host ${hostOf(server)} is down`);
      if (server.status === "SHUTOFF") await this.nova.action(id, { "os-start": null });
      else await this.nova.action(id, { reboot: { type: "HARD" } });
      await this.waitServer(
        id,
        (s) => s.status === "ACTIVE" && !s["OS-EXT-STS:task_state"],
        "ACTIVE after reboot",
      );
    });
  }

  powerOffVm(id: string): Promise<void> {
    return guard(async () => {
      const server = await this.mustServer(id);
      const service = (await this.nova.computeServices()).find((s) => s.host === hostOf(server));
      if (service && service.state === "down") {
        if (service.forced_down) return; // the operator fenced the host and said so
        throw new Unavailable(
          `VM ${id} is NOT fenced: its compute host ${service.host} is down but not forced down; ` +
            `power the host off and run "openstack compute service set --down ${service.host} nova-compute"`,
        );
      }
      if (server.status === "SHUTOFF" && !server["OS-EXT-STS:task_state"]) return;
      if (server.status === "ERROR") await this.nova.action(id, { "os-resetState": { state: "active" } });
      await this.nova.action(id, { "os-stop": null }, [409]);
      await this.waitServer(
        id,
        (s) => s.status === "SHUTOFF" && !s["OS-EXT-STS:task_state"],
        "SHUTOFF (fenced)",
      );
    });
  }

  consoleOutput(id: string, lines: number): Promise<string[]> {
    return guard(async () => {
      await this.mustServer(id);
      const text = await this.nova.consoleOutput(id, lines);
      return text.split("\n").filter((line, i, all) => line !== "" || i < all.length - 1);
    });
  }

  setVmMetadata(id: string, metadata: Metadata): Promise<void> {
    return guard(async () => {
      await this.mustServer(id);
      await this.nova.setMetadata(id, metadata);
    });
  }

  // ---- disks ----

  createDisk(req: CreateDiskRequest): Promise<Disk> {
    return guard(async () => {
      parseWith(createDiskSchema, req, "disk request");
      knownZone(await this.zones(), req.zone);
      const vol = await this.cinder.create({
        name: `zonal-${randomBytes(4).toString("hex")}`,
        sizeGb: Math.ceil(req.sizeMb / 1024),
        zone: req.zone,
        metadata: req.metadata ?? {},
      });
      const ready = await this.waitVolume(
        vol.id,
        (v) => v?.status === "available" || v?.status === "error",
        "available",
      );
      if (ready.status === "error") {
        await this.cinder.delete(vol.id);
        throw new Unavailable(`Cinder could not create volume ${vol.id} (status error)`);
      }
      return toDisk(ready);
    });
  }

  attachDisk(diskId: string, vmId: string): Promise<DiskAttachment> {
    return guard(async () => {
      const vol = await this.mustVolume(diskId);
      const server = await this.mustServer(vmId);
      const current = vol.attachments[0];
      if (current?.server_id === vmId) return { diskId, vmId, device: current.device ?? "" };
      if (current)
        throw new DiskInUse(`disk ${diskId} is attached to VM ${current.server_id}; detach it first`);
      const zone = server["OS-EXT-AZ:availability_zone"];
      if (vol.availability_zone !== zone)
        throw new ZoneMismatch(`disk ${diskId} is in zone ${vol.availability_zone}, VM ${vmId} in ${zone}`);
      const att = await this.nova.attachVolume(vmId, diskId);
      const done = await this.waitVolume(diskId, (v) => v?.status === "in-use", "in-use");
      return { diskId, vmId, device: done.attachments[0]?.device ?? att.device ?? "" };
    });
  }

  detachDisk(diskId: string, opts: { force?: boolean } = {}): Promise<void> {
    return guard(async () => {
      const vol = await this.mustVolume(diskId);
      const att = vol.attachments[0];
      if (!att) return;
      const server = await this.nova.server(att.server_id);
      if (opts.force || !server) {
        // Every attachment Cinder holds for the volume, half-made ones included.
        for (const a of await this.cinder.attachments(diskId)) await this.cinder.forceDetach(diskId, a.id);
      } else {
        const state = vmStateOf(server, await this.hostDown(server));
        if (state === "crashed" || state === "frozen" || state === "unknown")
          throw new DetachFailed(
            `disk ${diskId}: VM ${att.server_id} is ${state} and cannot let it go; fence it and detach with force`,
          );
        await this.nova.detachVolume(att.server_id, diskId);
      }
      await this.waitVolume(diskId, (v) => v?.status === "available", "available after detach");
    });
  }

  deleteDisk(id: string): Promise<void> {
    return guard(async () => {
      const vol = (await this.cinder.available()) ? await this.cinder.get(id) : undefined;
      if (!vol) return;
      if (vol.attachments.length > 0)
        throw new DiskInUse(`disk ${id} is attached to VM ${vol.attachments[0]!.server_id}; detach it first`);
      await this.cinder.delete(id);
      await this.waitVolume(id, (v) => (v === undefined ? true : undefined), "deleted");
    });
  }

  getDisk(id: string): Promise<Disk | undefined> {
    return guard(async () => {
      if (!(await this.cinder.available())) return undefined;
      const vol = await this.cinder.get(id);
      return vol ? toDisk(vol) : undefined;
    });
  }

  listDisks(filter?: VmFilter): Promise<Disk[]> {
    return guard(async () =>
      !(await this.cinder.available())
        ? []
        : (await this.cinder.list(filter?.metadata))
            .filter((v) => matches(v.metadata, filter?.metadata))
            .map(toDisk),
    );
  }

  // ---- virtual addresses ----

  allocateAddress(req: { zone: string; metadata?: Metadata }): Promise<VirtualAddress> {
    return guard(async () => {
      parseWith(allocateAddressSchema, req, "address request");
      knownZone(await this.zones(), req.zone);
      const networkId = await this.networkId();
      let port: NeutronPort;
      try {
        port = await this.neutron.createPort({
          networkId,
          name: "zonal-vip",
          deviceOwner: "zonal:vip",
          tags: [TAG.vip, TAG.zone(req.zone), ...metadataTags(req.metadata ?? {})],
        });
      } catch (err) {
        if (err instanceof OpenStackError && /IpAddressGenerationFailure|No more IP/i.test(err.message))
          throw new NoAddressLeft(`no address left on network ${networkId}`);
        throw err;
      }
      let publicAddress: string | undefined;
      if (this.settings.floating_network) {
        const fip = await this.neutron.createFloatingIp(await this.floatingNetworkId(), port.id);
        publicAddress = fip.floating_ip_address;
      }
      return { ...toAddress(port), ...(publicAddress ? { publicAddress } : {}) };
    });
  }

  assignAddress(address: string, vmId: string): Promise<VirtualAddress> {
    return guard(async () => {
      const vip = await this.vipPort(address);
      if (!vip) throw new NotFound(`no virtual address ${address}`);
      await this.mustServer(vmId);
      const vmPorts = await this.neutron.ports({ deviceId: vmId, networkId: vip.network_id });
      if (vmPorts.length === 0) throw new NotFound(`VM ${vmId} has no port on the VIP's network`);
      const holder = tagValue(vip.tags, "zonal-holder");
      // The old holder loses the address before the new one gains it: never two at once.
      if (holder && holder !== vmId) await this.setPair(holder, address, false);
      for (const p of vmPorts) await this.setPairOn(p, address, true);
      const tags = [...(vip.tags ?? []).filter((t) => !t.startsWith("zonal-holder=")), TAG.holder(vmId)];
      await this.neutron.setTags(vip.id, tags);
      return { ...toAddress({ ...vip, tags }), ...(await this.publicOf(vip.id)) };
    });
  }

  releaseAddress(address: string): Promise<void> {
    return guard(async () => {
      const vip = await this.vipPort(address);
      if (!vip) return;
      const holder = tagValue(vip.tags, "zonal-holder");
      if (holder) await this.setPair(holder, address, false);
      for (const fip of await this.neutron.floatingIps(vip.id)) await this.neutron.deleteFloatingIp(fip.id);
      await this.neutron.deletePort(vip.id);
    });
  }

  listAddresses(filter?: VmFilter): Promise<VirtualAddress[]> {
    return guard(async () => {
      const ports = await this.neutron.ports({ tags: [TAG.vip] });
      return ports
        .map(toAddress)
        .filter((a) => matches(a.metadata, filter?.metadata))
        .sort((a, b) => a.address.localeCompare(b.address, undefined, { numeric: true }));
    });
  }

  // ---- helpers ----

  private toVm(server: NovaServer, services: NovaService[], addresses: Map<string, string>): Vm {
    const zone = server["OS-EXT-AZ:availability_zone"] ?? "";
    const host = server["OS-EXT-SRV-ATTR:host"] ?? "";
    const svc = services.find((s) => s.host === host);
    const fallback = Object.values(server.addresses ?? {})
      .flat()
      .find((a) => a.version === 4)?.addr;
    return {
      id: server.id,
      zone,
      host: host ? `${zone}/${host}` : "",
      address: addresses.get(server.id) ?? fallback ?? "",
      agentPort: this.settings.agent_port,
      state: vmStateOf(server, svc?.state === "down"),
      vmType: vmTypeOf(server),
      metadata: server.metadata ?? {},
      disks: (server["os-extended-volumes:volumes_attached"] ?? []).map((v) => v.id),
      createdAt: server.created,
    };
  }

  private async hostDown(server: NovaServer): Promise<boolean> {
    const svc = (await this.nova.computeServices()).find((s) => s.host === hostOf(server));
    return svc?.state === "down";
  }

  private async mustServer(id: string): Promise<NovaServer> {
    const server = await this.nova.server(id);
    if (!server || server.status === "DELETED") throw new NotFound(`no VM ${id}`);
    return server;
  }

  private async mustVolume(id: string): Promise<CinderVolume> {
    const vol = await this.cinder.get(id);
    if (!vol) throw new NotFound(`no disk ${id}`);
    return vol;
  }

  private async deleteServerAndWait(id: string): Promise<void> {
    await this.nova.deleteServer(id);
    await this.waitFor(async () => {
      const s = await this.nova.server(id);
      return !s || s.status === "DELETED" ? true : undefined;
    }, `server ${id} to be deleted`);
  }

  private waitServer(id: string, done: (s: NovaServer) => boolean, what: string): Promise<NovaServer> {
    return this.waitFor(async () => {
      const s = await this.nova.server(id);
      if (!s) throw new NotFound(`server ${id} vanished while waiting for ${what}`);
      return done(s) ? s : undefined;
    }, `server ${id} to be ${what}`);
  }

  private waitVolume(
    id: string,
    done: (v: CinderVolume | undefined) => boolean | undefined,
    what: string,
  ): Promise<CinderVolume> {
    return this.waitFor(async () => {
      const v = await this.cinder.get(id);
      return done(v) ? (v ?? ({ id } as CinderVolume)) : undefined;
    }, `volume ${id} to be ${what}`);
  }

  /** Polls until `probe` gives a value; errors end the wait. Rejects: Unavailable on timeout. */
  private async waitFor<T>(probe: () => Promise<T | undefined>, what: string): Promise<T> {
    const deadline = Date.now() + this.settings.server_timeout_s * 1000;
    for (;;) {
      const v = await probe();
      if (v !== undefined) return v;
      if (Date.now() > deadline)
        throw new Unavailable(`timed out after ${this.settings.server_timeout_s} s waiting for ${what}`);
      await sleep(POLL_MS);
    }
  }

  private async flavorId(req: CreateVmRequest): Promise<string> {
    const spec = flavorFor(req.vmType, this.settings.flavor_prefix, this.settings.root_disk_gb);
    const existing = (await this.nova.flavors()).find((f) => f.name === spec.name);
    if (existing) return existing.id;
    try {
      return (await this.nova.createFlavor(spec, spec.extraSpecs)).id;
    } catch (err) {
      // Another director made it meanwhile (409), or we may not make flavors (403).
      const again = (await this.nova.flavors()).find((f) => f.name === spec.name);
      if (again) return again.id;
      throw err instanceof OpenStackError && err.serviceStatus === 403
        ? new InvalidInput(
            `no flavor ${spec.name} and no right to create it: create it with ${spec.vcpus} vCPUs, ${spec.ram} MiB` +
              (Object.keys(spec.extraSpecs).length
                ? ` and extra specs ${JSON.stringify(spec.extraSpecs)}`
                : ""),
          )
        : err;
    }
  }

  private async serverGroupId(group: string): Promise<string> {
    const name = `zonal-${group}`;
    const found = (await this.nova.serverGroups()).find((g) => g.name === name);
    return found?.id ?? (await this.nova.createServerGroup(name, this.settings.server_group_policy)).id;
  }

  /** An image's id, given its id or its (unique) name. Rejects: InvalidInput. */
  private async findImage(wanted: string): Promise<string> {
    const byId = await this.session.request<{ id: string }>({
      service: "image",
      path: `/v2/images/${encodeURIComponent(wanted)}`,
      okStatuses: [404, 400],
    });
    if (byId.status === 200) return byId.body.id;
    const byName = await this.session.request<{ images: Array<{ id: string }> }>({
      service: "image",
      path: "/v2/images",
      query: { name: wanted },
    });
    if (byName.body.images.length !== 1)
      throw new InvalidInput(
        `Glance has ${byName.body.images.length} images named ${wanted}; expected exactly one (or give its id)`,
        [{ field: "image", problem: "expected one image" }],
      );
    return byName.body.images[0]!.id;
  }

  private async vipPort(address: string): Promise<NeutronPort | undefined> {
    return (await this.neutron.ports({ tags: [TAG.vip], ipAddress: address })).find((p) =>
      p.fixed_ips.some((f) => f.ip_address === address),
    );
  }

  private async setPair(vmId: string, address: string, on: boolean): Promise<void> {
    for (const p of await this.neutron.ports({ deviceId: vmId })) await this.setPairOn(p, address, on);
  }

  private async setPairOn(port: NeutronPort, address: string, on: boolean): Promise<void> {
    const others = port.allowed_address_pairs.filter((p) => p.ip_address !== address);
    const next = on ? [...others, { ip_address: address }] : others;
    if (
      next.length !== port.allowed_address_pairs.length ||
      on !== port.allowed_address_pairs.some((p) => p.ip_address === address)
    )
      await this.neutron.updatePort(port.id, { allowed_address_pairs: next });
  }

  private async publicOf(portId: string): Promise<{ publicAddress?: string }> {
    if (!this.settings.floating_network) return {};
    const fip = (await this.neutron.floatingIps(portId))[0];
    return fip ? { publicAddress: fip.floating_ip_address } : {};
  }
}

/**
 * The first hinted host that can take the VM, if any (Nova then gets it as `host`).
 * Rejects: NoValidHost with a reason per host when no host of the zone can.
 */
function chooseHint(hosts: Host[], req: CreateVmRequest): Host | undefined {
  const reasons = new Map(
    hosts.map((h) => [h.id, unfitReason({ ...h, up: h.state === "up" }, h.used, req.vmType)]),
  );
  const unfit = [...reasons.values()].filter((r): r is string => r !== undefined);
  if (unfit.length === hosts.length)
    throw new NoValidHost(
      `no host in zone ${req.zone} can take ${describe(req)}: ${unfit.join("; ")}`,
      unfit,
    );
  const hint = req.hostHints?.find((id) => reasons.has(id) && reasons.get(id) === undefined);
  return hosts.find((h) => h.id === hint);
}

/** The zone named `name`. Rejects: InvalidInput naming the zones there are. */
function knownZone(zones: Zone[], name: string): Zone {
  const zone = zones.find((z) => z.name === name);
  if (!zone)
    throw new InvalidInput(
      `zone: unknown zone ${name} (the cloud has ${zones.map((z) => z.name).join(", ")})`,
      [{ field: "zone", problem: `unknown zone ${name}` }],
    );
  return zone;
}

function describe(req: CreateVmRequest): string {
  const attrs = Object.entries(req.vmType.hostAttributes ?? {})
    .map(([k, v]) => `${k}=${String(v)}`)
    .join(",");
  return `a VM of ${req.vmType.cpu} CPU, ${req.vmType.ramMb} MiB${attrs ? `, ${attrs}` : ""}`;
}

function hostOf(server: NovaServer): string {
  return server["OS-EXT-SRV-ATTR:host"] ?? "";
}

function addressesOf(ports: NeutronPort[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const p of ports)
    if (p.device_id && p.fixed_ips[0] && !out.has(p.device_id))
      out.set(p.device_id, p.fixed_ips[0].ip_address);
  return out;
}

function toDisk(v: CinderVolume): Disk {
  const att = v.attachments[0];
  return {
    id: v.id,
    zone: v.availability_zone,
    sizeMb: v.size * 1024,
    state: att ? "in-use" : "available",
    ...(att ? { attachedTo: att.server_id } : {}),
    metadata: v.metadata ?? {},
    createdAt: v.created_at,
  };
}

function toAddress(port: NeutronPort): VirtualAddress {
  const holder = tagValue(port.tags, "zonal-holder");
  return {
    address: port.fixed_ips[0]?.ip_address ?? "",
    zone: tagValue(port.tags, "zonal-zone") ?? "",
    ...(holder ? { holder } : {}),
    metadata: metadataOfTags(port.tags),
  };
}

/**
 * Runs one driver call and turns what OpenStack said into the interface's errors:
 * quota → QuotaExceeded, no valid host → NoValidHost, transient → Unavailable.
 * Errors that are already zonal's pass through.
 */
async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof OpenStackError)) throw err;
    if (/quota exceeded|QuotaExceeded|OverQuota|VolumeLimitExceeded|exceeded.*quota/i.test(err.message))
      throw new QuotaExceeded(`${err.service}: ${err.message}`);
    if (/no valid host/i.test(err.message)) throw new NoValidHost(`${err.service}: ${err.message}`);
    if (err.retryable)
      throw new Unavailable(`${err.service}: ${err.message} (after retries)`, { cause: err });
    throw err;
  }
}
