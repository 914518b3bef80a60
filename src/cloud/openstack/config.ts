/**
 * The OpenStack driver's settings: where the cloud is and how to log in (a
 * `clouds.yaml` entry or the usual `OS_*` environment variables), and what zonal
 * needs of it (the agent image, the network, optionally a floating IP network).
 *
 *   # openstack.yml
 *   cloud: mycloud                  # entry of clouds.yaml; omit to use OS_* variables
 *   clouds_file: ./clouds.yaml      # default: ./clouds.yaml, ~/.config/openstack/, /etc/openstack/
 *   image: zonal-agent              # id or name of the agent image (see README)
 *   network: zonal-net              # id or name of the network the VMs' ports are on
 *   floating_network: public        # optional: VIPs also get a floating IP from it
 *   agent_port: 6868
 *   server_group_policy: soft-anti-affinity   # or anti-affinity
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { parse } from "yaml";
import { z } from "zod";
import { InvalidInput } from "../../lib/errors.js";
import { parseWith } from "../../lib/validate.js";
import type { Credentials } from "./session.js";

const settingsSchema = z
  .object({
    cloud: z.string().min(1).optional(),
    clouds_file: z.string().min(1).optional(),
    image: z
      .string({ error: "expected the id or name of the agent image" })
      .min(1, "expected the id or name of the agent image"),
    network: z
      .string({ error: "expected the id or name of the VMs' network" })
      .min(1, "expected the id or name of the VMs' network"),
    floating_network: z.string().min(1).optional(),
    agent_port: z.number().int().min(1).max(65535).default(6868),
    server_group_policy: z.enum(["anti-affinity", "soft-anti-affinity"]).default("soft-anti-affinity"),
    /** Prefix of the flavors the driver makes for vm types (`zonal-c1-m512`). */
    flavor_prefix: z.string().min(1).default("zonal"),
    /** Root disk of the flavors it makes, in GB. */
    root_disk_gb: z.number().int().min(0).default(1),
    /** How long to wait for a server to become ACTIVE, stopped or deleted. */
    server_timeout_s: z.number().int().min(5).default(600),
    /** Optional: a tarball of zonal the agent is installed from (else the image has /opt/zonal). */
    agent_tarball_url: z.url().optional(),
  })
  .strict();

export type OpenStackSettings = z.output<typeof settingsSchema>;

export interface OpenStackConfig {
  credentials: Credentials;
  settings: OpenStackSettings;
  /** Where the credentials came from, for logs and `zonal status`. */
  source: string;
}

const cloudEntrySchema = z.object({
  auth: z.object({
    auth_url: z.url("expected Keystone's URL, e.g. https://keystone.example:5000/v3"),
    username: z.string().min(1),
    password: z.string().min(1),
    project_name: z.string().min(1),
    user_domain_name: z.string().min(1).default("Default"),
    project_domain_name: z.string().min(1).default("Default"),
  }),
  region_name: z.string().min(1).optional(),
  interface: z.enum(["public", "internal", "admin"]).optional(),
});

/** Reads the driver settings file and the credentials it points at. Rejects: InvalidInput. */
export function loadOpenStackConfig(file: string, env: NodeJS.ProcessEnv = process.env): OpenStackConfig {
  if (!existsSync(file)) throw new InvalidInput(`OpenStack settings file ${file} does not exist`);
  const settings = parseWith(settingsSchema, parse(readFileSync(file, "utf8")) ?? {}, file);
  const cloud = settings.cloud ?? env.OS_CLOUD;
  if (cloud) {
    const candidates = settings.clouds_file
      ? [resolve(file, "..", settings.clouds_file)]
      : ["clouds.yaml", join(homedir(), ".config", "openstack", "clouds.yaml"), "/etc/openstack/clouds.yaml"];
    const found = candidates.find((p) => existsSync(p));
    if (!found) throw new InvalidInput(`clouds.yaml not found (looked at ${candidates.join(", ")})`);
    const doc = parse(readFileSync(found, "utf8")) as { clouds?: Record<string, unknown> } | null;
    const entry = doc?.clouds?.[cloud];
    if (!entry)
      throw new InvalidInput(
        `${found}: no cloud named ${cloud} (has ${Object.keys(doc?.clouds ?? {}).join(", ") || "none"})`,
      );
    const c = parseWith(cloudEntrySchema, entry, `${found} clouds.${cloud}`);
    return {
      settings,
      source: `${found} (cloud ${cloud})`,
      credentials: {
        authUrl: c.auth.auth_url,
        username: c.auth.username,
        password: c.auth.password,
        projectName: c.auth.project_name,
        userDomainName: c.auth.user_domain_name,
        projectDomainName: c.auth.project_domain_name,
        ...(c.region_name ? { region: c.region_name } : {}),
        ...(c.interface ? { interface: c.interface } : {}),
      },
    };
  }
  return { settings, source: "OS_* environment variables", credentials: credentialsFromEnv(env) };
}

/** Credentials from `OS_AUTH_URL`, `OS_USERNAME`, … Rejects: InvalidInput naming each missing variable. */
export function credentialsFromEnv(env: NodeJS.ProcessEnv): Credentials {
  const required = ["OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME"] as const;
  const missing = required.filter((k) => !env[k]);
  if (missing.length > 0)
    throw new InvalidInput(
      `no OpenStack credentials: set "cloud" (a clouds.yaml entry) or the variables ${missing.join(", ")}`,
      missing.map((field) => ({ field, problem: "expected a value" })),
    );
  return {
    authUrl: env.OS_AUTH_URL!,
    username: env.OS_USERNAME!,
    password: env.OS_PASSWORD!,
    projectName: env.OS_PROJECT_NAME!,
    userDomainName: env.OS_USER_DOMAIN_NAME ?? "Default",
    projectDomainName: env.OS_PROJECT_DOMAIN_NAME ?? "Default",
    ...(env.OS_REGION_NAME ? { region: env.OS_REGION_NAME } : {}),
    ...(env.OS_INTERFACE ? { interface: env.OS_INTERFACE as Credentials["interface"] } : {}),
  };
}
