// The state behind test/openstack/neutron-stub.ts (a STUB of Neutron, for tests): networks,
// subnets, ports, floating IPs and a security group in memory, with the rules Neutron applies
// when they change (address allocation, read-only fields, one floating IP per fixed IP) and
// Neutron's list filters.
import { randomBytes, randomUUID } from "node:crypto";

export type Json = Record<string, unknown>;

export const NETWORK_ID = "5a1d4c3e-0000-4000-8000-000000000077";
export const SUBNET_ID = "5a1d4c3e-0000-4000-8000-000000007701";
export const EXT_NETWORK_ID = "5a1d4c3e-0000-4000-8000-000000000078";
export const EXT_SUBNET_ID = "5a1d4c3e-0000-4000-8000-000000007801";
const SECURITY_GROUP_ID = "5a1d4c3e-0000-4000-8000-0000000000a1";

/** Aliases that Nova only checks for by name; none of them changes how Nova talks to us. */
export const EXTENSIONS = [
  "binding",
  "external-net",
  "router",
  "security-group",
  "quotas",
  "allowed-address-pairs",
  "port-security",
  "project-id",
  "standard-attr-tag",
  "standard-attr-description",
  "tag-ports-during-bulk-creation",
];

/** Port fields a PUT may not carry (Neutron answers 400 for each). */
const PORT_READ_ONLY = new Set([
  "id",
  "network_id",
  "tenant_id",
  "project_id",
  "status",
  "tags",
  "binding:vif_type",
  "binding:vif_details",
  "created_at",
  "updated_at",
  "revision_number",
]);

export class NeutronError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

function notFound(kind: string, id: string): NeutronError {
  const label = kind === "FloatingIP" ? "Floating IP" : kind === "SecurityGroup" ? "Security group" : kind;
  return new NeutronError(404, `${kind}NotFound`, `${label} ${id} could not be found.`);
}

export function badRequest(message: string): NeutronError {
  return new NeutronError(400, "HTTPBadRequest", message);
}

function now(): string {
  return new Date().toISOString().replace(/\.\d+Z$/, "Z");
}

function ipToInt(ip: string): number {
  const parts = ip.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    throw badRequest(`Invalid input for ip_address. Reason: '${ip}' is not a valid IP address.`);
  }
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}

function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** A subnet's address pool: first..last, handed out in order, freed addresses reused last. */
class Pool {
  private readonly used = new Set<number>();
  private next: number;
  constructor(
    readonly first: number,
    readonly last: number,
  ) {
    this.next = first;
  }
  contains(ip: string): boolean {
    const n = ipToInt(ip);
    return n >= this.first && n <= this.last;
  }
  isUsed(ip: string): boolean {
    return this.used.has(ipToInt(ip));
  }
  take(ip?: string): string | undefined {
    if (ip !== undefined) {
      this.used.add(ipToInt(ip));
      return ip;
    }
    const size = this.last - this.first + 1;
    for (let i = 0; i < size; i++) {
      const n = this.first + ((this.next - this.first + i) % size);
      if (!this.used.has(n)) {
        this.used.add(n);
        this.next = n + 1 > this.last ? this.first : n + 1;
        return intToIp(n);
      }
    }
    return undefined;
  }
  release(ip: string): void {
    this.used.delete(ipToInt(ip));
  }
}

interface Subnet extends Json {
  id: string;
  network_id: string;
  cidr: string;
}

interface FixedIp {
  subnet_id: string;
  ip_address: string;
}

interface Port extends Json {
  id: string;
  network_id: string;
  fixed_ips: FixedIp[];
  tags: string[];
  device_id: string;
  mac_address: string;
  "binding:host_id": string;
}

interface FloatingIp extends Json {
  id: string;
  floating_ip_address: string;
  floating_network_id: string;
  port_id: string | null;
  fixed_ip_address: string | null;
}

/** Everything the stub knows, and the rules Neutron applies when it changes. */
export class NeutronState {
  readonly networks = new Map<string, Json>();
  readonly subnets = new Map<string, Subnet>();
  readonly ports = new Map<string, Port>();
  readonly floatingips = new Map<string, FloatingIp>();
  readonly securityGroups = new Map<string, Json>();
  private readonly pools = new Map<string, Pool>();

