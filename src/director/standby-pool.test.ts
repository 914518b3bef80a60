/** When a VM became its instance's: what a resumed recreate compares with the task's start. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ADOPTED_AT, instanceVmSince } from "./standby-pool.js";

describe("instanceVmSince", () => {
  const task = "2026-12-07T10:00:00.000Z";
  const bootedBefore = "2026-12-07T09:00:00.000Z";

  it("is the VM's creation for a VM made for its instance", () => {
    assert.equal(
      instanceVmSince({ createdAt: "2026-12-07T10:00:05.000Z", metadata: {} }),
      "2026-12-07T10:00:05.000Z",
    );
  });

  it("is the adoption for a warm VM an instance took over: a resumed task does not recreate it again", () => {
    const adopted = { createdAt: bootedBefore, metadata: { [ADOPTED_AT]: "2026-12-07T10:00:07.000Z" } };
    assert.equal(instanceVmSince(adopted), "2026-12-07T10:00:07.000Z");
    assert.ok(instanceVmSince(adopted) > task, "newer than the task: recreated by it already");
  });

  it("is still the old time for a warm VM adopted before the task began", () => {
    const old = { createdAt: bootedBefore, metadata: { [ADOPTED_AT]: "2026-12-07T09:30:00.000Z" } };
    assert.ok(instanceVmSince(old) < task, "older than the task: due");
  });
});
