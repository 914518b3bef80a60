/**
 * TLS between the director and its agents (VMs off loopback). Opens (or creates)
 * the agent CA in `<data dir>/agent-ca`, issues the director's own certificate for
 * the address agents reach it at, and serves what VMs call (heartbeats, leases,
 * cluster members' VIP moves and fencing, LB backends) over HTTPS on a listener of
 * their own. The director passes the CA's issuer to the cloud for every new VM.
 */
import { isIP } from "node:net";
import { join } from "node:path";
import type { AgentTlsIssuer } from "../cloud/cloud.js";
import { parseListen } from "../lib/data-dir.js";
import type { AuditOptions } from "../lib/http-server.js";
import { InvalidInput } from "../lib/errors.js";
import type { Logger } from "../lib/log.js";
import { AgentCa } from "./agent-ca.js";
import { buildVmApi } from "./api.js";
import type { Director } from "./director.js";

export const AGENT_CA_DIR = "agent-ca";

export interface AgentTlsOptions {
  /** HOST:PORT of the HTTPS heartbeat listener (port 0 picks a free one). */
  listen: string;
  /** The host (IP or name) agents use to reach it; default the listen host. */
  advertiseHost?: string;
}

export interface AgentListener {
  /** `https://<advertised host>:<port>`: where VMs reach the control plane (leases, VIP moves, fencing, LB backends). */
  url: string;
  /** `https://<advertised host>:<port>/v1/heartbeats`: what agents are given. */
  heartbeatUrl: string;
  /** Issues agents' certificates; its CA is what the director trusts when calling agents. */
  issuer: AgentTlsIssuer;
  close(): Promise<void>;
}

const WILDCARDS = new Set(["0.0.0.0", "::", "[::]"]);

/**
 * Starts the HTTPS heartbeat listener. InvalidInput when it would listen on every
 * address without an advertised host; Internal when the CA cannot be made; the
 * listen error when the port is taken. Nothing is left listening on failure.
 */
export async function startAgentListener(o: {
  dataDir: string;
  tls: AgentTlsOptions;
  director: () => Director;
  /** Where its requests' audit lines go, and how they name the caller. */
  audit?: { log: Logger; options: AuditOptions };
}): Promise<AgentListener> {
  const { host, port } = parseListen(o.tls.listen, "--agent-listen");
  const advertised = o.tls.advertiseHost ?? host;
  if (WILDCARDS.has(advertised)) {
    throw new InvalidInput(
      `agent TLS: listening on ${host} needs an advertised host (the address agents reach the director at)`,
    );
  }
  const ca = await AgentCa.openOrCreate(join(o.dataDir, AGENT_CA_DIR));
  const names = [...new Set([advertised, ...(WILDCARDS.has(host) ? [] : [host])])];
  const { certPem, keyPem } = await ca.issue({
    commonName: "zonal director",
    ips: names.filter((n) => isIP(n) !== 0),
    dnsNames: names.filter((n) => isIP(n) === 0),
  });
  const app = buildVmApi(o.director, { cert: certPem, key: keyPem }, o.audit);
  await app.listen({ host, port });
  const addr = app.server.address();
  const actualPort = typeof addr === "object" && addr ? addr.port : port;
  const urlHost = isIP(advertised) === 6 ? `[${advertised}]` : advertised;
  return {
    url: `https://${urlHost}:${actualPort}`,
    heartbeatUrl: `https://${urlHost}:${actualPort}/v1/heartbeats`,
    issuer: ca.issuerForAgents(),
    close: () => app.close(),
  };
}
