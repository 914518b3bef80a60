/**
 * Request/response tests of the driver's Cinder and Neutron calls (and the Nova
 * calls around them): what goes on the wire, in which order, and what a refused
 * call leaves untouched. Nova itself is also exercised for real in test/openstack.
 */
import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";
import { InvalidInput } from "../../lib/errors.js";
import { FakeOpenStack, PROJECT, type Recorded } from "../../testing/fake-openstack.js";
import { DetachFailed, DiskInUse, NoAddressLeft, QuotaExceeded, ZoneMismatch } from "../cloud.js";
import type { OpenStackConfig } from "./config.js";
import { OpenStackCloud } from "./driver.js";
import type { NeutronPort } from "./neutron.js";
import { OpenStackSession } from "./session.js";

const VOL = `/volume/v3/${PROJECT}/volumes`;
const NET = "net-1";
const FIP_NET = "ext-1";

interface Vol {
  id: string;
  status: string;
  size: number;
  availability_zone: string;
  metadata: Record<string, string>;
  created_at: string;
  attachments: Array<{ server_id: string; attachment_id: string; device: string }>;
}

function novaBaseline(os: FakeOpenStack, servers: Record<string, { status: string; zone: string }>) {
  os.on("GET /compute/v2.1/", { body: { version: { id: "v2.1", version: "2.95", min_version: "2.1" } } })
    .on("GET /compute/v2.1/os-availability-zone", {
      body: {
        availabilityZoneInfo: [
          { zoneName: "z1", zoneState: { available: true } },
          { zoneName: "z2", zoneState: { available: true } },
        ],
      },
    })
    .on("GET /compute/v2.1/os-aggregates", { body: { aggregates: [] } })
    .on("GET /compute/v2.1/os-hypervisors/detail", { body: { hypervisors: [] } })
    .on("GET /compute/v2.1/os-services", {
      body: {
        services: [
          { id: 1, binary: "nova-compute", host: "c1", zone: "z1", state: "up", status: "enabled" },
          { id: 2, binary: "nova-compute", host: "c3", zone: "z2", state: "up", status: "enabled" },
        ],
      },
    })
    .on("GET /compute/v2.1/servers/{id}", (_r, m) => {
      const s = servers[m[1]!];
      if (!s) return { status: 404, body: { itemNotFound: { code: 404, message: "Instance not found" } } };
      return {
        body: {
          server: {
            id: m[1],
            name: m[1],
            status: s.status,
            created: "2026-11-24T00:00:00Z",
            metadata: {},
            flavor: { vcpus: 1, ram: 512 },
            "OS-EXT-AZ:availability_zone": s.zone,
            "OS-EXT-SRV-ATTR:host": s.zone === "z1" ? "c1" : "c3",
          },
        },
      };
    });
}

