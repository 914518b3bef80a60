/**
 * Manifests: what an operator wants deployed. Parsed in two steps, each naming
 * every bad field: the document's shape (zod), then its references (vm_types,
 * disk types, zones and networks of the cloud config, job types and their
 * properties, links to groups).
 *
 *   name: web
 *   instance_groups:
 *     - name: web
 *       instances: 6
 *       zones: [z1, z2, z3]
 *       vm_type: small
 *       persistent_disk_type: small      # or persistent_disk: 1024 (MiB)
 *       strategy: resurrect              # resurrect | standby | none
 *       relocate: false                  # stateless groups: rebuild in another zone when theirs is down
 *       ports: [8080]                    # what the jobs serve (a standby group's VIP forwards these)
 *       jobs:
 *         - { name: web, type: process, properties: { command: ..., health_check: ... } }
 *       links:
 *         backends: { group: api }       # or { deployment: other, group: api }
 *   update:
 *     canaries: 1
 *     max_in_flight: 2                   # or "50%"
 *     canary_watch_time: 5s
 *     update_watch_time: 5s
 *     serial_zones: true                 # one zone at a time
 *     cluster_order: true                # a cluster's members one at a time, leader last after a
 *                                        # handover (false: canaries and batches in index order, no
 *                                        # handover, as a deployer that does not know the cluster; benches)
 */
import { z } from "zod";
import { jobSpecSchema } from "../agent/spec.js";
import { jobType, jobTypeNames } from "../jobs/registry.js";
import { durationMs } from "../lib/duration.js";
import { InvalidInput, type FieldProblem } from "../lib/errors.js";
import { formatProblems, parseWith, problemsOf } from "../lib/validate.js";
import type { CloudConfig } from "./cloud-config.js";
import { DEFAULT_STRATEGY, STRATEGY_NAMES, strategyOf } from "../strategies/registry.js";

const name = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, "expected a name of lowercase letters, digits, - and _");

const jobSchema = z
  .object({
    name: jobSpecSchema.shape.name,
    type: z.string().min(1, "expected a job type"),
    properties: z.record(z.string(), z.unknown()).default({}),
    hooks: jobSpecSchema.shape.hooks,
    hook_timeout: durationMs({ min: 100 }).default(60_000),
    start_timeout: durationMs({ min: 100 }).default(60_000),
    stop_timeout: durationMs({ min: 100 }).default(10_000),
  })
  .strict();

const linkSchema = z.object({ deployment: name.optional(), group: name }).strict();

const groupSchema = z
  .object({
    name,
    instances: z.number().int("expected an integer").min(0, "expected 0 or more"),
    zones: z.array(name).default([]),
    vm_type: name,
    persistent_disk_type: name.optional(),
    persistent_disk: z.number().int("expected an integer").positive("expected a size in MiB").optional(),
    networks: z.array(name).optional(),
    strategy: z.enum(STRATEGY_NAMES).default(DEFAULT_STRATEGY),
    /** Stateless groups only: when their zone is down, rebuild them in a healthy zone. */
    relocate: z.boolean().default(false),
    /** Ports the jobs serve; a `standby` group's virtual address forwards them. */
    ports: z.array(z.number().int().min(1).max(65535, "expected a port up to 65535")).default([]),
    jobs: z.array(jobSchema).min(1, "expected at least one job"),
    links: z.record(name, linkSchema).default({}),
  })
  .strict();

const maxInFlight = z.union([
  z.number().int("expected an integer").positive("expected at least 1"),
  z.string().regex(/^(100|[1-9]\d?)%$/, 'expected a number or a percentage such as "25%"'),
]);

export const manifestSchema = z
  .object({
    name,
    /** Where clustered groups keep their leases (leader, members), and how long a lease lasts. */
    leases: z
      .object({
        store: z.enum(["embedded", "etcd"]).default("embedded"),
        etcd_endpoints: z
          .array(z.url("expected an etcd client URL such as http://127.0.0.1:2379"))
          .default([]),
        ttl: durationMs({ min: 2000, max: 120_000 }).default(5000),
        renew: durationMs({ min: 100, max: 60_000 }).default(1000),
      })
      .strict()
      .default({ store: "embedded", etcd_endpoints: [], ttl: 5000, renew: 1000 }),
    instance_groups: z.array(groupSchema).default([]),
    update: z
      .object({
        canaries: z.number().int("expected an integer").min(0).default(1),
        max_in_flight: maxInFlight.default(1),
        canary_watch_time: durationMs().default(5000),
        update_watch_time: durationMs().default(5000),
        serial_zones: z.boolean().default(true),
        cluster_order: z.boolean().default(true),
      })
      .strict()
      .default({
        canaries: 1,
        max_in_flight: 1,
        canary_watch_time: 5000,
        update_watch_time: 5000,
        serial_zones: true,
        cluster_order: true,
      }),
  })
  .strict();

export type Manifest = z.output<typeof manifestSchema>;

export const DEFAULT_LEASES: Manifest["leases"] = {
  store: "embedded",
  etcd_endpoints: [],
  ttl: 5000,
  renew: 1000,
};
export type GroupManifest = Manifest["instance_groups"][number];
export type JobManifest = GroupManifest["jobs"][number];
export type UpdatePolicy = Manifest["update"];

