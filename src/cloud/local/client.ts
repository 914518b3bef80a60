/**
 * `LocalCloudClient`: the `local` driver of the `Cloud` interface. It talks to a
 * local cloud daemon over HTTP, and also exposes the daemon's fault API.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { InvalidInput, NotFound, Unavailable } from "../../lib/errors.js";
import { ENDPOINT_FILE, type Endpoint } from "../../lib/data-dir.js";
import { JsonClient } from "../../lib/http-client.js";
import type { ErrorBody } from "../../lib/http-errors.js";
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
import type { FaultReport } from "./service.js";
import type { NetworkFault, NetworkFaultSpec } from "./network/faults.js";

export type CloudEndpoint = Endpoint;
export { ENDPOINT_FILE };

function decodeCloudError(_status: number, body: ErrorBody) {
  switch (body.error) {
    case "no_valid_host":
      return new NoValidHost(body.message);
    case "disk_in_use":
      return new DiskInUse(body.message);
    case "detach_failed":
      return new DetachFailed(body.message);
    case "zone_mismatch":
      return new ZoneMismatch(body.message);
    case "host_unavailable":
      return new HostUnavailable(body.message);
    case "no_address_left":
      return new NoAddressLeft(body.message);
    default:
      return undefined;
  }
}

function filterQuery(filter?: VmFilter): Record<string, string> {
  const q: Record<string, string> = {};
  for (const [k, v] of Object.entries(filter?.metadata ?? {})) q[`metadata.${k}`] = v;
  return q;
}

export class LocalCloudClient implements Cloud {
  private readonly http: JsonClient;

  constructor(endpoint: { url: string; token: string }, timeoutMs = 30_000) {
    this.http = new JsonClient({
      baseUrl: endpoint.url,
      token: endpoint.token,
      timeoutMs,
      decodeError: decodeCloudError,
    });
  }

  /** Reads `<dataDir>/endpoint.json`, written by a running daemon. */
  static fromDataDir(dataDir: string): LocalCloudClient {
    const path = join(dataDir, ENDPOINT_FILE);
    let endpoint: CloudEndpoint;
    try {
      endpoint = JSON.parse(readFileSync(path, "utf8")) as CloudEndpoint;
    } catch {
      throw new Unavailable(
        `no local cloud running for ${dataDir} (${path} not found); start one with "zonal cloud serve"`,
      );
    }
    return new LocalCloudClient(endpoint);
  }

  get url(): string {
    return this.http.baseUrl;
  }

  zones(): Promise<Zone[]> {
    return this.http.request("GET", "/v1/zones");
  }

  hosts(): Promise<Host[]> {
    return this.http.request("GET", "/v1/hosts");
  }

  createVm(req: CreateVmRequest): Promise<CreatedVm> {
    return this.http.request("POST", "/v1/vms", { body: req });
  }

  async deleteVm(id: string): Promise<void> {
    await this.http.request("DELETE", `/v1/vms/${encodeURIComponent(id)}`);
  }

  async vmExists(id: string): Promise<boolean> {
    return (await this.getVm(id)) !== undefined;
  }

  async getVm(id: string): Promise<Vm | undefined> {
    return orUndefined(this.http.request<Vm>("GET", `/v1/vms/${encodeURIComponent(id)}`));
  }

  listVms(filter?: VmFilter): Promise<Vm[]> {
    return this.http.request("GET", "/v1/vms", { query: filterQuery(filter) });
  }

  async rebootVm(id: string): Promise<void> {
    await this.http.request("POST", `/v1/vms/${encodeURIComponent(id)}/reboot`);
  }

  async powerOffVm(id: string): Promise<void> {
    await this.http.request("POST", `/v1/vms/${encodeURIComponent(id)}/power-off`);
  }

  async setVmMetadata(id: string, metadata: Metadata): Promise<void> {
    await this.http.request("PATCH", `/v1/vms/${encodeURIComponent(id)}/metadata`, { body: metadata });
  }

  async consoleOutput(id: string, lines: number): Promise<string[]> {
    const res = await this.http.request<{ lines: string[] }>(
      "GET",
      `/v1/vms/${encodeURIComponent(id)}/console`,
      {
        query: { lines: String(lines) },
      },
    );
    return res.lines;
  }

  /** Address, port and token of a VM's agent. */
  agentEndpoint(id: string): Promise<{ address: string; agentPort: number; token: string }> {
    return this.http.request("GET", `/v1/vms/${encodeURIComponent(id)}/agent`);
  }

  createDisk(req: CreateDiskRequest): Promise<Disk> {
    return this.http.request("POST", "/v1/disks", { body: req });
  }

  attachDisk(diskId: string, vmId: string): Promise<DiskAttachment> {
    return this.http.request("PUT", `/v1/disks/${encodeURIComponent(diskId)}/attachment`, { body: { vmId } });
  }

  async detachDisk(diskId: string, opts: { force?: boolean } = {}): Promise<void> {
    await this.http.request("DELETE", `/v1/disks/${encodeURIComponent(diskId)}/attachment`, {
      query: { force: opts.force ? "true" : undefined },
    });
  }

  async deleteDisk(id: string): Promise<void> {
    await this.http.request("DELETE", `/v1/disks/${encodeURIComponent(id)}`);
  }

  getDisk(id: string): Promise<Disk | undefined> {
    return orUndefined(this.http.request<Disk>("GET", `/v1/disks/${encodeURIComponent(id)}`));
  }

  listDisks(filter?: VmFilter): Promise<Disk[]> {
    return this.http.request("GET", "/v1/disks", { query: filterQuery(filter) });
  }

  allocateAddress(req: { zone: string; metadata?: Metadata }): Promise<VirtualAddress> {
    return this.http.request("POST", "/v1/addresses", { body: req });
  }

  assignAddress(address: string, vmId: string): Promise<VirtualAddress> {
    return this.http.request("PUT", `/v1/addresses/${encodeURIComponent(address)}/holder`, {
      body: { vmId },
    });
  }

  async releaseAddress(address: string): Promise<void> {
    await this.http.request("DELETE", `/v1/addresses/${encodeURIComponent(address)}`);
  }

  listAddresses(filter?: VmFilter): Promise<VirtualAddress[]> {
    return this.http.request("GET", "/v1/addresses", { query: filterQuery(filter) });
  }

  // ---- faults ----

  faults(): Promise<FaultReport> {
    return this.http.request("GET", "/v1/faults");
  }

  async crashVm(id: string): Promise<void> {
    await this.http.request("POST", `/v1/faults/vms/${encodeURIComponent(id)}/crash`);
  }

  /** The loud crash: the VM's processes die, its kernel answers with resets. */
  async killVmProcesses(id: string): Promise<void> {
    await this.http.request("POST", `/v1/faults/vms/${encodeURIComponent(id)}/kill-processes`);
  }

  async freezeVm(id: string): Promise<void> {
    await this.http.request("POST", `/v1/faults/vms/${encodeURIComponent(id)}/freeze`);
  }

  async thawVm(id: string): Promise<void> {
    await this.http.request("POST", `/v1/faults/vms/${encodeURIComponent(id)}/thaw`);
  }

  async failHost(hostId: string, opts: { powerOffAfterMs?: number } = {}): Promise<void> {
    await this.http.request("POST", `/v1/faults/hosts/${hostPath(hostId)}/fail`, { body: opts });
  }

  async restoreHost(hostId: string): Promise<void> {
    await this.http.request("POST", `/v1/faults/hosts/${hostPath(hostId)}/restore`);
  }

  async failZone(zone: string, opts: { powerOffAfterMs?: number } = {}): Promise<void> {
    await this.http.request("POST", `/v1/faults/zones/${encodeURIComponent(zone)}/fail`, { body: opts });
  }

  async restoreZone(zone: string): Promise<void> {
    await this.http.request("POST", `/v1/faults/zones/${encodeURIComponent(zone)}/restore`);
  }

  /** A partition, an isolation or a slow link (see network/faults.ts). */
  addNetworkFault(spec: NetworkFaultSpec): Promise<NetworkFault & { description: string }> {
    return this.http.request("POST", "/v1/faults/network", { body: spec });
  }

  /** Heals one network fault, or every one; resolves with the ids healed. */
  async healNetwork(id?: string): Promise<string[]> {
    const path = id === undefined ? "/v1/faults/network" : `/v1/faults/network/${encodeURIComponent(id)}`;
    return (await this.http.request<{ healed: string[] }>("DELETE", path)).healed;
  }

  /** The control plane's process and its own address (its connections then leave from there). */
  registerControlPlane(input: {
    pid: number;
    address: string;
  }): Promise<{ network: boolean; reason?: string }> {
    return this.http.request("POST", "/v1/control-plane", { body: input });
  }
}

function hostPath(hostId: string): string {
  const [zone, host, extra] = hostId.split("/");
  if (!zone || !host || extra !== undefined) {
    throw new InvalidInput(`host "${hostId}" is not a host id; hosts are named zone/host, e.g. z1/h1`);
  }
  return `${encodeURIComponent(zone)}/${encodeURIComponent(host)}`;
}

async function orUndefined<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof NotFound) return undefined;
    throw err;
  }
}
