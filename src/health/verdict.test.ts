import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DEFAULT_HEALTH } from "./config.js";
import { judge, type VerdictInput } from "./verdict.js";

const base: VerdictInput = {
  key: "web/0",
  state: "running",
  desired: "started",
  changedAt: 0,
  lastBeat: { at: 10_000, jobsState: "running", restarts: 0, failingJobs: [] },
  probeFailures: 0,
  now: 11_000,
  monitorStartedAt: 0,
};

describe("judge", () => {
  it("calls an instance healthy while heartbeats arrive within the timeout", () => {
    assert.deepEqual(judge(base, DEFAULT_HEALTH), { health: "healthy", sentence: "web/0 is healthy" });
    assert.equal(judge({ ...base, now: 13_000 }, DEFAULT_HEALTH).health, "healthy", "3.0 s is not over 3 s");
  });

  it("calls it unresponsive after the timeout of silence", () => {
    assert.deepEqual(judge({ ...base, now: 13_200 }, DEFAULT_HEALTH), {
      health: "unresponsive",
      sentence: "web/0 is unresponsive: no heartbeat for 3.2 s",
    });
  });

  it("gives a fresh instance, and every instance after a director restart, a full timeout", () => {
    const noBeat = { ...base, lastBeat: undefined };
    assert.equal(judge({ ...noBeat, changedAt: 9000, now: 11_000 }, DEFAULT_HEALTH).health, "healthy");
    assert.equal(judge({ ...noBeat, monitorStartedAt: 9000, now: 11_000 }, DEFAULT_HEALTH).health, "healthy");
    assert.match(
      judge({ ...noBeat, changedAt: 5000, now: 11_000 }, DEFAULT_HEALTH).sentence,
      /no heartbeat yet for 6\.0 s/,
    );
  });

  it("catches jobs that keep failing, but only past the restart budget and when they should run", () => {
    const failing = {
      ...base,
      lastBeat: { at: 10_500, jobsState: "failing", restarts: 5, failingJobs: ["web"] },
    };
    assert.deepEqual(judge(failing, DEFAULT_HEALTH), {
      health: "failing",
      sentence: "web/0 is failing: its jobs restarted 5 times (web)",
    });
    assert.equal(
      judge({ ...failing, lastBeat: { ...failing.lastBeat, restarts: 4 } }, DEFAULT_HEALTH).health,
      "healthy",
    );
    assert.equal(judge({ ...failing, desired: "stopped" }, DEFAULT_HEALTH).health, "healthy");
  });

  it("catches an agent that beats but does not answer the director", () => {
    assert.match(
      judge({ ...base, probeFailures: 3 }, DEFAULT_HEALTH).sentence,
      /unreachable: it sends heartbeats but did not answer the director 3 times/,
    );
  });

  it("does not judge an instance a task works on", () => {
    assert.equal(judge({ ...base, state: "updating", now: 60_000 }, DEFAULT_HEALTH).health, "not-judged");
  });
});
