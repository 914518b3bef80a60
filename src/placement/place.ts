/**
 * Host placement: for each request, run the hard filters over the hosts of its
 * zone, then anti-affinity (a host that already runs an instance of the group is
 * used only when no other host fits), then pick the best-scored host and reserve
 * its resources for the requests that follow. Pure: the inputs are not changed.
 *
 * The hot path only tests; reasons are written out only for requests that fail,
 * so "why wasn't web/4 placed?" always has an answer without slowing big plans.
 */
import { HARD_FILTERS, antiAffinityReason, groupCount, type FilterContext } from "./filters.js";
import { hostScore } from "./scores.js";
import type { GroupHosts, HostRequest, PlacementHost, PlacementResult } from "./types.js";

export interface PlaceInput {
  hosts: PlacementHost[];
  requests: HostRequest[];
  /** Hosts already running instances of each group (those that stay). */
  groupHosts?: GroupHosts;
}

export function place(input: PlaceInput): PlacementResult {
  const byZone = new Map<string, PlacementHost[]>();
  for (const h of input.hosts) {
    const list = byZone.get(h.zone) ?? [];
    list.push(h);
    byZone.set(h.zone, list);
  }
  // Usage per host including this run's reservations; copied lazily, never allocated per test.
  const usage = new Map<string, { cpu: number; ramMb: number }>();
  const groupHosts: GroupHosts = new Map(
    [...(input.groupHosts ?? new Map())].map(([g, m]) => [g, new Map(m)] as const),
  );
  const ctx: FilterContext = {
    used: (h) => usage.get(h.id) ?? h.used,
    groupHosts,
  };
  const result: PlacementResult = { hosts: new Map(), failures: [], notes: [] };

  for (const req of input.requests) {
    const zoneHosts = byZone.get(req.zone) ?? [];
    // The best host overall, and the best that runs no instance of the group yet (anti-affinity).
    let best: PlacementHost | undefined;
    let bestScore = Infinity;
    let bestFree: PlacementHost | undefined;
    let bestFreeScore = Infinity;
    hosts: for (const h of zoneHosts) {
      for (const f of HARD_FILTERS) if (!f.test(h, req, ctx)) continue hosts;
      const score = hostScore(h, req, ctx);
      if (score < bestScore || (score === bestScore && h.id < best!.id)) {
        best = h;
        bestScore = score;
      }
      const alone = groupCount(groupHosts, req.group, h.id) === 0;
      if (alone && (score < bestFreeScore || (score === bestFreeScore && h.id < bestFree!.id))) {
        bestFree = h;
        bestFreeScore = score;
      }
    }
    const chosen = bestFree ?? best;
    if (!chosen) {
      result.failures.push({ key: req.key, zone: req.zone, reasons: explain(zoneHosts, req, ctx) });
      continue;
    }
    if (!bestFree)
      result.notes.push(
        `${req.key}: every fitting host in ${req.zone} already runs ${req.group}; anti-affinity relaxed`,
      );
    result.hosts.set(req.key, chosen.id);
    const u = usage.get(chosen.id) ?? { ...chosen.used };
    u.cpu += req.resources.cpu;
    u.ramMb += req.resources.ramMb;
    usage.set(chosen.id, u);
    const g = groupHosts.get(req.group) ?? new Map<string, number>();
    g.set(chosen.id, (g.get(chosen.id) ?? 0) + 1);
    groupHosts.set(req.group, g);
  }
  return result;
}

/** One reason per host of the zone: the first filter that rejected it. */
export function explain(zoneHosts: PlacementHost[], req: HostRequest, ctx: FilterContext): string[] {
  if (zoneHosts.length === 0) return [`zone ${req.zone} has no hosts`];
  return zoneHosts.map((h) => {
    const failed = HARD_FILTERS.find((f) => !f.test(h, req, ctx));
    return failed ? failed.reason(h, req, ctx) : antiAffinityReason(h, req, ctx);
  });
}
