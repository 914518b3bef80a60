/**
 * What an OSB request does, given what the broker already has: pure functions
 * (STYLE.md point 4) written from the spec's response tables, so each row of those
 * tables is one guard clause here and one case in decide.test.ts.
 */
import type { OperationRecord, ServiceBindingRecord, ServiceInstanceRecord } from "../store/broker.js";
import { planById, serviceById, type Catalog } from "./catalog.js";

/** An answer that changes nothing: the status, and the body's `error` code and `description`. */
export interface Refusal {
  do: "refuse";
  status: 400 | 404 | 409 | 410 | 422;
  error?: "AsyncRequired" | "ConcurrencyError" | "MaintenanceInfoConflict";
  description: string;
}

const refuse = (status: Refusal["status"], description: string, error?: Refusal["error"]): Refusal => ({
  do: "refuse",
  status,
  description,
  ...(error ? { error } : {}),
});

/** The same resource asked for again: 200 (done) or 202 with the operation still running. */
export type Repeat = { do: "done" } | { do: "running"; operation: string };

export interface ProvisionRequest {
  service_id: string;
  plan_id: string;
  parameters: Record<string, unknown>;
}

const same = (a: unknown, b: unknown) => canonical(a) === canonical(b);
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v && typeof v === "object")
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  return JSON.stringify(v);
}

const busy = (op: OperationRecord) =>
  refuse(422, `Another operation for this Service Instance is in progress (${op.kind}).`, "ConcurrencyError");

export function decideProvision(
  existing: { instance: ServiceInstanceRecord; last: OperationRecord } | undefined,
  req: ProvisionRequest,
  acceptsIncomplete: boolean,
): Refusal | Repeat | { do: "provision" } | { do: "retry" } {
  if (!existing) {
    if (!acceptsIncomplete)
      return refuse(
        422,
        "This Service Plan requires client support for asynchronous service operations.",
        "AsyncRequired",
      );
    return { do: "provision" };
  }
  const { instance, last } = existing;
  const asked = { service_id: instance.serviceId, plan_id: instance.planId, parameters: instance.parameters };
  if (!same(asked, req))
    return refuse(
      409,
      `service instance ${instance.id} already exists with other attributes (plan ${instance.planId}, parameters ${canonical(instance.parameters)})`,
    );
  if (last.state === "in progress")
    return last.kind === "provision" ? { do: "running", operation: last.id } : busy(last);
  if (last.kind === "provision" && last.state === "failed") {
    if (!acceptsIncomplete)
      return refuse(
        422,
        "This Service Plan requires client support for asynchronous service operations.",
        "AsyncRequired",
      );
    return { do: "retry" };
  }
  return { do: "done" };
}

export interface UpdateRequest {
  /** The service the platform believes the instance is of (checked when given). */
  service_id?: string;
  plan_id?: string;
  parameters?: Record<string, unknown>;
  maintenance_info?: { version: string };
}

/**
 * An update: a plan change (to a plan the current one may change to in place), an
 * upgrade (the same plan, asked with the `maintenance_info` the plan offers now while
 * the instance runs an older one: `running`), or both. Either is a redeploy of the
 * plan's template: a rolling update in the service's order.
 */