  constructor(readonly projectId: string) {
    this.addNetwork(NETWORK_ID, "zonal-test-net", false, SUBNET_ID, "127.77.0");
    this.addNetwork(EXT_NETWORK_ID, "zonal-test-ext", true, EXT_SUBNET_ID, "127.78.0");
    this.securityGroups.set(SECURITY_GROUP_ID, {
      ...this.standard(SECURITY_GROUP_ID, projectId),
      name: "default",
      description: "Default security group",
      stateful: true,
      security_group_rules: [],
    });
  }

  private standard(id: string, projectId: string): Json & { id: string } {
    const t = now();
    return {
      id,
      tenant_id: projectId,
      project_id: projectId,
      created_at: t,
      updated_at: t,
      revision_number: 0,
      description: "",
      tags: [],
    };
  }

  private addNetwork(id: string, name: string, external: boolean, subnetId: string, prefix: string): void {
    this.networks.set(id, {
      ...this.standard(id, this.projectId),
      name,
      status: "ACTIVE",
      admin_state_up: true,
      shared: !external,
      "router:external": external,
      subnets: [subnetId],
      mtu: 1500,
      port_security_enabled: true,
      availability_zones: [],
      availability_zone_hints: [],
      "provider:network_type": "vxlan",
      "provider:physical_network": null,
      "provider:segmentation_id": external ? 78 : 77,
      ipv4_address_scope: null,
      ipv6_address_scope: null,
    });
    const cidr = `${prefix.split(".").slice(0, 2).join(".")}.0.0/16`;
    const base = ipToInt(`${prefix}.0`);
    this.subnets.set(subnetId, {
      ...this.standard(subnetId, this.projectId),
      name: `${name}-v4`,
      network_id: id,
      ip_version: 4,
      cidr,
      gateway_ip: intToIp(base + 1),
      allocation_pools: [{ start: intToIp(base + 10), end: intToIp(base + 65534) }],
      enable_dhcp: false,
      dns_nameservers: [],
      host_routes: [],
      ipv6_ra_mode: null,
      ipv6_address_mode: null,
      subnetpool_id: null,
      segment_id: null,
      service_types: [],
    });
    this.pools.set(subnetId, new Pool(base + 10, base + 65534));
  }

  private pool(subnetId: string): Pool {
    const pool = this.pools.get(subnetId);
    if (pool === undefined) throw notFound("Subnet", subnetId);
    return pool;
  }

  private subnetOf(networkId: string): string {
    const subnetId = (this.networks.get(networkId)?.["subnets"] as string[] | undefined)?.[0];
    if (subnetId === undefined) throw notFound("Network", networkId);
    return subnetId;
  }

  /** Allocates the requested fixed IPs (or one from the network's subnet when none are asked for). */
  private allocate(networkId: string, requested: unknown): FixedIp[] {
    if (requested === undefined) requested = [{}];
    if (!Array.isArray(requested)) throw badRequest("Invalid input for fixed_ips. Reason: must be a list.");
    const taken: FixedIp[] = [];
    try {
      for (const item of requested as Json[]) {
        let subnetId = item["subnet_id"] as string | undefined;
        const ip = item["ip_address"] as string | undefined;
        if (subnetId === undefined) {
          subnetId =
            ip === undefined
              ? this.subnetOf(networkId)
              : [...this.subnets.values()].find(
                  (s) => s.network_id === networkId && this.pool(s.id).contains(ip),
                )?.id;
          if (subnetId === undefined) {
            throw new NeutronError(
              400,
              "InvalidIpForNetwork",
              `IP address ${ip} is not a valid IP for any of the subnets on the specified network.`,
            );
          }
        }
        const subnet = this.subnets.get(subnetId);
        if (subnet === undefined) throw notFound("Subnet", subnetId);
        if (subnet.network_id !== networkId) {
          throw badRequest(`Failed to create port on network ${networkId}: subnet ${subnetId} is not on it.`);
        }
        const pool = this.pool(subnetId);
        if (ip !== undefined) {
          if (!pool.contains(ip)) {
            throw new NeutronError(
              400,
              "InvalidIpForSubnet",
              `IP address ${ip} is not a valid IP for the specified subnet.`,
            );
          }
          if (pool.isUsed(ip)) {
            throw new NeutronError(
              409,
              "IpAddressAlreadyAllocated",
              `IP address ${ip} already allocated in subnet ${subnetId}`,
            );
          }
        }
        const address = pool.take(ip);
        if (address === undefined) {
          throw new NeutronError(
            409,
            "IpAddressGenerationFailure",
            `No more IP addresses available on network ${networkId}.`,
          );
        }
        taken.push({ subnet_id: subnetId, ip_address: address });
      }
    } catch (err) {
      this.release(taken);
      throw err;
    }
    return taken;
  }

