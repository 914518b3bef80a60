/**
 * The cluster manager's run cycle as a pure decision (STYLE.md point 4, after
 * Patroni's `ha.py`): ordered guard clauses over what the member sees, each ending
 * in one action and the sentence that explains it. Safety rules, all here:
 *
 * - Only the lease holder may be primary. A primary that lost the lease, or cannot
 *   renew it before its own deadline and is not confirmed directly by every other
 *   member (failsafe), demotes itself: it stops accepting writes. (The manager's
 *   watchdog stops postgres at the deadline even when a cycle is stuck.)
 * - A member that confirmed a leader's failsafe promised it not to compete for a TTL:
 *   while that promise lives it takes no lease, and no one promotes past it.
 * - A strict leader that no replica has streamed from for a TTL, while other members
 *   are alive (registered in the lease store), steps down: it cannot commit anything,
 *   and they may elect a leader that can.
 * - A replica takes a free lease only if it is the most advanced of all members but
 *   the old leader — it must reach every one of them: with `ANY 1` synchronous
 *   replication each acknowledged commit is on at least one of them, and the most
 *   advanced has them all. A member it cannot reach might hold newer commits.
 * - Nobody bootstraps a cluster that was ever initialized. A member with data in a
 *   cluster that was never initialized (a single node grown into a cluster) leads it.
 * - A free lease is no election while the last leader still answers as a running
 *   primary (its lease lapsed while the store was down; it renews when it is back).
 */
import { SUSPECT_AFTER_MS } from "../cluster-timing.js";
import type { RoleFile } from "./files.js";
import { parseLsn } from "./files.js";
import type { PgState } from "./pg.js";

export interface Leader {
  member: string;
  vmId: string;
  address: string;
  port: number;
}

export type LeaseView =
  | { state: "mine"; token: number }
  | { state: "lost" }
  | { state: "other"; leader: Leader }
  | { state: "free" }
  | { state: "unreachable" };

export interface PeerView {
  member: string;
  reachable: boolean;
  role?: "primary" | "replica" | "stopped";
  lsn?: string | null;
  hasData?: boolean;
  /** The leader this peer promised (failsafe) not to compete with, while that promise lives. */
  promisedTo?: string | null;
}

export interface Observation {
  member: string;
  members: string[];
  now: number;
  /** The lease's TTL. */
  ttlMs: number;
  /** Commits wait for a standby, and nothing else releases them (synchronous: strict). */
  strict: boolean;
  /** As leader: how long since a replica last streamed from it (null: none has since it leads). */
  replicasGoneMs: number | null;
  /** Other members alive in the lease store (their registration renewed). */
  othersAlive: number;
  lease: LeaseView;
  /** As leader: until when the lease is surely mine (sent time of the last good renew + TTL). */
  deadline: number | null;
  /** Whether the cluster was ever bootstrapped (null: the store did not say). */
  initialized: boolean | null;
  hasData: boolean;
  pg: PgState;
  /** What the job's prepare was last told. */
  role: RoleFile | null;
  /** The other members as their status APIs answered. */
  peers: PeerView[];
  /** The member this one last knew as leader. */
  lastLeader: string | null;
  /** Peers that confirmed directly that they follow this member (asked only when the store is unreachable). */
  failsafeConfirms: number;
  /** The leader this member promised (failsafe) not to compete with, while that promise lives. */
  promisedTo: string | null;
  /** As replica: how long since it last streamed from its leader. */
  notStreamingMs: number;
  /** The leader's timeline, as its status API says (asked only when this replica has not streamed for a while). */
  leaderTimeline: number | null;
  /** The leader's status API refused a connection: its processes died, its kernel answers. */
  leaderRefused: boolean;
  /** How long the leader's status API has gone unanswered (0 while it answers). */
  leaderUnansweredMs: number;
  /** A planned switchover in progress: the member that is to lead next. */
  switchoverTo: string | null;
  /**
   * The last known leader answered its status API as a running primary (asked only
   * when the lease is free): it is alive, e.g. its lease lapsed while the lease store
   * was down, and will renew; nobody competes with it.
   */
  oldLeaderAlive: boolean;
}

