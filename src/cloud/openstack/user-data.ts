/**
 * The user data that bootstraps zonal's agent on a new server: a cloud-init
 * `#cloud-config`, rendered by cloud-init's Jinja support so the agent learns its
 * VM id (the server's UUID, `v1.instance_id`) without a second call.
 *
 * It writes the agent's settings (address, port, heartbeat URL, and either the
 * token, TLS CA, certificate and key, or — with `bootstrap` — only the CA and a
 * one-time code the agent trades for them at first boot, so nothing the metadata
 * service keeps showing is worth anything) to /var/lib/zonal/settings.json (0600)
 * and a systemd unit,
 * optionally fetches zonal from a tarball, and starts the agent. Image
 * requirements are in README.md (cloud-init, systemd, Node.js >= 20.19, zonal in
 * /opt/zonal unless a tarball is given).
 */
import { stringify } from "yaml";
import { AGENT_NODE_FLAGS } from "../../agent/node-flags.js";
import { Internal } from "../../lib/errors.js";

export const AGENT_DIR = "/var/lib/zonal";
export const ZONAL_DIR = "/opt/zonal";
export const UNIT_PATH = "/etc/systemd/system/zonal-agent.service";
/** What cloud-init replaces with the server's UUID. */
export const INSTANCE_ID = "{{ v1.instance_id }}";

export interface AgentBootstrap {
  address: string;
  agentPort: number;
  /** The agent's token; with `bootstrap`, left out of the settings (the agent picks it up). */
  token: string;
  /** A one-time code and where to trade it for the token and certificate (tls.ca is kept). */
  bootstrap?: { url: string; code: string };
  heartbeat?: { url: string; intervalMs?: number };
  env?: Record<string, string>;
  tls?: { ca: string; cert: string; key: string };
  /** A tarball of zonal to unpack into /opt/zonal first. */
  tarballUrl?: string;
}

/** The agent's settings file as it will read it (src/agent/settings.ts). */
export function agentSettings(b: AgentBootstrap): Record<string, unknown> {
  const secrets =
    b.bootstrap && b.tls
      ? { bootstrap: { ...b.bootstrap, ca: b.tls.ca } }
      : { token: b.token, ...(b.tls ? { tls: b.tls } : {}) };
  return {
    vmId: INSTANCE_ID,
    address: b.address,
    agentPort: b.agentPort,
    ...secrets,
    ...(b.heartbeat
      ? { heartbeat: { url: b.heartbeat.url, intervalMs: b.heartbeat.intervalMs ?? 1000 } }
      : {}),
    disksDir: `${AGENT_DIR}/disks`,
    disks: "block",
    ephemeralDir: `${AGENT_DIR}/data`,
    env: b.env ?? {},
  };
}

export const AGENT_UNIT = [
  "[Unit]",
  "Description=zonal agent",
  "After=network-online.target",
  "Wants=network-online.target",
  // Restarted however often it fails (a control plane still starting at first boot).
  "StartLimitIntervalSec=0",
  "",
  "[Service]",
  // The agent says when it is ready, and hands the main process over to a new agent
  // version that takes over its jobs (src/agent/service-manager.ts). No start timeout:
  // at first boot the agent waits for the control plane (bootstrap.ts bounds it).
  "Type=notify",
  "NotifyAccess=main",
  "TimeoutStartSec=infinity",
  `ExecStart=/usr/bin/env node ${AGENT_NODE_FLAGS.join(" ")} ${ZONAL_DIR}/bin/zonal-agent.js --vm-dir ${AGENT_DIR}`,
  "Restart=always",
  "RestartSec=1",
  "KillMode=process",
  "",
  "[Install]",
  "WantedBy=multi-user.target",
  "",
].join("\n");

/** The user data, as Nova takes it (base64 is the caller's job). Rejects: Internal. */
export function agentUserData(b: AgentBootstrap): string {
  const settings = JSON.stringify(agentSettings(b), null, 2);
  // Only the instance id may look like Jinja; anything else would be rendered too.
  if (/\{\{|\{%|\{#/.test(settings.replace(INSTANCE_ID, "")))
    throw new Internal("agent settings contain Jinja delimiters; refusing to render them as user data");
  const runcmd: string[][] = [["mkdir", "-p", `${AGENT_DIR}/disks`, `${AGENT_DIR}/data`]];
  if (b.tarballUrl)
    runcmd.push([
      "sh",
      "-c",
      `mkdir -p ${ZONAL_DIR} && curl -fsSL --retry 5 '${b.tarballUrl.replace(/'/g, "")}' | tar -xz -C ${ZONAL_DIR} --strip-components=1`,
    ]);
  // Not waited for: the agent is ready only once it traded its bootstrap code.
  runcmd.push(
    ["systemctl", "daemon-reload"],
    ["systemctl", "enable", "--now", "--no-block", "zonal-agent.service"],
  );
  const doc = {
    write_files: [
      {
        path: `${AGENT_DIR}/settings.json`,
        permissions: "0600",
        owner: "root:root",
        content: settings + "\n",
      },
      { path: UNIT_PATH, permissions: "0644", owner: "root:root", content: AGENT_UNIT },
    ],
    runcmd,
  };
  return `## template: jinja\n#cloud-config\n${stringify(doc, { lineWidth: 0 })}`;
}
