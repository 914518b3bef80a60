/** Test address blocks: one owner per block, even when several processes reclaim a dead owner's block at once. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { claimAddressBlock, reclaimStale } from "./addresses.js";

const MODULE = fileURLToPath(new URL("./addresses.js", import.meta.url));

/** A pid no process has: one of a child that has exited. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""]);
  await new Promise((r) => child.once("exit", r));
  return child.pid!;
}

describe("test address blocks", () => {
  const dir = mkdtempSync(join(tmpdir(), "zonal-blocks-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("gives two claims of one process two blocks, each with its owner's pid", () => {
    const a = claimAddressBlock();
    const b = claimAddressBlock();
    try {
      assert.notEqual(a.base, b.base);
    } finally {
      a.release();
      b.release();
    }
  });

  it("reclaims a dead owner's block, never a live one's or one being claimed", async () => {
    const stale = join(dir, "stale");
    mkdirSync(stale);
    writeFileSync(join(stale, "pid"), String(await deadPid()));
    assert.equal(reclaimStale(stale), true);
    assert.equal(readFileSync(join(stale, "pid"), "utf8"), String(process.pid));
    assert.equal(reclaimStale(stale), false, "now owned by a live process");
    const claiming = join(dir, "claiming");
    mkdirSync(claiming);
    assert.equal(reclaimStale(claiming), false, "no pid yet: being claimed");
  });

  it("lets exactly one of eight processes that race for a dead owner's block have it", async () => {
    const stale = join(dir, "raced");
    mkdirSync(stale);
    writeFileSync(join(stale, "pid"), String(await deadPid()));
    // Each tries at the same wall-clock moment, then stays alive (a winner that exited
    // would leave the block stale again) until every one has tried.
    const at = Date.now() + 2000;
    const script = `import { reclaimStale } from ${JSON.stringify(MODULE)};
      setTimeout(() => {
        process.stdout.write(String(reclaimStale(${JSON.stringify(stale)})));
        setTimeout(() => undefined, 1500);
      }, ${at} - Date.now());`;
    const results = await Promise.all(
      Array.from({ length: 8 }, () => {
        const child = spawn(process.execPath, ["--input-type=module", "-e", script]);
        let out = "";
        child.stdout.on("data", (d: Buffer) => (out += d.toString()));
        return new Promise<string>((r) => child.once("exit", () => r(out)));
      }),
    );
    assert.equal(results.filter((r) => r === "true").length, 1, `winners: ${results.join(", ")}`);
    assert.equal(results.filter((r) => r === "false").length, 7);
  });
});
