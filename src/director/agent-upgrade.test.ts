/** The order agents hand over in: standbys first, then group by group, each group's leader last. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { agentUpgradeOrder, type AgentVm } from "./agent-upgrade.js";

const vm = (group: string, index: number | null): AgentVm => ({
  key: index === null ? `standby ${group}/z1` : `${group}/${index}`,
  group,
  member: index === null ? null : `m${index}`,
  address: "127.0.0.1",
  agentPort: 1,
  agentToken: "t",
});

describe("agentUpgradeOrder", () => {
  it("puts standbys first and each group's leader after its followers", () => {
    const order = agentUpgradeOrder(
      [vm("pg", 0), vm("pg", 1), vm("web", 1), vm("pg", 2), vm("web", 0), vm("web", null)],
      new Map([
        ["pg", "m0"],
        ["web", null],
      ]),
    ).map((v) => v.key);
    assert.deepEqual(order, ["standby web/z1", "pg/1", "pg/2", "pg/0", "web/0", "web/1"]);
  });

  it("keeps index order when the leader is unknown or not among the targets", () => {
    const order = agentUpgradeOrder([vm("pg", 2), vm("pg", 1)], new Map([["pg", "m0"]])).map((v) => v.key);
    assert.deepEqual(order, ["pg/1", "pg/2"]);
  });
});
