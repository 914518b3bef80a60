/**
 * Persistent disks that arrive as block devices (OpenStack: a Cinder volume attached
 * by Nova shows up as /dev/vdX, and udev names it
 * `/dev/disk/by-id/virtio-<first 20 characters of the volume id>`). Before a job
 * uses the disk, the agent mounts it at `<disks dir>/<disk id>`, making an ext4
 * file system first when the device has none (a new volume). A device that has a
 * file system is never formatted: its data is what the disk is for.
 *
 * On the local cloud disks are directories already; this module is not used there.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { Conflict, Internal } from "../lib/errors.js";

export interface BlockDiskOptions {
  diskId: string;
  disksDir: string;
  /** Where udev lists devices by id (default /dev/disk/by-id). */
  byIdDir?: string;
}

/** The names a volume's device gets under /dev/disk/by-id (virtio-blk, virtio-scsi). */
export function deviceNames(diskId: string): string[] {
  const serial = diskId.slice(0, 20);
  return [`virtio-${serial}`, `scsi-0QEMU_QEMU_HARDDISK_${serial}`, `scsi-0QEMU_QEMU_HARDDISK_${diskId}`];
}

/** The device of a disk, or undefined when it is not (yet) attached. */
export function findDevice(diskId: string, byIdDir = "/dev/disk/by-id"): string | undefined {
  if (!existsSync(byIdDir)) return undefined;
  const names = new Set(deviceNames(diskId));
  const entry = readdirSync(byIdDir).find((n) => names.has(n));
  return entry ? realpathSync(join(byIdDir, entry)) : undefined;
}

/** True when `dir` is a mount point (listed in /proc/self/mountinfo). */
export function isMountPoint(dir: string): boolean {
  const lines = readFileSync("/proc/self/mountinfo", "utf8").split("\n");
  return lines.some((l) => l.split(" ")[4] === dir);
}

/**
 * Mounts the disk's device at `<disksDir>/<diskId>` (formatting a blank device as
 * ext4) and returns that directory. Idempotent. Rejects: Conflict when no device of
 * the disk is attached; Internal when mkfs or mount fail (their message included).
 */
export function mountBlockDisk(o: BlockDiskOptions): string {
  const target = join(o.disksDir, o.diskId);
  if (existsSync(target) && isMountPoint(target)) return target;
  const device = findDevice(o.diskId, o.byIdDir);
  if (!device) throw new Conflict(`persistent disk ${o.diskId} is not attached to this VM (no block device)`);
  // blkid exits 2 when the device has no recognisable file system.
  const probe = spawnSync("blkid", ["-o", "value", "-s", "TYPE", device], { encoding: "utf8" });
  if (probe.status === 2) run("mkfs.ext4", ["-q", "-L", o.diskId.slice(0, 16), device]);
  else if (probe.status !== 0)
    throw new Internal(`blkid ${device}: ${probe.stderr.trim() || `exit ${probe.status}`}`);
  mkdirSync(target, { recursive: true });
  run("mount", [device, target]);
  return target;
}

function run(cmd: string, args: string[]): void {
  try {
    execFileSync(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Internal(`${cmd} ${args.join(" ")}: ${stderr || (err as Error).message}`);
  }
}
