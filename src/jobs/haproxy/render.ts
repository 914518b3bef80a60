/**
 * haproxy.cfg from the job's properties and the backends' current servers. Pure:
 * the same inputs give the same text, and the config version both nodes report is
 * a hash of that text.
 */
import { createHash } from "node:crypto";
import type { HaproxyConfig } from "./config.js";

export interface Server {
  name: string;
  address: string;
  port: number;
}

export interface RenderInput {
  config: HaproxyConfig;
  /** The node's own address: frontends bind here; the agent forwards the VIP to it. */
  address: string;
  /** This node's member name: HTTP answers say which node served them (X-Zonal-LB). */
  member: string;
  /** Servers of each backend, by backend name. */
  servers: Record<string, Server[]>;
  statsSocket: string;
}

export function renderHaproxyCfg(i: RenderInput): string {
  const lines = [
    "# Rendered by zonal's haproxy job; edits are overwritten.",
    "global",
    `  stats socket ${i.statsSocket} mode 600 level admin`,
    "  hard-stop-after 30s",
    "defaults",
    // A backend whose VM died answers nothing (no reset): a connect that gets no
    // answer in 250 ms is retried on another server at once (redispatch on every
    // retry), and a health check gives it 300 ms, so a silent server is out of the
    // rotation after `fall` checks instead of after the kernel's 1 s SYN retry.
    "  timeout connect 250ms",
    "  timeout check 300ms",
    "  timeout client 30s",
    "  timeout server 30s",
    "  timeout http-request 10s",
    "  retries 2",
    "  option redispatch 1",
    "",
  ];
  for (const f of i.config.frontends) {
    lines.push(`frontend ${f.name}`, `  mode ${f.mode}`, `  bind ${i.address}:${f.port}`);
    if (f.mode === "http") lines.push(`  http-response set-header X-Zonal-LB ${i.member}`);
    lines.push(`  default_backend ${f.backend}`, "");
  }
  for (const b of i.config.backends) {
    const hc = b.health_check;
    lines.push(`backend ${b.name}`, `  mode ${b.mode}`, `  balance ${b.balance}`);
    if (b.mode === "http" && hc.path) lines.push(`  option httpchk GET ${hc.path}`);
    lines.push(`  default-server check inter ${hc.interval} fall ${hc.fall} rise ${hc.rise}`);
    const servers = i.servers[b.name] ?? [];
    for (const s of servers) lines.push(`  server ${s.name} ${s.address}:${s.port}`);
    lines.push("");
  }
  return lines.join("\n");
}

/**
 * The config version both nodes report: a hash of what they serve (frontends,
 * backends, servers), not of the node's own address, so the two nodes of a pair agree.
 */
export const configVersion = (config: HaproxyConfig, servers: Record<string, Server[]>) =>
  createHash("sha256").update(JSON.stringify({ config, servers })).digest("hex").slice(0, 12);

/** The servers of each backend: fixed ones, or the linked group's instances on the backend's port. */
export function serversOf(
  config: HaproxyConfig,
  links: Record<string, { instances: Array<{ index: number; address: string }>; group: string }>,
): Record<string, Server[]> {
  const out: Record<string, Server[]> = {};
  for (const b of config.backends) {
    if (b.servers) {
      out[b.name] = b.servers.map((s, n) => ({ name: `s${n}`, address: s.address, port: s.port }));
      continue;
    }
    const link = links[b.link!];
    out[b.name] = (link?.instances ?? []).map((inst) => ({
      name: `${link!.group}-${inst.index}`,
      address: inst.address,
      port: b.port!,
    }));
  }
  return out;
}
