/**
 * Hands each test its own block of loopback addresses: an `address_base` for the
 * cloud file, so its zones get octets base+1..base+4. A block is claimed by
 * creating a directory (atomic) holding the owner's PID; a block whose owner died
 * is reclaimed.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { privateRunDir } from "../lib/files.js";
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
    try {
      mkdirSync(dir);
    } catch {
      let owner = 0;
      try {
        owner = Number(readFileSync(join(dir, "pid"), "utf8"));
      } catch {
        /* being created right now */
        continue;
      }
      if (owner && isAlive(owner)) continue;
      rmSync(dir, { recursive: true, force: true });
      try {
        mkdirSync(dir);
      } catch {
        continue;
      }
    }
    writeFileSync(join(dir, "pid"), String(process.pid));
    return { base, release: () => rmSync(dir, { recursive: true, force: true }) };
  }
  throw new Error("no free test address block");
}
