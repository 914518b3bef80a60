import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { clusterHealth, updateOrder, type RoleRules } from "./cluster-order.js";

const rules: RoleRules = {
  leader: "primary",
  follower: "replica",
  caughtUp: (m) => m.role === "replica" && m.lag !== null && (m.lag ?? Infinity) < 100,
};

describe("the order and health every clustered service shares", () => {
  it("updates the followers first, by name, and the leader last", () => {
    const members = [
      { member: "m2", role: "replica" },
      { member: "m0", role: "primary" },
      { member: "m1", role: "replica" },
    ];
    assert.deepEqual(updateOrder(members, "m0"), ["m1", "m2", "m0"]);
    assert.deepEqual(updateOrder(members, null), ["m0", "m1", "m2"], "no leader: by name");
    assert.deepEqual(
      updateOrder(members, "m9"),
      ["m0", "m1", "m2"],
      "a leader that is no member is not updated",
    );
  });

  it("whole, degraded or down from the members' roles and lag", () => {
    const at = (r1: string, lag1: number | null) => [
      { member: "m0", role: "primary", lag: 0 },
      { member: "m1", role: r1, lag: lag1 },
      { member: "m2", role: "replica", lag: 3 },
    ];
    assert.equal(clusterHealth(at("replica", 5), "m0", rules).state, "whole");
    const lagging = clusterHealth(at("replica", 5000), "m0", rules);
    assert.equal(lagging.state, "degraded");
    assert.match(lagging.sentence, /not caught up: m1 \(replica\)/);
    assert.equal(clusterHealth(at("unreachable", null), "m0", rules).state, "degraded");
    assert.equal(clusterHealth(at("replica", 5), null, rules).state, "down");
    assert.match(clusterHealth(at("replica", 5), "m1", rules).sentence, /m1 holds the lease but is replica/);
  });
});
