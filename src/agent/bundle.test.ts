import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { ZONAL_VERSION } from "../lib/version.js";

const BUNDLE = fileURLToPath(new URL("../../agent/zonal-agent.mjs", import.meta.url));
const NAVIGATOR = fileURLToPath(new URL("../lib/node-navigator.js", import.meta.url));
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** Loads pg in a fresh node (after `first`, when given) and says whether node's fetch stack came with it. */
function pgLoadsFetchStack(first?: string): boolean {
  const script = [
    first ? `await import(${JSON.stringify(first)});` : "",
    'const { createRequire } = await import("node:module");',
    `createRequire(${JSON.stringify(`${ROOT}package.json`)})("pg");`,
    'console.log(process.moduleLoadList.some((m) => m.includes("undici")));',
  ].join("\n");
  const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  assert.equal(run.status, 0, run.stderr);
  return run.stdout.trim() === "true";
}

describe("the agent VMs run", () => {
  it("is built as one bundle that starts and says how to run it", () => {
    const run = spawnSync(process.execPath, [BUNDLE], { encoding: "utf8" });
    assert.equal(run.status, 2, run.stderr);
    assert.equal(run.stderr, "usage: zonal-agent --vm-dir DIR\n");
  });

  it("reads zonal's version from the package.json it finds above it", () => {
    const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, "utf8")) as { version: string };
    assert.equal(ZONAL_VERSION, pkg.version);
  });

  it("loads its PostgreSQL job type's chunk, pg in it, without node's fetch stack", () => {
    const meta = JSON.parse(readFileSync(join(dirname(BUNDLE), "meta.json"), "utf8")) as {
      outputs: Record<string, { entryPoint?: string }>;
    };
    const chunk = Object.entries(meta.outputs).find(([, o]) =>
      o.entryPoint?.endsWith("jobs/postgres/postgres-job.js"),
    )?.[0];
    assert.ok(chunk, "the build names the PostgreSQL job type's chunk");
    const script = [
      `const m = await import(${JSON.stringify(join(ROOT, chunk))});`,
      'console.log(JSON.stringify({ type: m.postgresJob?.type, undici: process.moduleLoadList.some((x) => x.includes("undici")) }));',
    ].join("\n");
    const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    assert.equal(run.status, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { type: "postgres", undici: false });
  });

  it("loads the pg driver without node's fetch stack", () => {
    assert.equal(pgLoadsFetchStack(NAVIGATOR), false, "pg loaded undici though navigator was set");
    // On node 20, without the navigator, pg's Cloudflare probe does load it: what the shim is for.
    if (Number(process.versions.node.split(".")[0]) < 21) assert.equal(pgLoadsFetchStack(), true);
  });
});
