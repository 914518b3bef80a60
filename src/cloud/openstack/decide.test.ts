import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parse } from "yaml";
import {
  flavorFor,
  hostAttributes,
  metadataOfTags,
  metadataTags,
  vmStateOf,
  vmTypeOf,
  zonesOf,
  ZONAL_MAINTENANCE,
} from "./decide.js";
import type { NovaAggregate, NovaHypervisor, NovaServer, NovaService } from "./nova.js";
import { agentUserData, INSTANCE_ID } from "./user-data.js";

const agg = (name: string, hosts: string[], metadata: Record<string, string>): NovaAggregate => ({
  id: 1,
  name,
  availability_zone: metadata.availability_zone ?? null,
  hosts,
  metadata,
});
const hv = (host: string, state: "up" | "down" = "up"): NovaHypervisor => ({
  id: host,
  hypervisor_hostname: `${host}.example`,
  state,
  status: "enabled",
  vcpus: 8,
  memory_mb: 16384,
  vcpus_used: 2,
  memory_mb_used: 1024,
  running_vms: 1,
  service: { host, id: host },
});
const svc = (host: string, zone: string, o: Partial<NovaService> = {}): NovaService => ({
  id: host,
  binary: "nova-compute",
  host,
  zone,
  state: "up",
  status: "enabled",
  forced_down: false,
  ...o,
});

describe("OpenStack translations", () => {
  it("makes zones from availability zones, hosts from compute services, attributes from aggregates", () => {
    const zones = zonesOf(
      ["z2", "internal", "z1"],
      [
        agg("z1", ["c1", "c2"], { availability_zone: "z1" }),
        agg("fast", ["c1"], { ssd: "true", iops: "3000" }),
      ],
      [hv("c1"), hv("c2"), hv("c3", "down")],
      [svc("c1", "z1"), svc("c2", "z1", { status: "disabled" }), svc("c3", "z2"), svc("n1", "internal")],
    );
    assert.deepEqual(
      zones.map((z) => z.name),
      ["z1", "z2"],
    );
    const [c1, c2] = zones[0]!.hosts;
    assert.deepEqual(c1, {
      id: "z1/c1",
      name: "c1",
      zone: "z1",
      state: "up",
      attributes: { ssd: true, iops: 3000 },
      capacity: { cpu: 8, ramMb: 16384 },
      used: { cpu: 2, ramMb: 1024, vms: 1 },
    });
    assert.equal(c2!.state, "failed", "a disabled compute service takes no VMs");
    assert.equal(zones[1]!.hosts[0]!.state, "failed", "a hypervisor that is down");
    assert.deepEqual(hostAttributes("c2", [agg("z1", ["c2"], { availability_zone: "z1" })]), {});
    // Disabled by zonal's own drain: in maintenance, not failed (zonal's store says so).
    const drained = zonesOf(
      ["z1"],
      [],
      [hv("c1")],
      [svc("c1", "z1", { status: "disabled", disabled_reason: `${ZONAL_MAINTENANCE} kernel update` })],
    );
    assert.equal(drained[0]!.hosts[0]!.state, "up");
  });

  it("maps server states, and anything on a down host to unknown", () => {
    const s = (status: string) => ({ status }) as NovaServer;
    assert.equal(vmStateOf(s("ACTIVE"), false), "running");
    assert.equal(vmStateOf(s("BUILD"), false), "running");
    assert.equal(vmStateOf(s("SHUTOFF"), false), "stopped");
    assert.equal(vmStateOf(s("ERROR"), false), "crashed");
    assert.equal(vmStateOf(s("PAUSED"), false), "frozen");
    assert.equal(vmStateOf(s("ACTIVE"), true), "unknown");
  });

  it("names a flavor per vm type with aggregate_instance_extra_specs for host attributes, and reads it back", () => {
    const f = flavorFor({ cpu: 2, ramMb: 2048, hostAttributes: { ssd: true } }, "zonal", 1);
    assert.deepEqual(f, {
      name: "zonal-c2-m2048-ssd=true",
      vcpus: 2,
      ram: 2048,
      disk: 1,
      extraSpecs: { "aggregate_instance_extra_specs:ssd": "true" },
    });
    assert.equal(flavorFor({ cpu: 1, ramMb: 512 }, "zonal", 1).name, "zonal-c1-m512");
    const server = { flavor: { vcpus: 2, ram: 2048, extra_specs: f.extraSpecs } } as unknown as NovaServer;
    assert.deepEqual(vmTypeOf(server), { cpu: 2, ramMb: 2048, hostAttributes: { ssd: true } });
  });

  it("keeps metadata in Neutron tags and reads it back", () => {
    const md = { deployment: "db", role: "vip" };
    assert.deepEqual(metadataOfTags(["zonal-vip", ...metadataTags(md)]), md);
  });
});

