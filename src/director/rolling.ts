/**
 * Rolling a cluster while it serves: its members' roles as its service reads them,
 * the order its service updates them in, handing the leader's role to a caught-up
 * follower before the leader's own step, and waiting for an updated member to
 * catch up before the next one goes (see update-policy.ts for the batches).
 *
 * Clusters (a group whose data service reads its members) and load-balancer pairs
 * are both "roles" here: a leader (primary, writer, active node) and followers.
 */
import type { MemberRole } from "../jobs/cluster-order.js";
import type { InstanceRecord } from "../store/instances.js";
import type { DrainResult } from "./lb-service.js";
import { serviceOf } from "../jobs/services.js";
import { sleep } from "../lib/sleep.js";
import { isClustered, type Manifest } from "../manifest/manifest.js";
import type { TaskReporter } from "./events.js";
import type { Step } from "./planner.js";
import type { ClusterOrder } from "./update-policy.js";

/** A cluster's members and its leader now (`m<index>` names). */
export interface GroupRoles {
  leader: string | null;
  members: MemberRole[];
}

/** What a rolling update needs of the control plane's cluster and load-balancer services. */
export interface RollingControl {
  /** The group's roles now; undefined when the group is no cluster or pair it knows. Never rejects. */
  roles(deployment: string, group: string): Promise<GroupRoles | undefined>;
  /** A planned switchover to `to`; resolves once `to` leads, rejects (Conflict) when it did not. */
  switchover(deployment: string, group: string, to: string): Promise<{ tookMs: number }>;
  /** Takes the instance out of the LB pairs that send it traffic (bounded; `pending` says what was left). */
  drain(inst: InstanceRecord): Promise<DrainResult>;
}

/** How long an updated member may take to catch up before the update stops. */
export const CATCH_UP_TIMEOUT_MS = 10 * 60_000;

/** The groups of `manifest` that roll member by member, with their service's order now. */
export async function clusterOrders(
  control: RollingControl | undefined,
  manifest: Manifest,
  steps: Step[],
): Promise<Map<string, ClusterOrder>> {
  const out = new Map<string, ClusterOrder>();
  if (!control) return out;
  for (const g of manifest.instance_groups) {
    const update = isClustered(g) ? serviceOf(g)?.service.update : undefined;
    if (!update || !steps.some((s) => s.group === g.name && s.action !== "create")) continue;
    const now = await control.roles(manifest.name, g.name);
    const members =
      now?.members ?? Array.from({ length: g.instances }, (_, i) => ({ member: `m${i}`, role: "unknown" }));
    out.set(g.name, { order: update.order(members, now?.leader ?? null), leader: now?.leader ?? null });
  }
  return out;
}

function rulesOf(manifest: Manifest, group: string) {
  const g = manifest.instance_groups.find((x) => x.name === group);
  return g ? serviceOf(g)?.service.update : undefined;
}

/**
 * Before the leader's own step: its role goes to the caught-up follower with the
 * least lag. When it no longer leads there is nothing to hand over; when no
 * follower has caught up it is updated in place (said as a warning: its clients
 * pause until it is back). True when it handed over.
 */
export async function handOver(
  control: RollingControl,
  manifest: Manifest,
  step: Step,
  report: TaskReporter,
): Promise<boolean> {
  const member = `m${step.index}`;
  const rules = rulesOf(manifest, step.group);
  const now = await control.roles(manifest.name, step.group);
  if (!rules || !now) return false;
  if (now.leader !== member) {
    await report.event(
      "info",
      "handover",
      `${member} does not lead (${now.leader ?? "no one"} does): nothing to hand over`,
      step.key,
    );
    return false;
  }
  const target = now.members
    .filter((m) => m.member !== member && rules.caughtUp(m))
    .sort((a, b) => (a.lag ?? Infinity) - (b.lag ?? Infinity))[0];
  if (!target) {
    await report.event(
      "warn",
      "handover",
      `no follower has caught up (${now.members.map((m) => `${m.member} ${m.role}`).join(", ")}): ${member} is updated while it leads, and its clients wait until it is back`,
      step.key,
    );
    return false;
  }
  const { tookMs } = await control.switchover(manifest.name, step.group, target.member);
  await report.event(
    "info",
    "handover",
    `${member} handed its role to ${target.member} in ${tookMs} ms`,
    step.key,
  );
  return true;
}

/** Drains the instance from the LB pairs in front of it before its step stops it, and says how it went. */
export async function drainFromBalancers(
  control: RollingControl,
  inst: InstanceRecord,
  key: string,
  report: TaskReporter,
): Promise<void> {
  if (!inst.address) return;
  const r = await control.drain(inst);
  if (r.pairs.length === 0) return;
  if (r.pending.length === 0)
    await report.event("info", "drain", `drained from ${r.pairs.join(", ")} in ${r.tookMs} ms`, key);
  else
    await report.event(
      "warn",
      "drain",
      `drain from ${r.pairs.join(", ")} timed out after ${r.tookMs} ms (${r.pending.join("; ")}); going on`,
      key,
    );
}

/**
 * Before a member's disk is deleted for a new one its peers fill (a zone move, a
 * bigger disk): it must not lead, and another member must hold the data (the leader,
 * or a follower caught up). Throws, saying why, otherwise: the disk is kept.
 */
export async function peersHoldData(
  control: RollingControl | undefined,
  manifest: Manifest,
  step: Step,
): Promise<void> {
  const member = `m${step.index}`;
  const rules = rulesOf(manifest, step.group);
  const now = control && rules ? await control.roles(manifest.name, step.group) : undefined;
  const keeps = `${step.key} keeps its disk`;
  if (!rules || !now)
    throw new Error(
      `${keeps}: the cluster's roles cannot be read, so no other member is known to hold its data`,
    );
  if (now.leader === member)
    throw new Error(`${keeps}: it still leads (no caught-up follower took its role)`);
  const holders = now.members.filter(
    (m) => m.member !== member && (m.member === now.leader || rules.caughtUp(m)),
  );
  if (holders.length === 0)
    throw new Error(
      `${keeps}: no other member holds its data (${now.members.map((m) => `${m.member} ${m.role}`).join(", ")})`,
    );
}

/** After a member's step: waits until its service holds it caught up (or `timeoutMs`: the update stops). */
export async function waitCaughtUp(
  control: RollingControl,
  manifest: Manifest,
  step: Step,
  report: TaskReporter,
  timeoutMs = CATCH_UP_TIMEOUT_MS,
): Promise<void> {
  const member = `m${step.index}`;
  const rules = rulesOf(manifest, step.group);
  if (!rules) return;
  const t0 = Date.now();
  let last: MemberRole | undefined;
  for (;;) {
    const now = await control.roles(manifest.name, step.group);
    last = now?.members.find((m) => m.member === member);
    // The leader (a cluster of one, or a member that took over meanwhile) is caught up by definition.
    if (now?.leader === member || (last && rules.caughtUp(last))) break;
    if (Date.now() - t0 > timeoutMs)
      throw new Error(
        `${member} did not catch up in ${timeoutMs} ms (it is ${last?.role ?? "unknown"}${last?.lag != null ? `, ${last.lag} behind` : ""}); the update stops here`,
      );
    await sleep(250);
  }
  await report.event(
    "info",
    "catch-up",
    `${member} caught up (${last?.role ?? "leader"}${last?.lag != null ? `, ${last.lag} behind` : ""}) in ${Date.now() - t0} ms`,
    step.key,
  );
}
