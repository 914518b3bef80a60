/**
 * The control plane with agent TLS (in-process, the local cloud's service as its
 * cloud): it makes its agent CA, serves heartbeats over HTTPS on a second listener
 * that agents trusting the CA reach, and talks to an agent whose certificate the CA
 * issued over HTTPS. Without agent TLS nothing changes: plain HTTP, no CA.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { HeartbeatSender } from "../../src/agent/heartbeat.js";
import { SETTINGS_FILE } from "../../src/agent/settings.js";
import { repoPath } from "../../src/cli/home.js";
import { parseCloudConfig } from "../../src/cloud/local/config.js";
import { LocalCloudService } from "../../src/cloud/local/service.js";
import { AGENT_CA_DIR } from "../../src/director/agent-listener.js";
import { agentSettings } from "../../src/director/context.js";
import { startControlPlane, type RunningControlPlane } from "../../src/control-plane/server.js";
import { standbyAgent } from "../../src/director/standby-pool.js";
import { OsbClient, type OsbEndpoint } from "../../src/broker/client.js";
import { apiTlsOptions } from "../../src/cli/commands/control-plane.js";
import type { ApiTlsOptions } from "../../src/director/api-tls.js";
import { DirectorClient } from "../../src/director/client.js";
import { InvalidInput } from "../../src/lib/errors.js";
import { fetcherFor } from "../../src/lib/fetch.js";
import { controlPlaneCall } from "../../src/jobs/cluster-member.js";
import type { JobContext } from "../../src/jobs/job-type.js";
import { waitFor } from "../../src/lib/sleep.js";
import { claimAddressBlock } from "../../src/testing/addresses.js";
import { idleHeartbeat } from "../../src/testing/heartbeat-sink.js";

process.env.ZONAL_LOG_LEVEL ??= "warn"; // the in-process control planes' info lines
const BIN = fileURLToPath(new URL("../../../bin/zonal.js", import.meta.url));

const cloudConfig = parseCloudConfig({
  address_base: 200,
  zones: [{ name: "z1", hosts: [{ name: "h1", cpu: 2, ram_mb: 1024 }] }],
});

function controlPlane(
  dir: string,
  agentTls?: { listen: string; advertiseHost?: string },
  apiTls?: ApiTlsOptions,
) {
  return startControlPlane({
    dataDir: join(dir, "director"),
    listen: "127.0.0.1:0",
    cloud: new LocalCloudService({ config: cloudConfig, dataDir: join(dir, "cloud") }),
    cloudName: "local",
    health: false,
    brokerConfig: repoPath("examples", "broker.yml"),
    ...(agentTls ? { agentTls } : {}),
    ...(apiTls ? { apiTls } : {}),
  });
}

const beat = idleHeartbeat;

describe("control plane with agent TLS", () => {
  const dir = mkdtempSync(join(tmpdir(), "zonal-cp-tls-"));
  const block = claimAddressBlock();
  let cp: RunningControlPlane;
  let agent: ChildProcess | undefined;

  before(async () => {
    cp = await controlPlane(dir, { listen: "127.0.0.1:0" });
  });
  after(async () => {
    if (agent && agent.exitCode === null) {
      const exited = new Promise((resolve) => agent!.once("exit", resolve));
      agent.kill("SIGTERM");
      await exited;
    }
    await cp?.close();
    rmSync(dir, { recursive: true, force: true });
    block.release();
  });

  it("makes its CA in <data dir>/agent-ca and gives agents an https heartbeat URL on the second listener", () => {
    const caDir = join(dir, "director", AGENT_CA_DIR);
    assert.equal(statSync(caDir).mode & 0o777, 0o700);
    const ctx = cp.director.ctx;
    assert.equal(ctx.agentTls?.caPem, readFileSync(join(caDir, "ca.pem"), "utf8"));
    const hb = new URL(ctx.heartbeatUrl);
    assert.equal(hb.protocol, "https:");
    assert.equal(hb.pathname, "/v1/heartbeats");
    assert.notEqual(hb.host, new URL(cp.endpoint.url).host, "a listener of its own");
    assert.equal(ctx.controlPlaneUrl, hb.origin, "cluster members reach the control plane over TLS too");
    assert.equal(agentSettings(ctx, "t".repeat(32)).tls, ctx.agentTls, "new VMs get the issuer");
  });

  it("accepts a heartbeat over HTTPS from a sender that trusts the CA, checking the VM's token", async () => {
    const ctx = cp.director.ctx;
    const s = await ctx.store.standbys.insert({ id: "s-1", deployment: "d", group: "g", zone: "z1" });
    await ctx.store.standbys.update(s.id, { vmId: "vm-hb", agentToken: "h".repeat(32) });
    const post = (token: string) =>
      fetcherFor(ctx.heartbeatUrl, ctx.agentTls!.caPem)(ctx.heartbeatUrl, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify(beat("vm-hb")),
        signal: AbortSignal.timeout(5000),
      });
    assert.equal((await post("w".repeat(32))).status, 401, "another VM's token is refused");
    assert.equal(cp.director.heartbeats.lastOf("vm-hb"), undefined);
    assert.equal((await post("h".repeat(32))).status, 204);
    assert.equal(cp.director.heartbeats.lastOf("vm-hb")?.beat.vmId, "vm-hb");
    // The agent listener serves what VMs call, and nothing of the operator's API.
    const call = (method: string, path: string, token: string) =>
      fetcherFor(ctx.heartbeatUrl, ctx.agentTls!.caPem)(new URL(path, ctx.heartbeatUrl), {
        method,
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        ...(method === "POST" ? { body: JSON.stringify({ key: "d/g", holder: "m0", ttlMs: 1000 }) } : {}),
        signal: AbortSignal.timeout(5000),
      });
    assert.equal((await call("GET", "/v1/info", cp.endpoint.token)).status, 404);
    assert.equal((await call("GET", "/v1/deployments", cp.endpoint.token)).status, 404);
    const lease = await call("POST", "/v1/leases/acquire", "w".repeat(32));
    assert.equal(lease.status, 401, "the lease store is there, and refuses a token that is no member's");
    assert.equal((await call("GET", "/v1/lb/backends", "w".repeat(32))).status, 401);
    // A job's controller reaches it with the VM's CA, and cannot without.
    const job = (ca?: string) =>
      ({
        cluster: { control_plane_url: ctx.controlPlaneUrl },
        services: { token: "w".repeat(32), ...(ca ? { ca } : {}) },
      }) as unknown as JobContext;
    await assert.rejects(controlPlaneCall(job(ctx.agentTls!.caPem), "GET", "/v1/lb/backends"), /HTTP 401/);
    await assert.rejects(controlPlaneCall(job(), "GET", "/v1/lb/backends"), /fetch failed/);
  });

  it("refuses a plain-HTTP heartbeat and a sender that does not trust its CA", async () => {
    const plain = cp.director.ctx.heartbeatUrl.replace("https:", "http:");
    await assert.rejects(
      fetch(plain, { method: "POST", body: "{}", signal: AbortSignal.timeout(5000) }).then((r) => r.text()),
    );
    await assert.rejects(
      fetch(cp.director.ctx.heartbeatUrl, { method: "POST", body: "{}", signal: AbortSignal.timeout(5000) }),
      (err: { cause?: { code?: string } }) => /UNABLE_TO_VERIFY_LEAF_SIGNATURE/.test(String(err.cause?.code)),
    );
  });

  it("an agent with a certificate from the director's issuer heartbeats over HTTPS and answers the director's client", async () => {
    const ctx = cp.director.ctx;
    const address = `127.${block.base}.1.7`;
    const token = "a".repeat(32);
    const own = await ctx.agentTls!.issue(address);
    const vmDir = join(dir, "vm");
    mkdirSync(vmDir);
    writeFileSync(
      join(vmDir, SETTINGS_FILE),
      JSON.stringify({
        vmId: "vm-agent",
        address,
        agentPort: 6872,
        token,
        heartbeat: { url: ctx.heartbeatUrl, intervalMs: 200 },
        disksDir: join(vmDir, "disks"),
        ephemeralDir: join(vmDir, "ephemeral"),
        tls: { ca: ctx.agentTls!.caPem, cert: own.certPem, key: own.keyPem },
      }),
      { mode: 0o600 },
    );
    const s = await ctx.store.standbys.insert({ id: "s-2", deployment: "d", group: "g", zone: "z1" });
    const patch = { vmId: "vm-agent", agentToken: token, address, agentPort: 6872 };
    await ctx.store.standbys.update(s.id, patch);
    agent = spawn(process.execPath, [BIN, "agent", "--vm-dir", vmDir], { stdio: "ignore" });
    const client = standbyAgent(ctx, { ...s, ...patch }, 1000)!;
    assert.equal(
      (await waitFor(() => client.info(), { timeoutMs: 20_000, what: "the agent over HTTPS" })).vmId,
      "vm-agent",
    );
    const got = await waitFor(() => cp.director.heartbeats.lastOf("vm-agent"), {
      timeoutMs: 5000,
      what: "the agent's heartbeat at the director",
    });
    assert.equal(got.beat.vmId, "vm-agent");
  });

  it("a heartbeat sender with the CA delivers to the director's listener", async () => {
    const ctx = cp.director.ctx;
    const errors: unknown[] = [];
    const sender = new HeartbeatSender({
      url: ctx.heartbeatUrl,
      token: "h".repeat(32),
      intervalMs: 100,
      ca: ctx.agentTls!.caPem,
      build: (seq) => ({ ...beat("vm-hb"), seq }),
      onError: (err) => errors.push(err),
    });
    sender.start();
    try {
      await waitFor(() => ((cp.director.heartbeats.lastOf("vm-hb")?.beat.seq ?? 0) >= 2 ? true : undefined), {
        timeoutMs: 5000,
        what: "beats from the sender",
      });
      assert.deepEqual(errors, []);
    } finally {
      sender.stop();
    }
  });
});

describe("control plane without agent TLS", () => {
  it("keeps heartbeats on its plain-HTTP API and makes no CA", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zonal-cp-plain-"));
    const cp = await controlPlane(dir);
    try {
      assert.equal(cp.director.ctx.heartbeatUrl, `${cp.endpoint.url}/v1/heartbeats`);
      assert.equal(cp.director.ctx.agentTls, undefined);
      assert.equal(agentSettings(cp.director.ctx, "t".repeat(32)).tls, undefined);
      assert.ok(!existsSync(join(dir, "director", AGENT_CA_DIR)));
    } finally {
      await cp.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("refuses agent TLS on every address without an advertised host", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zonal-cp-wild-"));
    try {
      await assert.rejects(controlPlane(dir, { listen: "0.0.0.0:0" }), (err: unknown) => {
        assert.ok(err instanceof InvalidInput);
        assert.match(err.message, /advertised host/);
        return true;
      });
      const cp = await controlPlane(dir, { listen: "127.0.0.1:0", advertiseHost: "127.0.0.1" });
      await cp.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the director API and the broker over HTTPS", () => {
  const dir = mkdtempSync(join(tmpdir(), "zonal-cp-api-tls-"));
  let cp: RunningControlPlane;
  before(async () => {
    cp = await controlPlane(dir, { listen: "127.0.0.1:0" }, { fromCa: true });
  });
  after(async () => {
    await cp?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers over HTTPS with a certificate from its CA, which the endpoint file names for the CLI", async () => {
    const url = new URL(cp.endpoint.url);
    assert.equal(url.protocol, "https:");
    const caPem = readFileSync(join(dir, "director", AGENT_CA_DIR, "ca.pem"), "utf8");
    assert.equal(cp.endpoint.ca, caPem);
    const written = JSON.parse(readFileSync(join(dir, "director", "endpoint.json"), "utf8")) as {
      ca?: string;
    };
    assert.equal(written.ca, caPem);
    const client = DirectorClient.fromDataDir(join(dir, "director"));
    assert.ok((await client.info()).directorId);
  });

  it("serves the broker on the same HTTPS listener", async () => {
    const client = new DirectorClient(cp.endpoint);
    const ep = await client.http.request<OsbEndpoint>("GET", "/v1/broker");
    assert.match(ep.url, /^https:\/\/127\.0\.0\.1:\d+\/v2$/);
    const osb = new OsbClient({ ...ep, ca: cp.endpoint.ca! });
    const r = await osb.call<{ services: Array<{ name: string }> }>("GET", "/catalog");
    assert.equal(r.status, 200);
    assert.deepEqual(
      r.body.services.map((s) => s.name),
      ["postgresql", "mariadb"],
    );
  });

  it("refuses plain HTTP and a client that does not trust its CA", async () => {
    const plain = cp.endpoint.url.replace("https:", "http:");
    await assert.rejects(
      fetch(`${plain}/v1/info`, {
        headers: { authorization: `Bearer ${cp.endpoint.token}` },
        signal: AbortSignal.timeout(5000),
      }),
      "a plain-HTTP request gets no answer",
    );
    await assert.rejects(
      fetch(`${cp.endpoint.url}/v1/info`, { signal: AbortSignal.timeout(5000) }),
      /fetch failed/,
      "an unknown CA is refused by the client",
    );
    await assert.rejects(new DirectorClient({ url: cp.endpoint.url, token: cp.endpoint.token }).info());
  });

  it("needs agent TLS beside it, and flags that make sense", async () => {
    const other = mkdtempSync(join(tmpdir(), "zonal-cp-api-tls-alone-"));
    try {
      await assert.rejects(controlPlane(other, undefined, { fromCa: true }), /needs agent TLS too/);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
    const os = { openstack: "os.yml" };
    assert.throws(() => apiTlsOptions({ tlsFromCa: true }), /--tls-\*: only with --openstack/);
    assert.throws(() => apiTlsOptions({ ...os, tlsCert: "c.pem" }), /--tls-key: expected with --tls-cert/);
    assert.throws(() => apiTlsOptions({ ...os, tlsKey: "k.pem" }), /--tls-cert: expected/);
    assert.throws(
      () => apiTlsOptions({ ...os, tlsFromCa: true, tlsCert: "c.pem" }),
      /--tls-from-ca: give it alone/,
    );
    assert.deepEqual(apiTlsOptions({ ...os, tlsCert: "c.pem", tlsKey: "k.pem" }), {
      certFile: "c.pem",
      keyFile: "k.pem",
    });
    assert.equal(apiTlsOptions(os), undefined);
  });
});