/** Checks a parsed manifest's references; returns the problems (empty when it is sound). */
export function checkReferences(m: Manifest, cc: CloudConfig): FieldProblem[] {
  const problems: FieldProblem[] = [];
  const add = (field: string, problem: string) => problems.push({ field, problem });
  const names = <T extends { name: string }>(xs: T[]) => xs.map((x) => x.name);
  const zones = new Set(names(cc.zones));
  const vmTypes = new Set(names(cc.vm_types));
  const diskTypes = new Set(names(cc.disk_types));
  const networks = new Set(names(cc.networks));
  const groups = new Set<string>();
  m.instance_groups.forEach((g, gi) => {
    const at = `instance_groups[${gi}]`;
    if (groups.has(g.name)) add(`${at}.name`, `duplicate group "${g.name}"`);
    groups.add(g.name);
    if (g.instances > 0 && g.zones.length === 0) add(`${at}.zones`, "expected at least one zone");
    g.zones.forEach((z, zi) => {
      if (!zones.has(z))
        add(`${at}.zones[${zi}]`, `unknown zone "${z}" (cloud config has: ${[...zones].join(", ")})`);
    });
    if (new Set(g.zones).size !== g.zones.length) add(`${at}.zones`, "lists a zone twice");
    if (!vmTypes.has(g.vm_type))
      add(`${at}.vm_type`, `unknown vm_type "${g.vm_type}" (cloud config has: ${[...vmTypes].join(", ")})`);
    if (g.persistent_disk_type !== undefined && g.persistent_disk !== undefined) {
      add(`${at}.persistent_disk`, "give either persistent_disk or persistent_disk_type, not both");
    }
    const hasDisk = g.persistent_disk_type !== undefined || g.persistent_disk !== undefined;
    if (g.relocate && hasDisk) {
      add(`${at}.relocate`, "only groups without a persistent disk can relocate: a disk cannot change zones");
    }
    for (const p of strategyOf(g).check(g)) add(`${at}.${p.field}`, p.problem);
    if (g.persistent_disk_type !== undefined && !diskTypes.has(g.persistent_disk_type)) {
      add(
        `${at}.persistent_disk_type`,
        `unknown disk type "${g.persistent_disk_type}" (cloud config has: ${[...diskTypes].join(", ") || "none"})`,
      );
    }
    (g.networks ?? []).forEach((n, ni) => {
      if (!networks.has(n)) add(`${at}.networks[${ni}]`, `unknown network "${n}"`);
    });
    const jobNames = new Set<string>();
    const clusterType = g.jobs
      .map((j) => jobType(j.type))
      .find((t, ji) => t?.clustered?.(g.jobs[ji]!.properties));
    if (clusterType && g.instances > 0) {
      const sizes = clusterType.clusterSizes;
      if (sizes && !sizes.includes(g.instances))
        add(`${at}.instances`, `a ${clusterType.type} group has ${sizes.join(" or ")} instances`);
      if (!sizes && g.instances !== 1 && g.instances < 3)
        add(`${at}.instances`, "a cluster needs at least 3 instances (a majority must survive one loss)");
    }
    g.jobs.forEach((j, ji) => {
      const jat = `${at}.jobs[${ji}]`;
      if (jobNames.has(j.name)) add(`${jat}.name`, `duplicate job "${j.name}"`);
      jobNames.add(j.name);
      const type = jobType(j.type);
      if (!type) {
        add(`${jat}.type`, `unknown job type "${j.type}" (known: ${jobTypeNames().join(", ")})`);
        return;
      }
      if (type.needsPersistentDisk && !hasDisk) {
        add(
          `${jat}.type`,
          `job type ${j.type} keeps its data on a persistent disk: give the group persistent_disk_type or persistent_disk`,
        );
      }
      const result = type.configSchema.safeParse(j.properties);
      if (!result.success) {
        for (const p of problemsOf(result.error)) {
          add(
            `${jat}.properties${p.field === "(root)" ? "" : p.field.startsWith("[") ? p.field : "." + p.field}`,
            p.problem,
          );
        }
      }
    });
  });
  if (m.leases.store === "etcd" && m.leases.etcd_endpoints.length === 0) {
    add("leases.etcd_endpoints", "expected at least one etcd endpoint when leases.store is etcd");
  }
  if (m.leases.renew * 2 > m.leases.ttl) add("leases.renew", "renew at least twice per ttl");
  m.instance_groups.forEach((g, gi) => {
    for (const [linkName, link] of Object.entries(g.links)) {
      if ((link.deployment === undefined || link.deployment === m.name) && !groups.has(link.group)) {
        add(`instance_groups[${gi}].links.${linkName}.group`, `no group "${link.group}" in this deployment`);
      }
    }
  });
  return problems;
}

/** Parses and checks a manifest against the cloud config. Throws InvalidInput naming each bad field. */
export function parseManifest(value: unknown, cc: CloudConfig): Manifest {
  const m = parseWith(manifestSchema, value, "manifest");
  const problems = checkReferences(m, cc);
  if (problems.length > 0) throw new InvalidInput(formatProblems("manifest", problems), problems);
  return m;
}

/** Whether a group is a cluster (one of its jobs says so, e.g. postgres with cluster: true). */
export function isClustered(g: GroupManifest): boolean {
  return g.jobs.some((j) => jobType(j.type)?.clustered?.(j.properties) === true);
}

/** The disk size of a group in MiB, or undefined when it has no persistent disk. */
export function diskSizeMb(g: GroupManifest, cc: CloudConfig): number | undefined {
  if (g.persistent_disk !== undefined) return g.persistent_disk;
  if (g.persistent_disk_type === undefined) return undefined;
  return cc.disk_types.find((d) => d.name === g.persistent_disk_type)?.size_mb;
}

/** How many instances one batch may update: a number, or a percentage of `total` (at least 1). */
export function maxInFlightOf(policy: UpdatePolicy, total: number): number {
  const v = policy.max_in_flight;
  if (typeof v === "number") return v;
  return Math.max(1, Math.floor((total * Number(v.slice(0, -1))) / 100));
}
