/**
 * The spec an agent applies: which jobs run on this VM, with what config, and
 * which persistent disk is their store. Written by the director (or by hand, for
 * `zonal vm apply`). Snake_case, like the manifests it comes from.
 *
 *   version: "3"                    # opaque; reported back in heartbeats
 *   instance: { deployment: demo, group: web, index: 0, id: 5f3a... }
 *   persistent_disk: { id: disk-1a2b3c4d5e }
 *   jobs:
 *     - name: web
 *       type: process
 *       config: { command: "...", health_check: { http: { port: 8080 } } }
 *       hooks: { pre_start: "...", post_start: "...", drain: "...", post_stop: "..." }
 *   links:                          # groups this VM's jobs read (jobs get ZONAL_LINK_<NAME>)
 *     backends: { deployment: web, group: web, instances: [{ id, index, zone, address }] }
 */
import { z } from "zod";
import { InvalidInput, type FieldProblem } from "../lib/errors.js";
import { formatProblems, parseWith, problemsOf } from "../lib/validate.js";
import { jobType, jobTypeNames } from "../jobs/job-modules.js";

const hookSchema = z.string().min(1, "expected a shell command");

export const jobSpecSchema = z
  .object({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, "expected a name of lowercase letters, digits, - and _"),
    type: z.string().min(1),
    config: z.unknown().default({}),
    hooks: z
      .object({
        pre_start: hookSchema.optional(),
        post_start: hookSchema.optional(),
        drain: hookSchema.optional(),
        post_stop: hookSchema.optional(),
      })
      .strict()
      .default({}),
    /** How long a hook may run (default 60 s). */
    hook_timeout_ms: z.number().int().min(100).max(3_600_000).default(60_000),
    /** How long the job may take to pass its health check after each start (default 60 s). */
    start_timeout_ms: z.number().int().min(100).max(3_600_000).default(60_000),
    /** How long a stopping job gets between SIGTERM and SIGKILL (default 10 s). */
    stop_timeout_ms: z.number().int().min(100).max(600_000).default(10_000),
  })
  .strict();

export const linkSchema = z
  .object({
    deployment: z.string(),
    group: z.string(),
    instances: z.array(
      z
        .object({ id: z.string(), index: z.number().int().min(0), zone: z.string(), address: z.string() })
        .strict(),
    ),
  })
  .strict();

export const specSchema = z
  .object({
    version: z.string().default("0"),
    instance: z
      .object({
        deployment: z.string(),
        group: z.string(),
        index: z.number().int().min(0),
        id: z.string(),
      })
      .strict()
      .optional(),
    persistent_disk: z
      .object({
        // It names a directory under the disks dir: one path segment, never "." or "..".
        id: z
          .string()
          .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, "expected a disk id (letters, digits, _ . -)"),
      })
      .strict()
      .nullable()
      .default(null),
    jobs: z.array(jobSpecSchema).default([]),
    /** The cluster this VM belongs to (clustered groups), for the jobs' controllers. */
    cluster: z
      .object({
        key: z.string().min(1),
        member: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, "expected a member name such as m0"),
        members: z.array(z.string().regex(/^[a-z][a-z0-9_]{0,62}$/)).min(1),
        lease: z.union([
          z.object({ store: z.literal("embedded"), url: z.url() }).strict(),
          z.object({ store: z.literal("etcd"), endpoints: z.array(z.url()).min(1) }).strict(),
        ]),
        ttl_ms: z.number().int().min(2000).max(120_000).default(5000),
        renew_ms: z.number().int().min(100).max(60_000).default(1000),
        vip: z.string().nullable().default(null),
        control_plane_url: z.url(),
        member_token: z.string().min(16, "expected the cluster's member token").max(256),
      })
      .strict()
      .nullable()
      .default(null),
    /** Secrets of the deployment (passwords), for job types that need them. */
    secrets: z.record(z.string(), z.string()).default({}),
    /** Other groups this VM's jobs read: their instances' addresses (e.g. LB backends). */
    links: z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/), linkSchema).default({}),
  })
  .strict();

export type Spec = z.output<typeof specSchema>;
export type JobSpec = z.output<typeof jobSpecSchema>;
export type HookName = keyof JobSpec["hooks"];
export type Link = z.output<typeof linkSchema>;

/**
 * Validates a spec, including each job's config against its job type's schema.
 * Throws InvalidInput naming every bad field ("jobs[0].config.health_check.http.port: ...").
 */
export function parseSpec(value: unknown, what = "spec"): Spec {
  const spec = parseWith(specSchema, value, what);
  const problems: FieldProblem[] = [];
  const names = new Set<string>();
  spec.jobs.forEach((job, i) => {
    if (names.has(job.name))
      problems.push({ field: `jobs[${i}].name`, problem: `duplicate job "${job.name}"` });
    names.add(job.name);
    const type = jobType(job.type);
    if (!type) {
      problems.push({
        field: `jobs[${i}].type`,
        problem: `unknown job type "${job.type}" (known: ${jobTypeNames().join(", ")})`,
      });
      return;
    }
    const result = type.configSchema.safeParse(job.config);
    if (!result.success) {
      for (const p of problemsOf(result.error)) {
        const sub = p.field === "(root)" ? "" : p.field.startsWith("[") ? p.field : "." + p.field;
        problems.push({ field: `jobs[${i}].config${sub}`, problem: p.problem });
      }
    } else {
      job.config = result.data;
    }
  });
  if (problems.length > 0) throw new InvalidInput(formatProblems(what, problems), problems);
  return spec;
}
