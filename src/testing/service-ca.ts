/**
 * The control plane's certificate route alone, for tests that run a data-service job
 * without a control plane: POST /v1/certificates answers a certificate from a real
 * CA (the control plane's own code) for the given address.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { AgentCa } from "../director/agent-ca.js";

export async function serveCertificates(
  caDir: string,
  address: string,
): Promise<{ url: string; close(): Promise<void> }> {
  const ca = await AgentCa.openOrCreate(caDir);
  const server = createServer((req, res) => {
    if (req.method !== "POST" || req.url !== "/v1/certificates") {
      res.statusCode = 404;
      return void res.end();
    }
    void ca.issue({ commonName: address, ips: [address] }).then(
      (c) => res.end(JSON.stringify({ cert: c.certPem, key: c.keyPem, ca: ca.caPem, names: [address] })),
      () => {
        res.statusCode = 500;
        res.end();
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
