import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InvalidInput } from "../lib/errors.js";
import { parseSpec } from "./spec.js";
import "../jobs/registry.js"; // every job type loaded (an agent loads the ones its spec names)

describe("agent spec", () => {
  it("fills defaults and validates each job's config with its job type", () => {
    const spec = parseSpec({
      jobs: [
        {
          name: "web",
          type: "process",
          config: { command: "exec true", health_check: { http: { port: 80 } } },
        },
      ],
    });
    assert.equal(spec.version, "0");
    assert.equal(spec.persistent_disk, null);
    const job = spec.jobs[0]!;
    assert.deepEqual(job.hooks, {});
    assert.equal(job.stop_timeout_ms, 10_000);
    assert.deepEqual(job.config, {
      command: "exec true",
      env: {},
      health_check: { http: { port: 80, path: "/" } },
    });
  });

  it("names every bad field, including inside a job's config", () => {
    try {
      parseSpec({
        persistent_disk: { id: "" },
        jobs: [
          { name: "web", type: "process", config: { command: "", health_check: { http: { port: 99999 } } } },
          { name: "web", type: "nosuch" },
          { name: "Bad Name", type: "process", config: { command: ["x"] }, hooks: { pre_strat: "x" } },
        ],
      });
      assert.fail("expected InvalidInput");
    } catch (err) {
      assert.ok(err instanceof InvalidInput, String(err));
      const fields = err.problems.map((p) => p.field);
      assert.ok(fields.includes("persistent_disk.id"), fields.join());
      assert.ok(fields.includes("jobs[2].name"), fields.join());
      assert.ok(fields.includes("jobs[2].hooks"), fields.join());
      assert.match(err.message, /jobs\[2\]\.hooks: .*pre_strat/);
    }
    try {
      parseSpec({
        jobs: [
          { name: "web", type: "process", config: { command: "", health_check: { http: { port: 99999 } } } },
          { name: "web", type: "nosuch" },
        ],
      });
      assert.fail("expected InvalidInput");
    } catch (err) {
      assert.ok(err instanceof InvalidInput, String(err));
      const text = err.problems.map((p) => `${p.field}: ${p.problem}`).join("\n");
      assert.match(text, /^jobs\[0\]\.config\.command: /m);
      assert.match(text, /^jobs\[0\]\.config\.health_check/m);
      assert.match(text, /^jobs\[1\]\.name: duplicate job "web"/m);
      assert.match(text, /^jobs\[1\]\.type: unknown job type "nosuch" \(known: process/m);
    }
  });
});
