/**
 * The director on the test OpenStack, as an operator runs it: `zonal control-plane
 * --openstack` (agents over TLS with the control plane's CA), `zonal cloud-config`,
 * `zonal deploy examples/web.yml`. The servers' agents run under LoopbackHypervisor
 * (the fake virt driver boots nothing; see hypervisor.ts) from the user data Nova
 * stored, on the addresses of their Neutron (stub) ports.
 *
 * Shows: six web instances, two per zone of z1–z3, each pair on two different hosts
 * (the deployment's server group); every instance answers HTTP; heartbeats arrive
 * over HTTPS; a server stopped through Nova is replaced (resurrect) in its zone; an
 * ssd vm type lands on the ssd aggregate's host only; deleting the deployment deletes
 * its servers, ports and server group; `zonal host drain` moves a host's instance to
 * the zone's other host and disables the host's nova-compute with the reason while
 * it is drained.
 */
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { closeSync, mkdtempSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";
import { OpenStackSession } from "../../src/cloud/openstack/session.js";
import type { InstanceView } from "../../src/director/director.js";
import { fetcherFor } from "../../src/lib/fetch.js";
import { isAlive, readStat, signalGroup } from "../../src/lib/proc.js";
import { waitFor } from "../../src/lib/sleep.js";
import { testOpenStack } from "./env.js";
import { LoopbackHypervisor } from "./hypervisor.js";

const REPO = fileURLToPath(new URL("../../..", import.meta.url));
const BIN = join(REPO, "bin", "zonal.js");
const run = promisify(execFile);

interface ServerView {
  id: string;
  status: string;
  metadata: Record<string, string>;
  "OS-EXT-AZ:availability_zone": string;
  "OS-EXT-SRV-ATTR:host": string;
  "OS-EXT-SRV-ATTR:user_data"?: string | null;
}

describe("the director on OpenStack", () => {
  const os = testOpenStack();
  const home = mkdtempSync(join(tmpdir(), "zonal-os-home-"));
  const session = new OpenStackSession(os.config.credentials);
  const hypervisor = new LoopbackHypervisor(session, join(home, "vms"));
  let cp: { pid: number; startTime: number } | undefined;

  // Asynchronous: the loopback hypervisor runs in this process and must keep booting
  // servers while the CLI waits for them.
  const zonal = async (...args: string[]): Promise<string> => {
    try {
      const { stdout } = await run(process.execPath, [BIN, "--home", home, ...args], {
        encoding: "utf8",
        timeout: 600_000,
      });
      return stdout;
    } catch (err) {
      const e = err as { code?: number; stderr?: string; stdout?: string };
      throw new Error(`zonal ${args.join(" ")} failed (${e.code}):\n${e.stderr}${e.stdout}`);
    }
  };
  const servers = async (deployment: string) =>
    (
      await session.request<{ servers: ServerView[] }>({
        service: "compute",
        path: "/servers/detail",
        headers: { "openstack-api-version": "compute 2.74" },
      })
    ).body.servers.filter((s) => s.metadata.deployment === deployment && s.status !== "DELETED");

  before(async () => {
    hypervisor.start();
    const log = openSync(join(home, "control-plane.log"), "a");
    const child = spawn(
      process.execPath,
      [
        BIN,
        "--home",
        home,
        "control-plane",
        "--openstack",
        os.settingsFile,
        "--listen",
        "127.0.0.1:0",
        "--agent-listen",
        "127.0.0.1:0",
      ],
      { detached: true, stdio: ["ignore", log, log] },
    );
    closeSync(log);
    child.unref();
    cp = { pid: child.pid!, startTime: readStat(child.pid!)!.startTime };
    await waitFor(
      () => {
        if (!isAlive(cp!.pid, cp!.startTime))
          throw new Error(`control plane exited:\n${readFileSync(join(home, "control-plane.log"), "utf8")}`);
        return /control plane: http/.test(readFileSync(join(home, "control-plane.log"), "utf8"))
          ? true
          : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 200, what: "the control plane" },
    );
    await zonal("cloud-config", join(REPO, "examples", "cloud-config.yml"));
  });

  after(async () => {
    try {
      await zonal("delete-deployment", "web");
    } catch {
      /* already gone, or the test failed before deploying */
    }
    try {
      await zonal("delete-deployment", "web-ssd");
    } catch {
      /* as above */
    }
    if (cp) {
      signalGroup(cp.pid, cp.startTime, "SIGTERM");
      await waitFor(() => (isAlive(cp!.pid, cp!.startTime) ? undefined : true), {
        timeoutMs: 20_000,
        what: "the control plane to stop",
      }).catch(() => signalGroup(cp!.pid, cp!.startTime, "SIGKILL"));
    }
    await hypervisor.stop();
    console.log(`loopback hypervisor:\n  ${hypervisor.log.join("\n  ")}`);
  });

  it("deploys examples/web.yml evenly across the three zones, a pair per zone on two hosts, over TLS", async () => {
    const started = Date.now();
    await zonal("deploy", join(REPO, "examples", "web.yml"));
    const took = Date.now() - started;
    const instances = JSON.parse(await zonal("instances", "-d", "web", "--json")) as InstanceView[];
    assert.equal(instances.length, 6);
    assert.deepEqual(
      instances.map((i) => i.state),
      Array(6).fill("running"),
    );
    const byZone = new Map<string, InstanceView[]>();
    for (const i of instances) byZone.set(i.zone, [...(byZone.get(i.zone) ?? []), i]);
    assert.deepEqual([...byZone.keys()].sort(), ["z1", "z2", "z3"]);
    for (const [zone, list] of byZone) {
      assert.equal(list.length, 2, `two instances in ${zone}`);
      assert.notEqual(
        list[0]!.host,
        list[1]!.host,
        `the two instances in ${zone} share host ${list[0]!.host}`,
      );
    }
    // Nova agrees: each server is in its instance's zone, on the host the director reports.
    const real = await servers("web");
    assert.equal(real.length, 6);
    for (const i of instances) {
      const s = real.find((x) => x.id === i.vmId)!;
      assert.equal(s["OS-EXT-AZ:availability_zone"], i.zone);
      assert.equal(`${i.zone}/${s["OS-EXT-SRV-ATTR:host"]}`, i.host);
    }
    // Each instance serves HTTP on its Neutron address.
    for (const i of instances) {
      const body = await (await fetch(`http://${i.address}:8080/`)).text();
      assert.match(body, new RegExp(`^hello from web/${i.index} in `));
    }
    // The agents were bootstrapped with TLS and beat over HTTPS.
    const settings = hypervisor.settingsOf(instances[0]!.vmId!)!;
    assert.match(String((settings.heartbeat as { url: string }).url), /^https:\/\//);
    assert.ok((settings.tls as { cert: string }).cert.includes("BEGIN CERTIFICATE"));
    // What the metadata service keeps showing holds a used one-time code, not the token or key.
    const userData = Buffer.from(
      real.find((x) => x.id === instances[0]!.vmId)!["OS-EXT-SRV-ATTR:user_data"] ?? "",
      "base64",
    ).toString("utf8");
    assert.match(userData, /"bootstrap"/);
    assert.ok(!userData.includes(String(settings.token)), "the user data holds no agent token");
    assert.ok(!userData.includes("PRIVATE KEY"), "the user data holds no private key");
    assert.equal(settings.bootstrap, undefined, "the agent forgot its code");
    const code = /"code": "([0-9a-f]{64})"/.exec(userData)![1]!;
    const pickup = `${new URL(String((settings.heartbeat as { url: string }).url)).origin}/v1/bootstrap`;
    const reused = await fetcherFor(pickup, (settings.tls as { ca: string }).ca)(pickup, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ code }),
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(reused.status, 404, "the code picks up nothing a second time");
    console.log("the agents' user data carries only a used one-time code: a second pickup gets 404");
    await assert.rejects(
      fetch(`http://${instances[0]!.address}:6868/v1/info`),
      "the agent speaks no plain HTTP",
    );
    console.log(`deployed web (6 instances over 3 zones) on the test OpenStack in ${took} ms`);
  });

  it("resurrects an instance whose server Nova stopped behind zonal's back", async () => {
    const before = (JSON.parse(await zonal("instances", "-d", "web", "--json")) as InstanceView[]).find(
      (i) => i.group === "web" && i.index === 0,
    )!;
    const stoppedAt = Date.now();
    await session.request({
      service: "compute",
      method: "POST",
      path: `/servers/${before.vmId}/action`,
      body: { "os-stop": null },
      headers: { "openstack-api-version": "compute 2.74" },
    });
    const after = await waitFor(
      async () => {
        const now = (JSON.parse(await zonal("instances", "-d", "web", "--json")) as InstanceView[]).find(
          (i) => i.group === "web" && i.index === 0,
        );
        return now && now.vmId !== before.vmId && now.state === "running" ? now : undefined;
      },
      { timeoutMs: 180_000, intervalMs: 1000, what: "web/0 on a new server" },
    );
    const took = Date.now() - stoppedAt;
    assert.equal(after.zone, before.zone, "resurrected in its zone");
    assert.match(await (await fetch(`http://${after.address}:8080/`)).text(), /^hello from web\/0 in /);
    const old = await session.request<{ server?: { status: string } }>({
      service: "compute",
      path: `/servers/${before.vmId}`,
      okStatuses: [404],
    });
    assert.ok(old.status === 404 || old.body.server?.status === "DELETED", "the stopped server is deleted");
    console.log(`web/0 back on a new server ${took} ms after Nova stopped its old one`);
  });

  it("drains a host: its instance moves to the zone's other host, Nova's compute service is disabled with the reason; undrain enables it", async () => {
    const computeService = async (host: string) =>
      (
        await session.request<{
          services: Array<{ host: string; binary: string; status: string; disabled_reason: string | null }>;
        }>({ service: "compute", path: "/os-services", headers: { "openstack-api-version": "compute 2.74" } })
      ).body.services.find((s) => s.binary === "nova-compute" && s.host === host)!;
    const web = () => zonal("instances", "-d", "web", "--json").then((o) => JSON.parse(o) as InstanceView[]);
    const moving = (await web()).find((i) => i.zone === "z2")!;
    const host = moving.host!;
    const started = Date.now();
    let took = 0;
    try {
      await zonal("host", "drain", host, "--reason", "kernel update");
      took = Date.now() - started;
      const svc = await computeService(host.split("/")[1]!);
      assert.equal(svc.status, "disabled");
      assert.match(String(svc.disabled_reason), /zonal maintenance: kernel update/);
      const after = (await web()).filter((i) => i.zone === "z2");
      assert.equal(after.length, 2);
      for (const i of after) {
        assert.equal(i.state, "running");
        assert.notEqual(i.host, host, `${i.group}/${i.index} is off ${host}`);
      }
      const real = (await servers("web")).filter((s) => s["OS-EXT-AZ:availability_zone"] === "z2");
      assert.ok(
        real.every((s) => `z2/${s["OS-EXT-SRV-ATTR:host"]}` !== host),
        "Nova has no web server left on the drained host",
      );
      const moved = after.find((i) => i.index === moving.index)!;
      assert.match(await (await fetch(`http://${moved.address}:8080/`)).text(), /^hello from web\//);
    } finally {
      // Never leave the host's nova-compute disabled in the test OpenStack.
      await zonal("host", "undrain", host);
    }
    assert.equal((await computeService(host.split("/")[1]!)).status, "enabled");
    console.log(
      `host drain of ${host} on the test OpenStack: ${took} ms; nova-compute disabled, then enabled`,
    );
  });

  it("puts an ssd vm type on the ssd aggregate's host", async () => {
    const web = parse(readFileSync(join(REPO, "examples", "web.yml"), "utf8")) as {
      name: string;
      instance_groups: Array<{ instances: number; zones: string[]; vm_type: string }>;
    };
    web.name = "web-ssd";
    web.instance_groups[0]!.instances = 2;
    web.instance_groups[0]!.zones = ["z1"];
    web.instance_groups[0]!.vm_type = "small-ssd";
    const file = join(home, "web-ssd.yml");
    writeFileSync(file, stringify(web));
    await zonal("deploy", file);
    const real = await servers("web-ssd");
    assert.equal(real.length, 2);
    const zones = JSON.parse(await zonal("openstack", "check", os.settingsFile, "--json")) as {
      zones: Array<{ name: string; hosts: Array<{ name: string; attributes: Record<string, unknown> }> }>;
    };
    const ssdHosts = zones.zones.flatMap((z) =>
      z.hosts.filter((h) => h.attributes.ssd === true).map((h) => h.name),
    );
    assert.deepEqual(ssdHosts, ["c1"]);
    for (const s of real) assert.equal(s["OS-EXT-SRV-ATTR:host"], "c1");
  });

  it("deletes a deployment's servers and their ports", async () => {
    const vmPorts = async () =>
      (
        await session.request<{ ports: Array<{ id: string }> }>({
          service: "network",
          path: "/v2.0/ports",
          query: { tags: "zonal-vm-port" },
        })
      ).body.ports.length;
    assert.equal((await servers("web")).length, 6);
    assert.equal(await vmPorts(), 8, "a port per server of web and web-ssd");
    await zonal("delete-deployment", "web");
    assert.deepEqual(await servers("web"), []);
    assert.equal(await vmPorts(), 2, "only web-ssd's ports are left");
    const groups = (
      await session.request<{ server_groups: Array<{ name: string }> }>({
        service: "compute",
        path: "/os-server-groups",
      })
    ).body.server_groups.map((g) => g.name);
    assert.ok(!groups.includes("zonal-web/web"), `web's server group is gone (left: ${groups.join(", ")})`);
    assert.ok(groups.includes("zonal-web-ssd/web"));
  });
});