export type Decision =
  | { do: "wait" }
  | { do: "bootstrap" }
  | { do: "clone"; leader: Leader }
  | { do: "acquire" }
  | { do: "promote" }
  | { do: "lead" }
  | { do: "demote"; leader: Leader | null }
  | { do: "follow"; leader: Leader }
  | { do: "rejoin"; leader: Leader }
  | { do: "fence"; leader: Leader }
  | { do: "start"; role: RoleFile }
  | { do: "handover"; to: string };

export interface Verdict {
  decision: Decision;
  sentence: string;
}

const wait = (sentence: string): Verdict => ({ decision: { do: "wait" }, sentence });
/** A replica that cannot stream from a leader that answers for this long rewinds and rejoins it. */
export const STUCK_REPLICA_MS = 5000;
export const others = (o: Pick<Observation, "member" | "members">) => o.members.filter((m) => m !== o.member);
const isPrimary = (o: Observation) => o.role?.role === "primary" || o.pg.inRecovery === false;

export function decide(o: Observation): Verdict {
  if (!o.hasData) return withoutData(o);
  if (o.role === null && o.lease.state === "mine") {
    return {
      decision: { do: "start", role: { role: "primary", bootstrap: false, syncNames: others(o) } },
      sentence: "holding the leader lease: starting as primary",
    };
  }
  if (o.role === null && o.lease.state !== "other") {
    return {
      decision: { do: "start", role: { role: "replica", leader: null, rewind: false } },
      sentence: "no leader known: starting read-only until there is one",
    };
  }
  switch (o.lease.state) {
    case "mine":
      if (!o.pg.running) return wait("holding the leader lease; waiting for postgres to run");
      if (o.pg.inRecovery)
        return {
          decision: { do: "promote" },
          sentence: "promoted self to leader by acquiring the leader lease",
        };
      if (o.switchoverTo && o.switchoverTo !== o.member) {
        return {
          decision: { do: "handover", to: o.switchoverTo },
          sentence: `switchover to ${o.switchoverTo}: stopped writes and released the leader lease`,
        };
      }
      if (o.strict && o.replicasGoneMs !== null && o.replicasGoneMs > o.ttlMs && o.othersAlive > 0) {
        return {
          decision: { do: "demote", leader: null },
          sentence: `demoted self: no replica has streamed from here for ${(o.replicasGoneMs / 1000).toFixed(1)} s while ${o.othersAlive} other member(s) are alive: they may elect a leader that can commit`,
        };
      }
      return { decision: { do: "lead" }, sentence: `leading with lease token ${o.lease.token}` };
    case "lost":
      if (isPrimary(o))
        return {
          decision: { do: "demote", leader: null },
          sentence: "demoted self: the leader lease was lost",
        };
      return wait("lost the leader lease; staying a replica");
    case "unreachable":
      if (!isPrimary(o)) return wait("lease store unreachable; staying a replica");
      if (o.failsafeConfirms === o.members.length - 1) {
        return {
          decision: { do: "lead" },
          sentence: `lease store unreachable; kept the leader role: all ${o.failsafeConfirms} other members confirm it directly`,
        };
      }
      if (o.deadline !== null && o.now < o.deadline) {
        return wait(
          `lease store unreachable; the lease holds ${((o.deadline - o.now) / 1000).toFixed(1)} s more`,
        );
      }
      return {
        decision: { do: "demote", leader: null },
        sentence:
          "demoted self: the lease could not be renewed in time and not every other member confirms the role",
      };
    case "other": {
      const leader = o.lease.leader;
      if (isPrimary(o)) {
        return {
          decision: { do: "demote", leader },
          sentence: `demoted self: ${leader.member} holds the leader lease`,
        };
      }
      const following = o.role?.role === "replica" ? o.role.leader : null;
      if (
        !following ||
        following.member !== leader.member ||
        following.address !== leader.address ||
        (o.role?.role === "replica" && o.role.rewind)
      ) {
        return {
          decision: { do: "follow", leader },
          sentence: `following leader ${leader.member} at ${leader.address}`,
        };
      }
      if (o.leaderRefused) {
        return {
          decision: { do: "fence", leader },
          sentence: `leader ${leader.member} refuses connections: asked the control plane to fence it`,
        };
      }
      if (o.leaderUnansweredMs >= SUSPECT_AFTER_MS) {
        return {
          decision: { do: "fence", leader },
          sentence: `leader ${leader.member} has not answered for ${o.leaderUnansweredMs} ms: asked the control plane to fence it`,
        };
      }
      if (
        o.notStreamingMs >= STUCK_REPLICA_MS &&
        o.leaderUnansweredMs === 0 &&
        !o.leaderRefused &&
        o.pg.running &&
        o.pg.inRecovery === true &&
        o.leaderTimeline !== null &&
        o.pg.timeline !== null &&
        o.leaderTimeline > o.pg.timeline
      ) {
        // Its WAL went past the new leader's fork point (the old primary's last records
        // reached it): it cannot follow the newer timeline, only a rewind lets it.
        return {
          decision: { do: "rejoin", leader },
          sentence: `not streaming from ${leader.member} for ${(o.notStreamingMs / 1000).toFixed(1)} s though it answers: rejoining with pg_rewind`,
        };
      }
      return wait(`replica of ${leader.member}`);
    }
    case "free":
      return election(o);
  }
}