  private release(ips: FixedIp[]): void {
    for (const f of ips) this.pools.get(f.subnet_id)?.release(f.ip_address);
  }

  private newMac(): string {
    const used = new Set([...this.ports.values()].map((p) => p.mac_address));
    for (;;) {
      const mac = ["fa", "16", "3e", ...[...randomBytes(3)].map((b) => b.toString(16).padStart(2, "0"))].join(
        ":",
      );
      if (!used.has(mac)) return mac;
    }
  }

  network(id: string): Json {
    return found(this.networks, "Network", id);
  }

  subnet(id: string): Subnet {
    return found(this.subnets, "Subnet", id);
  }

  port(id: string): Port {
    return found(this.ports, "Port", id);
  }

  floatingip(id: string): FloatingIp {
    return found(this.floatingips, "FloatingIP", id);
  }

  securityGroup(id: string): Json {
    return found(this.securityGroups, "SecurityGroup", id);
  }

  createPort(body: Json, projectId: string): Port {
    const networkId = body["network_id"];
    if (typeof networkId !== "string")
      throw badRequest("Failed to parse request. Required attribute 'network_id' not specified");
    this.network(networkId);
    const owner = (body["project_id"] ?? body["tenant_id"] ?? projectId) as string;
    const mac = (body["mac_address"] as string | undefined) ?? this.newMac();
    if ([...this.ports.values()].some((p) => p.mac_address === mac && p.network_id === networkId)) {
      throw new NeutronError(
        409,
        "MacAddressInUse",
        `Unable to complete operation for network ${networkId}. The mac address ${mac} is in use.`,
      );
    }
    const tags = body["tags"] ?? [];
    if (!Array.isArray(tags)) throw badRequest("Invalid input for tags. Reason: must be a list.");
    const fixedIps = this.allocate(networkId, body["fixed_ips"]);
    const port: Port = {
      ...this.standard(randomUUID(), owner),
      name: "",
      network_id: networkId,
      mac_address: mac,
      admin_state_up: true,
      status: "DOWN",
      fixed_ips: fixedIps,
      allowed_address_pairs: [],
      extra_dhcp_opts: [],
      device_id: "",
      device_owner: "",
      security_groups: [SECURITY_GROUP_ID],
      port_security_enabled: true,
      "binding:host_id": "",
      "binding:profile": {},
      "binding:vnic_type": "normal",
      "binding:vif_type": "unbound",
      "binding:vif_details": {},
      qos_policy_id: null,
      resource_request: null,
      tags: tags.map(String),
    };
    this.assign(
      port,
      body,
      new Set(["network_id", "fixed_ips", "tags", "mac_address", "tenant_id", "project_id"]),
    );
    this.ports.set(port.id, port);
    return port;
  }

  updatePort(id: string, body: Json): Port {
    const port = this.port(id);
    for (const key of Object.keys(body)) {
      if (PORT_READ_ONLY.has(key)) throw badRequest(`Cannot update read-only attribute ${key}`);
    }
    if (body["fixed_ips"] !== undefined) {
      const before = port.fixed_ips;
      this.release(before);
      try {
        port.fixed_ips = this.allocate(port.network_id, body["fixed_ips"]);
      } catch (err) {
        for (const f of before) this.pool(f.subnet_id).take(f.ip_address);
        throw err;
      }
    }
    this.assign(port, body, new Set(["fixed_ips"]));
    port["updated_at"] = now();
    port["revision_number"] = (port["revision_number"] as number) + 1;
    return port;
  }

