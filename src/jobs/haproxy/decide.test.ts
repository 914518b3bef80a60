import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decidePair, type PairObservation } from "./decide.js";

const base: PairObservation = {
  member: "m1",
  lease: { state: "other", holder: { member: "m0", address: "127.1.1.1" } },
  now: 10_000,
  deadline: null,
  haproxyRunning: true,
  haproxyDownLong: false,
  holderRefuses: false,
  holderUnansweredMs: 0,
  peerConfirms: false,
  promised: false,
  switchoverTo: null,
};
const what = (o: Partial<PairObservation>) => {
  const r = decidePair({ ...base, ...o });
  return `${r.decision.do}: ${r.sentence}`;
};

describe("load-balancer pair decisions", () => {
  it("a standby waits, asks for fencing when the active refuses or stays silent, and takes a free lease", () => {
    assert.equal(what({}), "wait: standby of m0");
    assert.match(what({ holderRefuses: true }), /^fence: active m0 refuses connections/);
    assert.equal(what({ holderUnansweredMs: 500 }), "wait: standby of m0");
    assert.match(what({ holderUnansweredMs: 1100 }), /^fence: active m0 has not answered for 1100 ms/);
    assert.match(what({ lease: { state: "free" } }), /^acquire/);
    assert.match(what({ lease: { state: "free" }, haproxyRunning: false }), /^wait/);
    assert.match(what({ lease: { state: "free" }, switchoverTo: "m0" }), /^wait: switchover to m0/);
    assert.match(
      what({ lease: { state: "free" }, promised: true }),
      /^wait: the lease is free, but this node promised the active/,
      "a standby that just confirmed the active's failsafe does not take the lease under it",
    );
  });

  it("the active serves, hands over when asked, and steps down when it cannot hold the lease", () => {
    const mine = { lease: { state: "mine", token: 4 } as const };
    assert.match(what(mine), /^serve: active/);
    assert.match(what({ ...mine, switchoverTo: "m0" }), /^handover/);
    assert.match(what({ ...mine, switchoverTo: "m1" }), /^serve/);
    assert.match(what({ ...mine, haproxyRunning: false }), /^stand-down/);
    assert.match(
      what({ ...mine, haproxyRunning: false, haproxyDownLong: true }),
      /^handover: HAProxy has not run here for a lease TTL/,
      "a node whose agent lives but whose HAProxy does not cannot be fenced: it gives the lease up itself",
    );
    assert.match(what({ lease: { state: "lost" } }), /^stand-down/);
    const cut = { lease: { state: "unreachable" } as const, deadline: 12_000 };
    assert.match(what(cut), /^serve: lease store unreachable; the lease holds 2\.0 s more/);
    assert.match(what({ ...cut, now: 13_000 }), /^stand-down/);
    assert.match(what({ ...cut, now: 13_000, peerConfirms: true }), /^serve: .*confirms/);
    assert.match(what({ lease: { state: "unreachable" } }), /^wait/);
  });
});
