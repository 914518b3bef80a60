import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_LEASES, type Manifest } from "../manifest/manifest.js";
import type { Step } from "./planner.js";
import { batchesFor } from "./update-policy.js";

const ZONES = ["z1", "z2", "z3"];
const step = (index: number, action: Step["action"] = "update", group = "web"): Step => ({
  action,
  key: `${group}/${index}`,
  group,
  index,
  instanceId: `i-${index}`,
  zone: ZONES[index % 3]!,
  resources: { cpu: 1, ramMb: 512 },
  reasons: [],
});
const manifest = (update: Partial<Manifest["update"]>, instances = 6): Manifest => ({
  name: "web",
  leases: DEFAULT_LEASES,
  instance_groups: [
    {
      name: "web",
      instances,
      zones: ZONES,
      vm_type: "small",
      strategy: "resurrect",
      relocate: false,
      ports: [],
      jobs: [],
      links: {},
    },
  ],
  update: {
    canaries: 1,
    max_in_flight: 2,
    canary_watch_time: 0,
    update_watch_time: 0,
    serial_zones: true,
    cluster_order: true,
    ...update,
  },
});
const shape = (bs: ReturnType<typeof batchesFor>) =>
  bs.map((b) => `${b.kind}:${b.zone ?? "*"}:${b.steps.map((s) => s.index).join(",")}`);

describe("update policy", () => {
  const six = [0, 1, 2, 3, 4, 5].map((i) => step(i));

  it("updates a canary first, then batches of max_in_flight, one zone at a time", () => {
    assert.deepEqual(shape(batchesFor(six, manifest({}))), [
      "canary:z1:0",
      "batch:z1:3",
      "batch:z2:1,4",
      "batch:z3:2,5",
    ]);
  });

  it("mixes zones when serial_zones is off, and reads max_in_flight as a percentage", () => {
    assert.deepEqual(shape(batchesFor(six, manifest({ serial_zones: false, max_in_flight: "50%" }))), [
      "canary:z1:0",
      "batch:*:3,1,4",
      "batch:z3:2,5",
    ]);
  });

  it("deletes first, and skips canaries when there are none", () => {
    const steps = [step(6, "delete"), step(7, "delete"), step(0, "create"), step(1, "create")];
    assert.deepEqual(shape(batchesFor(steps, manifest({ canaries: 0, max_in_flight: 1 }))), [
      "delete:z1:6",
      "delete:z2:7",
      "batch:z1:0",
      "batch:z2:1",
    ]);
  });

  it("keeps groups in manifest order", () => {
    const m = manifest({});
    m.instance_groups.unshift({ ...m.instance_groups[0]!, name: "db", instances: 1 });
    const bs = batchesFor([step(0, "update", "web"), step(0, "create", "db")], m);
    assert.deepEqual(
      bs.map((b) => `${b.group}:${b.kind}`),
      ["db:canary", "web:canary"],
    );
  });

  it("rolls a cluster one member at a time in its service's order, the leader last after a handover", () => {
    const steps = [step(0), step(1, "recreate"), step(2), step(3, "create"), step(4, "delete")];
    const roles = new Map([["web", { order: ["m1", "m2", "m0"], leader: "m0" }]]);
    const bs = batchesFor(steps, manifest({ canaries: 1, max_in_flight: 2 }), roles);
    assert.deepEqual(shape(bs), ["delete:z2:4", "member:z2:1", "member:z3:2", "member:z1:0", "canary:z1:3"]);
    assert.deepEqual(
      bs.filter((b) => b.kind === "member").map((b) => `${b.first ?? false}/${b.handover ?? false}`),
      ["true/false", "false/false", "false/true"],
    );
  });

  it("puts members the order does not name first, and hands over from no one when the cluster has no leader", () => {
    const bs = batchesFor(
      [step(0), step(1), step(2)],
      manifest({}),
      new Map([["web", { order: ["m2"], leader: null }]]),
    );
    assert.deepEqual(shape(bs), ["member:z1:0", "member:z2:1", "member:z3:2"]);
    assert.equal(
      bs.some((b) => b.handover),
      false,
    );
  });
});