export function decideUpdate(
  catalog: Catalog,
  instance: ServiceInstanceRecord,
  last: OperationRecord,
  req: UpdateRequest,
  acceptsIncomplete: boolean,
  running: string | null = null,
): Refusal | Repeat | { do: "update"; planId: string; version: string | null } {
  const to = req.plan_id ?? instance.planId;
  const service = serviceById(catalog, instance.serviceId);
  const target = service?.plans.find((p) => p.id === to);
  const version = target?.maintenanceInfo?.version ?? null;
  if (last.state === "in progress") {
    if (last.kind === "update" && last.request.plan_id === to) return { do: "running", operation: last.id };
    return busy(last);
  }
  if (last.kind === "provision" && last.state === "failed")
    return refuse(422, "the instance's provisioning failed: deprovision it, then provision again");
  if (req.service_id !== undefined && req.service_id !== instance.serviceId)
    return refuse(
      400,
      `service_id: the instance is of service ${service?.name ?? instance.serviceId}, not "${req.service_id}"`,
    );
  if (!target)
    return refuse(
      400,
      `plan_id: no plan "${to}" in service ${service?.name ?? "(unknown: the plan left the catalog)"}`,
    );
  if (req.maintenance_info && req.maintenance_info.version !== version)
    return refuse(
      422,
      `The maintenance information for the requested Service Plan has changed: it is ${version ?? "not set"}.`,
      "MaintenanceInfoConflict",
    );
  const upgrade = req.maintenance_info !== undefined && version !== null && running !== version;
  if (to === instance.planId && !upgrade) return { do: "done" };
  if (to !== instance.planId) {
    const from = planById(catalog, instance.planId);
    if (!from?.updatable_to.includes(target.name))
      return refuse(
        422,
        `plan ${from?.name ?? instance.planId} cannot change to ${target.name} in place` +
          (from && from.updatable_to.length > 0
            ? ` (it can change to: ${from.updatable_to.join(", ")})`
            : " (it changes to no other plan)") +
          "; provision a new instance and move the data",
      );
  }
  if (!acceptsIncomplete)
    return refuse(
      422,
      "This Service Plan requires client support for asynchronous service operations.",
      "AsyncRequired",
    );
  return { do: "update", planId: to, version };
}

/**
 * The order in which `zonal upgrade-services` upgrades instances: `canaries` first,
 * one batch, then batches of at most `maxInFlight`. Pure; by instance id, so two
 * runs agree.
 */
export function upgradeBatches<T extends { id: string }>(
  behind: T[],
  canaries: number,
  maxInFlight: number,
): Array<{ canary: boolean; instances: T[] }> {
  const sorted = [...behind].sort((a, b) => a.id.localeCompare(b.id));
  const out: Array<{ canary: boolean; instances: T[] }> = [];
  const first = sorted.slice(0, canaries);
  if (first.length > 0) out.push({ canary: true, instances: first });
  for (let i = canaries; i < sorted.length; i += maxInFlight)
    out.push({ canary: false, instances: sorted.slice(i, i + maxInFlight) });
  return out;
}

export function decideDeprovision(
  existing: { instance: ServiceInstanceRecord; last: OperationRecord } | undefined,
  acceptsIncomplete: boolean,
): Refusal | Repeat | { do: "deprovision" } {
  if (!existing) return refuse(410, "no such service instance");
  const { last } = existing;
  if (last.state === "in progress")
    return last.kind === "deprovision" ? { do: "running", operation: last.id } : busy(last);
  if (!acceptsIncomplete)
    return refuse(
      422,
      "This Service Plan requires client support for asynchronous service operations.",
      "AsyncRequired",
    );
  return { do: "deprovision" };
}

export interface BindRequest {
  service_id: string;
  plan_id: string;
  parameters: Record<string, unknown>;
  app_guid?: string;
}

export function decideBind(
  existing: { instance: ServiceInstanceRecord; last: OperationRecord } | undefined,
  binding: ServiceBindingRecord | undefined,
  req: BindRequest,
): Refusal | { do: "done" } | { do: "bind" } {
  if (!existing) return refuse(404, "no such service instance");
  const { instance, last } = existing;
  if (binding && binding.instanceId !== instance.id)
    return refuse(409, `binding ${binding.id} already exists for another service instance`);
  if (binding) {
    return same(binding.request, req)
      ? { do: "done" }
      : refuse(409, `binding ${binding.id} already exists with other parameters`);
  }
  if (last.state === "in progress") return busy(last);
  if (last.kind === "provision" && last.state === "failed")
    return refuse(422, "the service instance's provisioning failed; it cannot be bound");
  return { do: "bind" };
}
