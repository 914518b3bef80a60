/**
 * The job types an agent knows, by name, each loaded when first needed: an agent
 * loads only the types its spec names (a VM running a `process` job never loads the
 * PostgreSQL or MariaDB drivers). The one list of job types; `registry.ts` loads them
 * all for the control plane, which checks manifests against every type.
 */
import type { AnyJobType } from "./job-type.js";

const modules = new Map<string, () => Promise<AnyJobType>>([
  ["process", async () => (await import("./process/process-job.js")).processJob],
  ["postgres", async () => (await import("./postgres/postgres-job.js")).postgresJob],
  ["haproxy", async () => (await import("./haproxy/haproxy-job.js")).haproxyJob],
  ["mariadb", async () => (await import("./mariadb/mariadb-job.js")).mariadbJob],
]);

const loaded = new Map<string, AnyJobType>();

/** A job type, once loaded (`loadJobTypes`); undefined for one not loaded or unknown. */
export function jobType(name: string): AnyJobType | undefined {
  return loaded.get(name);
}

/** Every job type's name, loaded or not. */
export function jobTypeNames(): string[] {
  return [...new Set([...modules.keys(), ...loaded.keys()])];
}

/** Loads these job types (default: all); names of no type are left for the spec's check to report. */
export async function loadJobTypes(names: Iterable<string> = modules.keys()): Promise<void> {
  for (const name of names) {
    if (loaded.has(name)) continue;
    const load = modules.get(name);
    if (!load) continue;
    const type = await load();
    if (type.type !== name) throw new Error(`job type module ${name} defines ${type.type}`);
    loaded.set(name, type);
  }
}

/** The job types a spec body names (`jobs[].type`), read before the spec is checked. */
export function jobTypesNamed(body: unknown): string[] {
  const jobs = (body as { jobs?: unknown } | null)?.jobs;
  if (!Array.isArray(jobs)) return [];
  return jobs.flatMap((j) => {
    const t = (j as { type?: unknown } | null)?.type;
    return typeof t === "string" && t.length <= 100 ? [t] : [];
  });
}

/** Adds a job type (tests). */
export function registerJobType(type: AnyJobType): void {
  loaded.set(type.type, type);
}
