/** Test address blocks: one owner per block, even when several processes reclaim a dead owner's block at once. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
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
    writeFileSync(join(stale, `owner-${await deadPid()}-0`), "");
    assert.equal(reclaimStale(stale), true);
    const [owner] = readdirSync(stale);
    assert.match(owner!, new RegExp(`^owner-${process.pid}-\\d+$`));
    assert.equal(readdirSync(stale).length, 1, "one owner file");
    assert.equal(reclaimStale(stale), false, "now owned by a live process");
    const releasing = join(dir, "releasing");
    mkdirSync(releasing);
    assert.equal(reclaimStale(releasing), false, "no owner file: being released");
  });

  it("lets exactly one of eight processes that race for a dead owner's block have it", async () => {
    const stale = join(dir, "raced");
    mkdirSync(stale);
    writeFileSync(join(stale, `owner-${await deadPid()}-0`), "");
    // Each tries at the same wall-clock moment, then stays alive until told (a winner
    // that exited would leave the block stale again for a late one).
    const at = Date.now() + 2000;
    const script = `import { reclaimStale } from ${JSON.stringify(MODULE)};
      setTimeout(() => process.stdout.write(String(reclaimStale(${JSON.stringify(stale)}))), ${at} - Date.now());
      process.stdin.resume();`;
    const children = Array.from({ length: 8 }, () =>
      spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["pipe", "pipe", "inherit"] }),
    );
    const results = await Promise.all(
      children.map(
        (child) =>
          new Promise<string>((r) => {
            let out = "";
            child.stdout.on("data", (d: Buffer) => r((out += d.toString())));
          }),
      ),
    );
    for (const child of children) child.stdin.end();
    await Promise.all(
      children.map((c) => new Promise((r) => (c.exitCode !== null ? r(0) : c.once("exit", r)))),
    );
    assert.equal(results.filter((r) => r === "true").length, 1, `winners: ${results.join(", ")}`);
    assert.equal(results.filter((r) => r === "false").length, 7);
  });
});
