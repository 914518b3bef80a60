/** Looks up a system user (uid, gid, home) in /etc/passwd, for jobs that run as one. */
import { chmodSync, chownSync, mkdirSync, readFileSync } from "node:fs";
import { InvalidInput } from "./errors.js";

export interface SystemUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

export function lookupUser(name: string): SystemUser {
  for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
    const [user, , uid, gid, , home] = line.split(":");
    if (user === name) return { name, uid: Number(uid), gid: Number(gid), home: home ?? "/" };
  }
  throw new InvalidInput(`user: no system user "${name}" on this VM`);
}

/** Gives `path` to the system user `name` (its group too), and `mode` when given. */
export function ownBy(path: string, name: string, mode?: number): void {
  const user = lookupUser(name);
  chownSync(path, user.uid, user.gid);
  if (mode !== undefined) chmodSync(path, mode);
}

/** A directory (made if missing) that belongs to the system user `name`, with `mode`. */
export function ownedDir(path: string, name: string, mode: number): void {
  mkdirSync(path, { recursive: true, mode });
  ownBy(path, name, mode);
}
