import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { KEY_FILE, SecretBox } from "./secret-box.js";

describe("secret box", () => {
  it("seals so that the plain text is not in the stored value, and opens it again", () => {
    const box = SecretBox.withKey(randomBytes(32));
    const sealed = box.seal("s3cret-password");
    assert.ok(!sealed.includes("s3cret"));
    assert.notEqual(box.seal("s3cret-password"), sealed, "a fresh IV each time");
    assert.equal(box.open(sealed), "s3cret-password");
  });

  it("refuses a value sealed under another key, or altered", () => {
    const box = SecretBox.withKey(randomBytes(32));
    const sealed = box.seal("x");
    assert.throws(() => SecretBox.withKey(randomBytes(32)).open(sealed), /cannot be opened/);
    const raw = Buffer.from(sealed.slice(3), "base64");
    raw[raw.length - 1]! ^= 1;
    assert.throws(() => box.open(`v1:${raw.toString("base64")}`), /cannot be opened/);
    assert.throws(() => box.open("plain"), /unknown format/);
    assert.throws(
      () => box.open(`v1:${raw.subarray(0, 20).toString("base64")}`),
      /too short/,
      "a cut tag is refused",
    );
  });

  it("keeps its key in the data dir, private, and reuses it", () => {
    const dir = mkdtempSync(join(tmpdir(), "zonal-box-"));
    try {
      const sealed = SecretBox.inDataDir(dir).seal("kept");
      assert.equal(statSync(join(dir, KEY_FILE)).mode & 0o777, 0o600);
      assert.equal(Buffer.from(readFileSync(join(dir, KEY_FILE), "utf8").trim(), "base64").length, 32);
      assert.equal(SecretBox.inDataDir(dir).open(sealed), "kept");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("takes its key from a file of the operator's (kept elsewhere), refuses one others can read, and takes over broker.key", () => {
    const dir = mkdtempSync(join(tmpdir(), "zonal-box-"));
    try {
      const elsewhere = join(dir, "mounted-secret.key");
      writeFileSync(elsewhere, randomBytes(32).toString("base64"), { mode: 0o600 });
      const sealed = SecretBox.load({ dataDir: dir, keyFile: elsewhere }).seal("x");
      assert.equal(SecretBox.load({ dataDir: dir, keyFile: elsewhere }).open(sealed), "x");
      assert.ok(!existsSync(join(dir, KEY_FILE)), "no key made in the data dir");
      chmodSync(elsewhere, 0o644);
      assert.throws(
        () => SecretBox.load({ dataDir: dir, keyFile: elsewhere }),
        /readable by others; chmod 600/,
      );
      const legacy = join(dir, "broker.key");
      writeFileSync(legacy, randomBytes(32).toString("base64"), { mode: 0o600 });
      const old = SecretBox.load({ dataDir: dir, keyFile: legacy }).seal("binding");
      assert.equal(SecretBox.inDataDir(dir).open(old), "binding", "the data dir's old key is kept");
      assert.ok(!existsSync(legacy));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