/** A Cinder holding `vols`, changing state the way Cinder does (asynchronously, here at the next read). */
function cinder(os: FakeOpenStack, vols: Map<string, Vol>) {
  let n = 0;
  os.on(`POST ${VOL}`, (req) => {
    const v = (
      req.body as { volume: { size: number; availability_zone: string; metadata: Record<string, string> } }
    ).volume;
    const vol: Vol = {
      id: `v${++n}`,
      status: "creating",
      size: v.size,
      availability_zone: v.availability_zone,
      metadata: v.metadata,
      created_at: "2026-11-24T00:00:00Z",
      attachments: [],
    };
    vols.set(vol.id, vol);
    return { status: 202, body: { volume: vol } };
  })
    .on(`GET ${VOL}/detail`, () => ({ body: { volumes: [...vols.values()] } }))
    .on(`GET /volume/v3/${PROJECT}/attachments`, (req) => ({
      body: {
        attachments: (vols.get(req.query.get("volume_id") ?? "")?.attachments ?? []).map((a) => ({
          id: a.attachment_id,
          status: "attached",
          instance: a.server_id,
          volume_id: req.query.get("volume_id"),
        })),
      },
    }))
    .on(`GET ${VOL}/{id}`, (_r, m) => {
      const vol = vols.get(m[1]!);
      if (!vol) return { status: 404, body: { itemNotFound: { code: 404, message: "Volume not found" } } };
      if (vol.status === "creating" || vol.status === "detaching") vol.status = "available";
      if (vol.status === "attaching") vol.status = "in-use";
      if (vol.status === "deleting") {
        vols.delete(vol.id);
        return { status: 404, body: { itemNotFound: { code: 404, message: "Volume not found" } } };
      }
      return { body: { volume: vol } };
    })
    .on(`DELETE ${VOL}/{id}`, (_r, m) => {
      const vol = vols.get(m[1]!);
      if (vol) vol.status = "deleting";
      return { status: 202 };
    })
    .on(`POST ${VOL}/{id}/action`, (req, m) => {
      const vol = vols.get(m[1]!)!;
      vol.attachments = [];
      vol.status = "available";
      assert.ok((req.body as Record<string, unknown>)["os-force_detach"]);
      return { status: 202 };
    })
    .on("POST /compute/v2.1/servers/{id}/os-volume_attachments", (req, m) => {
      const id = (req.body as { volumeAttachment: { volumeId: string } }).volumeAttachment.volumeId;
      const vol = vols.get(id)!;
      vol.status = "attaching";
      vol.attachments = [{ server_id: m[1]!, attachment_id: "att-1", device: "/dev/vdb" }];
      return { body: { volumeAttachment: { id, volumeId: id, serverId: m[1], device: "/dev/vdb" } } };
    })
    .on("DELETE /compute/v2.1/servers/{id}/os-volume_attachments/{vol}", (_r, m) => {
      const vol = vols.get(m[2]!)!;
      vol.attachments = [];
      vol.status = "detaching";
      return { status: 202 };
    });
}

function config(floating?: string): OpenStackConfig {
  return {
    source: "test",
    credentials: {
      authUrl: "",
      username: "u",
      password: "p",
      projectName: "x",
      userDomainName: "Default",
      projectDomainName: "Default",
    },
    settings: {
      image: "img",
      network: NET,
      ...(floating ? { floating_network: floating } : {}),
      agent_port: 6868,
      server_group_policy: "soft-anti-affinity",
      flavor_prefix: "zonal",
      root_disk_gb: 1,
      server_timeout_s: 10,
    },
  };
}

