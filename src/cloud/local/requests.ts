/** Schemas of what only the local cloud's API takes (the Cloud requests are in ../requests.ts). */
import { z } from "zod";

export const attachSchema = z.object({ vmId: z.string().min(1, "expected a VM id") }).strict();

export const failHostSchema = z
  .object({
    powerOffAfterMs: z.number().int().min(0).max(600_000).optional(),
  })
  .strict();
