/** Schemas of what only the local cloud's API takes (the Cloud requests are in ../requests.ts). */
import { z } from "zod";

export const attachSchema = z.object({ vmId: z.string().min(1, "expected a VM id") }).strict();

export const failHostSchema = z
  .object({
    powerOffAfterMs: z.number().int().min(0).max(600_000).optional(),
  })
  .strict();

/** `POST /v1/control-plane`: the control plane's process and its own address. */
export const controlPlaneSchema = z
  .object({
    pid: z.number().int().min(1, "expected a process id"),
    address: z.ipv4({ message: "expected the control plane's IPv4 address" }),
  })
  .strict();

const target = z.string().min(1, "expected a zone, zone/host, VM, VM:port or control-plane");

/** `POST /v1/faults/network`: a partition, an isolation or a slow link. */
export const networkFaultSchema = z.discriminatedUnion("kind", [
  z
    .object({ kind: z.literal("partition"), a: target, b: target, oneWay: z.boolean().default(false) })
    .strict(),
  z.object({ kind: z.literal("isolate"), target }).strict(),
  z
    .object({
      kind: z.literal("slow"),
      target,
      delayMs: z.number().int().min(0).max(60_000, "expected at most 60 s of delay").default(0),
      lossPct: z.number().min(0).max(100, "expected a share from 0 to 100 %").default(0),
    })
    .strict()
    .refine((f) => f.delayMs > 0 || f.lossPct > 0, {
      message: "a slow link needs a delay or a loss",
      path: ["delayMs"],
    }),
]);
