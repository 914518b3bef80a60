/**
 * An agent with `tls` settings (a real `zonal agent` process on its own loopback
 * address): its API answers only over HTTPS to clients that trust the agent CA, and
 * its heartbeats go over HTTPS to a receiver whose certificate that CA signed.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { AgentCa } from "../director/agent-ca.js";
import { InvalidInput, NotFound, Unavailable } from "../lib/errors.js";
import { createApi } from "../lib/http-server.js";
import { JsonClient } from "../lib/http-client.js";
import { waitFor } from "../lib/sleep.js";
import { claimAddressBlock } from "../testing/addresses.js";
import { HeartbeatSink } from "../testing/heartbeat-sink.js";
import { AgentClient } from "./client.js";
import { HeartbeatSender, type Heartbeat } from "./heartbeat.js";
import { pickUp } from "./bootstrap.js";
import { loadSettings, SETTINGS_FILE, settingsFor } from "./settings.js";

const BIN = fileURLToPath(new URL("../../../bin/zonal.js", import.meta.url));

describe("agent over TLS", () => {
  const dir = mkdtempSync(join(tmpdir(), "zonal-agent-tls-"));
  const block = claimAddressBlock();
  const address = `127.${block.base}.9.9`;
  const port = 6871;
  const token = "t".repeat(32);
  const sink = new HeartbeatSink();
  let ca: AgentCa;
  let stranger: AgentCa;
  let proc: ChildProcess | undefined;
  let stderr = "";

  before(async () => {
    ca = await AgentCa.openOrCreate(join(dir, "ca"));
    stranger = await AgentCa.openOrCreate(join(dir, "stranger-ca"));
    const receiver = await ca.issue({ commonName: "zonal director", ips: ["127.0.0.1"] });
    await sink.start({ cert: receiver.certPem, key: receiver.keyPem });
    const own = await ca.issuerForAgents().issue(address);
    const vmDir = join(dir, "vm");
    mkdirSync(vmDir);
    writeFileSync(
      join(vmDir, SETTINGS_FILE),
      JSON.stringify({
        vmId: "vm-tls",
        address,
        agentPort: port,
        token,
        heartbeat: { url: sink.url, intervalMs: 200 },
        disksDir: join(vmDir, "disks"),
        ephemeralDir: join(vmDir, "ephemeral"),
        tls: { ca: ca.caPem, cert: own.certPem, key: own.keyPem },
      }),
      { mode: 0o600 },
    );
    proc = spawn(process.execPath, [BIN, "agent", "--vm-dir", vmDir], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    proc.stderr!.on("data", (c: Buffer) => (stderr += c.toString()));
    const client = new AgentClient({ address, port, token, ca: ca.caPem, timeoutMs: 1000 });
    await waitFor(() => client.info(), { timeoutMs: 20_000, intervalMs: 100, what: `the agent (${stderr})` });
  });
  after(async () => {
    if (proc && proc.exitCode === null) {
      const exited = new Promise((resolve) => proc!.once("exit", resolve));
      proc.kill("SIGTERM");
      await exited;
    }
    await sink.stop();
    rmSync(dir, { recursive: true, force: true });
    block.release();
  });

  it("answers an AgentClient that trusts the agent CA, over HTTPS", async () => {
    const info = await new AgentClient({ address, port, token, ca: ca.caPem }).info();
    assert.equal(info.vmId, "vm-tls");
    assert.equal(info.address, address);
  });

  it("a client that does not trust the CA gets Unavailable with the certificate error", async () => {
    const systemRoots = new JsonClient({ baseUrl: `https://${address}:${port}`, token });
    await assert.rejects(systemRoots.request("GET", "/v1/info"), (err: unknown) => {
      assert.ok(err instanceof Unavailable, String(err));
      assert.match(err.message, /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/);
      return true;
    });
    const otherCa = new AgentClient({ address, port, token, ca: stranger.caPem });
    await assert.rejects(otherCa.info(), (err: unknown) => {
      assert.ok(err instanceof Unavailable, String(err));
      assert.match(err.message, /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/);
      return true;
    });
  });

  it("plain HTTP to the agent's port fails", async () => {
    await assert.rejects(new AgentClient({ address, port, token, timeoutMs: 2000 }).info(), Unavailable);
  });

  it("still needs the VM's token over TLS", async () => {
    await assert.rejects(new AgentClient({ address, port, token: "x".repeat(32), ca: ca.caPem }).info(), {
      name: "Unauthorized",
    });
  });

  it("sends its heartbeats over HTTPS with the VM's token", async () => {
    const beats = await waitFor(() => (sink.from("vm-tls").length >= 2 ? sink.from("vm-tls") : undefined), {
      timeoutMs: 5000,
      what: "two heartbeats over HTTPS",
    });
    assert.ok(sink.url.startsWith("https://"));
    assert.equal(beats[0]!.token, token);
    assert.equal(beats[0]!.beat.vmId, "vm-tls");
  });
});

describe("TLS settings and senders", () => {
  it("a heartbeat sender does not deliver to a receiver whose certificate another CA signed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zonal-hb-tls-"));
    const sink = new HeartbeatSink();
    try {
      const ca = await AgentCa.openOrCreate(join(dir, "ca"));
      const other = await AgentCa.openOrCreate(join(dir, "other"));
      const cert = await other.issue({ commonName: "impostor", ips: ["127.0.0.1"] });
      await sink.start({ cert: cert.certPem, key: cert.keyPem });
      const errors: unknown[] = [];
      const sender = new HeartbeatSender({
        url: sink.url,
        token: "t".repeat(32),
        intervalMs: 100,
        ca: ca.caPem,
        build: (seq) => ({ vmId: "vm-x", seq }) as unknown as Heartbeat,
        onError: (err) => errors.push(err),
      });
      sender.start();
      try {
        const err = await waitFor(() => errors[0], { timeoutMs: 5000, what: "a delivery error" });
        const code = (err as { cause?: { code?: string } }).cause?.code;
        assert.match(String(code), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/);
        assert.equal(sink.received.length, 0, "nothing reached the impostor");
      } finally {
        sender.stop();
      }
    } finally {
      await sink.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a CA is only used over https: a client or sender given one for an http URL refuses", () => {
    const ca = "-----BEGIN CERTIFICATE-----\n...";
    assert.throws(() => new JsonClient({ baseUrl: "http://127.0.0.1:1", ca }), InvalidInput);
    assert.throws(
      () =>
        new HeartbeatSender({
          url: "http://127.0.0.1:1/v1/heartbeats",
          token: "t",
          intervalMs: 100,
          ca,
          build: () => ({}) as Heartbeat,
        }),
      InvalidInput,
    );
  });

  it("settings with tls need an https heartbeat URL", () => {
    const dir = mkdtempSync(join(tmpdir(), "zonal-settings-tls-"));
    try {
      const pem = "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n";
      const settings = {
        vmId: "vm-1",
        address: "10.0.0.5",
        agentPort: 6868,
        token: "t".repeat(32),
        heartbeat: { url: "http://10.0.0.1:25556/v1/heartbeats" },
        disksDir: "/d",
        ephemeralDir: "/e",
        tls: { ca: pem, cert: pem, key: "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n" },
      };
      writeFileSync(join(dir, SETTINGS_FILE), JSON.stringify(settings));
      assert.throws(() => loadSettings(dir), /heartbeat\.url.*https/s);
      settings.heartbeat.url = "https://10.0.0.1:25556/v1/heartbeats";
      writeFileSync(join(dir, SETTINGS_FILE), JSON.stringify(settings));
      assert.equal(loadSettings(dir).tls?.ca, pem);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("an agent's first contact with a one-time bootstrap code", () => {
  it("trades the code over TLS for its token and certificate, writes them, and forgets the code", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zonal-agent-bootstrap-"));
    const ca = await AgentCa.openOrCreate(join(dir, "ca"));
    const served = await ca.issue({ commonName: "zonal director", ips: ["127.0.0.1"] });
    const own = await ca.issuerForAgents().issue("10.0.0.5");
    const code = "c".repeat(64);
    let pickups = 0;
    let calls = 0;
    const app = createApi({ https: { cert: served.certPem, key: served.keyPem } });
    app.post("/v1/bootstrap", async (req) => {
      if (calls++ === 0) throw new Unavailable("the director is still starting"); // 503: asked again
      if ((req.body as { code?: string }).code !== code || pickups++ > 0)
        throw new NotFound("no such bootstrap code");
      return { token: "agent-token-".padEnd(40, "z"), tls: { cert: own.certPem, key: own.keyPem } };
    });
    await app.listen({ host: "127.0.0.1", port: 0 });
    const url = `https://127.0.0.1:${(app.server.address() as { port: number }).port}/v1/bootstrap`;
    try {
      const injected = {
        vmId: "vm-1",
        address: "10.0.0.5",
        agentPort: 6868,
        bootstrap: { url, code, ca: ca.caPem },
        heartbeat: { url: "https://127.0.0.1:1/v1/heartbeats" },
        disksDir: "/d",
        ephemeralDir: "/e",
      };
      writeFileSync(join(dir, SETTINGS_FILE), JSON.stringify(injected), { mode: 0o600 });
      const lines: string[] = [];
      const settings = await settingsFor(dir, (l) => lines.push(l));
      assert.equal(settings.token, "agent-token-".padEnd(40, "z"));
      assert.ok(
        lines.some((l) => /answered HTTP 503; retrying/.test(l)),
        lines.join("\n"),
      );
      assert.equal(settings.tls?.ca, ca.caPem);
      assert.equal(settings.tls?.cert, own.certPem);
      const file = readFileSync(join(dir, SETTINGS_FILE), "utf8");
      assert.ok(!file.includes(code), "the code is gone from the settings file");
      assert.equal(statSync(join(dir, SETTINGS_FILE)).mode & 0o777, 0o600);
      assert.deepEqual(loadSettings(dir), settings, "the next start reads the secrets it keeps");
      // The code left in the metadata is worth nothing now.
      writeFileSync(join(dir, SETTINGS_FILE), JSON.stringify(injected), { mode: 0o600 });
      await assert.rejects(
        settingsFor(dir, () => {}),
        /refused the one-time code: HTTP 404/,
      );
      // And it trusts only the CA it was given.
      const stranger = await AgentCa.openOrCreate(join(dir, "stranger"));
      await assert.rejects(pickUp({ url, code, ca: stranger.caPem }, () => {}, 1));
    } finally {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
