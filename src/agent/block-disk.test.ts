/**
 * Block-device disks on a real loop device (root): a blank device is formatted and
 * mounted; a device with data is mounted again without being formatted.
 */
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Conflict } from "../lib/errors.js";
import { deviceNames, isMountPoint, mountBlockDisk } from "./block-disk.js";

describe("block-device disks", () => {
  const dir = mkdtempSync(join(tmpdir(), "zonal-blk-"));
  const byId = join(dir, "by-id");
  const disksDir = join(dir, "disks");
  const diskId = "3f0c9a52-7d1e-4b8a-9c61-0a1b2c3d4e5f";
  let loop = "";
  before(() => {
    const image = join(dir, "volume.img");
    execFileSync("truncate", ["-s", "32M", image]);
    loop = execFileSync("losetup", ["--find", "--show", image], { encoding: "utf8" }).trim();
    mkdirSync(byId);
    symlinkSync(loop, join(byId, deviceNames(diskId)[0]!));
  });
  after(() => {
    const target = join(disksDir, diskId);
    if (isMountPoint(target)) spawnSync("umount", [target]);
    if (loop) spawnSync("losetup", ["-d", loop]);
    rmSync(dir, { recursive: true, force: true });
  });

  it("formats a blank volume, mounts it, and mounts it again later without formatting", () => {
    const target = mountBlockDisk({ diskId, disksDir, byIdDir: byId });
    assert.equal(target, join(disksDir, diskId));
    assert.ok(isMountPoint(target));
    assert.equal(
      execFileSync("blkid", ["-o", "value", "-s", "TYPE", loop], { encoding: "utf8" }).trim(),
      "ext4",
    );
    assert.equal(mountBlockDisk({ diskId, disksDir, byIdDir: byId }), target, "idempotent");
    writeFileSync(join(target, "data"), "kept");
    execFileSync("umount", [target]);
    assert.ok(!isMountPoint(target));
    mountBlockDisk({ diskId, disksDir, byIdDir: byId });
    assert.equal(readFileSync(join(target, "data"), "utf8"), "kept", "the data survives: no second mkfs");
  });

  it("says a disk is not attached when no device carries its id", () => {
    assert.throws(
      () => mountBlockDisk({ diskId: "99999999-0000-0000-0000-000000000000", disksDir, byIdDir: byId }),
      (err: unknown) => err instanceof Conflict && /not attached/.test(err.message),
    );
  });
});