describe("OpenStack driver on the wire: Cinder", () => {
  let os: FakeOpenStack;
  let cloud: OpenStackCloud;
  const vols = new Map<string, Vol>();
  const servers: Record<string, { status: string; zone: string }> = {};
  beforeEach(async () => {
    os = new FakeOpenStack();
    const url = await os.start();
    const cfg = config();
    cfg.credentials.authUrl = `${url}/identity/v3`;
    cloud = new OpenStackCloud(cfg, new OpenStackSession(cfg.credentials, { backoffMs: 1 }));
    vols.clear();
    for (const k of Object.keys(servers)) delete servers[k];
    novaBaseline(os, servers);
    cinder(os, vols);
  });
  afterEach(() => os.stop());

  it("creates a volume in the zone, rounding MiB up to GiB, with the microversion header, and waits for available", async () => {
    const disk = await cloud.createDisk({ zone: "z1", sizeMb: 1500, metadata: { deployment: "db" } });
    const [post] = os.find(`POST ${VOL}`);
    assert.deepEqual(post!.body, {
      volume: {
        name: (post!.body as { volume: { name: string } }).volume.name,
        size: 2,
        availability_zone: "z1",
        metadata: { deployment: "db" },
      },
    });
    assert.match((post!.body as { volume: { name: string } }).volume.name, /^zonal-[0-9a-f]{8}$/);
    assert.equal(post!.headers["openstack-api-version"], "volume 3.27");
    assert.deepEqual(
      { id: disk.id, zone: disk.zone, sizeMb: disk.sizeMb, state: disk.state },
      { id: "v1", zone: "z1", sizeMb: 2048, state: "available" },
    );
  });

  it("refuses a bad disk request naming the field, and calls Cinder not at all", async () => {
    await assert.rejects(cloud.createDisk({ zone: "z1", sizeMb: 0 }), (err: unknown) => {
      assert.ok(err instanceof InvalidInput);
      assert.deepEqual(
        err.problems.map((p) => p.field),
        ["sizeMb"],
      );
      return true;
    });
    await assert.rejects(cloud.createDisk({ zone: "z9", sizeMb: 64 }), (err: unknown) => {
      assert.ok(err instanceof InvalidInput);
      assert.deepEqual(
        err.problems.map((p) => p.field),
        ["zone"],
      );
      assert.match(err.message, /the cloud has z1, z2/);
      return true;
    });
    assert.equal(os.find(`POST ${VOL}`).length, 0);
  });

  it("attaches through Nova's os-volume_attachments, idempotently, and refuses another VM or another zone", async () => {
    servers.s1 = { status: "ACTIVE", zone: "z1" };
    servers.s2 = { status: "ACTIVE", zone: "z1" };
    servers.s9 = { status: "ACTIVE", zone: "z2" };
    const disk = await cloud.createDisk({ zone: "z1", sizeMb: 64 });
    const att = await cloud.attachDisk(disk.id, "s1");
    assert.deepEqual(att, { diskId: disk.id, vmId: "s1", device: "/dev/vdb" });
    const posts = os.find("POST /compute/v2.1/servers/s1/os-volume_attachments");
    assert.deepEqual(
      posts.map((p) => p.body),
      [{ volumeAttachment: { volumeId: disk.id } }],
    );
    assert.equal((await cloud.attachDisk(disk.id, "s1")).device, "/dev/vdb");
    assert.equal(
      os.find("POST /compute/v2.1/servers/s1/os-volume_attachments").length,
      1,
      "no second attach",
    );
    await assert.rejects(cloud.attachDisk(disk.id, "s2"), DiskInUse);
    await assert.rejects(cloud.deleteDisk(disk.id), DiskInUse);
    assert.equal(os.find("POST /compute/v2.1/servers/s2/os-volume_attachments").length, 0);
    assert.equal(os.find(`DELETE ${VOL}/${disk.id}`).length, 0);

    const other = await cloud.createDisk({ zone: "z1", sizeMb: 64 });
    await assert.rejects(cloud.attachDisk(other.id, "s9"), ZoneMismatch);
    assert.equal(os.find("POST /compute/v2.1/servers/s9/os-volume_attachments").length, 0);
  });

  it("detaches through Nova; a crashed VM's disk needs force, which uses Cinder's os-force_detach", async () => {
    servers.s1 = { status: "ACTIVE", zone: "z1" };
    const disk = await cloud.createDisk({ zone: "z1", sizeMb: 64 });
    await cloud.attachDisk(disk.id, "s1");
    await cloud.detachDisk(disk.id);
    assert.equal(os.find(`DELETE /compute/v2.1/servers/s1/os-volume_attachments/${disk.id}`).length, 1);
    assert.equal((await cloud.getDisk(disk.id))?.state, "available");
    await cloud.detachDisk(disk.id); // idempotent: nothing attached, nothing sent
    assert.equal(os.find(`DELETE /compute/v2.1/servers/s1/os-volume_attachments/${disk.id}`).length, 1);

    await cloud.attachDisk(disk.id, "s1");
    servers.s1.status = "ERROR";
    await assert.rejects(cloud.detachDisk(disk.id), DetachFailed);
    assert.equal((await cloud.getDisk(disk.id))?.attachedTo, "s1", "a refused detach changes nothing");
    await cloud.detachDisk(disk.id, { force: true });
    assert.deepEqual(
      os.find(`GET /volume/v3/${PROJECT}/attachments`).map((r) => r.query.get("volume_id")),
      [disk.id],
      "the attachments come from the attachments API",
    );
    assert.deepEqual(
      os.find(`POST ${VOL}/${disk.id}/action`).map((r) => r.body),
      [{ "os-force_detach": { attachment_id: "att-1", connector: null } }],
    );
    assert.equal((await cloud.getDisk(disk.id))?.state, "available");
  });

  it("deletes and waits until Cinder no longer knows the volume; lists by metadata with Cinder's filter", async () => {
    const a = await cloud.createDisk({ zone: "z1", sizeMb: 64, metadata: { tag: "a" } });
    await cloud.createDisk({ zone: "z2", sizeMb: 64, metadata: { tag: "b" } });
    const listed = await cloud.listDisks({ metadata: { tag: "a" } });
    assert.deepEqual(
      listed.map((d) => d.id),
      [a.id],
    );
    const list = os.find(`GET ${VOL}/detail`).at(-1)!;
    assert.equal(list.query.get("metadata"), JSON.stringify({ tag: "a" }));
    await cloud.deleteDisk(a.id);
    assert.equal(await cloud.getDisk(a.id), undefined);
    await cloud.deleteDisk(a.id); // idempotent
    assert.equal(os.find(`DELETE ${VOL}/${a.id}`).length, 1);
  });

  it("on a cloud without Cinder, has no disks, and says why it cannot make one", async () => {
    os.without.add("volumev3");
    const bare = new OpenStackCloud(
      config(),
      new OpenStackSession({ ...config().credentials, authUrl: `${os.url}/identity/v3` }),
    );
    assert.deepEqual(await bare.listDisks(), []);
    assert.equal(await bare.getDisk("v1"), undefined);
    await bare.deleteDisk("v1");
    await assert.rejects(bare.createDisk({ zone: "z1", sizeMb: 64 }), /no public endpoint of type volumev3/);
    assert.equal(os.find(`POST ${VOL}`).length, 0);
  });

  it("turns Cinder's quota refusal into QuotaExceeded", async () => {
    os.on(`POST ${VOL}`, {
      status: 413,
      body: {
        overLimit: {
          code: 413,
          message:
            "VolumeLimitExceeded: Maximum number of volumes allowed (10) exceeded for quota 'volumes'.",
        },
      },
    });
    await assert.rejects(cloud.createDisk({ zone: "z1", sizeMb: 64 }), QuotaExceeded);
  });
});

