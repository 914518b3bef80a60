/**
 * The broker's config file (examples/broker.yml) and the OSB catalog made from it:
 * its services (`services:`, or one as `service:` + `plans:`), their plans, each
 * plan's manifest template, and which plans of the same service an instance may
 * change to in place, and the version an instance of each plan should run (its
 * template's `version`, else the service's `maintenance_info`). A plan's provision parameters are its template's data
 * service's; their schemas are zod here and JSON Schema (draft 4, as OSB asks) in
 * the catalog.
 */
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { z } from "zod";
import { parse } from "yaml";
import { InvalidInput } from "../lib/errors.js";
import { parseWith } from "../lib/validate.js";
import type { DataService } from "../jobs/data-service.js";
import { serviceOf } from "../jobs/services.js";

const id = z.string().regex(/^[A-Za-z0-9._~-]{1,64}$/, "expected an id of letters, digits, . _ ~ -");
const planName = z.string().regex(/^[a-z0-9][a-z0-9.-]{0,62}$/, "expected a CLI-friendly name");

const serviceSchema = z
  .object({
    id,
    name: planName,
    description: z.string().min(1, "expected a description"),
    tags: z.array(z.string()).default([]),
  })
  .strict();

const maintenanceInfoSchema = z
  .object({
    version: z.string().regex(/^\d+\.\d+\.\d+([+-][0-9A-Za-z.+-]+)?$/, "expected a semantic version"),
    description: z.string().optional(),
  })
  .strict();

const plansSchema = z
  .array(
    z
      .object({
        id,
        name: planName,
        description: z.string().min(1, "expected a description"),
        template: z.string().min(1, "expected a manifest file"),
        updatable_to: z.array(planName).default([]),
        maximum_polling_duration: z.number().int().positive().default(900),
      })
      .strict(),
  )
  .min(1, "expected at least one plan");

/** One service with its plans; `services:` lists several, `service:` + `plans:` is one. */
const serviceEntrySchema = serviceSchema.extend({
  maintenance_info: maintenanceInfoSchema.optional(),
  plans: plansSchema,
});

const servicesConfigSchema = z
  .object({ services: z.array(serviceEntrySchema).min(1, "expected at least one service") })
  .strict();
const oneServiceConfigSchema = z
  .object({ service: serviceSchema, maintenance_info: maintenanceInfoSchema.optional(), plans: plansSchema })
  .strict();

export type PlanConfig = z.output<typeof plansSchema>[number];
export type MaintenanceInfo = z.output<typeof maintenanceInfoSchema>;

export interface Plan extends PlanConfig {
  /** The id of the service it is a plan of. */
  serviceId: string;
  /**
   * What an instance of this plan should run: the template's own `version` (bump it
   * with each change to the template), else the service's `maintenance_info`.
   */
  maintenanceInfo: MaintenanceInfo | undefined;
  /** The parsed template (a manifest document whose name the broker replaces). */
  manifest: Record<string, unknown>;
  /** Provision parameters: what the template's data service takes (none when it takes none). */
  provision: z.ZodType<Record<string, unknown>>;
}

export interface CatalogService {
  id: string;
  name: string;
  description: string;
  tags: string[];
  maintenanceInfo: z.output<typeof maintenanceInfoSchema> | undefined;
  plans: Plan[];
}

export interface Catalog {
  services: CatalogService[];
}

/** Parameters of update and bind: none (what provision takes, e.g. a database name, is not changed later). */
export const updateParameters = z.object({}).strict();
export const bindParameters = z.object({}).strict();

/** The plan of this id in any service. */
export const planById = (c: Catalog, planId: string): Plan | undefined =>
  c.services.flatMap((s) => s.plans).find((p) => p.id === planId);

export const serviceById = (c: Catalog, serviceId: string): CatalogService | undefined =>
  c.services.find((s) => s.id === serviceId);

