/**
 * Zone balancing: which zone each instance of a group lives in. Pure.
 *
 * Instances keep their zone while it is still listed (an instance with a disk must:
 * its data cannot change zones, unless its peers hold it too — a cluster member moves
 * with a new disk and copies its data from them). New instances go to the zone with the fewest
 * instances of the group; scaling down removes instances from the most crowded
 * zone, highest index first. So a group of 6 over 3 zones has 2 per zone.
 */
export interface ExistingInstance {
  index: number;
  zone: string;
  hasDisk: boolean;
}

export interface ZonePlan {
  keep: Array<{ index: number; zone: string }>;
  /** Instances whose zone is no longer listed (with no disk, or rebuildable ones): rebuilt in `to`. */
  move: Array<{ index: number; from: string; to: string }>;
  create: Array<{ index: number; zone: string }>;
  delete: Array<{ index: number; zone: string }>;
  /** Problems that make the group impossible to balance (e.g. a disk stranded in a removed zone). */
  errors: string[];
}

export function balanceZones(
  group: string,
  zones: string[],
  count: number,
  existing: ExistingInstance[],
  /** The group's data lives on its peers too (a cluster): an instance with a disk may move, with a new disk. */
  o: { rebuildDisks?: boolean } = {},
): ZonePlan {
  const plan: ZonePlan = { keep: [], move: [], create: [], delete: [], errors: [] };
  const listed = new Set(zones);
  const perZone = new Map(zones.map((z) => [z, 0]));
  const placed: ExistingInstance[] = [];
  const homeless: ExistingInstance[] = [];
  for (const inst of [...existing].sort((a, b) => a.index - b.index)) {
    if (listed.has(inst.zone)) placed.push(inst);
    else if (inst.hasDisk && !o.rebuildDisks) {
      plan.errors.push(
        `${group}/${inst.index} has a persistent disk in zone ${inst.zone}, which the group no longer lists; ` +
          `its data cannot move to another zone`,
      );
    } else homeless.push(inst);
  }
  if (plan.errors.length > 0) return plan;
  for (const inst of placed) perZone.set(inst.zone, perZone.get(inst.zone)! + 1);

  const fewest = (): string =>
    zones.reduce((best, z) => (perZone.get(z)! < perZone.get(best)! ? z : best), zones[0]!);
  const most = (): string =>
    zones.reduce((best, z) => (perZone.get(z)! > perZone.get(best)! ? z : best), zones[0]!);

  let kept = [...placed];
  while (kept.length > count) {
    // The highest index among the zones that have the most instances.
    const top = perZone.get(most())!;
    const victim = kept
      .filter((i) => perZone.get(i.zone) === top)
      .reduce((a, b) => (b.index > a.index ? b : a));
    kept = kept.filter((i) => i !== victim);
    perZone.set(victim.zone, top - 1);
    plan.delete.push({ index: victim.index, zone: victim.zone });
  }
  plan.keep = kept.map((i) => ({ index: i.index, zone: i.zone }));

  let missing = count - kept.length;
  for (const inst of homeless) {
    if (missing > 0) {
      const to = fewest();
      perZone.set(to, perZone.get(to)! + 1);
      plan.move.push({ index: inst.index, from: inst.zone, to });
      missing -= 1;
    } else {
      plan.delete.push({ index: inst.index, zone: inst.zone });
    }
  }
  const taken = new Set(existing.map((i) => i.index));
  let next = 0;
  for (; missing > 0; missing--) {
    while (taken.has(next)) next++;
    taken.add(next);
    const zone = fewest();
    perZone.set(zone, perZone.get(zone)! + 1);
    plan.create.push({ index: next, zone });
  }
  return plan;
}
