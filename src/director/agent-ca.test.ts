/**
 * The agent CA: made once with private files, opened again as the same CA; what it
 * issues verifies with node:tls against that CA only, and only for the names it was
 * issued for.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, statSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { connect, createServer, type Server } from "node:tls";
import type { AddressInfo } from "node:net";
import { InvalidInput } from "../lib/errors.js";
import { AgentCa, CA_CERT_FILE, CA_KEY_FILE } from "./agent-ca.js";

/**
 * Connects to 127.0.0.1:port (node checks that IP against the certificate's names)
 * and resolves with "ok" or the TLS error's code. Without `ca`, node's own roots.
 */
function handshake(port: number, o: { ca?: string }): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port, ...(o.ca ? { ca: o.ca } : {}) });
    socket.once("secureConnect", () => {
      socket.end();
      resolve("ok");
    });
    socket.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

describe("agent CA", () => {
  const dir = mkdtempSync(join(tmpdir(), "zonal-agent-ca-"));
  const caDir = join(dir, "agent-ca");
  let ca: AgentCa;
  let server: Server;
  let port: number;

  before(async () => {
    ca = await AgentCa.openOrCreate(caDir);
    const { certPem, keyPem } = await ca.issuerForAgents().issue("127.0.0.1");
    server = createServer({ cert: certPem, key: keyPem }, (s) => s.end());
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it("keeps its key and certificate private, and opens as the same CA the next time", async () => {
    assert.equal(statSync(caDir).mode & 0o777, 0o700);
    assert.equal(statSync(join(caDir, CA_KEY_FILE)).mode & 0o777, 0o600);
    assert.equal(statSync(join(caDir, CA_CERT_FILE)).mode & 0o777, 0o600);
    const cert = new X509Certificate(ca.caPem);
    assert.ok(cert.ca, "a CA certificate");
    const years = (Date.parse(cert.validTo) - Date.now()) / (365 * 24 * 3600_000);
    assert.ok(years > 9.9 && years < 10.1, `valid for about 10 years (${years})`);
    assert.equal((await AgentCa.openOrCreate(caDir)).caPem, ca.caPem);
  });

  it("issues a certificate for an IP, for server and client authentication, signed by the CA", async () => {
    const { certPem, keyPem } = await ca.issue({
      commonName: "agent",
      ips: ["10.1.2.3"],
      dnsNames: ["vm-1.zonal"],
    });
    const cert = new X509Certificate(certPem);
    assert.ok(cert.verify(new X509Certificate(ca.caPem).publicKey), "signed by the CA");
    assert.ok(!cert.ca);
    assert.equal(cert.subjectAltName, "IP Address:10.1.2.3, DNS:vm-1.zonal");
    assert.deepEqual(cert.keyUsage, ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]); // serverAuth, clientAuth
    assert.equal(cert.checkIP("10.1.2.3"), "10.1.2.3");
    assert.match(keyPem, /BEGIN PRIVATE KEY/);
  });

  it("a TLS client that trusts the CA connects to a server with an issued certificate", async () => {
    assert.equal(await handshake(port, { ca: ca.caPem }), "ok");
  });

  it("a client that does not trust the CA is refused", async () => {
    assert.match(
      await handshake(port, {}),
      /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER/,
    );
  });

  it("a certificate for another IP fails the client's host check", async () => {
    const other = await ca.issuerForAgents().issue("127.0.0.2");
    const s = createServer({ cert: other.certPem, key: other.keyPem }, (c) => c.end());
    await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
    try {
      assert.equal(
        await handshake((s.address() as AddressInfo).port, { ca: ca.caPem }),
        "ERR_TLS_CERT_ALTNAME_INVALID",
      );
    } finally {
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  });

  it("a certificate from another CA with the same name is refused", async () => {
    const stranger = await AgentCa.openOrCreate(join(dir, "other-ca"));
    assert.notEqual(stranger.caPem, ca.caPem);
    assert.match(
      await handshake(port, { ca: stranger.caPem }),
      /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER/,
    );
  });

  it("refuses names that cannot go into a certificate, and a certificate without names", async () => {
    await assert.rejects(ca.issue({ commonName: "x", ips: ["10.0.0.300"] }), InvalidInput);
    await assert.rejects(ca.issue({ commonName: "x", dnsNames: ["a, IP:1.2.3.4"] }), InvalidInput);
    await assert.rejects(ca.issue({ commonName: "x\n[leaf]", ips: ["10.0.0.1"] }), InvalidInput);
    await assert.rejects(ca.issue({ commonName: "x" }), /at least one IP address or host name/);
  });

  it("starts over when a crash left a key without a certificate", async () => {
    const d = join(dir, "half");
    await AgentCa.openOrCreate(d);
    unlinkSync(join(d, CA_CERT_FILE));
    const again = await AgentCa.openOrCreate(d);
    assert.ok(new X509Certificate(again.caPem).ca);
  });
});
