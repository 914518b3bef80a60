/**
 * The data services the control plane knows, by job type: the one place a service is
 * registered (see data-service.ts). The director, the broker and the CLI find a
 * group's service here and speak only to its interface.
 */
import type { DataService } from "./data-service.js";
import { haproxyService } from "./haproxy/service.js";
import { postgresService } from "./postgres/service.js";
import { mariadbService } from "./mariadb/service.js";

const services = new Map<string, DataService>([
  [postgresService.type, postgresService],
  [haproxyService.type, haproxyService],
  [mariadbService.type, mariadbService],
]);

/** A group's job, as a manifest holds it. */
interface JobEntry {
  name: string;
  type: string;
  properties?: unknown;
}

/** A group's data service and the job that runs it (the first job whose type is a service). */
export function serviceOf(group: {
  jobs: readonly JobEntry[];
}): { service: DataService; job: { name: string; properties: Record<string, unknown> } } | undefined {
  for (const j of group.jobs) {
    const service = services.get(j.type);
    if (service)
      return { service, job: { name: j.name, properties: (j.properties ?? {}) as Record<string, unknown> } };
  }
  return undefined;
}

/** The names of the secrets the group's services need (see DataService.secrets). */
export function secretNamesOf(group: { jobs: readonly JobEntry[] }): string[] {
  return [...new Set(group.jobs.flatMap((j) => services.get(j.type)?.secrets ?? []))];
}

/** Adds a data service (tests register a fake one; a real one is listed above). */
export function registerDataService(service: DataService): void {
  services.set(service.type, service);
}

/** Every registered service's job type. */
export function serviceTypes(): string[] {
  return [...services.keys()];
}
