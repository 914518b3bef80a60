/**
 * Hands each test its own block of loopback addresses: an `address_base` for the
 * cloud file, so its zones get octets base+1..base+4. A block is a directory holding
 * one file naming its owner (`owner-<pid>-<start time>`). It appears with that file
 * already in it (made aside, renamed into place), and a dead owner's block changes
 * hands by renaming that file: a rename succeeds for one process only, so two that
 * race for a block cannot both have it.
 */
import { mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { privateRunDir } from "../lib/files.js";
import { isAlive, readStat } from "../lib/proc.js";

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
    if (claimFree(ROOT, dir) || reclaimStale(dir))
      return { base, release: () => rmSync(dir, { recursive: true, force: true }) };
  }
  throw new Error("no free test address block");
}

/** This process as a block's owner file names it. */
function me(): string {
  return `owner-${process.pid}-${readStat(process.pid)?.startTime ?? 0}`;
}

/** Takes a block nobody holds: its directory, made aside with the owner file in it, renamed into place. */
function claimFree(root: string, dir: string): boolean {
  const made = mkdtempSync(join(root, ".claim-"));
  writeFileSync(join(made, me()), "");
  try {
    renameSync(made, dir); // fails when the block's directory exists (it is never empty)
    return true;
  } catch {
    rmSync(made, { recursive: true, force: true });
    return false;
  }
}

/**
 * Takes over a block whose owner died, by renaming its owner file to this process's:
 * of several processes that saw the same dead owner, one rename succeeds. A block
 * without an owner file is being released: not taken.
 */
export function reclaimStale(dir: string): boolean {
  let owner: string | undefined;
  try {
    owner = readdirSync(dir).find((f) => f.startsWith("owner-"));
  } catch {
    return false;
  }
  if (!owner) return false;
  const [pid = 0, startTime = 0] = owner.slice("owner-".length).split("-").map(Number);
  if (isAlive(pid, startTime)) return false;
  try {
    renameSync(join(dir, owner), join(dir, me()));
    return true;
  } catch {
    return false;
  }
}
