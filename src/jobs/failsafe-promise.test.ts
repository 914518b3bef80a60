import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { fencedKey, type Lease, type LeaseStore } from "../ha/lease-store.js";
import { sleep } from "../lib/sleep.js";
import { FailsafePromise } from "./failsafe-promise.js";

/** Only `read` is asked: the fencing markers written so far. */
function storeWith(markers: string[], reachable = true): LeaseStore {
  const read = (key: string): Promise<Lease | undefined> => {
    if (!reachable) return Promise.reject(new Error("the store does not answer"));
    if (!markers.includes(key)) return Promise.resolve(undefined);
    return Promise.resolve({
      key,
      holder: "control-plane",
      token: 1,
      ttlMs: 60_000,
      expiresAt: Date.now() + 60_000,
      value: "",
    });
  };
  return { read } as unknown as LeaseStore;
}

describe("failsafe promise", () => {
  it("confirms only a leader the member follows, and holds for the TTL", async () => {
    const p = new FailsafePromise();
    assert.equal(p.confirm("m0", 200, false), false);
    assert.equal(p.to(), null);
    assert.equal(p.confirm("m0", 200, true), true);
    assert.equal(p.to(), "m0");
    await sleep(250);
    assert.equal(p.to(), null, "a promise ends with its TTL");
  });

  it("confirms nobody while taking the lease, and a promise given first stops the taking", async () => {
    const p = new FailsafePromise();
    let confirmedMeanwhile: boolean | undefined;
    const took = await p.take(async () => {
      confirmedMeanwhile = p.confirm("m0", 5000, true);
      return "taken";
    });
    assert.equal(took, "taken");
    assert.equal(confirmedMeanwhile, false);
    assert.equal(p.confirm("m0", 5000, true), true, "confirms again once the taking is over");
    let asked = false;
    const again = await p.take(() => {
      asked = true;
      return Promise.resolve("taken");
    });
    assert.equal(again, undefined);
    assert.equal(asked, false, "the store is not asked while a promise stands");
  });

  it("is void once the control plane fenced the leader, and only then", async () => {
    const p = new FailsafePromise();
    const leader = { member: "m0", vmId: "vm-0" };
    p.confirm("m0", 5000, true);
    assert.equal(await p.voidIfFenced(storeWith([]), "d/g", leader), false);
    assert.equal(await p.voidIfFenced(storeWith([fencedKey("d/g", "vm-0")], false), "d/g", leader), false);
    assert.equal(await p.voidIfFenced(storeWith([fencedKey("d/g", "vm-9")]), "d/g", leader), false);
    assert.equal(p.to(), "m0");
    assert.equal(await p.voidIfFenced(storeWith([fencedKey("d/g", "vm-0")]), "d/g", leader), true);
    assert.equal(p.to(), null);
  });
});
