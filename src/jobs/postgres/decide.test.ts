import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decide, type Leader, type Observation } from "./decide.js";

const L: Leader = { member: "m0", vmId: "vm-0", address: "127.1.1.1", port: 5432 };
const replicaPg = (lsn: string) => ({ running: true, inRecovery: true, lsn, timeline: 1, upstream: null });
const base: Observation = {
  member: "m1",
  members: ["m0", "m1", "m2"],
  now: 10_000,
  ttlMs: 5000,
  strict: true,
  replicasGoneMs: null,
  othersAlive: 2,
  lease: { state: "other", leader: L },
  deadline: null,
  initialized: true,
  hasData: true,
  pg: replicaPg("0/3000000"),
  role: { role: "replica", leader: { member: "m0", address: "127.1.1.1", port: 5432 }, rewind: false },
  peers: [],
  lastLeader: "m0",
  failsafeConfirms: 0,
  promisedTo: null,
  leaderRefused: false,
  leaderUnansweredMs: 0,
  notStreamingMs: 0,
  leaderTimeline: null,
  switchoverTo: null,
  oldLeaderAlive: false,
};
const what = (o: Partial<Observation>) => {
  const v = decide({ ...base, ...o });
  return `${v.decision.do}: ${v.sentence}`;
};

describe("cluster manager decisions", () => {
  it("follows the leader, and asks for fencing when the leader refuses connections or stays silent", () => {
    assert.equal(what({}), "wait: replica of m0");
    assert.equal(
      what({ leaderRefused: true }),
      "fence: leader m0 refuses connections: asked the control plane to fence it",
    );
    assert.equal(what({ leaderUnansweredMs: 600 }), "wait: replica of m0", "a short silence is no reason");
    assert.match(
      what({ notStreamingMs: 6000, leaderTimeline: 2 }),
      /^rejoin: not streaming from m0 for 6\.0 s though it answers: rejoining with pg_rewind/,
      "a replica whose WAL went past the new leader's fork (the leader is on a newer timeline) rewinds",
    );
    assert.equal(
      what({ notStreamingMs: 6000, leaderTimeline: 1 }),
      "wait: replica of m0",
      "not streaming from a leader on its own timeline is no divergence (the leader's postgres may be restarting)",
    );
    assert.equal(
      what({ notStreamingMs: 6000, leaderTimeline: 2, pg: { ...replicaPg("0/3000000"), running: false } }),
      "wait: replica of m0",
      "a replica whose own postgres is down does not rejoin",
    );
    assert.equal(what({ notStreamingMs: 6000, leaderUnansweredMs: 1200 }).split(":")[0], "fence");
    assert.equal(
      what({ leaderUnansweredMs: 1200 }),
      "fence: leader m0 has not answered for 1200 ms: asked the control plane to fence it",
    );
    assert.equal(
      what({ role: { role: "replica", leader: null, rewind: true } }),
      "follow: following leader m0 at 127.1.1.1",
    );
  });

  it("promotes only the most advanced replica, and only when it reaches every other member", () => {
    const free = { lease: { state: "free" } as const };
    const m2 = (lsn: string, reachable = true) => [
      { member: "m2", reachable, role: "replica" as const, lsn },
    ];
    assert.match(
      what({ ...free, peers: m2("0/2000000") }),
      /^acquire: the most advanced replica \(0\/3000000\)/,
    );
    assert.match(
      what({ ...free, peers: m2("0/4000000") }),
      /^wait: not promoting: m2 is at least as advanced/,
    );
    assert.match(
      what({ ...free, peers: m2("0/3000000") }),
      /^acquire/,
      "a tie goes to the lower name: m1 < m2",
    );
    assert.match(
      what({ ...free, peers: m2("0/1000000", false) }),
      /^wait: not promoting: m2 does not answer, and it may hold newer commits/,
    );
    assert.match(
      what({ ...free, lastLeader: null, peers: m2("0/1000000") }),
      /^wait: not promoting: m0 does not answer/,
    );
    assert.equal(
      what({ ...free, peers: m2("0/2000000"), oldLeaderAlive: true }),
      "wait: the leader lease lapsed, but m0 still runs as primary: waiting for it to renew",
      "a lease that lapsed while the store was down is no election",
    );
    assert.match(
      what({ ...free, peers: m2("0/2000000"), promisedTo: "m0" }),
      /^wait: promised m0 \(failsafe\) not to compete/,
      "a member that confirmed the old leader's failsafe takes no lease while its promise lives",
    );
    assert.match(
      what({
        ...free,
        peers: [{ member: "m2", reachable: true, role: "replica", lsn: "0/2000000", promisedTo: "m0" }],
      }),
      /^wait: not promoting: m2 confirmed m0 as leader \(failsafe\) moments ago/,
      "nor does anyone promote past a rival's promise: the old leader may still be writing",
    );
    assert.match(
      what({ ...free, lastLeader: null, initialized: false, peers: m2("0/0", false) }),
      /^acquire: the cluster was never initialized and only this member has data/,
      "a single node grown into a cluster leads it without waiting for the new members",
    );
    assert.match(
      what({
        ...free,
        lastLeader: null,
        initialized: false,
        peers: [{ member: "m2", reachable: true, hasData: true, lsn: "0/9000000" }],
      }),
      /^wait: not promoting/,
    );
  });

  it("demotes a primary that lost the lease, or whose lease runs out without every other member confirming it", () => {
    const primary = {
      role: { role: "primary" as const, bootstrap: false, syncNames: ["m1", "m2"] },
      pg: { running: true, inRecovery: false, lsn: "0/5000000", timeline: 2, upstream: null },
    };
    assert.equal(
      what({ ...primary, lease: { state: "lost" } }),
      "demote: demoted self: the leader lease was lost",
    );
    assert.match(
      what({ ...primary, lease: { state: "unreachable" }, deadline: 12_000 }),
      /^wait: lease store unreachable; the lease holds 2\.0 s more/,
    );
    assert.match(
      what({ ...primary, lease: { state: "unreachable" }, deadline: 9000 }),
      /^demote: demoted self: the lease could not be renewed in time/,
    );
    assert.match(
      what({ ...primary, lease: { state: "unreachable" }, deadline: 9000, failsafeConfirms: 1 }),
      /^demote: demoted self: the lease could not be renewed in time/,
      "one of two others is not enough: the one that did not answer may be promoting",
    );
    assert.match(
      what({ ...primary, lease: { state: "unreachable" }, deadline: 9000, failsafeConfirms: 2 }),
      /^lead: lease store unreachable; kept the leader role: all 2 other members confirm it directly/,
    );
    assert.match(
      what({ ...primary, lease: { state: "other", leader: { ...L, member: "m2" } } }),
      /^demote: demoted self: m2 holds the leader lease/,
    );
    assert.match(
      what({ ...primary, lease: { state: "mine", token: 3 } }),
      /^lead: leading with lease token 3/,
    );
    assert.match(what({ lease: { state: "mine", token: 3 } }), /^promote: promoted self to leader/);
    const leading = { ...primary, lease: { state: "mine", token: 3 } as const };
    assert.match(what({ ...leading, replicasGoneMs: 4000 }), /^lead:/);
    assert.match(
      what({ ...leading, replicasGoneMs: 6000 }),
      /^demote: demoted self: no replica has streamed from here for 6\.0 s while 2 other member\(s\) are alive/,
      "a strict leader cut off from every replica lets the others elect",
    );
    assert.match(what({ ...leading, replicasGoneMs: 6000, othersAlive: 0 }), /^lead:/, "nobody else to lead");
    assert.match(what({ ...leading, replicasGoneMs: 6000, strict: false }), /^lead:/, "it can commit alone");
  });

  it("bootstraps only a cluster that was never initialized", () => {
    const empty = {
      hasData: false,
      lease: { state: "free" } as const,
      pg: { running: false, inRecovery: null, lsn: null, timeline: null, upstream: null },
      role: null,
    };
    assert.match(
      what({ ...empty, initialized: false }),
      /^bootstrap: no member has data and the cluster was never initialized/,
    );
    assert.match(
      what({ ...empty, initialized: true }),
      /^wait: no data, and the cluster was initialized before/,
    );
    assert.match(
      what({ ...empty, initialized: false, peers: [{ member: "m0", reachable: true, hasData: true }] }),
      /^wait: no data; another member has data/,
    );
    assert.match(what({ ...empty, lease: { state: "other", leader: L } }), /^clone: cloning from leader m0/);
  });
});

