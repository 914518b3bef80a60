/**
 * The update policy turns a plan's steps into ordered batches. Pure.
 *
 * Per instance group, in manifest order: deletions first (they free capacity), then
 * the canaries (the first `canaries` changed instances, in the first zone), then
 * the rest in batches of at most `max_in_flight`, one zone at a time when
 * `serial_zones` is on. A failed canary stops the deploy before any batch runs.
 *
 * A cluster (a group whose service orders its own updates, `roles` given) is
 * different: its existing members change one at a time in the service's order
 * (followers first, the leader last), each a `member` batch; the leader's batch
 * hands its role over first (`handover`), and every member must have caught up
 * before the next goes. The first is the canary: its failure stops the deploy.
 * New members are added after, in the usual batches.
 */
import { maxInFlightOf, type Manifest } from "../manifest/manifest.js";
import type { Step } from "./planner.js";

export type BatchKind = "delete" | "canary" | "batch" | "member";

export interface Batch {
  kind: BatchKind;
  group: string;
  /** Set when every step of the batch is in one zone. */
  zone?: string;
  steps: Step[];
  /** A `member` batch: the member leads now, and hands its role to a caught-up follower before its step. */
  handover?: boolean;
  /** A `member` batch: the first of its cluster (watched as a canary). */
  first?: boolean;
}

/** A cluster's members in the order its service updates them (`m<index>`), and its leader now. */
export interface ClusterOrder {
  order: string[];
  leader: string | null;
}

function chunk<T>(xs: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

function batch(kind: BatchKind, group: string, steps: Step[]): Batch {
  const zones = new Set(steps.map((s) => s.zone));
  return { kind, group, ...(zones.size === 1 ? { zone: steps[0]!.zone } : {}), steps };
}

/** `member` batches for a cluster's changed members, in `roles.order` (members it does not name go first, by index). */
function memberBatches(group: string, changes: Step[], roles: ClusterOrder): Batch[] {
  const rank = (s: Step) => roles.order.indexOf(`m${s.index}`);
  const sorted = [...changes].sort((a, b) => rank(a) - rank(b) || a.index - b.index);
  return sorted.map((s, i) => ({
    kind: "member",
    group,
    zone: s.zone,
    steps: [s],
    ...(i === 0 ? { first: true } : {}),
    ...(roles.leader === `m${s.index}` ? { handover: true } : {}),
  }));
}

export function batchesFor(
  steps: Step[],
  manifest: Manifest,
  roles: ReadonlyMap<string, ClusterOrder> = new Map(),
): Batch[] {
  const policy = manifest.update;
  const out: Batch[] = [];
  const groups = [...new Set(steps.map((s) => s.group))];
  const order = new Map(manifest.instance_groups.map((g, i) => [g.name, i]));
  groups.sort((a, b) => (order.get(a) ?? 1e9) - (order.get(b) ?? 1e9));
  for (const group of groups) {
    const g = manifest.instance_groups.find((x) => x.name === group);
    const inFlight = maxInFlightOf(policy, g?.instances ?? steps.filter((s) => s.group === group).length);
    const mine = steps.filter((s) => s.group === group);
    for (const steps of chunk(
      mine.filter((s) => s.action === "delete"),
      inFlight,
    )) {
      out.push(batch("delete", group, steps));
    }
    const zoneRank = new Map((g?.zones ?? []).map((z, i) => [z, i]));
    let changes = mine
      .filter((s) => s.action !== "delete")
      .sort((a, b) => (zoneRank.get(a.zone) ?? 1e9) - (zoneRank.get(b.zone) ?? 1e9) || a.index - b.index);
    const cluster = roles.get(group);
    if (cluster) {
      out.push(
        ...memberBatches(
          group,
          changes.filter((s) => s.action !== "create"),
          cluster,
        ),
      );
      changes = changes.filter((s) => s.action === "create");
    }
    const canaries = changes.slice(0, policy.canaries);
    if (canaries.length > 0) out.push(batch("canary", group, canaries));
    const rest = changes.slice(canaries.length);
    if (policy.serial_zones) {
      const zones = [...new Set(rest.map((s) => s.zone))];
      for (const zone of zones) {
        for (const steps of chunk(
          rest.filter((s) => s.zone === zone),
          inFlight,
        )) {
          out.push(batch("batch", group, steps));
        }
      }
    } else {
      for (const steps of chunk(rest, inFlight)) out.push(batch("batch", group, steps));
    }
  }
  return out;
}
