import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { memoUntilFailure } from "./memo.js";

describe("memoUntilFailure", () => {
  it("calls once for every caller after a success, and again after a failure", async () => {
    let calls = 0;
    const get = memoUntilFailure(async () => {
      calls++;
      if (calls === 1) throw new Error("not yet");
      return calls;
    });
    await assert.rejects(get(), /not yet/);
    assert.deepEqual(await Promise.all([get(), get()]), [2, 2]);
    assert.equal(await get(), 2);
    assert.equal(calls, 2);
  });
});
