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
  /** Draining: no new connections (HAProxy's maintenance); a reload lets the old worker finish its own. */
  disabled?: true;
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

/**
 * One word of the config, as HAProxy reads it: every value rendered goes through
 * here, and one that could end the word or the line (whitespace, a control
 * character, a quote, a backslash, #) is refused, whatever checked it before.
 */
export function word(value: string | number, what: string): string {
  const s = String(value);
  // eslint-disable-next-line no-control-regex
  if (s === "" || /[\s\x00-\x1f\x7f"'\\#]/.test(s))
    throw new Error(`haproxy config: ${what} ${JSON.stringify(s)} is not one word HAProxy reads as given`);
  return s;
}

export function renderHaproxyCfg(i: RenderInput): string {
  const w = word;
  const lines = [
    "# Rendered by zonal's haproxy job; edits are overwritten.",
    "global",
    `  stats socket ${w(i.statsSocket, "stats socket")} mode 600 level admin`,
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
    lines.push(
      `frontend ${w(f.name, "frontend name")}`,
      `  mode ${w(f.mode, "mode")}`,
      `  bind ${w(`${i.address}:${f.port}`, "bind address")}`,
    );
    if (f.mode === "http") lines.push(`  http-response set-header X-Zonal-LB ${w(i.member, "member")}`);
    lines.push(`  default_backend ${w(f.backend, "backend")}`, "");
  }
  for (const b of i.config.backends) {
    const hc = b.health_check;
    lines.push(
      `backend ${w(b.name, "backend name")}`,
      `  mode ${w(b.mode, "mode")}`,
      `  balance ${w(b.balance, "balance")}`,
    );
    if (b.mode === "http" && hc.path) lines.push(`  option httpchk GET ${w(hc.path, "health check path")}`);
    lines.push(
      `  default-server check inter ${w(hc.interval, "interval")} fall ${w(hc.fall, "fall")} rise ${w(hc.rise, "rise")}`,
    );
    const servers = i.servers[b.name] ?? [];
    for (const s of servers)
      lines.push(
        `  server ${w(s.name, "server name")} ${w(`${s.address}:${s.port}`, "server address")}${s.disabled ? " disabled" : ""}`,
      );
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

/**
 * The servers of each backend: fixed ones, or the linked group's instances on the
 * backend's port; an instance in `draining` (by id) takes no new connections.
 */
export function serversOf(
  config: HaproxyConfig,
  links: Record<string, { instances: Array<{ id: string; index: number; address: string }>; group: string }>,
  draining: ReadonlySet<string> = new Set(),
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
      ...(draining.has(inst.id) ? { disabled: true as const } : {}),
    }));
  }
  return out;
}
