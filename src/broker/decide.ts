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

export function decideUpdate(
  catalog: Catalog,
  instance: ServiceInstanceRecord,
  last: OperationRecord,
  req: UpdateRequest,
  acceptsIncomplete: boolean,
): Refusal | Repeat | { do: "update"; planId: string } {
  if (last.state === "in progress") {
    if (last.kind === "update" && same(last.request, { plan_id: req.plan_id ?? instance.planId }))
      return { do: "running", operation: last.id };
    return busy(last);
  }
  if (last.kind === "provision" && last.state === "failed")
    return refuse(422, "the instance's provisioning failed: deprovision it, then provision again");
  const service = serviceById(catalog, instance.serviceId);
  if (req.service_id !== undefined && req.service_id !== instance.serviceId)
    return refuse(
      400,
      `service_id: the instance is of service ${service?.name ?? instance.serviceId}, not "${req.service_id}"`,
    );
  const version = service?.maintenanceInfo?.version;
  if (req.maintenance_info && req.maintenance_info.version !== version)
    return refuse(
      422,
      `The maintenance information for the requested Service Plan has changed: it is ${version ?? "not set"}.`,
      "MaintenanceInfoConflict",
    );
  const to = req.plan_id ?? instance.planId;
  if (to === instance.planId) return { do: "done" };
  const from = planById(catalog, instance.planId);
  const target = service?.plans.find((p) => p.id === to);
  if (!target)
    return refuse(
      400,
      `plan_id: no plan "${to}" in service ${service?.name ?? "(unknown: the plan left the catalog)"}`,
    );
  if (!from?.updatable_to.includes(target.name))
    return refuse(
      422,
      `plan ${from?.name ?? instance.planId} cannot change to ${target.name} in place` +
        (from && from.updatable_to.length > 0
          ? ` (it can change to: ${from.updatable_to.join(", ")})`
          : " (it changes to no other plan)") +
        "; provision a new instance and move the data",
    );
  if (!acceptsIncomplete)
    return refuse(
      422,
      "This Service Plan requires client support for asynchronous service operations.",
      "AsyncRequired",
    );
  return { do: "update", planId: to };
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
