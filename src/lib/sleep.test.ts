import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Waker } from "./sleep.js";

describe("Waker", () => {
  it("sleeps its time when nobody wakes it", async () => {
    const t0 = Date.now();
    await new Waker().sleep(60);
    assert.ok(Date.now() - t0 >= 55, `slept ${Date.now() - t0} ms`);
  });

  it("ends a sleep when woken, and only that one", async () => {
    const w = new Waker();
    const t0 = Date.now();
    const s = w.sleep(10_000);
    setTimeout(() => w.wake(), 20);
    await s;
    assert.ok(Date.now() - t0 < 5000, `slept ${Date.now() - t0} ms`);
    const t1 = Date.now();
    await w.sleep(60);
    assert.ok(Date.now() - t1 >= 55, "the next sleep is whole again");
  });

  it("keeps a wake that came while awake for the next sleep", async () => {
    const w = new Waker();
    w.wake();
    w.wake();
    const t0 = Date.now();
    await w.sleep(10_000);
    assert.ok(Date.now() - t0 < 5000, `slept ${Date.now() - t0} ms`);
    const t1 = Date.now();
    await w.sleep(60);
    assert.ok(Date.now() - t1 >= 55, "two wakes end one sleep");
  });
});
