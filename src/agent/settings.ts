/**
 * The agent's settings: what the cloud injects into a new VM (like cloud-init user
 * data or a BOSH agent's settings.json). On the local cloud this is
 * `<vm-dir>/settings.json`, readable only by root.
 *
 * With `tls` (VMs off loopback) the agent serves its API over HTTPS with `cert` and
 * `key`, and sends heartbeats only to an https URL whose certificate `ca` signed.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { parseWith } from "../lib/validate.js";
import { writeFileAtomic } from "../lib/files.js";
import { bootstrapSchema, pickUp } from "./bootstrap.js";

export const settingsSchema = z
  .object({
    vmId: z.string().min(1),
    /** The VM's IP address; the agent's API and the jobs listen there. */
    address: z.string().min(1),
    agentPort: z.number().int().min(1).max(65535),
    /** Bearer token for the agent API and for heartbeats. */
    token: z.string().min(16),
    heartbeat: z
      .object({ url: z.url(), intervalMs: z.number().int().min(100).max(60_000).default(1000) })
      .optional(),
    /** Directory where attached disks appear, one entry per disk id. */
    disksDir: z.string().min(1),
    /**
     * How persistent disks arrive: `directories` (the local cloud makes
     * `<disksDir>/<id>`), or `block` (OpenStack volumes: the agent mounts the device
     * `/dev/disk/by-id/virtio-<id>` there, formatting it when blank; block-disk.ts).
     * Default: directories.
     */
    disks: z.enum(["directories", "block"]).optional(),
    /** The VM's ephemeral disk: agent state, job directories, logs. */
    ephemeralDir: z.string().min(1),
    env: z.record(z.string(), z.string()).default({}),
    /** PEM: the CA that signs the director's and agents' certificates; this agent's certificate and key. */
    tls: z
      .object({
        ca: z.string().includes("-----BEGIN CERTIFICATE-----", "expected a PEM certificate"),
        cert: z.string().includes("-----BEGIN CERTIFICATE-----", "expected a PEM certificate"),
        key: z.string().includes("PRIVATE KEY-----", "expected a PEM private key"),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((s) => !s.tls || !s.heartbeat || s.heartbeat.url.startsWith("https:"), {
    path: ["heartbeat", "url"],
    message: "expected an https URL: the agent has tls settings",
  });

export type AgentSettingsFile = z.output<typeof settingsSchema>;

export const SETTINGS_FILE = "settings.json";

/** Settings as a cloud may inject them: a one-time bootstrap code instead of the token and TLS key. */
const injectedSchema = z.looseObject({ bootstrap: bootstrapSchema });

export function loadSettings(vmDir: string): AgentSettingsFile {
  const path = join(vmDir, SETTINGS_FILE);
  return parseWith(settingsSchema, JSON.parse(readFileSync(path, "utf8")), path);
}

/**
 * The agent's settings; when the cloud injected a one-time bootstrap code, it is
 * traded first for the token and certificate, which replace it in the file.
 */
export async function settingsFor(vmDir: string, log: (line: string) => void): Promise<AgentSettingsFile> {
  const path = join(vmDir, SETTINGS_FILE);
  const raw = JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>;
  if (!("bootstrap" in raw)) return parseWith(settingsSchema, raw, path);
  const { bootstrap, ...rest } = parseWith(injectedSchema, raw, path);
  const got = await pickUp(bootstrap, log);
  const settings = parseWith(
    settingsSchema,
    { ...rest, token: got.token, ...(got.tls ? { tls: { ca: bootstrap.ca, ...got.tls } } : {}) },
    path,
  );
  writeFileAtomic(path, JSON.stringify(settings, null, 2) + "\n", 0o600); // the code is gone from it
  log("bootstrap: traded the one-time code for this agent's token and certificate");
  return settings;
}
