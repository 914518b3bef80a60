/**
 * Nova (compute API v2.1), the calls the driver makes, in Nova's wire format.
 * The microversion is negotiated once: the highest the server supports up to
 * `WANTED` (2.87, the last one with hypervisor capacity in `os-hypervisors`), and
 * at least `NEEDED` (2.74: a host in the create request).
 */
import { memoUntilFailure } from "../../lib/memo.js";
import type { OpenStackSession } from "./session.js";
import { OpenStackError } from "./session.js";

export const NEEDED = "2.74";
export const WANTED = "2.87";

export interface NovaServer {
  id: string;
  name: string;
  status: string;
  created: string;
  metadata: Record<string, string>;
  flavor: { vcpus?: number; ram?: number; extra_specs?: Record<string, string>; original_name?: string };
  addresses?: Record<string, Array<{ addr: string; version: number }>>;
  "OS-EXT-AZ:availability_zone"?: string;
  "OS-EXT-SRV-ATTR:host"?: string | null;
  "OS-EXT-STS:vm_state"?: string;
  "OS-EXT-STS:task_state"?: string | null;
  "OS-EXT-STS:power_state"?: number;
  "os-extended-volumes:volumes_attached"?: Array<{ id: string }>;
  fault?: { code: number; message: string; details?: string };
  /** Ids of its server groups (microversion ≥ 2.71). */
  server_groups?: string[];
}

export interface NovaHypervisor {
  id: number | string;
  hypervisor_hostname: string;
  state: "up" | "down";
  status: "enabled" | "disabled";
  vcpus: number;
  memory_mb: number;
  vcpus_used: number;
  memory_mb_used: number;
  running_vms: number;
  service: { host: string; id: number | string; disabled_reason?: string | null };
}

export interface NovaAggregate {
  id: number;
  name: string;
  availability_zone: string | null;
  hosts: string[];
  metadata: Record<string, string>;
}

export interface NovaFlavor {
  id: string;
  name: string;
  vcpus: number;
  ram: number;
  disk: number;
  extra_specs?: Record<string, string>;
}

export interface NovaService {
  id: number | string;
  binary: string;
  host: string;
  zone: string;
  state: "up" | "down";
  status: "enabled" | "disabled";
  disabled_reason?: string | null;
  forced_down?: boolean;
}

export interface CreateServerBody {
  name: string;
  imageRef: string;
  flavorRef: string;
  availability_zone: string;
  host?: string;
  networks: Array<{ port: string }> | "none";
  metadata: Record<string, string>;
  user_data?: string;
  schedulerHints?: Record<string, string>;
}

const versionOrder = (v: string): number => {
  const [major, minor] = v.split(".").map(Number);
  return (major ?? 0) * 1000 + (minor ?? 0);
};

export class Nova {
  /** The negotiated microversion. Rejects: OpenStackError when the cloud is older than NEEDED. */
  readonly version = memoUntilFailure(() => this.negotiate());

  constructor(private readonly session: OpenStackSession) {}

  private async negotiate(): Promise<string> {
    // The version document sits at the root of the versioned endpoint (`…/v2.1/`),
    // whether or not the catalog URL carries the project id after it.
    const base = (await this.session.endpoint("compute")).replace(/(\/v2(\.1)?)(\/.*)?$/, "$1/");
    const res = await this.session.request<{ version?: { version: string; min_version: string } }>({
      service: "compute",
      path: base,
    });
    const max = res.body.version?.version ?? "2.1";
    if (versionOrder(max) < versionOrder(NEEDED))
      throw new OpenStackError(
        501,
        `Nova supports microversions up to ${max}; zonal needs ${NEEDED} (OpenStack Queens or later)`,
        "nova",
      );
    return versionOrder(max) < versionOrder(WANTED) ? max : WANTED;
  }

  private async call<T>(
    method: string,
    path: string,
    o: {
      body?: unknown;
      query?: Record<string, string | number | undefined>;
      okStatuses?: number[];
      retryConflict?: boolean;
      idempotent?: boolean;
    } = {},
  ) {
    const v = await this.version();
    return this.session.request<T>({
      service: "compute",
      method,
      path,
      ...o,
      headers: { "openstack-api-version": `compute ${v}`, "x-openstack-nova-api-version": v },
    });
  }

  async availabilityZones(): Promise<Array<{ zoneName: string; zoneState: { available: boolean } }>> {
    const res = await this.call<{
      availabilityZoneInfo: Array<{ zoneName: string; zoneState: { available: boolean } }>;
    }>("GET", "/os-availability-zone");
    return res.body.availabilityZoneInfo;
  }

  async aggregates(): Promise<NovaAggregate[]> {
    return (await this.call<{ aggregates: NovaAggregate[] }>("GET", "/os-aggregates")).body.aggregates;
  }

  async hypervisors(): Promise<NovaHypervisor[]> {
    return (await this.call<{ hypervisors: NovaHypervisor[] }>("GET", "/os-hypervisors/detail")).body
      .hypervisors;
  }

  async computeServices(): Promise<NovaService[]> {
    return (
      await this.call<{ services: NovaService[] }>("GET", "/os-services", {
        query: { binary: "nova-compute" },
      })
    ).body.services;
  }

  /** Disables a compute service with a reason, or enables it again (microversion ≥ 2.53). */
  async setServiceStatus(id: number | string, disabledReason: string | null): Promise<void> {
    await this.call("PUT", `/os-services/${encodeURIComponent(String(id))}`, {
      body:
        disabledReason === null
          ? { status: "enabled" }
          : { status: "disabled", disabled_reason: disabledReason },
      idempotent: true,
    });
  }