  /** Copies the writable fields of a request body onto a port and derives its binding state. */
  private assign(port: Port, body: Json, skip: Set<string>): void {
    for (const [key, value] of Object.entries(body)) {
      if (skip.has(key)) continue;
      if (key === "binding:host_id") port[key] = value === null ? "" : String(value);
      else if (key === "binding:profile") port[key] = value ?? {};
      else if (key === "device_id" || key === "device_owner" || key === "name" || key === "description") {
        port[key] = value === null ? "" : String(value);
      } else if (key === "allowed_address_pairs") {
        if (!Array.isArray(value))
          throw badRequest("Invalid input for allowed_address_pairs. Reason: must be a list.");
        port[key] = (value as Json[]).map((p) => ({
          ip_address: p["ip_address"],
          mac_address: p["mac_address"] ?? port.mac_address,
        }));
      } else if (key === "security_groups") {
        for (const g of value as string[]) this.securityGroup(g);
        port[key] = value;
      } else port[key] = value;
    }
    const bound = port["binding:host_id"] !== "";
    port["binding:vif_type"] = bound ? "ovs" : "unbound";
    port["binding:vif_details"] = bound
      ? { port_filter: true, ovs_hybrid_plug: false, connectivity: "l2" }
      : {};
    port["status"] = bound && port.device_id !== "" ? "ACTIVE" : "DOWN";
  }

  deletePort(id: string): void {
    const port = this.port(id);
    for (const fip of this.floatingips.values()) {
      if (fip.port_id === id) this.disassociate(fip);
    }
    this.release(port.fixed_ips);
    this.ports.delete(id);
  }

  setPortTags(id: string, tags: unknown): string[] {
    const port = this.port(id);
    if (!Array.isArray(tags)) throw badRequest("Invalid input for tags. Reason: must be a list.");
    port.tags = [...new Set(tags.map(String))];
    port["revision_number"] = (port["revision_number"] as number) + 1;
    return port.tags;
  }

  createFloatingip(body: Json, projectId: string): FloatingIp {
    const networkId = body["floating_network_id"];
    if (typeof networkId !== "string") {
      throw badRequest("Failed to parse request. Required attribute 'floating_network_id' not specified");
    }
    const network = this.network(networkId);
    if (network["router:external"] !== true) {
      throw badRequest(`Bad floatingip request: Network ${networkId} is not a valid external network.`);
    }
    const requested = body["floating_ip_address"] as string | undefined;
    const [fixed] = this.allocate(networkId, [requested === undefined ? {} : { ip_address: requested }]);
    const fip: FloatingIp = {
      ...this.standard(randomUUID(), (body["project_id"] ?? body["tenant_id"] ?? projectId) as string),
      floating_ip_address: fixed!.ip_address,
      floating_network_id: networkId,
      router_id: null,
      port_id: null,
      fixed_ip_address: null,
      status: "DOWN",
      port_details: null,
      port_forwardings: [],
      dns_domain: "",
      dns_name: "",
    };
    try {
      if (typeof body["description"] === "string") fip["description"] = body["description"];
      this.associate(
        fip,
        body["port_id"] as string | null | undefined,
        body["fixed_ip_address"] as string | undefined,
      );
    } catch (err) {
      this.release([fixed!]);
      throw err;
    }
    this.floatingips.set(fip.id, fip);
    return fip;
  }

  updateFloatingip(id: string, body: Json): FloatingIp {
    const fip = this.floatingip(id);
    if ("port_id" in body) {
      this.associate(fip, body["port_id"] as string | null, body["fixed_ip_address"] as string | undefined);
    }
    if (typeof body["description"] === "string") fip["description"] = body["description"];
    fip["updated_at"] = now();
    fip["revision_number"] = (fip["revision_number"] as number) + 1;
    return fip;
  }

  deleteFloatingip(id: string): void {
    const fip = this.floatingip(id);
    this.pool(this.subnetOf(fip.floating_network_id)).release(fip.floating_ip_address);
    this.floatingips.delete(id);
  }

