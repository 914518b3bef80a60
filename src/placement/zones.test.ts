import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { balanceZones } from "./zones.js";

const Z = ["z1", "z2", "z3"];
const count = (plan: ReturnType<typeof balanceZones>) => {
  const c: Record<string, number> = {};
  for (const i of [...plan.keep, ...plan.create, ...plan.move.map((m) => ({ zone: m.to }))])
    c[i.zone] = (c[i.zone] ?? 0) + 1;
  return c;
};

describe("balanceZones", () => {
  it("spreads a new group of 6 evenly: 2 per zone, indices 0-5", () => {
    const plan = balanceZones("web", Z, 6, []);
    assert.deepEqual(count(plan), { z1: 2, z2: 2, z3: 2 });
    assert.deepEqual(
      plan.create.map((c) => c.index),
      [0, 1, 2, 3, 4, 5],
    );
    assert.deepEqual(
      plan.create.slice(0, 3).map((c) => c.zone),
      Z,
      "round-robin over zones",
    );
  });

  it("scales down from the most crowded zone, highest index first", () => {
    const existing = [
      { index: 0, zone: "z1", hasDisk: false },
      { index: 1, zone: "z2", hasDisk: false },
      { index: 2, zone: "z3", hasDisk: false },
      { index: 3, zone: "z1", hasDisk: false },
      { index: 4, zone: "z1", hasDisk: false },
    ];
    const plan = balanceZones("web", Z, 3, existing);
    assert.deepEqual(plan.delete, [
      { index: 4, zone: "z1" },
      { index: 3, zone: "z1" },
    ]);
    assert.deepEqual(count(plan), { z1: 1, z2: 1, z3: 1 });
  });

  it("scales up into the emptiest zones, reusing the lowest free indices", () => {
    const existing = [
      { index: 0, zone: "z1", hasDisk: true },
      { index: 2, zone: "z1", hasDisk: true },
    ];
    const plan = balanceZones("db", Z, 4, existing);
    assert.deepEqual(plan.keep.length, 2);
    assert.deepEqual(plan.create, [
      { index: 1, zone: "z2" },
      { index: 3, zone: "z3" },
    ]);
  });

  it("moves a diskless instance out of a zone that is no longer listed, but never one with a disk", () => {
    const moved = balanceZones("web", ["z1", "z2"], 2, [
      { index: 0, zone: "z1", hasDisk: false },
      { index: 1, zone: "z3", hasDisk: false },
    ]);
    assert.deepEqual(moved.move, [{ index: 1, from: "z3", to: "z2" }]);
    const stuck = balanceZones("db", ["z1", "z2"], 2, [
      { index: 0, zone: "z1", hasDisk: true },
      { index: 1, zone: "z3", hasDisk: true },
    ]);
    assert.deepEqual(stuck.errors, [
      "db/1 has a persistent disk in zone z3, which the group no longer lists; its data cannot move to another zone",
    ]);
    // A cluster member's data is on its peers too: it moves, and gets a new disk there.
    const member = balanceZones(
      "db",
      ["z1", "z2"],
      2,
      [
        { index: 0, zone: "z1", hasDisk: true },
        { index: 1, zone: "z3", hasDisk: true },
      ],
      { rebuildDisks: true },
    );
    assert.deepEqual(member.errors, []);
    assert.deepEqual(member.move, [{ index: 1, from: "z3", to: "z2" }]);
  });
});