type Port = NeutronPort & { tags: string[] };

function neutron(os: FakeOpenStack, ports: Map<string, Port>, fips: Map<string, Record<string, unknown>>) {
  let n = 0;
  let free = 10;
  os.on("POST /network/v2.0/ports", (req) => {
    const p = (req.body as { port: Partial<Port> }).port;
    if (free > 20)
      return {
        status: 409,
        body: {
          NeutronError: {
            type: "IpAddressGenerationFailure",
            message: "No more IP addresses available on network net-1.",
            detail: "",
          },
        },
      };
    const port: Port = {
      id: `port-${++n}`,
      name: p.name ?? "",
      network_id: p.network_id!,
      device_id: "",
      device_owner: p.device_owner ?? "",
      mac_address: "fa:16:3e:00:00:01",
      fixed_ips: [{ subnet_id: "sub-1", ip_address: `10.0.0.${free++}` }],
      allowed_address_pairs: [],
      tags: [],
    };
    ports.set(port.id, port);
    return { status: 201, body: { port } };
  })
    .on("PUT /network/v2.0/ports/{id}/tags", (req, m) => {
      ports.get(m[1]!)!.tags = (req.body as { tags: string[] }).tags;
      return { body: { tags: ports.get(m[1]!)!.tags } };
    })
    .on("PUT /network/v2.0/ports/{id}", (req, m) => {
      Object.assign(ports.get(m[1]!)!, (req.body as { port: Partial<Port> }).port);
      return { body: { port: ports.get(m[1]!) } };
    })
    .on("GET /network/v2.0/ports", (req) => {
      const tags = req.query.get("tags")?.split(",") ?? [];
      const ip = req.query.get("fixed_ips")?.replace("ip_address=", "");
      const dev = req.query.get("device_id");
      const net = req.query.get("network_id");
      return {
        body: {
          ports: [...ports.values()].filter(
            (p) =>
              tags.every((t) => p.tags.includes(t)) &&
              (!ip || p.fixed_ips.some((f) => f.ip_address === ip)) &&
              (!dev || p.device_id === dev) &&
              (!net || p.network_id === net),
          ),
        },
      };
    })
    .on("DELETE /network/v2.0/ports/{id}", (_r, m) => {
      ports.delete(m[1]!);
      return { status: 204 };
    })
    .on("GET /network/v2.0/networks", (req) => ({
      body: {
        networks: [NET, FIP_NET].includes(req.query.get("id") ?? "") ? [{ id: req.query.get("id") }] : [],
      },
    }))
    .on("POST /network/v2.0/floatingips", (req) => {
      const f = (req.body as { floatingip: { floating_network_id: string; port_id: string } }).floatingip;
      const fip = {
        id: `fip-${fips.size + 1}`,
        floating_ip_address: `203.0.113.${fips.size + 5}`,
        ...f,
        fixed_ip_address: null,
      };
      fips.set(fip.id, fip);
      return { status: 201, body: { floatingip: fip } };
    })
    .on("GET /network/v2.0/floatingips", (req) => ({
      body: { floatingips: [...fips.values()].filter((f) => f.port_id === req.query.get("port_id")) },
    }))
    .on("DELETE /network/v2.0/floatingips/{id}", (_r, m) => {
      fips.delete(m[1]!);
      return { status: 204 };
    });
  return { exhaust: () => (free = 21) };
}