/** Reads and checks the broker config; each template must be a YAML mapping with one bindable service. */
export function loadCatalog(file: string): Catalog {
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new InvalidInput(`broker config ${file}: ${(err as Error).message}`);
  }
  // Two shapes, told apart by their key (not a union: errors name the field).
  const many = typeof doc === "object" && doc !== null && "services" in doc;
  const what = `broker config ${file}`;
  const entries = many
    ? parseWith(servicesConfigSchema, doc, what).services
    : [parseWith(oneServiceConfigSchema, doc, what)].map((c) => ({
        ...c.service,
        maintenance_info: c.maintenance_info,
        plans: c.plans,
      }));
  const problems: string[] = [];
  const at = (si: number) => (many ? `services[${si}].` : "");
  if (new Set(entries.map((e) => e.id)).size !== entries.length)
    problems.push("services: two services share an id");
  if (new Set(entries.map((e) => e.name)).size !== entries.length)
    problems.push("services: two services share a name");
  const allPlans = entries.flatMap((e) => e.plans);
  if (new Set(allPlans.map((p) => p.id)).size !== allPlans.length)
    problems.push("plans: two plans share an id (plan ids are unique in the whole catalog)");
  const services = entries.map((e, si): CatalogService => {
    const names = new Set(e.plans.map((p) => p.name));
    if (names.size !== e.plans.length) problems.push(`${at(si)}plans: two plans share a name`);
    const plans = e.plans.map((p, i): Plan => {
      const where = `${at(si)}plans[${i}]`;
      for (const to of p.updatable_to)
        if (!names.has(to)) problems.push(`${where}.updatable_to: no plan "${to}"`);
      const path = resolve(dirname(file), p.template);
      let manifest: unknown;
      try {
        manifest = parse(readFileSync(path, "utf8"));
      } catch (err) {
        problems.push(`${where}.template: ${path}: ${(err as Error).message}`);
      }
      if (manifest !== undefined && (typeof manifest !== "object" || manifest === null))
        problems.push(`${where}.template: ${path} is not a manifest`);
      const { version, ...template } = (manifest ?? {}) as Record<string, unknown>;
      const own =
        version === undefined ? undefined : maintenanceInfoSchema.shape.version.safeParse(String(version));
      if (own && !own.success)
        problems.push(
          `${where}.template: ${path}: version: expected a semantic version (1.2.3), got ${JSON.stringify(version)}`,
        );
      const bindable = bindableServices(template);
      if (manifest !== undefined && bindable.length !== 1)
        problems.push(
          `${where}.template: ${path}: expected one group whose service has bindings, found ${bindable.length}`,
        );
      const maintenanceInfo =
        own?.success === true
          ? {
              version: own.data,
              ...(e.maintenance_info?.description ? { description: e.maintenance_info.description } : {}),
            }
          : e.maintenance_info;
      return {
        ...p,
        serviceId: e.id,
        maintenanceInfo,
        manifest: template,
        provision: bindable[0]?.parameters?.provision ?? z.object({}).strict(),
      };
    });
    return {
      id: e.id,
      name: e.name,
      description: e.description,
      tags: e.tags,
      maintenanceInfo: e.maintenance_info,
      plans,
    };
  });
  if (problems.length > 0) throw new InvalidInput(`broker config ${file}:\n  ${problems.join("\n  ")}`);
  return { services };
}

/** The data services of a template's groups that have bindings (what the broker binds to). */
function bindableServices(template: Record<string, unknown>): DataService[] {
  const groups = Array.isArray(template.instance_groups) ? (template.instance_groups as unknown[]) : [];
  const out: DataService[] = [];
  for (const g of groups) {
    const jobs = (g as { jobs?: unknown }).jobs;
    if (!Array.isArray(jobs)) continue;
    const found = serviceOf({
      jobs: jobs.filter(
        (j): j is { name: string; type: string } => typeof (j as { type?: unknown }).type === "string",
      ),
    });
    if (found?.service.bindings) out.push(found.service);
  }
  return out;
}

const jsonSchema = (s: z.ZodType) => z.toJSONSchema(s, { target: "draft-4" });

/** The body of GET /v2/catalog. */
export function catalogBody(c: Catalog): { services: unknown[] } {
  return {
    services: c.services.map((svc) => ({
      id: svc.id,
      name: svc.name,
      description: svc.description,
      tags: svc.tags,
      bindable: true,
      instances_retrievable: true,
      bindings_retrievable: true,
      plan_updateable: svc.plans.some((p) => p.updatable_to.length > 0),
      metadata: { displayName: `${svc.name} (zonal)` },
      plans: svc.plans.map((p) => ({
        id: p.id,
        name: p.name,
        description: p.description,
        free: true,
        bindable: true,
        plan_updateable: p.updatable_to.length > 0,
        maximum_polling_duration: p.maximum_polling_duration,
        ...(p.maintenanceInfo ? { maintenance_info: p.maintenanceInfo } : {}),
        metadata: { updatable_to: p.updatable_to },
        schemas: {
          service_instance: {
            create: { parameters: jsonSchema(p.provision) },
            update: { parameters: jsonSchema(updateParameters) },
          },
          service_binding: { create: { parameters: jsonSchema(bindParameters) } },
        },
      })),
    })),
  };
}
