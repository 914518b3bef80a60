/**
 * Pure translations between OpenStack's records and the `Cloud` interface's:
 * zones and hosts from availability zones, aggregates and hypervisors; a VM's
 * state from a server's status and its host's service; flavors for vm types;
 * zonal's metadata as Neutron tags. No I/O here; driver.ts does the calls.
 */
import type { Attributes, AttributeValue, Host, VmState, VmType, Zone } from "../cloud.js";
import type { NovaAggregate, NovaHypervisor, NovaServer, NovaService } from "./nova.js";

/** Aggregate metadata that says where, not what: not a host attribute. */
const NOT_ATTRIBUTES = new Set(["availability_zone"]);

/** `"true"` → true, `"8"` → 8, anything else stays a string. */
export function attributeValue(raw: string): AttributeValue {
  if (raw === "true" || raw === "True") return true;
  if (raw === "false" || raw === "False") return false;
  if (/^-?\d+(\.\d+)?$/.test(raw)) return Number(raw);
  return raw;
}

/** A host's attributes: the metadata of every aggregate it is in. */
export function hostAttributes(host: string, aggregates: NovaAggregate[]): Attributes {
  const out: Attributes = {};
  for (const agg of aggregates) {
    if (!agg.hosts.includes(host)) continue;
    for (const [k, v] of Object.entries(agg.metadata)) if (!NOT_ATTRIBUTES.has(k)) out[k] = attributeValue(v);
  }
  return out;
}

/** How zonal's maintenance reasons begin (a compute service zonal disabled for a drain). */
export const ZONAL_MAINTENANCE = "zonal maintenance:";

/**
 * Zones (availability zones other than Nova's `internal`) with their hosts. A host is
 * `failed` when its compute service is down or disabled (but by zonal's maintenance),
 * or its hypervisor is down.
 */
export function zonesOf(
  zoneNames: string[],
  aggregates: NovaAggregate[],
  hypervisors: NovaHypervisor[],
  services: NovaService[],
): Zone[] {
  const zones = zoneNames
    .filter((z) => z !== "internal")
    .sort()
    .map((name): Zone => ({ name, hosts: [] }));
  for (const svc of services) {
    const zone = zones.find((z) => z.name === svc.zone);
    if (!zone) continue;
    const hv = hypervisors.find((h) => h.service.host === svc.host);
    // zonal's own maintenance (a drained host) disables the service; the host still runs.
    const enabled = svc.status === "enabled" || (svc.disabled_reason ?? "").startsWith(ZONAL_MAINTENANCE);
    const up = svc.state === "up" && enabled && !svc.forced_down && hv?.state !== "down";
    const host: Host = {
      id: `${zone.name}/${svc.host}`,
      name: svc.host,
      zone: zone.name,
      state: up ? "up" : "failed",
      attributes: hostAttributes(svc.host, aggregates),
      capacity: { cpu: hv?.vcpus ?? 0, ramMb: hv?.memory_mb ?? 0 },
      used: { cpu: hv?.vcpus_used ?? 0, ramMb: hv?.memory_mb_used ?? 0, vms: hv?.running_vms ?? 0 },
    };
    zone.hosts.push(host);
  }
  for (const z of zones) z.hosts.sort((a, b) => a.name.localeCompare(b.name));
  return zones;
}

/**
 * A VM's state from its server: SHUTOFF is stopped; ERROR is crashed; PAUSED and
 * SUSPENDED are frozen; anything on a host whose compute service is down is unknown
 * (Nova cannot tell what runs there); the rest (ACTIVE, BUILD, REBOOT…) is running.
 */
export function vmStateOf(server: NovaServer, hostDown: boolean): VmState {
  if (hostDown) return "unknown";
  switch (server.status) {
    case "SHUTOFF":
      return "stopped";
    case "ERROR":
      return "crashed";
    case "PAUSED":
    case "SUSPENDED":
      return "frozen";
    default:
      return "running";
  }
}

export interface FlavorSpec {
  name: string;
  vcpus: number;
  ram: number;
  disk: number;
  /** `aggregate_instance_extra_specs:KEY` for each required host attribute. */
  extraSpecs: Record<string, string>;
}

/** The flavor a vm type needs: `zonal-c1-m512` or `zonal-c1-m512-ssd=true`. */
export function flavorFor(vmType: VmType, prefix: string, rootDiskGb: number): FlavorSpec {
  const attrs = Object.entries(vmType.hostAttributes ?? {}).sort(([a], [b]) => a.localeCompare(b));
  const extraSpecs: Record<string, string> = {};
  for (const [k, v] of attrs) extraSpecs[`aggregate_instance_extra_specs:${k}`] = String(v);
  const suffix = attrs.map(([k, v]) => `-${k}=${String(v)}`).join("");
  return {
    name: `${prefix}-c${vmType.cpu}-m${vmType.ramMb}${suffix}`,
    vcpus: vmType.cpu,
    ram: vmType.ramMb,
    disk: rootDiskGb,
    extraSpecs,
  };
}

/** The vm type a server was made with, from its embedded flavor (microversion ≥ 2.47). */
export function vmTypeOf(server: NovaServer): VmType {
  const hostAttributes: Attributes = {};
  for (const [k, v] of Object.entries(server.flavor.extra_specs ?? {})) {
    const m = /^aggregate_instance_extra_specs:(.+)$/.exec(k);
    if (m) hostAttributes[m[1]!] = attributeValue(v);
  }
  return {
    cpu: server.flavor.vcpus ?? 0,
    ramMb: server.flavor.ram ?? 0,
    ...(Object.keys(hostAttributes).length > 0 ? { hostAttributes } : {}),
  };
}

/** Zonal's own tags on Neutron ports: `zonal-zone=z1`, `zonal-holder=<vm>`. Metadata is `m:k=v`. */
export const TAG = {
  vip: "zonal-vip",
  vmPort: "zonal-vm-port",
  zone: (z: string) => `zonal-zone=${z}`,
  holder: (vm: string) => `zonal-holder=${vm}`,
  vm: (vm: string) => `zonal-vm=${vm}`,
};

/** Metadata as Neutron tags (a tag holds up to 255 characters and no comma). */
export function metadataTags(metadata: Record<string, string>): string[] {
  return Object.entries(metadata).map(([k, v]) => `m:${k}=${v}`);
}

export function metadataOfTags(tags: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of tags) {
    const m = /^m:([^=]+)=(.*)$/.exec(t);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

/** The value of the first `prefix=value` tag. */
export function tagValue(tags: string[] = [], prefix: string): string | undefined {
  const t = tags.find((x) => x.startsWith(`${prefix}=`));
  return t?.slice(prefix.length + 1);
}

export function matches(metadata: Record<string, string>, filter?: Record<string, string>): boolean {
  return Object.entries(filter ?? {}).every(([k, v]) => metadata[k] === v);
}
