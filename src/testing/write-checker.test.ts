import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { WriteChecker, type CheckerDriver } from "./write-checker.js";

/** A checker that never writes: the test fills in its acknowledgements. */
const idle = () => new WriteChecker<string>({} as CheckerDriver<string>, "target");

describe("WriteChecker.pauses", () => {
  it("lists the main writer's gaps over the bound, from the window's start to its end", () => {
    const c = idle();
    const ack = (at: number, via = "vip") => c.acked.push({ n: at, member: "m0", timeline: 1, at, via });
    for (const at of [1100, 1200, 1900, 2000, 2050]) ack(at);
    ack(1500, "direct-m1"); // another writer's acknowledgement does not end a pause
    assert.deepEqual(c.pauses(1000, 2600, 250), [
      { at: 1200, ms: 700 },
      { at: 2050, ms: 550 },
    ]);
    assert.deepEqual(c.pauses(1000, 2100, 250), [{ at: 1200, ms: 700 }]);
    assert.equal(c.longestGap(1000, 2600), 700);
  });
});
