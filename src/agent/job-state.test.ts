import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { backoffDelayMs, checkTransition, IllegalTransition, summarizeJobs } from "./job-state.js";

describe("job lifecycle", () => {
  it("allows the supervisor's transitions and throws on illegal ones", () => {
    checkTransition("web", "stopped", "starting");
    checkTransition("web", "starting", "running");
    checkTransition("web", "running", "backoff");
    checkTransition("web", "backoff", "starting");
    checkTransition("web", "running", "stopping");
    checkTransition("web", "stopping", "stopped");
    assert.throws(() => checkTransition("web", "stopped", "running"), IllegalTransition);
    assert.throws(
      () => checkTransition("web", "stopping", "starting"),
      /web: illegal transition stopping -> starting/,
    );
  });

  it("backs off 1, 2, 4 ... seconds, capped at 30", () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 10].map(backoffDelayMs),
      [1000, 2000, 4000, 8000, 16000, 30000, 30000],
    );
  });

  it("summarizes a VM's jobs in one word", () => {
    assert.equal(summarizeJobs([]), "none");
    assert.equal(summarizeJobs(["running", "running"]), "running");
    assert.equal(summarizeJobs(["running", "backoff"]), "failing");
    assert.equal(summarizeJobs(["starting", "running"]), "starting");
    assert.equal(summarizeJobs(["stopped", "stopped"]), "stopped");
    assert.equal(summarizeJobs(["stopped", "running"]), "partial");
  });
});
