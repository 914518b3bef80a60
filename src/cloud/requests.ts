/**
 * Schemas of the `Cloud` interface's requests (cloud.ts): every driver checks what it
 * is given with them first, so a bad request names its field the same way on every
 * cloud and changes nothing. Whether a zone or host exists is each driver's to say.
 */
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

export const allocateAddressSchema = z
  .object({ zone: z.string().min(1, "expected a zone name"), metadata: metadataSchema.optional() })
  .strict();
