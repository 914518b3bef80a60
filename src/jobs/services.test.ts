/**
 * The data-service seam holds: no service's name is written as a string anywhere in
 * the control plane, the broker, the CLI or the agent but in its own folder
 * (src/jobs/<service>/) — everything else finds a service through the registry.
 * Comments may name a service; code may not. Test helpers (src/testing) drive real
 * services and may name them.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parse, projectSources, stringsIn } from "../testing/source-scan.js";
import { serviceOf, serviceTypes } from "./services.js";

/** Where a file may name a service anyway, and why. */
const EXEMPT: Record<string, string> = {
  // The control plane's own database may be PostgreSQL: Kysely's dialect, not a data service.
  "src/store/db.ts": "postgres",
  "src/store/migrations.ts": "postgres",
};

describe("the data-service seam", () => {
  it("registers every service under its job type", () => {
    assert.ok(serviceTypes().length >= 3);
    for (const t of serviceTypes())
      assert.equal(serviceOf({ jobs: [{ name: "j", type: t }] })?.service.type, t);
  });

  it("names no service outside its own folder", () => {
    const names = serviceTypes();
    const found: string[] = [];
    for (const { rel, file } of projectSources()) {
      // The two registries: services by job type, and the job types' modules.
      if (
        rel.startsWith("src/testing/") ||
        rel === "src/jobs/services.ts" ||
        rel === "src/jobs/job-modules.ts"
      )
        continue;
      for (const { value, line } of stringsIn(file)) {
        for (const name of names) {
          if (rel.startsWith(`src/jobs/${name}/`) || EXEMPT[rel] === name) continue;
          if (new RegExp(`(^|[^a-z_])${name}([^a-z_]|$)`).test(value))
            found.push(`${rel}:${line}: "${value.slice(0, 80)}"`);
        }
      }
    }
    assert.deepEqual(found, [], `services named outside their folders:\n${found.join("\n")}`);
  });

  it("finds names in code but not in comments (the check itself can fail)", () => {
    const hits = stringsIn(parse('// postgres\nconst a = "postgres";\nconst b = `x ${a} haproxy`;\n'));
    assert.deepEqual(
      hits.map((h) => [h.value, h.line]),
      [
        ["postgres", 2],
        ["x ", 3],
        [" haproxy", 3],
      ],
    );
  });
});
