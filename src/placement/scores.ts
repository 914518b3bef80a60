/**
 * Host score (lower is better): the number of instances of the group the host
 * already runs (spread) dominates; among equals, the host with the larger share of
 * free RAM wins (least loaded). Ties go to the lowest host id. Pure.
 */
import { groupCount, type FilterContext } from "./filters.js";
import type { HostRequest, PlacementHost } from "./types.js";

export function hostScore(h: PlacementHost, req: HostRequest, ctx: FilterContext): number {
  const freeShare = (h.capacity.ramMb - ctx.used(h).ramMb) / h.capacity.ramMb; // 0..1
  return groupCount(ctx.groupHosts, req.group, h.id) + (1 - freeShare) * 0.999;
}
