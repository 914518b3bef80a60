/** privateRunDir: a directory of this user only, never one someone else planted. */
import assert from "node:assert/strict";
import { lstatSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, it } from "node:test";
import { privateRunDir } from "./files.js";

describe("privateRunDir", () => {
  const name = `files-test-${process.pid}`;
  const made: string[] = [];
  after(() => {
    for (const p of made) rmSync(p, { recursive: true, force: true });
  });

  it("makes a 0700 directory of this user outside any world-writable directory", () => {
    const dir = privateRunDir(name);
    made.push(dir);
    const st = lstatSync(dir);
    assert.ok(st.isDirectory());
    assert.equal(st.mode & 0o777, 0o700);
    assert.equal(st.uid, process.getuid!());
    const parent = lstatSync(dirname(dir));
    assert.equal(parent.mode & 0o002, 0, `${dirname(dir)} is not world-writable`);
  });

  it("refuses a symlink planted where it would be", () => {
    const parent = dirname(privateRunDir(name));
    const elsewhere = mkdtempSync(join(tmpdir(), "zonal-planted-"));
    made.push(elsewhere);
    const planted = join(parent, `${name}-planted`);
    symlinkSync(elsewhere, planted);
    made.push(planted);
    assert.throws(() => privateRunDir(`${name}-planted`), /expected a directory of uid/);
  });
});
