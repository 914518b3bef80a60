/**
 * The broker's config file (examples/broker.yml) and the OSB catalog made from it:
 * one service, its plans, each plan's manifest template, and which plans an
 * instance may change to in place. Parameters are the same for every plan; their
 * schemas are zod here and JSON Schema (draft 4, as OSB asks) in the catalog.
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

const configSchema = z
  .object({
    service: z
      .object({
        id,
        name: planName,
        description: z.string().min(1, "expected a description"),
        tags: z.array(z.string()).default([]),
      })
      .strict(),
    maintenance_info: z
      .object({
        version: z.string().regex(/^\d+\.\d+\.\d+([+-][0-9A-Za-z.+-]+)?$/, "expected a semantic version"),
        description: z.string().optional(),
      })
      .strict()
      .optional(),
    plans: z
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
      .min(1, "expected at least one plan"),
  })
  .strict();

export type BrokerConfig = z.output<typeof configSchema>;
export type PlanConfig = BrokerConfig["plans"][number];

export interface Plan extends PlanConfig {
  /** The parsed template (a manifest document whose name the broker replaces). */
  manifest: Record<string, unknown>;
  /** Provision parameters: what the template's data service takes (none when it takes none). */
  provision: z.ZodType<Record<string, unknown>>;
}

export interface Catalog {
  service: BrokerConfig["service"];
  maintenanceInfo: BrokerConfig["maintenance_info"];
  plans: Plan[];
}

/** Parameters of update and bind: none (what provision takes, e.g. a database name, is not changed later). */
export const updateParameters = z.object({}).strict();
export const bindParameters = z.object({}).strict();

/** Reads and checks the broker config; each template must be a YAML mapping. */
export function loadCatalog(file: string): Catalog {
  let doc: unknown;
  try {
    doc = parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new InvalidInput(`broker config ${file}: ${(err as Error).message}`);
  }
  const cfg = parseWith(configSchema, doc, `broker config ${file}`);
  const names = new Set(cfg.plans.map((p) => p.name));
  const problems: string[] = [];
  if (names.size !== cfg.plans.length) problems.push("plans: two plans share a name");
  if (new Set(cfg.plans.map((p) => p.id)).size !== cfg.plans.length)
    problems.push("plans: two plans share an id");
  const plans = cfg.plans.map((p, i): Plan => {
    for (const to of p.updatable_to)
      if (!names.has(to)) problems.push(`plans[${i}].updatable_to: no plan "${to}"`);
    const path = resolve(dirname(file), p.template);
    let manifest: unknown;
    try {
      manifest = parse(readFileSync(path, "utf8"));
    } catch (err) {
      problems.push(`plans[${i}].template: ${path}: ${(err as Error).message}`);
    }
    if (manifest !== undefined && (typeof manifest !== "object" || manifest === null))
      problems.push(`plans[${i}].template: ${path} is not a manifest`);
    const template = (manifest ?? {}) as Record<string, unknown>;
    const services = bindableServices(template);
    if (manifest !== undefined && services.length !== 1)
      problems.push(
        `plans[${i}].template: ${path}: expected one group whose service has bindings, found ${services.length}`,
      );
    return {
      ...p,
      manifest: template,
      provision: services[0]?.parameters?.provision ?? z.object({}).strict(),
    };
  });
  if (problems.length > 0) throw new InvalidInput(`broker config ${file}:\n  ${problems.join("\n  ")}`);
  return { service: cfg.service, maintenanceInfo: cfg.maintenance_info, plans };
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
    services: [
      {
        id: c.service.id,
        name: c.service.name,
        description: c.service.description,
        tags: c.service.tags,
        bindable: true,
        instances_retrievable: true,
        bindings_retrievable: true,
        plan_updateable: c.plans.some((p) => p.updatable_to.length > 0),
        metadata: { displayName: `${c.service.name} (zonal)` },
        plans: c.plans.map((p) => ({
          id: p.id,
          name: p.name,
          description: p.description,
          free: true,
          bindable: true,
          plan_updateable: p.updatable_to.length > 0,
          maximum_polling_duration: p.maximum_polling_duration,
          ...(c.maintenanceInfo ? { maintenance_info: c.maintenanceInfo } : {}),
          metadata: { updatable_to: p.updatable_to },
          schemas: {
            service_instance: {
              create: { parameters: jsonSchema(p.provision) },
              update: { parameters: jsonSchema(updateParameters) },
            },
            service_binding: { create: { parameters: jsonSchema(bindParameters) } },
          },
        })),
      },
    ],
  };
}
