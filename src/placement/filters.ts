/**
 * Host filters, in the order placement runs them. Each has a fast `test` for the
 * hot path and a `reason` that says, for a rejected host, why ("z2/h1: lacks ssd").
 * Pure functions of the host, the request and the running tally.
 */
import type { GroupHosts, HostRequest, PlacementHost, Resources } from "./types.js";

export interface FilterContext {
  /** Usage including what this placement run has reserved so far. */
  used(host: PlacementHost): { cpu: number; ramMb: number };
  groupHosts: GroupHosts;
}

export interface HostFilter {
  name: string;
  test(host: PlacementHost, req: HostRequest, ctx: FilterContext): boolean;
  reason(host: PlacementHost, req: HostRequest, ctx: FilterContext): string;
}

/** Why a host lacks the attributes `res` needs, or undefined when it has them. */
export function attributeMismatch(
  host: Pick<PlacementHost, "id" | "attributes">,
  res: Resources,
): string | undefined {
  for (const [key, want] of Object.entries(res.hostAttributes ?? {})) {
    const have = host.attributes[key];
    if (have === undefined) return `${host.id}: lacks ${key}`;
    if (have !== want) return `${host.id}: ${key} is ${String(have)}, needs ${String(want)}`;
  }
  return undefined;
}

/** Why a host with `used` cannot fit `res`, or undefined when it can. */
export function capacityShortfall(
  host: Pick<PlacementHost, "id" | "capacity">,
  used: { cpu: number; ramMb: number },
  res: Resources,
): string | undefined {
  const freeRam = host.capacity.ramMb - used.ramMb;
  if (freeRam < res.ramMb) return `${host.id}: ${freeRam} MiB RAM free, needs ${res.ramMb}`;
  const freeCpu = host.capacity.cpu - used.cpu;
  if (freeCpu < res.cpu) return `${host.id}: ${freeCpu} CPUs free, needs ${res.cpu}`;
  return undefined;
}

/**
 * Why a host cannot take a VM of `res` right now (failed, lacks an attribute, too
 * full), or undefined when it can: what a cloud's scheduler says per host.
 */
export function unfitReason(
  host: Pick<PlacementHost, "id" | "attributes" | "capacity"> & { up: boolean },
  used: { cpu: number; ramMb: number },
  res: Resources,
): string | undefined {
  if (!host.up) return `${host.id}: host has failed`;
  return attributeMismatch(host, res) ?? capacityShortfall(host, used, res);
}

export const zoneFilter: HostFilter = {
  name: "zone",
  test: (h, r) => h.zone === r.zone,
  reason: (h, r) => `${h.id}: in zone ${h.zone}, not ${r.zone}`,
};

export const stateFilter: HostFilter = {
  name: "state",
  test: (h) => h.up,
  reason: (h) => `${h.id}: host has failed`,
};

export const maintenanceFilter: HostFilter = {
  name: "maintenance",
  test: (h) => h.maintenance === undefined,
  reason: (h) => `${h.id}: in maintenance (${h.maintenance})`,
};

export const attributesFilter: HostFilter = {
  name: "attributes",
  test: (h, r) => attributeMismatch(h, r.resources) === undefined,
  reason: (h, r) => attributeMismatch(h, r.resources) ?? `${h.id}: has the attributes`,
};

export const capacityFilter: HostFilter = {
  name: "capacity",
  test: (h, r, ctx) => capacityShortfall(h, ctx.used(h), r.resources) === undefined,
  reason: (h, r, ctx) => capacityShortfall(h, ctx.used(h), r.resources) ?? `${h.id}: has room`,
};

/** Hard filters; anti-affinity (soft) is applied by `place` after these. */
export const HARD_FILTERS: HostFilter[] = [stateFilter, maintenanceFilter, attributesFilter, capacityFilter];

export function groupCount(groupHosts: GroupHosts, group: string, host: string): number {
  return groupHosts.get(group)?.get(host) ?? 0;
}

export const antiAffinityReason = (host: PlacementHost, req: HostRequest, ctx: FilterContext): string =>
  `${host.id}: already runs ${groupCount(ctx.groupHosts, req.group, host.id)} instance(s) of ${req.group} (anti-affinity)`;
