/** Schemas for what callers send to the local cloud; each failure names the field. */
import { z } from "zod";

const attributes = z.record(z.string(), z.union([z.string(), z.number(), z.boolean()]));
export const metadataSchema = z.record(
  z.string().min(1).max(255),
  z.string().max(4096, "expected at most 4096 characters"),
);

export const vmTypeSchema = z
  .object({
    cpu: z.number().int("expected an integer").positive("expected a positive number of CPUs"),
    ramMb: z.number().int("expected an integer").positive("expected a positive number of MiB"),
    hostAttributes: attributes.optional(),
  })
  .strict();

export const createVmSchema = z
  .object({
    zone: z.string().min(1, "expected a zone name"),
    hostHints: z.array(z.string()).optional(),
    vmType: vmTypeSchema,
    metadata: metadataSchema.optional(),
    agent: z
      .object({
        token: z.string().min(16, "expected at least 16 characters").optional(),
        heartbeat: z
          .object({
            url: z.url("expected an http(s) URL"),
            intervalMs: z.number().int().min(100).max(60_000).optional(),
          })
          .strict()
          .optional(),
        env: z.record(z.string(), z.string()).optional(),
      })
      .strict()
      .optional(),
    /** Accepted and not needed: the local cloud places by `hostHints` alone. */
    group: z.string().min(1).max(255).optional(),
  })
  .strict();

export const createDiskSchema = z
  .object({
    zone: z.string().min(1, "expected a zone name"),
    sizeMb: z.number().int("expected an integer").positive("expected a positive size in MiB"),
    metadata: metadataSchema.optional(),
  })
  .strict();

export const attachSchema = z.object({ vmId: z.string().min(1, "expected a VM id") }).strict();

export const failHostSchema = z
  .object({
    powerOffAfterMs: z.number().int().min(0).max(600_000).optional(),
  })
  .strict();

export const allocateAddressSchema = z
  .object({ zone: z.string().min(1, "expected a zone name"), metadata: metadataSchema.optional() })
  .strict();
