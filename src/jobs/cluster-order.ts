/**
 * What every clustered service decides the same way from its members' roles (pure):
 * the order in which to update them one at a time while the cluster keeps serving,
 * and whether the cluster is whole. Each service says which role leads, which
 * follows, and when a follower has caught up (services.ts hands these to the
 * control plane through the DataService interface).
 */

/** A member as the update order and the health judgement see it. */
export interface MemberRole {
  member: string;
  /** As the service's `member` reads it (primary, replica, writer, synced, active, standby, …). */
  role: string;
  /** How far behind the leader, in the service's unit (null: unknown). */
  lag?: number | null;
}

/** How a service names its roles, and when a follower is back in step with its leader. */
export interface RoleRules {
  leader: string;
  follower: string;
  caughtUp(m: MemberRole): boolean;
}

/** The cluster's health as its members show it: whole, degraded (serving, with fewer), or down (not serving). */
export interface ClusterHealth {
  state: "whole" | "degraded" | "down";
  sentence: string;
}

/**
 * Followers first (by name, so two runs agree), the leader last: it hands over (a
 * switchover) only once every other member runs the new version. An update waits
 * for each member to have caught up (`RoleRules.caughtUp`) before the next.
 */
export function updateOrder(members: MemberRole[], leader: string | null): string[] {
  const others = members
    .map((m) => m.member)
    .filter((m) => m !== leader)
    .sort();
  return leader !== null && members.some((m) => m.member === leader) ? [...others, leader] : others;
}

export function clusterHealth(members: MemberRole[], leader: string | null, rules: RoleRules): ClusterHealth {
  const lead = members.find((m) => m.member === leader);
  if (!lead || lead.role !== rules.leader)
    return {
      state: "down",
      sentence: leader ? `${leader} holds the lease but is ${lead?.role ?? "gone"}` : `no ${rules.leader}`,
    };
  const behind = members.filter((m) => m.member !== leader && !rules.caughtUp(m));
  if (behind.length === 0)
    return { state: "whole", sentence: `${leader} ${rules.leader}, every other member ${rules.follower}` };
  return {
    state: "degraded",
    sentence: `${leader} ${rules.leader}; not caught up: ${behind.map((m) => `${m.member} (${m.role})`).join(", ")}`,
  };
}