  private associate(fip: FloatingIp, portId: string | null | undefined, fixedIp: string | undefined): void {
    if (portId === undefined || portId === null) {
      this.disassociate(fip);
      return;
    }
    const port = this.ports.get(portId);
    if (port === undefined) throw notFound("Port", portId);
    const address = fixedIp ?? port.fixed_ips[0]?.ip_address;
    if (address === undefined) {
      throw badRequest(`Bad floatingip request: Port ${portId} does not have any IPv4 address.`);
    }
    if (!port.fixed_ips.some((f) => f.ip_address === address)) {
      throw badRequest(`Bad floatingip request: Port ${portId} does not have fixed ip ${address}.`);
    }
    const other = [...this.floatingips.values()].find(
      (f) => f.id !== fip.id && f.port_id === portId && f.fixed_ip_address === address,
    );
    if (other !== undefined) {
      throw new NeutronError(
        409,
        "FloatingIPPortAlreadyAssociated",
        `Cannot associate floating IP ${fip.floating_ip_address} (${fip.id}) with port ${portId} using fixed IP ${address}, as that fixed IP already has a floating IP on external network ${fip.floating_network_id}.`,
      );
    }
    fip.port_id = portId;
    fip.fixed_ip_address = address;
    fip["status"] = "ACTIVE";
    fip["port_details"] = {
      name: port["name"],
      network_id: port.network_id,
      mac_address: port.mac_address,
      admin_state_up: port["admin_state_up"],
      status: port["status"],
      device_id: port.device_id,
      device_owner: port["device_owner"],
    };
  }

  private disassociate(fip: FloatingIp): void {
    fip.port_id = null;
    fip.fixed_ip_address = null;
    fip["status"] = "DOWN";
    fip["port_details"] = null;
  }
}

/** Neutron's list filters: field equality (repeated = any of), fixed_ips, tags and friends. */
export function filterList<T extends Json>(items: Iterable<T>, query: URLSearchParams): T[] {
  const skip = new Set(["fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse"]);
  const byKey = new Map<string, string[]>();
  for (const [k, v] of query) {
    if (skip.has(k)) continue;
    byKey.set(k, [...(byKey.get(k) ?? []), v]);
  }
  const split = (values: string[]) => values.flatMap((v) => v.split(",")).filter((v) => v !== "");
  return [...items].filter((item) => {
    for (const [key, values] of byKey) {
      const tags = (item["tags"] as string[] | undefined) ?? [];
      if (key === "tags") {
        if (!split(values).every((t) => tags.includes(t))) return false;
      } else if (key === "tags-any") {
        if (!split(values).some((t) => tags.includes(t))) return false;
      } else if (key === "not-tags") {
        if (split(values).every((t) => tags.includes(t))) return false;
      } else if (key === "not-tags-any") {
        if (split(values).some((t) => tags.includes(t))) return false;
      } else if (key === "fixed_ips") {
        const fixed = (item["fixed_ips"] as FixedIp[] | undefined) ?? [];
        const want = (name: string) =>
          values.filter((v) => v.startsWith(`${name}=`)).map((v) => v.slice(name.length + 1));
        const ips = want("ip_address");
        const subnets = want("subnet_id");
        if (ips.length > 0 && !fixed.some((f) => ips.includes(f.ip_address))) return false;
        if (subnets.length > 0 && !fixed.some((f) => subnets.includes(f.subnet_id))) return false;
      } else if (key in item) {
        const value = item[key];
        if (!values.some((v) => matches(value, v))) return false;
      }
    }
    return true;
  });
}

function matches(value: unknown, wanted: string): boolean {
  if (typeof value === "boolean") return value === ["true", "1"].includes(wanted.toLowerCase());
  if (value === null) return wanted === "" || wanted === "None";
  if (Array.isArray(value)) return value.map(String).includes(wanted);
  return String(value) === wanted;
}

export function project(item: Json, fields: string[]): Json {
  if (fields.length === 0) return item;
  return Object.fromEntries(fields.filter((f) => f in item).map((f) => [f, item[f]]));
}

/** The item with `id`, or Neutron's 404 for that kind (`PortNotFound`, …). */
function found<T>(items: Map<string, T>, kind: string, id: string): T {
  const item = items.get(id);
  if (item === undefined) throw notFound(kind, id);
  return item;
}