describe("agent user data", () => {
  it("is a Jinja-rendered cloud-config writing the settings (0600) and a unit, then starting the agent", () => {
    const text = agentUserData({
      address: "10.0.0.5",
      agentPort: 6868,
      token: "t".repeat(32),
      heartbeat: { url: "https://10.0.0.1:25555/v1/heartbeats" },
      tls: { ca: "CA PEM", cert: "CERT PEM", key: "KEY PEM" },
    });
    const [first, second] = text.split("\n");
    assert.equal(first, "## template: jinja");
    assert.equal(second, "#cloud-config");
    const doc = parse(text) as {
      write_files: Array<{ path: string; permissions: string; content: string }>;
      runcmd: string[][];
    };
    const settings = doc.write_files.find((f) => f.path === "/var/lib/zonal/settings.json")!;
    assert.equal(settings.permissions, "0600");
    const parsed = JSON.parse(settings.content) as Record<string, unknown>;
    assert.equal(parsed.vmId, INSTANCE_ID);
    assert.deepEqual(parsed.tls, { ca: "CA PEM", cert: "CERT PEM", key: "KEY PEM" });
    assert.deepEqual(parsed.heartbeat, { url: "https://10.0.0.1:25555/v1/heartbeats", intervalMs: 1000 });
    assert.match(doc.write_files[1]!.content, /ExecStart=.*zonal-agent\.js --vm-dir \/var\/lib\/zonal/);
    // systemd waits for the agent to say it is ready, and follows a handover to a new agent.
    assert.match(doc.write_files[1]!.content, /^Type=notify$/m);
    assert.match(doc.write_files[1]!.content, /^NotifyAccess=main$/m);
    assert.match(doc.write_files[1]!.content, /^TimeoutStartSec=infinity$/m);
    assert.match(
      doc.write_files[1]!.content,
      /ExecStart=\/usr\/bin\/env node --max-semi-space-size=1 --no-opt --max-old-space-size=64 /,
    );
    assert.deepEqual(doc.runcmd.at(-1), [
      "systemctl",
      "enable",
      "--now",
      "--no-block",
      "zonal-agent.service",
    ]);
  });

  it("with a bootstrapper, carries a one-time code and the CA, never the token or the key", () => {
    const text = agentUserData({
      address: "10.0.0.5",
      agentPort: 6868,
      token: "t".repeat(32),
      bootstrap: { url: "https://10.0.0.1:25556/v1/bootstrap", code: "c".repeat(64) },
      heartbeat: { url: "https://10.0.0.1:25556/v1/heartbeats" },
      tls: { ca: "CA PEM", cert: "CERT PEM", key: "KEY PEM" },
    });
    assert.ok(!text.includes("t".repeat(32)) && !text.includes("KEY PEM") && !text.includes("CERT PEM"));
    const doc = parse(text) as { write_files: Array<{ path: string; content: string }> };
    const settings = JSON.parse(
      doc.write_files.find((f) => f.path.endsWith("settings.json"))!.content,
    ) as Record<string, unknown>;
    assert.deepEqual(settings.bootstrap, {
      url: "https://10.0.0.1:25556/v1/bootstrap",
      code: "c".repeat(64),
      ca: "CA PEM",
    });
    assert.equal(settings.token, undefined);
    assert.equal(settings.tls, undefined);
  });

  it("refuses settings that cloud-init would render as Jinja", () => {
    assert.throws(
      () => agentUserData({ address: "10.0.0.5", agentPort: 1, token: "x", env: { A: "{{ evil }}" } }),
      /Jinja/,
    );
  });
});
