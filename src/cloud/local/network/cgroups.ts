/**
 * A cgroup v2 group per VM (and one for the control plane), so nftables can tell
 * their packets apart: every process of a VM is in its group (children inherit
 * it), and nft's `socket cgroupv2` names a group by its path under /sys/fs/cgroup
 * and its depth below the cgroup v2 root.
 *
 * Groups live under `<cgroup2 root>/zonal/<network>/<name>`. On hosts where cgroup v2
 * sits beside the v1 controllers (the root is /sys/fs/cgroup/unified), nft names
 * a group `unified/zonal/<network>/<name>`.
 */
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";

/** nft resolves `socket cgroupv2` paths under this directory. */
const NFT_CGROUP_BASE = "/sys/fs/cgroup";

export interface CgroupRef {
  /** The group's directory. */
  dir: string;
  /** The path nft names it by (relative to /sys/fs/cgroup). */
  nftPath: string;
  /** Its depth below the cgroup v2 root (nft's `level`). */
  level: number;
}

/** Where cgroup v2 is mounted (from /proc/self/mountinfo), if it is under /sys/fs/cgroup. */
export function cgroup2Root(): string | undefined {
  let info: string;
  try {
    info = readFileSync("/proc/self/mountinfo", "utf8");
  } catch {
    return undefined;
  }
  for (const line of info.split("\n")) {
    const [before, after] = line.split(" - ");
    if (!before || !after || after.split(" ")[0] !== "cgroup2") continue;
    const mountPoint = before.split(" ")[4];
    if (mountPoint === NFT_CGROUP_BASE || mountPoint?.startsWith(`${NFT_CGROUP_BASE}/`)) return mountPoint;
  }
  return undefined;
}

export function cgroupRef(root: string, network: string, name: string): CgroupRef {
  const dir = join(root, "zonal", network, name);
  return {
    dir,
    nftPath: relative(NFT_CGROUP_BASE, dir),
    level: relative(root, dir).split("/").length,
  };
}

export function ensureCgroup(ref: CgroupRef): void {
  mkdirSync(ref.dir, { recursive: true });
}

/** Moves a process into the group (its future children follow). */
export function moveToCgroup(ref: CgroupRef, pid: number): void {
  ensureCgroup(ref);
  writeFileSync(join(ref.dir, "cgroup.procs"), String(pid));
}

/** Removes the group if it is empty (a group with live processes stays). */
export function removeCgroup(ref: CgroupRef): void {
  try {
    rmdirSync(ref.dir);
  } catch {
    /* gone already, or processes still in it */
  }
}
