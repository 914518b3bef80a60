/**
 * The cloud config: what manifests may refer to by name. Zones (which must exist
 * in the cloud), vm_types (cpu, ram, required host attributes), disk_types
 * (persistent disk size) and networks. Like BOSH's cloud config.
 *
 *   zones: [{ name: z1 }, { name: z2 }, { name: z3 }]
 *   vm_types:
 *     - { name: small, cpu: 1, ram_mb: 512 }
 *     - { name: small-ssd, cpu: 1, ram_mb: 512, host_attributes: { ssd: true } }
 *   disk_types: [{ name: small, size_mb: 1024 }]
 *   networks: [{ name: default }]
 */
import { z } from "zod";
import { InvalidInput } from "../lib/errors.js";
import { parseWith } from "../lib/validate.js";
import type { Zone } from "../cloud/cloud.js";

const name = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, "expected a name of lowercase letters, digits, - and _");
const properties = z.record(z.string(), z.unknown()).default({});

export const cloudConfigSchema = z
  .object({
    zones: z
      .array(z.object({ name, cloud_properties: properties }).strict())
      .min(1, "expected at least one zone"),
    vm_types: z
      .array(
        z
          .object({
            name,
            cpu: z.number().int("expected an integer").positive("expected a positive number of CPUs"),
            ram_mb: z.number().int("expected an integer").min(64, "expected at least 64 MiB"),
            host_attributes: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
            cloud_properties: properties,
          })
          .strict(),
      )
      .min(1, "expected at least one vm_type"),
    disk_types: z
      .array(
        z
          .object({
            name,
            size_mb: z.number().int("expected an integer").positive("expected a positive size in MiB"),
            cloud_properties: properties,
          })
          .strict(),
      )
      .default([]),
    networks: z
      .array(z.object({ name, cloud_properties: properties }).strict())
      .default([{ name: "default", cloud_properties: {} }]),
  })
  .strict()
  .superRefine((cc, ctx) => {
    for (const key of ["zones", "vm_types", "disk_types", "networks"] as const) {
      const seen = new Set<string>();
      cc[key].forEach((item, i) => {
        if (seen.has(item.name))
          ctx.addIssue({ code: "custom", path: [key, i, "name"], message: `duplicate name "${item.name}"` });
        seen.add(item.name);
      });
    }
  });

export type CloudConfig = z.output<typeof cloudConfigSchema>;
export type VmTypeConfig = CloudConfig["vm_types"][number];

export function parseCloudConfig(value: unknown): CloudConfig {
  return parseWith(cloudConfigSchema, value, "cloud config");
}

/** Checks that every zone of the cloud config exists in the cloud. */
export function checkZonesExist(cc: CloudConfig, cloudZones: Zone[]): void {
  const known = new Set(cloudZones.map((z) => z.name));
  const problems = cc.zones
    .map((z, i) => ({
      field: `zones[${i}].name`,
      problem: `zone "${z.name}" does not exist in the cloud (it has: ${[...known].join(", ")})`,
    }))
    .filter((_, i) => !known.has(cc.zones[i]!.name));
  if (problems.length > 0) {
    throw new InvalidInput(
      `invalid cloud config:\n${problems.map((p) => `  ${p.field}: ${p.problem}`).join("\n")}`,
      problems,
    );
  }
}
