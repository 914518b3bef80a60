/**
 * Neutron (networking API v2.0), the calls the driver makes, in Neutron's wire
 * format: ports (a VM's port, made before the server so its address is known; a
 * VIP's port, which reserves the address), allowed address pairs (who may send
 * from a VIP), tags (zonal's metadata on ports) and floating IPs.
 */
import { OpenStackError, type OpenStackSession } from "./session.js";

export interface NeutronPort {
  id: string;
  name: string;
  network_id: string;
  device_id: string;
  device_owner: string;
  mac_address: string;
  status?: string;
  fixed_ips: Array<{ subnet_id: string; ip_address: string }>;
  allowed_address_pairs: Array<{ ip_address: string; mac_address?: string }>;
  tags?: string[];
  description?: string;
}

export interface NeutronFloatingIp {
  id: string;
  floating_ip_address: string;
  floating_network_id: string;
  port_id: string | null;
  fixed_ip_address: string | null;
}

export class Neutron {
  constructor(private readonly session: OpenStackSession) {}

  private call<T>(
    method: string,
    path: string,
    o: { body?: unknown; query?: Record<string, string | string[] | undefined>; okStatuses?: number[] } = {},
  ) {
    return this.session.request<T>({ service: "network", method, path: `/v2.0${path}`, ...o });
  }

  /** The id of a network given by id or name. Rejects: OpenStackError 404 when none matches. */
  async networkId(idOrName: string): Promise<string> {
    const byId = await this.call<{ networks: Array<{ id: string }> }>("GET", "/networks", {
      query: { id: idOrName },
    });
    if (byId.body.networks[0]) return byId.body.networks[0].id;
    const byName = await this.call<{ networks: Array<{ id: string }> }>("GET", "/networks", {
      query: { name: idOrName },
    });
    if (byName.body.networks.length === 1) return byName.body.networks[0]!.id;
    throw new OpenStackError(
      404,
      byName.body.networks.length === 0
        ? `Neutron has no network ${idOrName}`
        : `Neutron has ${byName.body.networks.length} networks named ${idOrName}; give its id`,
      "neutron",
    );
  }

  /** Creates a port with these tags. Not idempotent: find leftovers by tag. */
  async createPort(p: {
    networkId: string;
    name: string;
    deviceOwner?: string;
    tags: string[];
  }): Promise<NeutronPort> {
    const res = await this.call<{ port: NeutronPort }>("POST", "/ports", {
      body: {
        port: {
          network_id: p.networkId,
          name: p.name,
          admin_state_up: true,
          ...(p.deviceOwner ? { device_owner: p.deviceOwner } : {}),
        },
      },
    });
    const port = res.body.port;
    if (p.tags.length > 0) await this.setTags(port.id, p.tags);
    return { ...port, tags: p.tags };
  }

  async port(id: string): Promise<NeutronPort | undefined> {
    const res = await this.call<{ port: NeutronPort }>("GET", `/ports/${encodeURIComponent(id)}`, {
      okStatuses: [404],
    });
    return res.status === 404 ? undefined : res.body.port;
  }

  /** Ports matching Neutron's filters (`device_id`, `network_id`, `tags` = all of them, `fixed_ips`). */
  async ports(filter: {
    deviceId?: string;
    networkId?: string;
    tags?: string[];
    ipAddress?: string;
  }): Promise<NeutronPort[]> {
    const res = await this.call<{ ports: NeutronPort[] }>("GET", "/ports", {
      query: {
        device_id: filter.deviceId,
        network_id: filter.networkId,
        tags: filter.tags && filter.tags.length > 0 ? filter.tags.join(",") : undefined,
        fixed_ips: filter.ipAddress ? `ip_address=${filter.ipAddress}` : undefined,
      },
    });
    return res.body.ports;
  }

  async updatePort(
    id: string,
    changes: Partial<Pick<NeutronPort, "allowed_address_pairs" | "name" | "device_owner">>,
  ) {
    return (
      await this.call<{ port: NeutronPort }>("PUT", `/ports/${encodeURIComponent(id)}`, {
        body: { port: changes },
      })
    ).body.port;
  }

  /** Replaces the port's tags (the `standard-attr-tag` extension). */
  async setTags(id: string, tags: string[]): Promise<void> {
    await this.call("PUT", `/ports/${encodeURIComponent(id)}/tags`, { body: { tags } });
  }

  /** Deletes a port. Idempotent. */
  async deletePort(id: string): Promise<void> {
    await this.call("DELETE", `/ports/${encodeURIComponent(id)}`, { okStatuses: [404] });
  }

  /** A floating IP from `networkId`, forwarded to `portId`. Not idempotent. */
  async createFloatingIp(networkId: string, portId: string): Promise<NeutronFloatingIp> {
    return (
      await this.call<{ floatingip: NeutronFloatingIp }>("POST", "/floatingips", {
        body: { floatingip: { floating_network_id: networkId, port_id: portId } },
      })
    ).body.floatingip;
  }

  async floatingIps(portId: string): Promise<NeutronFloatingIp[]> {
    return (
      await this.call<{ floatingips: NeutronFloatingIp[] }>("GET", "/floatingips", {
        query: { port_id: portId },
      })
    ).body.floatingips;
  }

  async deleteFloatingIp(id: string): Promise<void> {
    await this.call("DELETE", `/floatingips/${encodeURIComponent(id)}`, { okStatuses: [404] });
  }
}