function withoutData(o: Observation): Verdict {
  if (o.lease.state === "other")
    return {
      decision: { do: "clone", leader: o.lease.leader },
      sentence: `cloning from leader ${o.lease.leader.member}`,
    };
  if (o.lease.state === "mine")
    return {
      decision: { do: "bootstrap" },
      sentence: "holding the leader lease without data: bootstrapping",
    };
  if (o.lease.state !== "free") return wait("no data yet; waiting for the lease store");
  if (o.initialized !== false)
    return wait("no data, and the cluster was initialized before: waiting for a leader to clone from");
  if (o.peers.some((p) => p.hasData)) return wait("no data; another member has data: waiting for it to lead");
  return {
    decision: { do: "bootstrap" },
    sentence: "no member has data and the cluster was never initialized: bootstrapping as leader",
  };
}

function election(o: Observation): Verdict {
  if (isPrimary(o) && o.pg.running)
    return {
      decision: { do: "acquire" },
      sentence: "the leader lease is free and this member runs as primary: taking it back",
    };
  if (!o.pg.running || o.pg.inRecovery !== true)
    return wait("the leader lease is free, but this member is not a running replica");
  if (o.switchoverTo && o.switchoverTo !== o.member)
    return wait(`switchover to ${o.switchoverTo} in progress`);
  if (o.promisedTo && o.promisedTo !== o.member)
    return wait(`promised ${o.promisedTo} (failsafe) not to compete while its lease store is away`);
  if (o.oldLeaderAlive && !o.switchoverTo)
    return wait(
      `the leader lease lapsed, but ${o.lastLeader ?? "the last leader"} still runs as primary: waiting for it to renew`,
    );
  // A cluster that never ran has made no commits: the data here (a single node's,
  // before the group became a cluster) is all there is, wherever the others are.
  if (o.initialized === false && !o.peers.some((p) => p.hasData))
    return {
      decision: { do: "acquire" },
      sentence:
        "the cluster was never initialized and only this member has data: taking the lease to lead it",
    };
  const chosen = o.switchoverTo === o.member;
  // In a switchover the old leader shut down cleanly and is a rival like the others.
  const rivals = o.members.filter((m) => m !== o.member && (chosen || m !== o.lastLeader));
  const mine = parseLsn(o.pg.lsn);
  for (const name of rivals) {
    const p = o.peers.find((x) => x.member === name);
    if (!p?.reachable) return wait(`not promoting: ${name} does not answer, and it may hold newer commits`);
    if (p.role === "primary") return wait(`not promoting: ${name} runs as a primary`);
    if (p.promisedTo && p.promisedTo !== o.member)
      return wait(`not promoting: ${name} confirmed ${p.promisedTo} as leader (failsafe) moments ago`);
    const theirs = parseLsn(p.lsn);
    if (
      theirs !== null &&
      (mine === null || theirs > mine || (!chosen && theirs === mine && name < o.member))
    ) {
      return wait(`not promoting: ${name} is at least as advanced (${p.lsn ?? "?"} vs ${o.pg.lsn ?? "?"})`);
    }
  }
  if (chosen) {
    return {
      decision: { do: "acquire" },
      sentence: `switchover: taking the leader lease as the chosen member (${o.pg.lsn ?? "?"})`,
    };
  }
  return {
    decision: { do: "acquire" },
    sentence: `the most advanced replica (${o.pg.lsn ?? "?"}): taking the free leader lease`,
  };
}
