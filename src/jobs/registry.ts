/** The job types an agent knows, by name. */
import type { AnyJobType } from "./job-type.js";
import { haproxyJob } from "./haproxy/haproxy-job.js";
import { postgresJob } from "./postgres/postgres-job.js";
import { processJob } from "./process/process-job.js";
import { mariadbJob } from "./mariadb/mariadb-job.js";

const types = new Map<string, AnyJobType>([
  [processJob.type, processJob],
  [postgresJob.type, postgresJob],
  [haproxyJob.type, haproxyJob],
  [mariadbJob.type, mariadbJob],
]);

export function jobType(name: string): AnyJobType | undefined {
  return types.get(name);
}

export function jobTypeNames(): string[] {
  return [...types.keys()];
}

/** Adds a job type (used by later job types and by tests). */
export function registerJobType(type: AnyJobType): void {
  types.set(type.type, type);
}
