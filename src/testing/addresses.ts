/**
 * Hands each test its own block of loopback addresses: an `address_base` for the
 * cloud file, so its zones get octets base+1..base+4. A block is claimed by
 * creating a directory (atomic) holding the owner's PID (written atomically); a
 * block whose owner died is reclaimed under a lock, by one process only.
 */
import { mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { privateRunDir, writeFileAtomic } from "../lib/files.js";
import { isAlive } from "../lib/proc.js";

const FIRST = 10;
const STEP = 5;
const LAST = 245;

export interface AddressBlock {
  base: number;
  release(): void;
}

export function claimAddressBlock(): AddressBlock {
  const ROOT = privateRunDir("test-address-blocks");
  const start = FIRST + STEP * Math.floor(Math.random() * ((LAST - FIRST) / STEP));
  for (let i = 0; i <= (LAST - FIRST) / STEP; i++) {
    const base = FIRST + ((start - FIRST + i * STEP) % (LAST - FIRST + STEP));
    const dir = join(ROOT, String(base));
    let mine: boolean;
    try {
      mkdirSync(dir);
      mine = true;
    } catch {
      mine = reclaimStale(dir);
    }
    if (!mine) continue;
    // Atomic: a reader sees no pid (being claimed) or this one, never an empty file.
    writeFileAtomic(join(dir, "pid"), String(process.pid));
    return { base, release: () => rmSync(dir, { recursive: true, force: true }) };
  }
  throw new Error("no free test address block");
}

/** The owner's pid; 0 while the block is being claimed (no pid written yet). */
function ownerOf(dir: string): number {
  try {
    return Number(readFileSync(join(dir, "pid"), "utf8")) || 0;
  } catch {
    return 0;
  }
}

/**
 * Takes over a block whose owner died. Only under the block's reclaim lock (a
 * directory beside it, made atomically), and only when the owner read under the
 * lock is still dead: two processes that both saw the dead owner cannot both win.
 */
export function reclaimStale(dir: string): boolean {
  const before = ownerOf(dir);
  if (before === 0 || isAlive(before)) return false;
  const lock = `${dir}.reclaim`;
  try {
    mkdirSync(lock);
  } catch {
    // Someone else reclaims it now; a lock left by a process that died is cleared after a minute.
    try {
      if (Date.now() - statSync(lock).mtimeMs > 60_000) rmSync(lock, { recursive: true, force: true });
    } catch {
      /* gone meanwhile */
    }
    return false;
  }
  try {
    if (ownerOf(dir) !== before) return false;
    writeFileAtomic(join(dir, "pid"), String(process.pid));
    return true;
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}