describe("cluster manager first decisions", () => {
  it("starts a member with data as primary when it holds the lease, else read-only until a leader is known", () => {
    const fresh = {
      role: null,
      pg: { running: false, inRecovery: null, lsn: null, timeline: null, upstream: null },
    };
    assert.equal(
      what({ ...fresh, lease: { state: "mine", token: 4 } }),
      "start: holding the leader lease: starting as primary",
    );
    assert.equal(
      what({ ...fresh, lease: { state: "free" } }),
      "start: no leader known: starting read-only until there is one",
    );
    assert.equal(what({ ...fresh }), "follow: following leader m0 at 127.1.1.1");
  });
});

describe("planned switchover", () => {
  it("hands the lease over, and only the chosen member takes it, even against an equal old leader", () => {
    const primary = {
      role: { role: "primary" as const, bootstrap: false, syncNames: ["m0", "m2"] },
      pg: { running: true, inRecovery: false, lsn: "0/5000000", timeline: 2, upstream: null },
    };
    assert.equal(
      what({ ...primary, member: "m0", lease: { state: "mine", token: 3 }, switchoverTo: "m1" }),
      "handover: switchover to m1: stopped writes and released the leader lease",
    );
    const free = { lease: { state: "free" } as const, pg: replicaPg("0/5000000"), lastLeader: "m0" };
    const peers = [
      { member: "m0", reachable: true, role: "replica" as const, lsn: "0/5000000" },
      { member: "m2", reachable: true, role: "replica" as const, lsn: "0/5000000" },
    ];
    assert.match(
      what({ ...free, peers, switchoverTo: "m1" }),
      /^acquire: switchover: taking the leader lease as the chosen member/,
    );
    assert.equal(
      what({ ...free, member: "m2", peers, switchoverTo: "m1" }),
      "wait: switchover to m1 in progress",
    );
  });
});
