/**
 * HTTPS for the director API and the OSB broker (one listener): the operator's
 * certificate and key (`--tls-cert`, `--tls-key`, and `--tls-ca` for the CA the CLI
 * should trust when it is not a public one), or a certificate the control plane's
 * own CA issues for the address it listens on (`--tls-from-ca`). With TLS on, the
 * listener speaks nothing else: a plain-HTTP request gets no answer.
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { join } from "node:path";
import { InvalidInput, errorMessage } from "../lib/errors.js";
import { AgentCa } from "./agent-ca.js";
import { AGENT_CA_DIR } from "./agent-listener.js";

export type ApiTlsOptions = { certFile: string; keyFile: string; caFile?: string } | { fromCa: true };

export interface ApiTls {
  cert: string;
  key: string;
  /** The CA (PEM) clients should trust; undefined for a certificate public CAs vouch for. */
  ca?: string;
}

const readPem = (path: string, flag: string): string => {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new InvalidInput(`${flag}: cannot read ${path}: ${errorMessage(err)}`);
  }
};

/** The certificate, key and CA to serve with. InvalidInput names the flag whose file is unreadable. */
export async function apiTlsMaterial(o: ApiTlsOptions, dataDir: string, host: string): Promise<ApiTls> {
  if ("fromCa" in o) {
    if (host === "0.0.0.0" || host === "::")
      throw new InvalidInput(
        `--tls-from-ca: the certificate names the address the API listens on; --listen ${host} is every address (give the operator's certificate with --tls-cert instead)`,
      );
    const ca = await AgentCa.openOrCreate(join(dataDir, AGENT_CA_DIR));
    const { certPem, keyPem } = await ca.issue({
      commonName: "zonal director API",
      ...(isIP(host) !== 0 ? { ips: [host] } : { dnsNames: [host] }),
    });
    return { cert: certPem, key: keyPem, ca: ca.caPem };
  }
  return {
    cert: readPem(o.certFile, "--tls-cert"),
    key: readPem(o.keyFile, "--tls-key"),
    ...(o.caFile ? { ca: readPem(o.caFile, "--tls-ca") } : {}),
  };
}
