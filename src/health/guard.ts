/**
 * The meltdown guard: what to do about the instances that are down. Pure.
 *
 * - A zone is down when the cloud reports every host of it failed (Nova's compute
 *   services down; the local cloud's failed hosts). Its instances wait for it,
 *   unless their group may relocate (no disk), then they are rebuilt elsewhere.
 *   When the zone is back, the instances that waited for it are recovered: the
 *   cause of their silence is known, so the meltdown guard does not hold them.
 * - A deployment is in meltdown when more than `meltdownShare` of its instances
 *   (and at least `meltdownMin`) are down at once; everything is, when that holds
 *   for all instances. In a meltdown nothing is recreated blindly, unless the
 *   operator overrides the guard for that deployment (or for all).
 * - A deployment whose recovery the operator paused (or every deployment) is watched
 *   and judged, but no VM of it is rebuilt until recovery is resumed (a VM that boots
 *   again still gets its jobs started: nothing is replaced by that).
 * - A meltdown that ended moments ago (its VMs' heartbeats are coming back, one by
 *   one: this control plane was cut off from them) still holds for the instances not
 *   heard from yet, for one unresponsive window.
 */
import type { HealthConfig } from "./config.js";
import { isDown, type Health } from "./verdict.js";

export interface GuardInstance {
  id: string;
  key: string;
  deployment: string;
  zone: string;
  health: Health;
  /** Its group's strategy, by name (for the sentences). */
  strategy: string;
  /** Whether that strategy rebuilds a failed instance (false: left as it is). */
  recovers: boolean;
  relocate: boolean;
}

export interface GuardInput {
  instances: GuardInstance[];
  /** Zones whose hosts the cloud reports all failed. */
  failedZones: string[];
  /** Instances that waited for their zone to come back (the monitor remembers). */
  zoneVictims: ReadonlySet<string>;
  overrides: { all: boolean; deployments: string[] };
  /** Deployments whose recovery the operator paused (`all`: every one). */
  paused: { all: boolean; deployments: string[] };
  /** Meltdowns that ended within the last unresponsive window. */
  recentMeltdown: { all: boolean; deployments: string[] };
}

export type GuardAction = "recover" | "relocate" | "wait" | "leave";

export interface GuardDecision {
  downZones: string[];
  meltdown: { all: boolean; deployments: string[] };
  /** One per down instance. */
  actions: Array<{ id: string; key: string; deployment: string; action: GuardAction; sentence: string }>;
}

function inMeltdown(down: number, total: number, cfg: HealthConfig): boolean {
  return down >= cfg.meltdownMin && total > 0 && down / total > cfg.meltdownShare;
}

export function guard(input: GuardInput, cfg: HealthConfig): GuardDecision {
  const judged = input.instances.filter((i) => i.health !== "not-judged");
  const downZones = [...input.failedZones];
  const down = judged.filter((i) => isDown(i.health));
  const all = inMeltdown(down.length, judged.length, cfg);
  const deployments = [...new Set(judged.map((i) => i.deployment))].filter((d) =>
    inMeltdown(
      down.filter((i) => i.deployment === d).length,
      judged.filter((i) => i.deployment === d).length,
      cfg,
    ),
  );
  const overridden = (d: string) => input.overrides.all || input.overrides.deployments.includes(d);
  const actions = down.map((i) => {
    const base = { id: i.id, key: i.key, deployment: i.deployment };
    if (!i.recovers)
      return {
        ...base,
        action: "leave" as const,
        sentence: `${i.key}: strategy ${i.strategy} does not recover; left as it is`,
      };
    if (input.paused.all || input.paused.deployments.includes(i.deployment))
      return {
        ...base,
        action: "wait" as const,
        sentence: `${i.key}: recovery paused by the operator; not recovering (zonal health resume to proceed)`,
      };
    if (downZones.includes(i.zone)) {
      return i.relocate
        ? {
            ...base,
            action: "relocate" as const,
            sentence: `${i.key}: zone ${i.zone} is down; relocating to a healthy zone`,
          }
        : { ...base, action: "wait" as const, sentence: `${i.key}: zone ${i.zone} is down; waiting for it` };
    }
    if (input.zoneVictims.has(i.id)) {
      return {
        ...base,
        action: "recover" as const,
        sentence: `${i.key}: zone ${i.zone} is back; recovering by ${i.strategy}`,
      };
    }
    if ((all || deployments.includes(i.deployment)) && !overridden(i.deployment)) {
      const n = down.filter((x) => all || x.deployment === i.deployment).length;
      const of = judged.filter((x) => all || x.deployment === i.deployment).length;
      const scope = all ? "all deployments" : `deployment ${i.deployment}`;
      return {
        ...base,
        action: "wait" as const,
        sentence: `${i.key}: meltdown in ${scope} (${n} of ${of} down); not recreating blindly (zonal health override to proceed)`,
      };
    }
    const recent = input.recentMeltdown;
    if ((recent.all || recent.deployments.includes(i.deployment)) && !overridden(i.deployment)) {
      return {
        ...base,
        action: "wait" as const,
        sentence: `${i.key}: a meltdown ended moments ago; waiting for its heartbeats to come back too`,
      };
    }
    return { ...base, action: "recover" as const, sentence: `${i.key}: recovering by ${i.strategy}` };
  });
  return { downZones: downZones.sort(), meltdown: { all, deployments }, actions };
}