  async flavors(): Promise<NovaFlavor[]> {
    return (
      await this.call<{ flavors: NovaFlavor[] }>("GET", "/flavors/detail", { query: { is_public: "None" } })
    ).body.flavors;
  }

  /** Creates a flavor with extra specs (admin). */
  async createFlavor(
    f: { name: string; vcpus: number; ram: number; disk: number },
    extraSpecs: Record<string, string>,
  ) {
    const res = await this.call<{ flavor: NovaFlavor }>("POST", "/flavors", {
      body: {
        flavor: {
          name: f.name,
          vcpus: f.vcpus,
          ram: f.ram,
          disk: f.disk,
          "os-flavor-access:is_public": true,
        },
      },
    });
    if (Object.keys(extraSpecs).length > 0)
      await this.call("POST", `/flavors/${res.body.flavor.id}/os-extra_specs`, {
        body: { extra_specs: extraSpecs },
      });
    return res.body.flavor;
  }

  async serverGroups(): Promise<Array<{ id: string; name: string; policy: string; members: string[] }>> {
    return (
      await this.call<{
        server_groups: Array<{ id: string; name: string; policy: string; members: string[] }>;
      }>("GET", "/os-server-groups", { query: { limit: 1000 } })
    ).body.server_groups;
  }

  async serverGroup(id: string): Promise<{ id: string; name: string; members: string[] } | undefined> {
    const res = await this.call<{ server_group: { id: string; name: string; members: string[] } }>(
      "GET",
      `/os-server-groups/${encodeURIComponent(id)}`,
      { okStatuses: [404] },
    );
    return res.status === 404 ? undefined : res.body.server_group;
  }

  async createServerGroup(name: string, policy: string): Promise<{ id: string }> {
    return (
      await this.call<{ server_group: { id: string } }>("POST", "/os-server-groups", {
        body: { server_group: { name, policy } },
      })
    ).body.server_group;
  }

  async deleteServerGroup(id: string): Promise<void> {
    await this.call("DELETE", `/os-server-groups/${id}`, { okStatuses: [404] });
  }

  /** Boots a server. Not idempotent (never retried after it may have reached Nova). */
  async createServer(s: CreateServerBody): Promise<{ id: string }> {
    const { schedulerHints, ...server } = s;
    const res = await this.call<{ server: { id: string } }>("POST", "/servers", {
      body: { server, ...(schedulerHints ? { "os:scheduler_hints": schedulerHints } : {}) },
    });
    return res.body.server;
  }

  /** The server, or undefined when Nova does not know it (deleted). */
  async server(id: string): Promise<NovaServer | undefined> {
    const res = await this.call<{ server: NovaServer }>("GET", `/servers/${encodeURIComponent(id)}`, {
      okStatuses: [404],
    });
    return res.status === 404 ? undefined : res.body.server;
  }

  /** Every server of the project (follows `limit`/`marker` pages). */
  async servers(): Promise<NovaServer[]> {
    const out: NovaServer[] = [];
    for (let marker: string | undefined; ;) {
      const page = (
        await this.call<{ servers: NovaServer[] }>("GET", "/servers/detail", {
          query: { limit: 500, marker },
        })
      ).body.servers;
      out.push(...page);
      if (page.length < 500) return out;
      marker = page[page.length - 1]!.id;
    }
  }

  async deleteServer(id: string): Promise<void> {
    await this.call("DELETE", `/servers/${encodeURIComponent(id)}`, { okStatuses: [404] });
  }

  /** A server action (`os-stop`, `os-start`, `reboot`); retried while Nova says the server is busy (409). */
  async action(id: string, action: Record<string, unknown>, okStatuses: number[] = []): Promise<number> {
    const res = await this.call("POST", `/servers/${encodeURIComponent(id)}/action`, {
      body: action,
      retryConflict: true,
      idempotent: true,
      okStatuses,
    });
    return res.status;
  }

  /** The last `length` lines of the server's console log (`os-getConsoleOutput`; read-only). */
  async consoleOutput(id: string, length: number): Promise<string> {
    const res = await this.call<{ output: string }>("POST", `/servers/${encodeURIComponent(id)}/action`, {
      body: { "os-getConsoleOutput": { length } },
      idempotent: true,
    });
    return res.body.output;
  }

  async setMetadata(id: string, metadata: Record<string, string>): Promise<void> {
    await this.call("POST", `/servers/${encodeURIComponent(id)}/metadata`, {
      body: { metadata },
      idempotent: true,
    });
  }

  async attachVolume(serverId: string, volumeId: string): Promise<{ device: string | null; id: string }> {
    const res = await this.call<{ volumeAttachment: { device: string | null; id: string } }>(
      "POST",
      `/servers/${encodeURIComponent(serverId)}/os-volume_attachments`,
      { body: { volumeAttachment: { volumeId } }, retryConflict: true },
    );
    return res.body.volumeAttachment;
  }

  async volumeAttachments(serverId: string): Promise<Array<{ volumeId: string; device: string | null }>> {
    const res = await this.call<{ volumeAttachments: Array<{ volumeId: string; device: string | null }> }>(
      "GET",
      `/servers/${encodeURIComponent(serverId)}/os-volume_attachments`,
    );
    return res.body.volumeAttachments;
  }

  async detachVolume(serverId: string, volumeId: string): Promise<void> {
    await this.call("DELETE", `/servers/${encodeURIComponent(serverId)}/os-volume_attachments/${volumeId}`, {
      okStatuses: [404],
      retryConflict: true,
    });
  }
}
