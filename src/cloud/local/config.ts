/**
 * The cloud file: the zones and hosts the local cloud emulates.
 *
 *   address_base: 0      # VMs of the Nth zone get 127.(address_base+N).H.V
 *   agent_port: 6868     # the port every VM's agent listens on
 *   zones:
 *     - name: z1
 *       hosts:
 *         - { name: h1, cpu: 16, ram_mb: 32768, attributes: { ssd: true } }
 */
import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { InvalidInput } from "../../lib/errors.js";
import { parseWith } from "../../lib/validate.js";
import type { Attributes } from "../cloud.js";

const name = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,30}$/, "expected a lowercase name of letters, digits and dashes (max 31)");

const hostSchema = z
  .object({
    name,
    cpu: z.number().int("expected an integer").positive("expected a positive number of CPUs"),
    ram_mb: z.number().int("expected an integer").min(128, "expected at least 128 MiB"),
    attributes: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
  })
  .strict();

const zoneSchema = z
  .object({
    name,
    hosts: z.array(hostSchema).min(1, "expected at least one host").max(254, "expected at most 254 hosts"),
  })
  .strict();

const cloudFileSchema = z
  .object({
    address_base: z.number().int().min(0).max(250).default(0),
    agent_port: z.number().int().min(1).max(65535).default(6868),
    zones: z.array(zoneSchema).min(1, "expected at least one zone"),
  })
  .strict()
  .superRefine((file, ctx) => {
    const zoneNames = new Set<string>();
    file.zones.forEach((zone, zi) => {
      if (zoneNames.has(zone.name))
        ctx.addIssue({
          code: "custom",
          path: ["zones", zi, "name"],
          message: `duplicate zone "${zone.name}"`,
        });
      zoneNames.add(zone.name);
      const hostNames = new Set<string>();
      zone.hosts.forEach((host, hi) => {
        if (hostNames.has(host.name))
          ctx.addIssue({
            code: "custom",
            path: ["zones", zi, "hosts", hi, "name"],
            message: `duplicate host "${host.name}" in zone ${zone.name}`,
          });
        hostNames.add(host.name);
      });
    });
    if (file.address_base + file.zones.length > 255)
      ctx.addIssue({
        code: "custom",
        path: ["address_base"],
        message: `address_base + number of zones must be at most 255, got ${file.address_base + file.zones.length}`,
      });
  });

export interface HostConfig {
  id: string;
  name: string;
  zone: string;
  /** Second and third octet of its VMs' addresses: 127.zoneOctet.hostOctet.V */
  zoneOctet: number;
  hostOctet: number;
  cpu: number;
  ramMb: number;
  attributes: Attributes;
}

export interface CloudConfig {
  /** Zone N's VMs get 127.(addressBase+N).H.V. */
  addressBase: number;
  agentPort: number;
  zones: { name: string; hosts: HostConfig[] }[];
}

export function parseCloudConfig(value: unknown, source = "cloud file"): CloudConfig {
  const file = parseWith(cloudFileSchema, value, source);
  return {
    addressBase: file.address_base,
    agentPort: file.agent_port,
    zones: file.zones.map((zone, zi) => ({
      name: zone.name,
      hosts: zone.hosts.map((h, hi) => ({
        id: `${zone.name}/${h.name}`,
        name: h.name,
        zone: zone.name,
        zoneOctet: file.address_base + zi + 1,
        hostOctet: hi + 1,
        cpu: h.cpu,
        ramMb: h.ram_mb,
        attributes: h.attributes,
      })),
    })),
  };
}

export function loadCloudConfig(path: string): CloudConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new InvalidInput(`cannot read cloud file ${path}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new InvalidInput(`cloud file ${path} is not valid YAML: ${(err as Error).message}`);
  }
  return parseCloudConfig(doc, `cloud file ${path}`);
}

export function allHosts(config: CloudConfig): HostConfig[] {
  return config.zones.flatMap((z) => z.hosts);
}