describe("OpenStack driver on the wire: Neutron", () => {
  let os: FakeOpenStack;
  let cloud: OpenStackCloud;
  const ports = new Map<string, Port>();
  const fips = new Map<string, Record<string, unknown>>();
  const servers: Record<string, { status: string; zone: string }> = {};
  let net: ReturnType<typeof neutron>;
  beforeEach(async () => {
    os = new FakeOpenStack();
    const url = await os.start();
    const cfg = config(FIP_NET);
    cfg.credentials.authUrl = `${url}/identity/v3`;
    cloud = new OpenStackCloud(cfg, new OpenStackSession(cfg.credentials, { backoffMs: 1 }));
    ports.clear();
    fips.clear();
    novaBaseline(os, servers);
    net = neutron(os, ports, fips);
    // Two VMs, each with its port on the network (as the driver made them).
    for (const [vm, ip] of [
      ["vm-a", "10.0.0.2"],
      ["vm-b", "10.0.0.3"],
    ] as const) {
      servers[vm] = { status: "ACTIVE", zone: "z1" };
      ports.set(`p-${vm}`, {
        id: `p-${vm}`,
        name: vm,
        network_id: NET,
        device_id: vm,
        device_owner: "compute:z1",
        mac_address: "fa:16:3e:00:00:02",
        fixed_ips: [{ subnet_id: "sub-1", ip_address: ip }],
        allowed_address_pairs: [],
        tags: ["zonal-vm-port"],
      });
    }
  });
  afterEach(() => os.stop());

  const body = (r: Recorded | undefined) => r?.body;

  it("reserves a VIP as a port with zonal's tags, and a floating IP forwarded to it", async () => {
    const vip = await cloud.allocateAddress({ zone: "z1", metadata: { role: "vip" } });
    assert.deepEqual(body(os.find("POST /network/v2.0/ports")[0]), {
      port: { network_id: NET, name: "zonal-vip", admin_state_up: true, device_owner: "zonal:vip" },
    });
    const portId = [...ports.values()].find((p) => p.name === "zonal-vip")!.id;
    assert.deepEqual(body(os.find(`PUT /network/v2.0/ports/${portId}/tags`)[0]), {
      tags: ["zonal-vip", "zonal-zone=z1", "m:role=vip"],
    });
    assert.deepEqual(body(os.find("POST /network/v2.0/floatingips")[0]), {
      floatingip: { floating_network_id: FIP_NET, port_id: portId },
    });
    assert.deepEqual(vip, {
      address: "10.0.0.10",
      zone: "z1",
      metadata: { role: "vip" },
      publicAddress: "203.0.113.5",
    });
  });

  it("moves a VIP with allowed address pairs: the old holder loses it before the new one gains it", async () => {
    const vip = await cloud.allocateAddress({ zone: "z1" });
    await cloud.assignAddress(vip.address, "vm-a");
    assert.deepEqual(ports.get("p-vm-a")!.allowed_address_pairs, [{ ip_address: vip.address }]);
    const mark = os.requests.length;
    const moved = await cloud.assignAddress(vip.address, "vm-b");
    assert.equal(moved.holder, "vm-b");
    const puts = os.requests
      .slice(mark)
      .filter((r) => r.method === "PUT")
      .map((r) => `${r.path} ${JSON.stringify(r.body)}`);
    assert.deepEqual(puts.slice(0, 2), [
      `/network/v2.0/ports/p-vm-a ${JSON.stringify({ port: { allowed_address_pairs: [] } })}`,
      `/network/v2.0/ports/p-vm-b ${JSON.stringify({ port: { allowed_address_pairs: [{ ip_address: vip.address }] } })}`,
    ]);
    const mark2 = os.requests.length;
    await cloud.assignAddress(vip.address, "vm-b");
    assert.equal(
      os.requests.slice(mark2).filter((r) => r.method === "PUT" && !r.path.endsWith("/tags")).length,
      0,
      "assigning to the holder again changes no port",
    );
    assert.deepEqual(
      (await cloud.listAddresses()).map((a) => [a.address, a.holder]),
      [[vip.address, "vm-b"]],
    );
  });

  it("refuses an unknown address or VM and changes nothing", async () => {
    const vip = await cloud.allocateAddress({ zone: "z1" });
    const mark = os.requests.length;
    await assert.rejects(cloud.assignAddress("10.9.9.9", "vm-a"), /no virtual address 10\.9\.9\.9/);
    await assert.rejects(cloud.assignAddress(vip.address, "vm-zz"), /no VM vm-zz/);
    assert.equal(os.requests.slice(mark).filter((r) => r.method !== "GET").length, 0);
  });

  it("releases a VIP: its holder's pair, its floating IP and its port go; releasing again sends nothing", async () => {
    const vip = await cloud.allocateAddress({ zone: "z1" });
    await cloud.assignAddress(vip.address, "vm-a");
    await cloud.releaseAddress(vip.address);
    assert.deepEqual(ports.get("p-vm-a")!.allowed_address_pairs, []);
    assert.equal(fips.size, 0);
    assert.equal([...ports.values()].filter((p) => p.tags.includes("zonal-vip")).length, 0);
    const mark = os.requests.length;
    await cloud.releaseAddress(vip.address);
    assert.equal(os.requests.slice(mark).filter((r) => r.method === "DELETE").length, 0);
  });

  it("says NoAddressLeft when Neutron has no address to give", async () => {
    net.exhaust();
    await assert.rejects(cloud.allocateAddress({ zone: "z1" }), NoAddressLeft);
  });

  it("refuses a VIP in an unknown zone without creating a port", async () => {
    await assert.rejects(cloud.allocateAddress({ zone: "z7" }), InvalidInput);
    assert.equal(os.find("POST /network/v2.0/ports").length, 0);
  });
});
