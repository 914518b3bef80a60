import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { chooseHost, firstFreeSlot, type HostView } from "./scheduler.js";

const host = (id: string, o: Partial<HostView> = {}): HostView => ({
  id,
  up: true,
  attributes: {},
  capacity: { cpu: 8, ramMb: 8192 },
  used: { cpu: 0, ramMb: 0 },
  usedSlots: new Set(),
  ...o,
});

describe("scheduler", () => {
  it("prefers hinted hosts, then the one with most free RAM", () => {
    const hosts = [host("z1/h1", { used: { cpu: 1, ramMb: 4096 } }), host("z1/h2")];
    assert.deepEqual(chooseHost(hosts, { cpu: 1, ramMb: 512 }), { ok: true, host: "z1/h2", slot: 1 });
    assert.deepEqual(chooseHost(hosts, { cpu: 1, ramMb: 512 }, ["z1/h1"]), {
      ok: true,
      host: "z1/h1",
      slot: 1,
    });
  });

  it("gives each rejected host a reason", () => {
    const hosts = [
      host("z2/h1", { up: false }),
      host("z2/h2", { attributes: { ssd: false } }),
      host("z2/h3", { attributes: { ssd: true }, used: { cpu: 0, ramMb: 7680 } }),
      host("z2/h4"),
    ];
    const choice = chooseHost(hosts, { cpu: 1, ramMb: 2048, hostAttributes: { ssd: true } });
    assert.deepEqual(choice, {
      ok: false,
      reasons: [
        "z2/h1: host has failed",
        "z2/h2: ssd is false, needs true",
        "z2/h3: 512 MiB RAM free, needs 2048",
        "z2/h4: lacks ssd",
      ],
    });
  });

  it("uses the lowest free address slot and rejects a full host", () => {
    assert.equal(firstFreeSlot(new Set([1, 2, 4])), 3);
    const full = host("z1/h1", { usedSlots: new Set(Array.from({ length: 254 }, (_, i) => i + 1)) });
    assert.deepEqual(chooseHost([full], { cpu: 1, ramMb: 1 }), {
      ok: false,
      reasons: ["z1/h1: no free address"],
    });
  });
});
